"""The FastAPI application: web page, health, file prediction and analysis, live stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

from fastapi import Depends, FastAPI, File, Query, Request, UploadFile, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..audio import open_blocks
from ..errors import AudioError
from ..recognizer import Recognizer
from ..recording import RecordingPrediction, predict_blocks
from .analysis import analyze_bytes
from .auth import SUBPROTOCOL, origin_allowed, presented_token, token_ok
from .errors import (
    STATUS_CODES,
    UPLOAD_NAME,
    ApiError,
    ASGIApp,
    CatchAll,
    ErrorBody,
    Message,
    Receive,
    Scope,
    Send,
    audio_api_error,
    error_body,
)
from .hosts import HostCheck, origin_host_allowed
from .limits import BodyLimit, Slots, UploadGate
from .options import ServiceOptions
from .stream import EngineFactory, StreamSession, refuse

T = TypeVar("T")

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; worker-src 'self'; media-src 'self' blob:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)
"""The page loads nothing from elsewhere (no CDN), and nothing else may frame it."""


def web_dir() -> Path:
    """Folder of the page's static files, shipped inside the package."""
    return Path(str(resources.files("speech_emotion.service") / "web"))


class PredictionOut(BaseModel):
    label: str
    confidence: float
    probabilities: dict[str, float]
    duration_s: float
    speech_s: float
    segments: int
    notes: list[str]
    """Problems that did not stop the prediction, e.g. a file that ended before its header said."""
    model: str


class Health(BaseModel):
    status: str
    version: str
    model: str
    labels: list[str]
    sample_rate: int
    auth: bool
    streams: dict[str, int]
    uploads: dict[str, int]
    workers: dict[str, int]
    limits: dict[str, int | float]
    """Whole numbers as integers (``"max_upload_mb": 20``), fractional settings as decimals."""


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": description}
    for code, description in {
        400: "empty or malformed upload or request, or more than one `file` field",
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


class SecurityHeaders:
    """ASGI middleware adding ``nosniff`` and ``no-referrer`` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def one_file_field(request: Request) -> None:
    """Refuse a multipart body that sends the ``file`` field more than once (FastAPI would keep the last one
    silently). The body was already parsed for the endpoint; Starlette keeps it, so it is not read again."""
    count = len((await request.form()).getlist("file"))
    if count > 1:
        raise ApiError(400, "duplicate_field", f"the multipart field 'file' was sent {count} times; send one file")


def create_app(
    options: ServiceOptions | None = None,
    recognizer: Recognizer | None = None,
    engine_factory: EngineFactory | None = None,
) -> FastAPI:
    """The service app. ``recognizer`` defaults to ``Recognizer.load(options.model)``; ``engine_factory``
    makes one streaming engine per WebSocket (default: a :class:`~speech_emotion.streaming.StreamingRecognizer`)."""
    options = options or ServiceOptions()
    options.check()
    if recognizer is None:
        recognizer = Recognizer.load(options.model, threads=options.threads)
    rec: Recognizer = recognizer
    if engine_factory is None:
        from ..streaming import StreamingRecognizer

        def engine_factory() -> StreamingRecognizer:
            return StreamingRecognizer(rec)

    make_engine: EngineFactory = engine_factory
    stream_pool = ThreadPoolExecutor(options.stream_pool_size, thread_name_prefix="se-stream")
    upload_pool = ThreadPoolExecutor(options.upload_pool_size, thread_name_prefix="se-upload")
    slots = Slots(options.max_streams)
    uploads = Slots(options.max_uploads)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if options.warmup:
            await asyncio.get_running_loop().run_in_executor(upload_pool, _warm_up, rec)
        yield
        stream_pool.shutdown(wait=False, cancel_futures=True)
        upload_pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="speech-emotion",
        version=__version__,
        description="Emotion in speech: file prediction, timeline analysis and live streaming. "
        "See docs/service.md for the WebSocket protocol.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.options = options
    app.state.recognizer = rec
    app.state.slots = slots
    app.state.uploads = uploads
    _install_error_handlers(app)
    if options.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=options.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    # added last = runs first: security headers (on every answer, the catch-all's too), catch-all, host check,
    # then (before any body is read) the token and upload slot, then the body's size and pace
    app.add_middleware(BodyLimit, limit=options.max_upload_bytes, timeout_s=options.body_timeout_s)
    app.add_middleware(UploadGate, token=options.token, slots=uploads)
    app.add_middleware(HostCheck, token=options.token, allowed=options.allowed_hosts)
    app.add_middleware(CatchAll)
    app.add_middleware(SecurityHeaders)

    async def run_upload(data: bytes, work: Callable[[bytes], T]) -> T:
        """Run ``work`` in the upload pool (the :class:`UploadGate` already holds this request's slot)."""
        try:
            return await asyncio.get_running_loop().run_in_executor(upload_pool, work, data)
        except AudioError as exc:
            raise audio_api_error(exc) from None

    async def upload_bytes(file: UploadFile) -> bytes:
        data = await file.read()
        await file.close()
        if not data:
            raise ApiError(400, "empty_upload", "the uploaded file is empty (0 bytes)")
        return data

    def predict_bytes(data: bytes) -> RecordingPrediction:
        blocks = open_blocks(
            data,
            max_duration_s=options.max_duration_s,
            max_decoded_samples=options.max_decoded_samples,
            name=UPLOAD_NAME,
        )
        return predict_blocks(blocks, blocks.sample_rate, rec, source=blocks.name, duration_s=blocks.duration_s)

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def page() -> HTMLResponse:
        html = (web_dir() / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(html, headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=web_dir()), name="static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        """Swagger UI from the package (vendored swagger-ui-dist): works offline."""
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url="/static/docs/swagger-ui-bundle.js",
            swagger_css_url="/static/docs/swagger-ui.css",
            swagger_favicon_url="/static/docs/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.head("/healthz", include_in_schema=False)
    async def healthz_head() -> None:
        return None

    @app.get("/healthz", response_model=Health, tags=["service"])
    async def healthz() -> dict[str, Any]:
        """Liveness and what the service runs: model, labels, stream slots, limits."""
        return {
            "status": "ok",
            "version": __version__,
            "model": rec.name,
            "labels": list(rec.labels),
            "sample_rate": rec.sample_rate,
            "auth": options.token is not None,
            "streams": {"active": slots.active, "max": slots.limit},
            "uploads": {"active": uploads.active, "max": uploads.limit},
            "workers": {"stream": options.stream_pool_size, "upload": options.upload_pool_size},
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

    @app.post(
        "/v1/predict",
        response_model=PredictionOut,
        responses=ERRORS,
        tags=["audio"],
        dependencies=[Depends(one_file_field)],
    )
    async def predict(file: UploadFile = File(..., description="audio file (wav, flac, ogg, mp3, ...)")) -> dict:
        """Emotion of a whole recording: label, confidence, all probabilities and the seconds of speech used."""
        pred = await run_upload(await upload_bytes(file), predict_bytes)
        return {**pred.to_dict(), "model": rec.name}

    @app.post("/v1/analyze", responses=ERRORS, tags=["audio"], dependencies=[Depends(one_file_field)])
    async def analyze(
        file: UploadFile = File(..., description="audio file (wav, flac, ogg, mp3, ...)"),
        channels: Literal["mix", "split"] = Query(
            "mix", description="mix: one timeline of all channels; split: one per channel (two-party calls)"
        ),
    ) -> dict:
        """Emotion timeline of a recording: the same JSON as ``speech-emotion analyze [--channels split]``."""
        return await run_upload(
            await upload_bytes(file),
            lambda data: analyze_bytes(
                data, rec, options.max_duration_s, options.max_decoded_samples, channels=channels
            ),
        )

    @app.websocket("/v1/stream")
    async def stream(websocket: WebSocket) -> None:
        """Live stream: binary audio frames in, ``update``/``segment`` events out (docs/service.md)."""
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
            await StreamSession(websocket, make_engine(), options, stream_pool, hello).run()
        finally:
            slots.release()

    return app


def _warm_up(recognizer: Recognizer) -> None:
    """Classify one second of a synthetic tone (loads librosa's lazily compiled code paths)."""
    import numpy as np

    t = np.arange(recognizer.sample_rate) / recognizer.sample_rate
    recognizer.predict((0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), recognizer.sample_rate)


def _install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as ``{"error": CODE, "message": REASON}``."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, str(exc.detail)), exc.status_code, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(exc.status_code, "error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'request'}: {e.get('msg')}"
            for e in exc.errors()
        )
        return JSONResponse(error_body("invalid_request", problems or "invalid request"), 422)
