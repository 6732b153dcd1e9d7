"""Request-body size limit (checked as the body arrives, before parsing) and the stream slot counter."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .errors import ApiError, error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MULTIPART_SLACK = 64 * 1024
"""Room for multipart headers and boundaries on top of the upload limit."""


def too_large(limit: int) -> ApiError:
    return ApiError(413, "upload_too_large", f"request body larger than the {limit / 1048576:.1f} MB limit")


class BodyLimit:
    """ASGI middleware refusing HTTP bodies over ``limit`` bytes with a 413, without reading them whole.

    A declared ``Content-Length`` over the limit is refused at once; otherwise the byte count is
    checked as chunks arrive and :class:`ApiError` (413) is raised from ``receive``.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        allowed = self.limit + MULTIPART_SLACK
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > allowed:
                    await _send_json(
                        send,
                        413 if declared > allowed else 400,
                        error_body(
                            "upload_too_large" if declared > allowed else "bad_request",
                            str(too_large(self.limit).detail) if declared > allowed else "invalid Content-Length",
                        ),
                    )
                    return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > allowed:
                    raise too_large(self.limit)
            return message

        await self.app(scope, limited_receive, send)


async def _send_json(send: Send, status: int, body: dict[str, str]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class StreamSlots:
    """Counts open streams against a maximum (the event loop is single-threaded: no lock needed)."""

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
