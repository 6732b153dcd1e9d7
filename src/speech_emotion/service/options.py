"""Service settings, with safe defaults: loopback only, bounded uploads, streams and idle time."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..decode import MAX_DECODED_SAMPLES
from ..errors import UsageError


class ServiceConfigError(UsageError):
    """Service settings that would be unsafe or cannot work (a usage error: the CLI exits 2)."""


LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the service reachable from this machine only."""
    host = host.lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


MIN_TOKEN_CHARS = 16
"""The shortest API token accepted (``--token-file -`` makes one of 32)."""

HOPS = (0.5, 1.0, 2.0, 4.0)
"""The update hops a live stream may run at: the engine's 0.5 s, doubled while the server is behind."""


def whole(value: float) -> int | float:
    """``value`` as an ``int`` when it is a whole number, else unchanged."""
    return int(value) if float(value).is_integer() else value


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
    processes: int = 1
    """Server processes sharing the port (``serve --processes``; the kernel spreads connections over them). Each
    runs its own model, live scheduler and limits (``max_streams``, ``max_uploads``, ``max_connections`` are per
    process). One per core uses every core: one process's Python work runs on one core at a time."""
    max_hop_s: float = 2.0
    """Widest update hop of live streams under load (the engine's ``hop_s``, 0.5 s, when the server keeps up;
    doubled while requests wait, up to this; reported in each update as ``hop_s``). ``0.5``: never widen."""
    upload_workers: int | None = None
    """Threads running upload inference, apart from the streams' (``None``: half the cores, at least 2, so a
    short request does not wait behind a long analysis)."""
    max_uploads: int = 4
    """Uploads being processed or waiting at once; more get 503 with ``Retry-After``."""
    max_upload_mb: float = 20.0
    """Largest accepted request body for uploads, in MiB (2^20 bytes; the name keeps the API's ``max_upload_mb``)."""
    max_duration_s: float = 600.0
    """Longest accepted uploaded recording."""
    max_decoded_samples: int = MAX_DECODED_SAMPLES
    """Decode budget of one upload, ``channels x frames`` read from its header before decoding (default: 600 s
    of 48 kHz stereo); more is refused with 413 ``audio_too_large``, whatever the compressed size."""
    max_streams: int = 8
    """Concurrent ``/v1/stream`` connections; more are refused with close code 1013."""
    idle_timeout_s: float = 30.0
    """A stream that sends no audio for this long is closed (code 4408); control messages do not count."""
    max_stream_s: float = 3600.0
    """Longest audio one stream may send (code 4413 past it)."""
    max_backlog_s: float = 5.0
    """Audio a stream may have waiting for the recognizer: past it the server stops reading (TCP holds
    the client back), or for ``live`` streams drops the audio and reports it. Bounds memory per stream."""
    warmup: bool = True
    """Run one prediction at start-up, so the first request is not slowed by lazy initialisation."""
    max_frame_bytes: int = 1 << 20
    """Largest single WebSocket message: past it the server sends ``frame_too_large`` and closes with 1009.
    Messages over 4x this are cut off by the WebSocket layer itself (1009 without the message)."""
    cors_origins: list[str] = field(default_factory=list)
    """Origins allowed by CORS and for browser WebSocket connections; empty: same origin only."""
    allowed_hosts: list[str] = field(default_factory=list)
    """Host names served besides loopback ones when no token is set (DNS-rebinding guard); with a token,
    any ``Host`` is served."""
    header_timeout_s: float = 10.0
    """Time a connection has to send complete request headers (from connecting, or after the previous
    response); past it: 408 ``request_timeout`` and the connection is closed."""
    body_timeout_s: float = 15.0
    """Longest wait for the next piece of a request body; past it: 408 ``request_timeout``, connection closed."""
    max_connections: int = 128
    """Open connections (HTTP and WebSocket) at once; more are answered 503 ``too_many_connections`` and
    closed at once, before their request is read."""

    def check(self) -> None:
        """Raise :class:`ServiceConfigError` for unsafe or impossible settings."""
        if not is_loopback(self.host) and not self.token:
            raise ServiceConfigError(
                f"binding {self.host} exposes the service beyond this machine: set a token "
                "(--token-file or SPEECH_EMOTION_TOKEN)"
            )
        if self.token is not None and len(self.token) < MIN_TOKEN_CHARS:
            raise ServiceConfigError(
                f"the API token must be at least {MIN_TOKEN_CHARS} characters, got {len(self.token)} "
                "(--token-file - makes one)"
            )
        for name in (
            "max_upload_mb",
            "max_duration_s",
            "idle_timeout_s",
            "max_stream_s",
            "max_backlog_s",
            "header_timeout_s",
            "body_timeout_s",
        ):
            if getattr(self, name) <= 0:
                raise ServiceConfigError(f"{name} must be positive")
        for name in ("max_streams", "max_uploads", "max_frame_bytes", "max_connections", "max_decoded_samples"):
            if getattr(self, name) < 1:
                raise ServiceConfigError(f"{name} must be at least 1")
        if self.upload_workers is not None and self.upload_workers < 1:
            raise ServiceConfigError("upload_workers must be at least 1")
        if self.processes < 1:
            raise ServiceConfigError("processes must be at least 1")
        if self.max_hop_s not in HOPS:
            raise ServiceConfigError(f"max_hop_s must be one of {', '.join(f'{h:g}' for h in HOPS)} (the hop doubles)")
        if self.processes > available_cores():
            raise ServiceConfigError(
                f"processes must be at most the {available_cores()} cores this server may use (one per core)"
            )
        if self.max_connections <= self.max_streams:
            raise ServiceConfigError("max_connections must be more than max_streams (HTTP needs room too)")
        if "*" in self.cors_origins and self.token is None:
            raise ServiceConfigError("CORS origin '*' lets any web site call the API: it needs a token")

    @property
    def upload_pool_size(self) -> int:
        """Upload inference threads: ``upload_workers``, or half the available cores (at least 2)."""
        return self.upload_workers or max(2, available_cores() // 2)

    def limits(self, *names: str) -> dict[str, int | float]:
        """The settings ``names`` as reported to clients (``/healthz``, the stream's ``ready``): whole numbers as
        integers (``20``, not ``20.0``), fractional ones as they are."""
        return {name: whole(getattr(self, name)) for name in names}

    @property
    def page_url(self) -> str:
        """Address of the web page (IPv6 hosts bracketed; 0.0.0.0 shown as 127.0.0.1)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"
