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

router = APIRouter(include_in_schema=False)


@router.get("/")
def page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=NO_STALE)


def mount(app: FastAPI) -> None:
    """The page at `/`, its scripts, styles, translations and basemap under `/ui/`."""
    app.include_router(router)
    app.mount("/ui", StaticFiles(directory=STATIC), name="ui")
