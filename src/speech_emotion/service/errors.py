"""JSON errors: every failure answers ``{"error": CODE, "message": REASON}`` with a 4xx/5xx status."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote_plus

from fastapi import HTTPException
from pydantic import BaseModel

from ..errors import AudioError, error_code

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: str
    """Stable machine-readable code, e.g. ``upload_too_large``."""
    message: str
    """One-line human-readable reason."""
    notes: list[str] | None = None
    """Only with ``no_speech``, when the recording has notes (a file that ended early)."""
    channels: list[dict[str, Any]] | None = None
    """Only with ``no_speech`` of ``POST /v1/predict?channels=split``: each channel's ``no_speech`` answer, as in a
    prediction's ``channels`` (its own notes: a loud tone on one channel)."""


class ApiError(HTTPException):
    """An error answered as JSON with a code (an ``HTTPException``, so FastAPI never rewraps it)."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        notes: list[str] | None = None,
        channels: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.code = code
        self.notes = notes
        self.channels = channels


def error_body(
    code: str, message: str, notes: list[str] | None = None, channels: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The :class:`ErrorBody` as a dict (``notes`` only when there are some, ``channels`` only when given)."""
    return {
        "error": code,
        "message": message,
        **({"notes": notes} if notes else {}),
        **({"channels": channels} if channels is not None else {}),
    }


UPLOAD_NAME = "upload"
"""Name given to uploaded audio in results and messages (the client's file name is never used)."""


AUDIO_STATUS: dict[str, int] = {
    "no_speech": 422,
    "audio_too_long": 413,
    "audio_too_large": 413,
    "unsupported_audio": 415,
    "empty_upload": 400,
    "unusable_audio": 422,
}
"""HTTP status of each :func:`~speech_emotion.errors.error_code` of audio."""


def audio_api_error(exc: AudioError, what: str = UPLOAD_NAME) -> ApiError:
    """The HTTP error for audio the recognizer cannot use: ``"upload: REASON"``, never the client's file name;
    the code is :func:`~speech_emotion.errors.error_code`'s, as in ``predict --json``. Notes of the recording
    (a file that ended early) travel with a no-speech answer as ``notes``, and each channel's answer of a call
    without speech (:class:`~speech_emotion.calls.CallNoSpeechError`) as ``channels``."""
    code = error_code(exc)
    notes = list(getattr(exc, "notes", ()))
    channels = getattr(exc, "channels", None)
    return ApiError(
        AUDIO_STATUS.get(code, 422),
        code,
        f"{what}: {exc.reason}",
        notes=notes or None,
        channels=None if channels is None else [c.to_dict() for c in channels],
    )


STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "upload_too_large",
    415: "unsupported_audio",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}
"""Default codes for plain HTTP errors raised by FastAPI or Starlette themselves."""


def json_error_bytes(code: str, message: str) -> bytes:
    """The JSON error body as bytes, written exactly as the app's ``JSONResponse`` writes it (compact, UTF-8), so
    an error sent by middleware or the server reads the same as one from a route."""
    return json.dumps(error_body(code, message), ensure_ascii=False, separators=(",", ":")).encode()


async def send_json_error(
    send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None, close: bool = True
) -> None:
    """Answer an HTTP request from ASGI middleware with the JSON error body (``Connection: close`` by default,
    so a body the client is still sending is never read)."""
    payload = json_error_bytes(code, message)
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *([(b"connection", b"close")] if close else []),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class RedactedTokens(logging.Filter):
    """Replaces the value of every ``token=`` in a record's message arguments with ``***``: uvicorn logs each
    request's path with its query string (``"WebSocket /v1/stream?token=..." [accepted]``), and a browser client
    can only send the API token there."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, str) and "?" in a for a in record.args):
            record.args = tuple(_redacted(a) if isinstance(a, str) else a for a in record.args)
        return True


def _redacted(text: str) -> str:
    """``text`` with the value of every query parameter whose decoded name is ``token`` (any case, ``tok%65n``
    too) replaced by ``***``."""
    path, mark, query = text.partition("?")
    if not mark:
        return text
    parts = [
        f"{name}=***" if unquote_plus(name).lower() == "token" else f"{name}{sep}{value}"
        for name, sep, value in (part.partition("=") for part in query.split("&"))
    ]
    return path + mark + "&".join(parts)


class RateLimitedLog(logging.Filter):
    """Lets through at most ``burst`` records per ``interval_s`` for each message template, then one line saying
    how many were suppressed: a flood of bad clients cannot fill the disk with log lines."""

    def __init__(self, burst: int = 10, interval_s: float = 10.0) -> None:
        super().__init__()
        self.burst = burst
        self.interval_s = interval_s
        self._seen: dict[tuple[str, int], list[float]] = {}
        """(template, level) -> [window start, count in window]"""

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        key = (str(record.msg), record.levelno)
        window = self._seen.get(key)
        if window is None or now - window[0] >= self.interval_s:
            suppressed = int(window[1]) - self.burst if window is not None and window[1] > self.burst else 0
            if len(self._seen) > 1000:  # bounded: templates are few, but never trust that
                self._seen.clear()
            self._seen[key] = [now, 1.0]
            if suppressed:
                record.msg = f"{record.msg} (and {suppressed} more like it in the last {self.interval_s:g} s)"
            return True
        window[1] += 1
        return window[1] <= self.burst


class CatchAll:
    """Outermost ASGI middleware: any unexpected exception is logged (rate-limited) and answered with a JSON 500
    that carries no details; a WebSocket is closed with 1011."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] in ("http.response.start", "websocket.accept", "websocket.close"):
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if scope["type"] not in ("http", "websocket"):
                raise
            log.exception("unexpected error on %s", scope.get("path", "?"))
            if started:
                return
            if scope["type"] == "http":
                await send_json_error(send, 500, "internal_error", "the server failed on this request")
            else:
                await send({"type": "websocket.close", "code": 1011})
