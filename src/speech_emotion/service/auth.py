"""The optional API token, checked on ``/v1/*``; the page, ``/healthz`` and the docs stay open.

HTTP: ``Authorization: Bearer TOKEN``. WebSocket: the same header, or (browsers cannot set
headers) the subprotocol ``bearer.TOKEN`` next to ``speech-emotion``, or ``?token=TOKEN``
(simplest, but query strings can end up in access logs).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

SUBPROTOCOL = "speech-emotion"
"""WebSocket subprotocol the service speaks (echoed when the client offers it)."""
TOKEN_PROTOCOL_PREFIX = "bearer."


def presented_token(
    headers: Mapping[str, str], query: Mapping[str, str] | None = None, subprotocols: list[str] | None = None
) -> str | None:
    """The token a request carries: ``Authorization`` header, then subprotocol, then ``token`` query."""
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    for protocol in subprotocols or []:
        if protocol.startswith(TOKEN_PROTOCOL_PREFIX):
            return protocol[len(TOKEN_PROTOCOL_PREFIX) :]
    return (query or {}).get("token") or None


def token_ok(expected: str | None, presented: str | None) -> bool:
    """Whether ``presented`` matches ``expected`` (constant-time); anything passes when no token is set."""
    if expected is None:
        return True
    if presented is None:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def origin_allowed(origin: str | None, host: str | None, allowed: list[str]) -> bool:
    """Whether a browser WebSocket from ``origin`` may connect: same origin, or listed (``*``: any).

    Non-browser clients send no ``Origin`` and are judged by the token alone.
    """
    if origin is None or "*" in allowed or origin in allowed:
        return True
    if host is None:
        return False
    _, _, origin_host = origin.partition("://")
    return origin_host.lower() == host.lower()
