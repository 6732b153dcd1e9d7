"""DNS-rebinding guard: without a token, only requests addressed to a loopback name (or a configured one) are
served, over HTTP and WebSocket; a WebSocket's ``Origin`` must name such a host too (or a CORS origin).

A web page on ``attacker.example`` whose name is made to resolve to 127.0.0.1 reaches the service with
``Host: attacker.example``; refusing unknown ``Host`` values closes that door for a service with no token.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from .errors import ASGIApp, Receive, Scope, Send, send_json_error
from .options import is_loopback


def host_name(host: str) -> str:
    """The name in a ``Host`` header value: port removed, IPv6 brackets kept off, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def host_allowed(host: str | None, allowed: list[str]) -> bool:
    """Whether a request for ``host`` (a ``Host`` header value) may be served without a token."""
    if not host:
        return False
    name = host_name(host)
    return is_loopback(name) or name in {h.lower() for h in allowed}


def origin_host_allowed(origin: str, allowed: list[str]) -> bool:
    """Whether a browser ``Origin`` (``scheme://host[:port]``) names a host :func:`host_allowed` accepts."""
    netloc = urlsplit(origin).netloc
    return bool(netloc) and host_allowed(netloc, allowed)


class HostCheck:
    """ASGI middleware refusing requests for unknown hosts when no token is set: HTTP 403 ``forbidden_host``;
    a WebSocket is accepted only to send ``forbidden_host`` and close with 1008."""

    def __init__(self, app: ASGIApp, token: str | None, allowed: list[str]) -> None:
        self.app = app
        self.enabled = token is None
        self.allowed = list(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.enabled or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), None)
        if host_allowed(host, self.allowed):
            await self.app(scope, receive, send)
            return
        message = "this host name is not served (open the page as localhost or 127.0.0.1, or use --allow-host)"
        if scope["type"] == "http":
            await send_json_error(send, 403, "forbidden_host", message)
            return
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        await send(
            {
                "type": "websocket.send",
                "text": json.dumps({"type": "error", "error": "forbidden_host", "message": message}),
            }
        )
        await send({"type": "websocket.close", "code": 1008, "reason": "forbidden_host"})
