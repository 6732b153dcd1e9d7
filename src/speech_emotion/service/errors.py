"""JSON errors: every failure answers ``{"error": CODE, "message": REASON}`` with a 4xx/5xx status."""

from __future__ import annotations

from fastapi import HTTPException
from pydantic import BaseModel

from ..errors import AudioError
from ..recording import NoSpeechError


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: str
    """Stable machine-readable code, e.g. ``upload_too_large``."""
    message: str
    """One-line human-readable reason."""


class ApiError(HTTPException):
    """An error answered as JSON with a code (an ``HTTPException``, so FastAPI never rewraps it)."""

    def __init__(self, status_code: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.code = code


def error_body(code: str, message: str) -> dict[str, str]:
    return {"error": code, "message": message}


def audio_api_error(exc: AudioError, what: str = "uploaded audio") -> ApiError:
    """The HTTP error for audio the recognizer cannot use, with its reason but never the client's file name."""
    reason = exc.reason
    if isinstance(exc, NoSpeechError):
        return ApiError(422, "no_speech", f"{what}: {reason}")
    if reason.startswith("too long"):
        return ApiError(413, "audio_too_long", f"{what}: {reason}")
    if reason.startswith("cannot decode") or "format" in reason:
        return ApiError(415, "unsupported_audio", f"{what}: {reason}")
    if "empty" in reason:
        return ApiError(400, "empty_upload", f"{what}: {reason}")
    return ApiError(422, "unusable_audio", f"{what}: {reason}")


STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "upload_too_large",
    415: "unsupported_audio",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}
"""Default codes for plain HTTP errors raised by FastAPI or Starlette themselves."""
