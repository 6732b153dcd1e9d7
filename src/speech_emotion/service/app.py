"""The FastAPI application: the service's routers (page, health, uploads, live stream) behind its middleware.

One module per concern: :mod:`.page` (web page, static files, API docs), :mod:`.health` (``/healthz``),
:mod:`.uploads` (``/v1/predict``, ``/v1/analyze``), :mod:`.live` (``WS /v1/stream``); they share one
:class:`~speech_emotion.service.context.ServiceContext` per app.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from .. import __version__, silero
from ..recognizer import Recognizer
from ..streaming import StreamOptions
from . import health, live, uploads
from .context import ServiceContext
from .errors import STATUS_CODES, ApiError, ASGIApp, CatchAll, Message, Receive, Scope, Send, error_body
from .hosts import HostCheck
from .limits import BodyLimit, Slots, UploadGate
from .options import ServiceOptions, available_cores
from .page import PAGE_CSP, add_page, web_dir
from .scheduler import LiveScheduler, SchedulerOptions
from .stream import EngineFactory

__all__ = ["PAGE_CSP", "create_app", "web_dir"]


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


def allowed_methods(request: Request) -> str:
    """The methods some route of the request's path takes, as a 405's ``Allow`` lists them (e.g. ``GET, HEAD``):
    each method tried against every route with Starlette's own matching."""
    methods = []
    for method in ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            methods.append(method)
    return ", ".join(methods)


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
    silero.sessions()  # the speech detector: a broken installation stops the server here (ModelError)
    rec: Recognizer = recognizer
    if engine_factory is None:
        from ..streaming import StreamingRecognizer

        def engine_factory() -> StreamingRecognizer:
            return StreamingRecognizer(rec)

    ctx = ServiceContext(
        options=options,
        recognizer=rec,
        make_engine=engine_factory,
        live=LiveScheduler(
            SchedulerOptions(max_stride=max(1, round(options.max_hop_s / StreamOptions().hop_s))),
            workers=max(1, available_cores() // options.processes),
        ),
        upload_pool=ThreadPoolExecutor(options.upload_pool_size, thread_name_prefix="se-upload"),
        slots=Slots(options.max_streams),
        uploads=Slots(options.max_uploads),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if options.warmup:
            await asyncio.get_running_loop().run_in_executor(ctx.upload_pool, rec.warmup)
        yield
        ctx.live.stop()
        ctx.upload_pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="speech-emotion",
        version=__version__,
        description="Emotion in speech: file prediction, timeline analysis and live streaming. "
        "See docs/service.md for the WebSocket protocol.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.context = ctx
    app.state.options = options
    app.state.recognizer = rec
    app.state.slots = ctx.slots
    app.state.uploads = ctx.uploads
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
    app.add_middleware(BodyLimit, limit_mb=options.max_upload_mb, timeout_s=options.body_timeout_s)
    app.add_middleware(UploadGate, token=options.token, slots=ctx.uploads)
    app.add_middleware(HostCheck, token=options.token, allowed=options.allowed_hosts)
    app.add_middleware(CatchAll)
    app.add_middleware(SecurityHeaders)
    add_page(app)
    for module in (health, uploads, live):
        app.include_router(module.router)
    return app


def _plain_problem(error: dict) -> str:
    """FastAPI's message for one invalid field, in the API's words where its own is about Python types (a form
    field ``file`` sent as text rather than as a file: "Expected UploadFile, received: <class 'str'>")."""
    message = str(error.get("msg"))
    if "UploadFile" in message:
        return "expected an uploaded file (a multipart form field with a file name), got text"
    if error.get("type") == "missing" and tuple(error.get("loc", ())) == ("body", "file"):
        # most often audio sent as the raw body (curl --data-binary): say how to send it
        return "missing: send the audio as a multipart form field named 'file' (curl -F file=@call.wav URL)"
    return message


def _install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as ``{"error": CODE, "message": REASON}``."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, str(exc.detail), exc.notes, exc.channels), exc.status_code, headers=exc.headers
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 405:  # Starlette names only the first route of the path (HEAD for /healthz)
            exc.headers = {**(exc.headers or {}), "Allow": allowed_methods(request)}
        code = STATUS_CODES.get(exc.status_code, "error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'request'}: {_plain_problem(e)}"
            for e in exc.errors()
        )
        return JSONResponse(error_body("invalid_request", problems or "invalid request"), 422)
