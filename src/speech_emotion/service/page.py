"""The web page, its static files and the offline API docs (Swagger UI from the package)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; worker-src 'self'; media-src 'self' blob:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)
"""The page loads nothing from elsewhere (no CDN), and nothing else may frame it."""

router = APIRouter()


def web_dir() -> Path:
    """Folder of the page's static files, shipped inside the package."""
    return Path(str(resources.files("speech_emotion.service") / "web"))


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def page() -> HTMLResponse:
    html = (web_dir() / "index.html").read_text(encoding="utf-8")
    return HTMLResponse(html, headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"})


@router.get("/docs", include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    """Swagger UI from the package (vendored swagger-ui-dist): works offline."""
    app = request.app
    return get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{app.title} - API",
        swagger_js_url="/static/docs/swagger-ui-bundle.js",
        swagger_css_url="/static/docs/swagger-ui.css",
        swagger_favicon_url="/static/docs/favicon-32x32.png",
        swagger_ui_parameters={"validatorUrl": None},
    )


def add_page(app: FastAPI) -> None:
    """The page at ``/``, its files under ``/static`` and the API docs at ``/docs``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=web_dir()), name="static")
