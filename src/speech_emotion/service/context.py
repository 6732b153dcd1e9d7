"""What every route of one service app shares: its options, model, worker pools and slots."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from ..recognizer import Recognizer
from .limits import Slots
from .options import ServiceOptions
from .scheduler import LiveScheduler
from .stream import EngineFactory


@dataclass(frozen=True)
class ServiceContext:
    """The state of one app (``app.state.context``), made by :func:`~speech_emotion.service.app.create_app`."""

    options: ServiceOptions
    recognizer: Recognizer
    make_engine: EngineFactory
    """One streaming engine per WebSocket."""
    live: LiveScheduler
    """Runs every stream's engine steps, batched."""
    upload_pool: ThreadPoolExecutor
    slots: Slots
    """Stream slots."""
    uploads: Slots
    """Upload slots (held by :class:`~speech_emotion.service.limits.UploadGate`)."""


def context(connection: HTTPConnection) -> ServiceContext:
    """The :class:`ServiceContext` of the app serving ``connection`` (a FastAPI dependency, HTTP or WebSocket)."""
    return connection.app.state.context
