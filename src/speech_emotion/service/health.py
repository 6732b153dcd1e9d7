"""``GET /healthz``: liveness, and what the service runs (model, labels and their colours, slots, limits)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from .. import __version__
from ..report import EMOTION_COLORS
from .context import ServiceContext, context

router = APIRouter()


class Health(BaseModel):
    status: str
    version: str
    model: str
    labels: list[str]
    colors: dict[str, str]
    """The colour of each label that has one: :data:`~speech_emotion.report.EMOTION_COLORS`, the one palette of
    the plots and the web page."""
    sample_rate: int
    auth: bool
    streams: dict[str, int]
    uploads: dict[str, int]
    workers: dict[str, int]
    processes: int
    limits: dict[str, int | float]
    """Whole numbers as integers (``"max_upload_mb": 20``, in MiB), fractional settings as decimals."""


@router.head("/healthz", include_in_schema=False)
async def healthz_head(ctx: ServiceContext = Depends(context)) -> JSONResponse:
    """The headers of ``GET /healthz`` (its ``Content-Length`` included); the server sends a HEAD no body."""
    return JSONResponse(Health(**await healthz(ctx)).model_dump())


@router.get("/healthz", response_model=Health, tags=["service"])
async def healthz(ctx: ServiceContext = Depends(context)) -> dict[str, Any]:
    """Liveness and what the service runs: model, labels, stream slots, limits."""
    rec, options = ctx.recognizer, ctx.options
    return {
        "status": "ok",
        "version": __version__,
        "model": rec.name,
        "labels": list(rec.labels),
        "colors": {label: EMOTION_COLORS[label] for label in rec.labels if label in EMOTION_COLORS},
        "sample_rate": rec.sample_rate,
        "auth": options.token is not None,
        "streams": {"active": ctx.slots.active, "max": ctx.slots.limit, "hop_stride": ctx.live.current_stride},
        "uploads": {"active": ctx.uploads.active, "max": ctx.uploads.limit},
        "workers": {"upload": options.upload_pool_size},
        "processes": options.processes,
        "limits": options.limits(
            "max_upload_mb",
            "max_duration_s",
            "max_decoded_samples",
            "idle_timeout_s",
            "max_stream_s",
            "max_frame_bytes",
            "header_timeout_s",
            "body_timeout_s",
            "max_connections",
        ),
    }
