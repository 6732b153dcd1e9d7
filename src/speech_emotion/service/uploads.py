"""``POST /v1/predict`` and ``POST /v1/analyze``: the emotion, or the timeline, of an uploaded recording.

An upload is read into memory (the :class:`~speech_emotion.service.limits.BodyLimit` bounds it) and analysed in
the upload pool, by the same functions as ``predict`` and ``analyze``; audio errors leave as JSON errors with the
codes of :func:`~speech_emotion.errors.error_code`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from pydantic import BaseModel
from starlette.datastructures import QueryParams

from ..calls import CallPrediction, predict_call
from ..decode import open_blocks
from ..errors import AudioError
from ..recording import RecordingOptions, RecordingPrediction, predict_blocks
from .analysis import analyze_bytes
from .context import ServiceContext, context
from .errors import UPLOAD_NAME, ApiError, ErrorBody, audio_api_error

T = TypeVar("T")

router = APIRouter()


class ChannelPredictionOut(BaseModel):
    """One channel's answer (``?channels=split``): a prediction (``status`` ok) or ``no_speech``."""

    channel: int
    status: Literal["ok", "no_speech"]
    label: str | None = None
    confidence: float | None = None
    probabilities: dict[str, float] | None = None
    duration_s: float
    speech_s: float | None = None
    segments: int | None = None
    notes: list[str]
    error: str | None = None
    message: str | None = None
    uncertain: bool | None = None
    """The model's calibration thresholds call this channel's answer uncertain (``None`` for ``no_speech``)."""
    arousal: float | None = None
    valence: float | None = None
    dominance: float | None = None


class PredictionOut(BaseModel):
    label: str | None
    """Absent (with ``confidence``) only with ``channels=split`` when the mix of the channels holds no speech but a
    channel does: ``message`` says so, ``channels`` has the answers."""
    confidence: float | None
    probabilities: dict[str, float]
    duration_s: float
    speech_s: float
    segments: int
    notes: list[str]
    """Problems that did not stop the prediction, e.g. a file that ended before its header said."""
    uncertain: bool = False
    """The model's calibration thresholds call the answer uncertain (low confidence or the top two close)."""
    arousal: float | None = None
    """In [0, 1], 0.5 = neutral; only for a model with dimensions (the default model), like ``valence`` and
    ``dominance``: see the model card for what they are and are not."""
    valence: float | None = None
    dominance: float | None = None
    model: str
    message: str | None = None
    channels: list[ChannelPredictionOut] | None = None
    """With ``?channels=split``: each channel's answer (0: the first), beside the whole call's."""


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": description}
    for code, description in {
        400: "empty or malformed upload or request, more than one `file` field, another field or query parameter",
        401: "missing or wrong API token",
        403: "host name not served (no token set, DNS-rebinding guard)",
        408: "request body not sent in time",
        413: "upload too large, recording too long, or too much audio to decode",
        415: "unsupported or corrupt audio, or an unsupported sample rate",
        422: "no speech in the recording (`no_speech`), unusable audio (too short) or missing file field",
        500: "unexpected server error (no details)",
        503: "too many uploads or connections",
    }.items()
}


QUERY_PARAMETERS = frozenset({"channels"})
"""What the upload routes read from the query (their token goes in the ``Authorization`` header; only the WebSocket,
whose browser clients cannot set headers, also reads ``?token=``)."""


def query_problem(query: QueryParams, known: frozenset[str], hint: str = "") -> tuple[str, str] | None:
    """``(error code, message)`` for a query with a parameter outside ``known`` (``unknown_parameter``; ``hint``
    added to the message) or one named twice (``duplicate_parameter``: each door reads one value per name, and the
    last one silently undid the first, ``?token=bad&token=good``); ``None`` for a good query. Every door's check."""
    unknown = sorted(set(query) - known)
    if unknown:
        name = unknown[0] if len(unknown[0]) <= 40 else unknown[0][:40] + "..."  # a hostile name is not echoed whole
        return "unknown_parameter", f"unknown query parameter {name!r} (known: {', '.join(sorted(known))}{hint})"
    names = [name for name, _ in query.multi_items()]
    repeated = next((name for i, name in enumerate(names) if name in names[:i]), None)
    if repeated:
        return "duplicate_parameter", f"the query parameter {repeated!r} was given more than once"
    return None


async def one_file_field(request: Request) -> None:
    """Refuse a multipart body that sends the ``file`` field more than once (FastAPI would keep the last one
    silently), or another field beside it (ignored silently: ``-F channels=split`` analysed the mix, as options are
    query parameters), and an unknown query parameter. The body was already parsed for the endpoint; Starlette
    keeps it, so it is not read again."""
    problem = query_problem(request.query_params, QUERY_PARAMETERS)
    if problem:  # ?channel=split (misspelt) or ?channels=split&channels=mix analysed the mix silently
        raise ApiError(400, *problem)
    form = await request.form()
    count = len(form.getlist("file"))
    if count > 1:
        raise ApiError(400, "duplicate_field", f"the multipart field 'file' was sent {count} times; send one file")
    other = sorted(set(form.keys()) - {"file"})
    if other and count:  # without a file, the missing field is the problem (422)
        raise ApiError(
            400,
            "unknown_field",
            f"unknown multipart field {other[0]!r}: send only 'file' (options go in the query: "
            f"{', '.join(f'?{q}=' for q in sorted(QUERY_PARAMETERS))})",
        )


async def run_upload(ctx: ServiceContext, data: bytes, work: Callable[[bytes], T]) -> T:
    """Run ``work`` in the upload pool (the :class:`UploadGate` already holds this request's slot)."""
    try:
        return await asyncio.get_running_loop().run_in_executor(ctx.upload_pool, work, data)
    except AudioError as exc:
        raise audio_api_error(exc) from None


async def upload_bytes(file: UploadFile) -> bytes:
    data = await file.read()
    await file.close()
    if not data:
        raise ApiError(400, "empty_upload", "the uploaded file is empty (0 bytes)")
    return data


def predict_bytes(ctx: ServiceContext, data: bytes) -> RecordingPrediction:
    """``predict``'s answer for an upload, under the service's limits."""
    options = ctx.options
    blocks = open_blocks(
        data, max_duration_s=options.max_duration_s, max_decoded_samples=options.max_decoded_samples, name=UPLOAD_NAME
    )
    return predict_blocks(blocks, blocks.sample_rate, ctx.recognizer, source=blocks.name, duration_s=blocks.duration_s)


def split_bytes(ctx: ServiceContext, data: bytes) -> CallPrediction:
    """``predict --channels split``'s answer for an upload, under the service's limits."""
    recording = RecordingOptions(max_duration_s=ctx.options.max_duration_s)
    return predict_call(data, ctx.recognizer, recording, ctx.options.max_decoded_samples, UPLOAD_NAME)


@router.post(
    "/v1/predict",
    response_model=PredictionOut,
    response_model_exclude_none=True,
    responses=ERRORS,
    tags=["audio"],
    dependencies=[Depends(one_file_field)],
)
async def predict(
    file: UploadFile = File(..., description="audio file (wav, flac, ogg, mp3, ...)"),
    channels: Literal["mix", "split"] = Query(
        "mix", description="mix: one answer for all channels; split: also one per channel (two-party calls)"
    ),
    ctx: ServiceContext = Depends(context),
) -> dict:
    """Emotion of a whole recording: label, confidence, all probabilities and the seconds of speech used
    (with ``channels=split``, also each channel's: the same answer as ``predict --channels split``)."""
    data = await upload_bytes(file)
    if channels == "split":
        call = await run_upload(ctx, data, lambda d: split_bytes(ctx, d))
        return {**call.to_dict(), "model": ctx.recognizer.name}
    pred = await run_upload(ctx, data, lambda d: predict_bytes(ctx, d))
    return {**pred.to_dict(), "model": ctx.recognizer.name}


@router.post("/v1/analyze", responses=ERRORS, tags=["audio"], dependencies=[Depends(one_file_field)])
async def analyze(
    file: UploadFile = File(..., description="audio file (wav, flac, ogg, mp3, ...)"),
    channels: Literal["mix", "split"] = Query(
        "mix", description="mix: one timeline of all channels; split: one per channel (two-party calls)"
    ),
    ctx: ServiceContext = Depends(context),
) -> dict:
    """Emotion timeline of a recording: the same JSON as ``speech-emotion analyze [--channels split]``."""
    options = ctx.options
    return await run_upload(
        ctx,
        await upload_bytes(file),
        lambda data: analyze_bytes(
            data, ctx.recognizer, options.max_duration_s, options.max_decoded_samples, channels=channels
        ),
    )
