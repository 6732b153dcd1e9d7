"""speech-emotion: recognise emotion in human speech, live and in recordings."""

from __future__ import annotations

from .labels import EMOTIONS

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "__version__"]
