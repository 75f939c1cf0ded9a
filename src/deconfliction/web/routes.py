"""Serve the UI: the page at `/` and its files under `/ui/`, all from the package (no CDN).

The page holds no data and needs no token: it asks the officer for one and then calls `/v1`
with it, so the UI shows exactly what the API lets that officer's party see.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(str(resources.files("deconfliction.web") / "static"))
# The page and its scripts change with the package: let the browser revalidate, never guess.
NO_STALE = {"Cache-Control": "no-cache"}
# The page shows what the other party wrote (messages, incidents, titles). It builds every text
# node with textContent; should that ever slip, the policy still refuses injected scripts and
# styles, and any other origin for them or for the token's requests. The login form never
# submits (a submit without its script would put the token in a URL), and no site may frame it.
PAGE_HEADERS = {
    **NO_STALE,
    "Content-Security-Policy": "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
def page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=PAGE_HEADERS)


def mount(app: FastAPI) -> None:
    """The page at `/`, its scripts, styles, translations and basemap under `/ui/`."""
    app.include_router(router)
    app.mount("/ui", StaticFiles(directory=STATIC), name="ui")
