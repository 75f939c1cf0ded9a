"""Serve the UI: the page at `/` and its files under `/ui/`, and the API docs at `/docs`, all
from the package (no CDN).

The page holds no data and needs no token: it asks the officer for one and then calls `/v1`
with it, so the UI shows exactly what the API lets that officer's party see.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(str(resources.files("deconfliction.web") / "static"))
# The page and its scripts change with the package: let the browser revalidate, never guess.
NO_STALE = {"Cache-Control": "no-cache"}


def _guarded(*directives: str) -> dict[str, str]:
    """Response headers of a page: its Content-Security-Policy (what it may load and run, on top
    of: only this origin, never framed), no type sniffing, no referrer."""
    policy = [
        "default-src 'self'",
        *directives,
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
    return {
        **NO_STALE,
        "Content-Security-Policy": "; ".join(policy),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


# The page shows what the other party wrote (messages, incidents, titles). It builds every text
# node with textContent; should that ever slip, the policy still refuses injected scripts and
# styles, and any other origin for them or for the token's requests. The login form never
# submits (a submit without its script would put the token in a URL), and no site may frame it.
PAGE_HEADERS = _guarded(
    "script-src 'self'", "style-src 'self'", "img-src 'self'", "form-action 'none'"
)

router = APIRouter(include_in_schema=False)

SWAGGER_UI = "/ui/vendor/swagger-ui"  # copied in by tools/swagger-ui/copy.py


def _docs_page() -> tuple[HTMLResponse, dict[str, str]]:
    """Swagger UI from the package, and a policy that lets only its own scripts run: the bundle,
    and the page's one inline script by its hash (Swagger UI styles inline, so styles may)."""
    page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="deconfliction API",
        swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
        swagger_favicon_url="/ui/favicon.svg",
        swagger_ui_parameters={"validatorUrl": None},  # no badge from swagger.io
    )
    inline = re.findall(r"<script>(.*?)</script>", bytes(page.body).decode(), re.S)
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in inline
    )
    return page, _guarded(
        f"script-src 'self' {hashes}", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:"
    )


_DOCS, _DOCS_HEADERS = _docs_page()


@router.get("/")
def page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=PAGE_HEADERS)


@router.get("/docs")
def docs() -> HTMLResponse:
    return HTMLResponse(bytes(_DOCS.body), headers=_DOCS_HEADERS)


def mount(app: FastAPI) -> None:
    """The page at `/`, its scripts, styles, translations and basemap under `/ui/`, the API
    docs at `/docs` (the app is made with FastAPI's own, CDN-loaded docs turned off)."""
    app.include_router(router)
    app.mount("/ui", StaticFiles(directory=STATIC), name="ui")
