"""``WS /v1/stream``: the live stream's door (origin, token and slot checks), handing over to
:class:`~speech_emotion.service.stream.StreamSession` (docs/service.md gives the protocol)."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from .auth import SUBPROTOCOL, origin_allowed, presented_token, token_ok
from .context import ServiceContext
from .errors import ApiError
from .hosts import origin_host_allowed
from .stream import StreamSession, refuse
from .uploads import query_problem

router = APIRouter()

STREAM_QUERY_PARAMETERS = frozenset({"token"})
"""What the stream reads from its URL (the API token, for browser clients that cannot set headers); the audio format
goes in the ``config`` message."""


@router.api_route("/v1/stream", methods=["GET", "HEAD"], include_in_schema=False)
async def stream_over_http() -> None:
    """A plain HTTP request for the stream (a browser's address bar, ``curl``): 426, saying how to connect."""
    raise ApiError(
        426,
        "upgrade_required",
        "/v1/stream is a WebSocket: connect with a WebSocket client (ws:// or wss://), see docs/service.md",
        headers={"Upgrade": "websocket", "Connection": "Upgrade"},
    )


@router.websocket("/v1/stream")
async def stream(websocket: WebSocket) -> None:
    """Live stream: binary audio frames in, ``update``/``segment`` events out (docs/service.md)."""
    ctx: ServiceContext = websocket.app.state.context
    options, slots, rec = ctx.options, ctx.slots, ctx.recognizer
    offered = list(websocket.scope.get("subprotocols", []))
    subprotocol = SUBPROTOCOL if SUBPROTOCOL in offered else None
    host = websocket.headers.get("host")
    origin = websocket.headers.get("origin")
    if not origin_allowed(origin, host, options.cors_origins) or (
        # without a token, a browser origin must itself be a served host (DNS-rebinding guard)
        options.token is None
        and origin is not None
        and origin not in options.cors_origins
        and not origin_host_allowed(origin, options.allowed_hosts)
    ):
        await refuse(websocket, "forbidden_origin", "this origin may not open streams", subprotocol)
        return
    token = presented_token(websocket.headers, websocket.query_params, offered)
    if not token_ok(options.token, token):
        await refuse(websocket, "unauthorized", "missing or wrong API token", subprotocol)
        return
    problem = query_problem(websocket.query_params, STREAM_QUERY_PARAMETERS, "; the format goes in the config message")
    if problem:  # ?sample_rate=48000 would otherwise stream 48 kHz audio read as 16 kHz, silently wrong
        await refuse(websocket, *problem, subprotocol)
        return
    if not slots.acquire():
        await refuse(websocket, "too_many_streams", f"all {slots.limit} stream slots are busy", subprotocol)
        return
    try:
        await websocket.accept(subprotocol=subprotocol)
        hello = {
            "model": rec.name,
            "labels": list(rec.labels),
            "sample_rate": 16000,
            "format": "pcm16",
            "limits": options.limits("idle_timeout_s", "max_stream_s", "max_frame_bytes"),
        }
        await StreamSession(websocket, ctx.make_engine(), options, ctx.live, hello, rec.calibration).run()
    finally:
        slots.release()
