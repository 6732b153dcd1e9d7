"""Running the app on uvicorn with connection-level limits: header timeout, connection cap, JSON refusals and
rate-limited logs. ``speech-emotion serve``, the tests and the benchmarks all start the server through
:func:`uvicorn_config`.

uvicorn times out idle keep-alive connections but not a client that never finishes its request headers, and
its ``limit_concurrency`` answers in plain text only once the headers are in. :class:`GuardedH11Protocol` closes
a connection that has not sent complete headers within ``header_timeout_s`` (408) and refuses a connection
over ``max_connections`` as soon as it is made (503), both with the JSON error body. Slow bodies are timed out
by :class:`~speech_emotion.service.limits.BodyLimit`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .errors import RateLimitedLog, RedactedTokens, json_error_bytes
from .options import ServiceOptions

log = logging.getLogger(__name__)

WS_HARD_LIMIT_FACTOR = 4
"""The WebSocket layer itself drops messages over this many times ``max_frame_bytes``; messages between the
limit and this get the JSON ``frame_too_large`` message first."""

RATE_LIMITED_LOGGERS = (
    "uvicorn.error",
    "speech_emotion.service.app",
    "speech_emotion.service.errors",
    "speech_emotion.service.server",
    "speech_emotion.service.stream",
)
"""Loggers a flood of bad clients could make write (filters apply per logger, not to children)."""


def _raw_response(status: int, reason: str, code: str, message: str, extra: str = "") -> bytes:
    body = json_error_bytes(code, message)
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"connection: close\r\n{extra}\r\n"
    )
    return head.encode() + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a header timeout and a connection cap (settings from :meth:`configure`)."""

    header_timeout_s: float = 10.0
    max_connections: int = 128

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    @classmethod
    def configure(cls, options: ServiceOptions) -> type[GuardedH11Protocol]:
        """A subclass bound to ``options`` (uvicorn takes a protocol class, not an instance)."""
        return type(
            "GuardedH11Protocol",
            (cls,),
            {"header_timeout_s": options.header_timeout_s, "max_connections": options.max_connections},
        )

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.warning(
                "refused a connection: %d open, the limit is %d", len(self.connections) - 1, self.max_connections
            )
            transport.write(
                _raw_response(
                    503,
                    "Service Unavailable",
                    "too_many_connections",
                    f"the server has {self.max_connections} connections open, retry shortly",
                    "retry-after: 2\r\n",
                )
            )
            transport.close()
            return
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._arm_header_timer()  # the next request on a kept-alive connection
        super().data_received(data)

    def handle_events(self) -> None:
        scope = self.scope
        super().handle_events()
        if self.scope is not scope:  # a request's headers are complete (HTTP or WebSocket upgrade)
            self._disarm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        self._disarm_header_timer()
        if not self.transport.is_closing():
            self.transport.write(_raw_response(400, "Bad Request", "bad_request", "malformed HTTP request"))
            self.transport.close()

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
            return
        log.info("closed a connection that sent no complete request headers in %g s", self.header_timeout_s)
        self._unset_keepalive_if_required()
        self.transport.write(
            _raw_response(
                408,
                "Request Timeout",
                "request_timeout",
                f"request headers not complete within {self.header_timeout_s:g} s",
            )
        )
        self.transport.close()


def install_log_limits() -> None:
    """Rate-limit the server's and uvicorn's log lines, and keep API tokens out of uvicorn's request lines
    (idempotent)."""
    for name in RATE_LIMITED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RateLimitedLog) for f in logger.filters):
            logger.addFilter(RateLimitedLog())
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactedTokens) for f in logger.filters):
            logger.addFilter(RedactedTokens())


def uvicorn_config(app: Any, options: ServiceOptions, log_level: str = "info", **overrides: Any) -> uvicorn.Config:
    """The uvicorn settings for ``app``: the guarded HTTP protocol, WebSocket size cap, keep-alive timeout."""
    install_log_limits()
    settings: dict[str, Any] = {
        "host": options.host,
        "port": options.port,
        "log_level": log_level,
        "http": GuardedH11Protocol.configure(options),
        "ws_max_size": WS_HARD_LIMIT_FACTOR * options.max_frame_bytes,
        "timeout_keep_alive": 5,
        "h11_max_incomplete_event_size": 64 * 1024,
        "timeout_graceful_shutdown": 3,
        "server_header": False,
        **overrides,
    }
    return uvicorn.Config(app, **settings)
