"""The web service: a FastAPI app with the web page, file prediction and analysis, and live streaming.

Build it with :func:`~speech_emotion.service.app.create_app`; ``speech-emotion serve`` runs it with uvicorn.
"""

from .options import ServiceOptions

__all__ = ["ServiceOptions"]
