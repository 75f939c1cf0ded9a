"""The FastAPI app: routers under /v1, bearer auth, problem+json for every error."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deconfliction import geo
from deconfliction.activities.routes import router as activities_router
from deconfliction.agreements.routes import router as agreements_router
from deconfliction.conflicts.detection import CellIndex, MemoryIndex
from deconfliction.conflicts.routes import router as conflicts_router
from deconfliction.errors import Invalid, Problem, TooLarge, Unavailable
from deconfliction.feeds.servers import FeedConfig, feeds_from_text
from deconfliction.hotline import scheduler as hotline_scheduler
from deconfliction.hotline import templates
from deconfliction.hotline.routes import router as hotline_router
from deconfliction.hotline.service import open_thread_for_alert
from deconfliction.http import Clock, Services, utc_now
from deconfliction.incidents.routes import router as incidents_router
from deconfliction.ops.lease import Leadership
from deconfliction.parties.routes import router as parties_router
from deconfliction.record import log
from deconfliction.record.routes import router as record_router
from deconfliction.reports.routes import router as reports_router
from deconfliction.store.db import is_sqlite, loop_engine, transaction
from deconfliction.stream.routes import router as stream_router
from deconfliction.stream.service import publish
from deconfliction.tracks.loop import Live, LoopConfig
from deconfliction.tracks.models import AlertOut
from deconfliction.tracks.routes import alerts_router
from deconfliction.tracks.routes import router as tracks_router
from deconfliction.web import routes as web
from deconfliction.zones.routes import router as zones_router

MAX_BODY_BYTES = 1024 * 1024
CHECKPOINT_EVERY_S = 10.0
PROBLEM_JSON = "application/problem+json"
# Seconds a client waits before sending again a request the database could not take.
DATABASE_RETRY_S = 2

logger = logging.getLogger(__name__)


def problem_response(problem: Problem) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if problem.status == 401 else None
    if problem.status in (429, 503):  # the rate limit, the database away: when to try again
        headers = {"Retry-After": str(problem.extra.get("retry_after_s", 1))}
    return JSONResponse(
        problem.body(), status_code=problem.status, media_type=PROBLEM_JSON, headers=headers
    )


class BodyLimit:
    """Refuse bodies over the limit before the app reads them, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = problem_response(TooLarge(f"request body over {self.limit} bytes"))
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await too_large(scope, receive, send)
            return
        # Read the whole body first (at most the limit), then replay it to the app: a body that
        # is too large is refused before any of it reaches a handler.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            received += len(chunks[-1])
            if received > self.limit:
                await too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def create_app(
    engine: Engine,
    clock: Clock = utc_now,
    checkpoint_every_s: float | None = CHECKPOINT_EVERY_S,
    hotline_every_s: float | None = hotline_scheduler.EVERY_S,
    tactical_every_s: float | None = 1.0,
    feeds: list[FeedConfig] | None = None,
    demo_replay: tuple[datetime, timedelta] | None = None,
) -> FastAPI:
    """The app. Background work: checkpoints, hotline timers, and (unless `tactical_every_s` is
    None) the live picture: track feeds (`feeds`, else DECONFLICTION_FEEDS) and the 1 Hz
    tactical loop; `demo_replay` (day start, time shift) feeds it simulated demo tracks."""
    live: Live | None = None
    if tactical_every_s is not None:
        live = Live(
            engine,
            clock,
            feeds if feeds is not None else feeds_from_text(os.environ.get("DECONFLICTION_FEEDS")),
            config=LoopConfig.from_env(os.environ, every_s=tactical_every_s),
            on_alert_in_tx=_push_alert,
            on_imminent_in_tx=open_alert_thread,
        )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[None]] = []

        # The singleton jobs run only on the replica holding the leader lease (ops.lease).
        async def lead() -> None:
            if checkpoint_every_s is not None:
                tasks.append(
                    asyncio.create_task(_sign_checkpoints(engine, clock, checkpoint_every_s))
                )
            if hotline_every_s is not None:
                tasks.append(
                    asyncio.create_task(hotline_scheduler.loop(engine, clock, hotline_every_s))
                )
            if live is not None:
                await live.lead()

        async def follow() -> None:
            for task in tasks:
                task.cancel()
            tasks.clear()
            if live is not None:
                await live.follow()

        await _prepare(_app)
        leadership = Leadership(engine, lead, follow)
        if live is not None:
            live.leader = False
            await live.start()
        await leadership.start()
        if live is not None and demo_replay is not None:
            live.start_simulation(*demo_replay)
        yield
        await leadership.stop()
        if live is not None:
            await live.stop()
        hub = getattr(_app.state, "stream_hub", None)
        if hub is not None:
            await hub.close()
        loop_reads = _app.state.services.loop_reads
        if loop_reads is not None:
            loop_reads.dispose()

    app = FastAPI(
        lifespan=lifespan,
        # FastAPI's docs pages load their scripts from a CDN: the package serves its own.
        docs_url=None,
        redoc_url=None,
        title="deconfliction",
        version="0.1.0",
        description="Notified 4D activity, conflict detection, hotline and a signed record "
        "for parties that share an operating area.",
    )
    index = CellIndex()
    if is_sqlite(engine):
        # One writer: the in-memory index, rebuilt from the database on start, is exact.
        memory = MemoryIndex()
        with transaction(engine, write=False) as conn:
            memory.build(conn, clock())
        index = memory
    app.state.live = live
    app.state.services = Services(
        engine=engine, clock=clock, index=index, loop_reads=loop_engine(engine)
    )

    @app.exception_handler(Problem)
    async def on_problem(_request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(geo.GeoError)
    async def on_geo(_request: Request, exc: geo.GeoError) -> JSONResponse:
        return problem_response(Invalid(str(exc)))

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def on_out_of_range(_request: Request, exc: Exception) -> JSONResponse:
        # A number past what the database stores (an id of 2**63, say): the client's input.
        return problem_response(Invalid("a number in the request is out of range"))

    @app.exception_handler(OperationalError)
    async def on_database_away(_request: Request, exc: OperationalError) -> JSONResponse:
        # The database restarting, failing over or out of reach, or a lock held too long: the
        # transaction rolled back, or (a cut during COMMIT) it is unknown whether it committed,
        # which is what the Idempotency-Key of a write sent again settles.
        logger.error("database unavailable: %s", exc.orig)
        return problem_response(
            Unavailable(
                "the database cannot be reached just now; send the request again"
                " (a write with the same Idempotency-Key)",
                retry_after_s=DATABASE_RETRY_S,
            )
        )

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_error_line(e) for e in exc.errors()]
        return JSONResponse(
            {
                "type": "https://deconfliction.invalid/problems/invalid-input",
                "title": "Invalid input",
                "status": 422,
                "detail": "; ".join(errors),
                "errors": errors,
            },
            status_code=422,
            media_type=PROBLEM_JSON,
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {
                "type": "about:blank",
                "title": str(exc.detail),
                "status": exc.status_code,
                "detail": str(exc.detail),
            },
            status_code=exc.status_code,
            media_type=PROBLEM_JSON,
        )

    for router in (
        parties_router,
        zones_router,
        activities_router,
        conflicts_router,
        record_router,
        hotline_router,
        stream_router,
        tracks_router,
        alerts_router,
        agreements_router,
        incidents_router,
        reports_router,
    ):
        app.include_router(router)
    web.mount(app)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    return app


def _push_alert(conn: Connection, alert: AlertOut, event: str) -> None:
    """Tell the parties of a tactical alert on the stream, in the alert's transaction."""
    publish(
        conn,
        alert.parties,
        f"alert.{event}",
        {"alert": alert.model_dump(mode="json")},
        alert.updated_at,
    )


def open_alert_thread(conn: Connection, alert: AlertOut) -> None:
    """An imminent tactical alert: its FLASH hotline thread to both parties, in its transaction."""
    open_thread_for_alert(conn, alert, alert.updated_at)


async def _prepare(app: FastAPI) -> None:
    """Do at start what the first requests would otherwise wait for (the first hotline message
    after a start took ~200 ms in process, the next ~12): FastAPI builds a router's request
    handling (each route's dependencies and validators) at the first request that reaches it,
    so one request for a path no route has, answered in process, makes it build them all;
    anyio imports its event loop backend when a first endpoint runs in its worker threads; and
    Babel loads a locale's data when a message is first rendered in that language."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/.prepare",
        "raw_path": b"/.prepare",
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "client": None,
        "server": None,
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: Message) -> None:
        return None

    await app(scope, receive, send)
    await anyio.to_thread.run_sync(templates.load_languages)


async def _sign_checkpoints(engine: Engine, clock: Clock, every_s: float) -> None:
    """Sign a checkpoint on taking the lead and then whenever the log grew, so parties always
    have a recent one to read and cosign (reading one never signs)."""

    def sign() -> None:
        try:
            with transaction(engine, write=True) as conn:
                log.checkpoint(conn, clock())
        except IntegrityError:
            pass  # another server signed the same size first: that checkpoint serves

    while True:
        try:
            await asyncio.to_thread(sign)
        except Exception:  # the database away a moment must not end the signing for good
            logger.exception("signing a checkpoint failed; retrying")
        await asyncio.sleep(every_s)


def _error_line(error: Any) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
