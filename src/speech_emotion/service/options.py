"""Service settings, with safe defaults: loopback only, bounded uploads, streams and idle time."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpeechEmotionError


class ServiceConfigError(SpeechEmotionError):
    """Service settings that would be unsafe or cannot work."""


LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the service reachable from this machine only."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class ServiceOptions:
    """How ``speech-emotion serve`` listens and what it accepts."""

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    """API token; required on ``/v1/*`` when set, and mandatory when ``host`` is not loopback."""
    model: str | Path | None = None
    """Bundled model name or bundle folder (``None``: the bundled default)."""
    threads: int | None = 1
    """ONNX Runtime threads per inference (1 lets concurrent requests use separate cores)."""
    workers: int = 2
    """Threads running stream inference, shared by all streams."""
    upload_workers: int = 1
    """Threads running upload inference (a long analysis never holds up the streams)."""
    max_uploads: int = 4
    """Uploads being processed or waiting at once; more get 503 with ``Retry-After``."""
    max_upload_mb: float = 20.0
    """Largest accepted request body for uploads."""
    max_duration_s: float = 600.0
    """Longest accepted uploaded recording."""
    max_streams: int = 8
    """Concurrent ``/v1/stream`` connections; more are refused with close code 1013."""
    idle_timeout_s: float = 30.0
    """A stream with no message for this long is closed (code 4408)."""
    max_stream_s: float = 3600.0
    """Longest audio one stream may send (code 4413 past it)."""
    max_backlog_s: float = 5.0
    """Audio a stream may have waiting for the recognizer: past it the server stops reading (TCP holds
    the client back), or for ``live`` streams drops the audio and reports it. Bounds memory per stream."""
    warmup: bool = True
    """Run one prediction at start-up, so the first request is not slowed by lazy initialisation."""
    max_frame_bytes: int = 1 << 20
    """Largest single WebSocket message (code 1009 past it)."""
    cors_origins: list[str] = field(default_factory=list)
    """Origins allowed by CORS and for browser WebSocket connections; empty: same origin only."""

    def check(self) -> None:
        """Raise :class:`ServiceConfigError` for unsafe or impossible settings."""
        if not is_loopback(self.host) and not self.token:
            raise ServiceConfigError(
                f"binding {self.host} exposes the service beyond this machine: set a token "
                "(--token-file or SPEECH_EMOTION_TOKEN)"
            )
        if self.token is not None and len(self.token) < 16:
            raise ServiceConfigError("the API token must be at least 16 characters")
        for name in ("max_upload_mb", "max_duration_s", "idle_timeout_s", "max_stream_s", "max_backlog_s"):
            if getattr(self, name) <= 0:
                raise ServiceConfigError(f"{name} must be positive")
        for name in ("max_streams", "workers", "upload_workers", "max_uploads", "max_frame_bytes"):
            if getattr(self, name) < 1:
                raise ServiceConfigError(f"{name} must be at least 1")
        if "*" in self.cors_origins and self.token is None:
            raise ServiceConfigError("CORS origin '*' lets any web site call the API: it needs a token")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def page_url(self) -> str:
        """Address of the web page (IPv6 hosts bracketed; 0.0.0.0 shown as 127.0.0.1)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"
