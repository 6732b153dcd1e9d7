"""Request guards that act before a body is read: body size and read timeout, request smuggling, the token
and upload capacity on upload paths; and the slot counter used for streams and uploads."""

from __future__ import annotations

import asyncio
import time

from .auth import presented_token, token_ok
from .errors import ApiError, ASGIApp, Message, Receive, Scope, Send, send_json_error

MULTIPART_SLACK = 64 * 1024
"""Room for multipart headers and boundaries on top of the upload limit."""

UPLOAD_PATHS = frozenset({"/v1/predict", "/v1/analyze"})


MIB = 1048576
"""Bytes in a MiB, the unit of the upload limit (``max_upload_mb``)."""


def too_large(limit_mb: float) -> ApiError:
    """The 413 of a body over the upload limit, which it names as configured (``0.05``, not its bytes in MiB)."""
    return ApiError(413, "upload_too_large", f"request body larger than the {limit_mb:g} MiB limit")


def read_timeout(seconds: float) -> ApiError:
    return ApiError(
        408,
        "request_timeout",
        f"request body too slow (a gap over {seconds:g} s, or under {MIN_BODY_RATE // 1000} kB/s on average)",
        headers={"Connection": "close"},
    )


MIN_BODY_RATE = 16_000
"""Bytes per second a request body must average after its first ``timeout_s`` (128 kbit/s), or it gets 408."""


class BodyLimit:
    """ASGI middleware bounding how a body arrives: at most ``limit_mb`` MiB (413), no gap longer than
    ``timeout_s`` between its pieces and at least :data:`MIN_BODY_RATE` on average after the first ``timeout_s``
    (408), and never both ``Content-Length`` and ``Transfer-Encoding`` (400).

    A declared ``Content-Length`` over the limit is refused at once; otherwise the byte count is
    checked as chunks arrive and :class:`ApiError` is raised from ``receive``.
    """

    def __init__(self, app: ASGIApp, limit_mb: float, timeout_s: float) -> None:
        self.app = app
        self.limit_mb = limit_mb
        self.limit = int(limit_mb * MIB)
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        allowed = self.limit + MULTIPART_SLACK
        names = [name for name, _ in scope.get("headers", [])]
        if b"content-length" in names and b"transfer-encoding" in names:
            await send_json_error(
                send, 400, "bad_request", "a request may not carry both Content-Length and Transfer-Encoding"
            )
            return
        declared = 0
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0:
                    await send_json_error(send, 400, "bad_request", "invalid Content-Length")
                    return
                if declared > allowed:
                    await send_json_error(send, 413, "upload_too_large", str(too_large(self.limit_mb).detail))
                    return
        seen = 0
        started = time.monotonic()
        finished = declared == 0 and b"transfer-encoding" not in names  # the whole body was received

        async def limited_receive() -> Message:
            nonlocal seen, finished
            # no gap over timeout_s, and after that grace at least MIN_BODY_RATE on average, so a client that trickles
            # a byte now and then cannot hold an upload slot for ever
            deadline = started + self.timeout_s + seen / MIN_BODY_RATE
            wait = min(self.timeout_s, deadline - time.monotonic())
            try:
                if wait <= 0:
                    raise asyncio.TimeoutError
                message = await asyncio.wait_for(receive(), wait)
            except asyncio.TimeoutError:
                raise read_timeout(self.timeout_s) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                finished = not message.get("more_body", False)
                if seen > allowed:
                    raise too_large(self.limit_mb)
            return message

        async def closing_send(message: Message) -> None:
            # an error answered before the body was all read (413, a malformed form) closes the connection: the
            # server would otherwise read and discard the rest to keep it open, for as long as the client sends
            if message["type"] == "http.response.start" and message["status"] >= 400 and not finished:
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, limited_receive, closing_send)


class UploadGate:
    """ASGI middleware for the upload paths, before their body is read: the token (401), then a free upload
    slot (503 with ``Retry-After``), held until the response is sent."""

    def __init__(self, app: ASGIApp, token: str | None, slots: Slots) -> None:
        self.app = app
        self.token = token
        self.slots = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") not in UPLOAD_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if not token_ok(self.token, presented_token(headers)):
            await send_json_error(
                send,
                401,
                "unauthorized",
                "missing or wrong API token (send 'Authorization: Bearer TOKEN')",
                headers={"WWW-Authenticate": "Bearer"},
            )
            return
        if not self.slots.acquire():
            await send_json_error(
                send, 503, "busy", "too many uploads in progress, retry shortly", headers={"Retry-After": "2"}
            )
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.slots.release()


class Slots:
    """Counts things in use against a maximum (the event loop is single-threaded: no lock needed)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def acquire(self) -> bool:
        """Take a slot; ``False`` when all are in use."""
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def release(self) -> None:
        self.active = max(0, self.active - 1)
