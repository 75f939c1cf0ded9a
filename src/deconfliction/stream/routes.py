"""The event stream over WebSocket (`GET /v1/stream`) and Server-Sent Events (`GET
/v1/stream/sse`): every event the caller may see, in id order, each once.

Auth: `Authorization: Bearer <token>` or `?token=<token>` (browsers cannot set headers on a
WebSocket or an EventSource). Where to start: `?after=<id>` (SSE: also `Last-Event-ID`, which
wins) gives every event after that id, then live ones; without it, only events from now on.
A client that reconnects with the last id it got misses nothing and gets nothing twice.

Each event is `{"id", "kind", "at", "payload"}`. A WebSocket frame carries one event object, or,
when several were ready at once, a JSON array of them in id order (one frame, not one per event,
so a burst costs each client one send); SSE sends each as `id:`, `event:` the kind, `data:` that
JSON, all that were ready in one write. A `message.sent` event carries the message rendered for
the reader (its party's language or `?lang=`), and pushing it to an officer of a recipient party
gives that party's delivered receipt; that `message.delivered` event is pushed to the sender's
party and the mediators, not back to the recipient party (`service.pushed_parties`). Refused
connections get a problem+json HTTP answer (WebSocket denial response; close code 4401/4422
where the server cannot send one).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, WebSocket
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.applications import Starlette
from starlette.websockets import WebSocketDisconnect

from deconfliction.errors import Invalid, Problem, Unauthorized
from deconfliction.hotline import service as hotline
from deconfliction.hotline import templates
from deconfliction.hotline.models import MessageOut
from deconfliction.http import Services
from deconfliction.parties.models import Actor
from deconfliction.parties.service import authenticate, token_hash
from deconfliction.store.db import transaction
from deconfliction.stream.service import (
    BATCH,
    FALLBACK_POLL_S,
    TOKEN_CHECK_S,
    StreamEvent,
    StreamHub,
    Subscription,
    events_after,
    latest_id,
    pushed,
)
from deconfliction.stream.wire import FRAME_WRITER, FrameWriter, text_frame

router = APIRouter(tags=["stream"])
log = logging.getLogger(__name__)
KEEPALIVE_S = 15.0
MAX_WS_MESSAGE_BYTES = 4096  # what a client may send: nothing needs more than a ping
# A catch-up of BATCH events goes in several frames: clients limit a frame's size (1 MiB is the
# default of Python's websockets).
FRAME_LIMIT_CHARS = 256 * 1024
LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"


def _seconds_from_env(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not 0.01 <= seconds <= 3600:
        raise Invalid(f"{name}: seconds from 0.01 to 3600, not {raw!r}")
    return seconds


def fallback_poll_s() -> float:
    """How often a hub reads the table when nothing woke it (DECONFLICTION_STREAM_POLL_S)."""
    return _seconds_from_env("DECONFLICTION_STREAM_POLL_S", FALLBACK_POLL_S)


def hub_of(app: Starlette) -> StreamHub:
    """The app's hub (one per app, made on first use)."""
    hub: StreamHub | None = getattr(app.state, "stream_hub", None)
    if hub is None:
        services: Services = app.state.services
        hub = StreamHub(
            services.engine,
            fallback_poll_s(),
            clock=services.clock,
            token_check_s=_seconds_from_env("DECONFLICTION_STREAM_TOKEN_CHECK_S", TOKEN_CHECK_S),
        )
        app.state.stream_hub = hub
    return hub


def end_streams(app: Starlette) -> None:
    """End every stream the app serves (the server stops)."""
    hub: StreamHub | None = getattr(app.state, "stream_hub", None)
    if hub is not None:
        hub.end_streams()


def _token(authorization: str | None, token: str | None) -> str:
    if authorization is not None:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("Authorization must be 'Bearer <token>'")
        return value.strip()
    if token:
        return token
    raise Unauthorized("send 'Authorization: Bearer <token>' or ?token=<token>")


def _after(*candidates: str | None) -> int | None:
    for raw in candidates:
        if raw is None:
            continue
        if not raw.strip().isdigit():
            raise Invalid(
                f"after / Last-Event-ID must be an event id (a whole number), not {raw!r}"
            )
        return int(raw.strip())
    return None


def _authenticate(svc: Services, token: str) -> Actor:
    with transaction(svc.engine, write=False) as conn:
        return authenticate(conn, token, svc.clock())


class Session:
    """One connection's reading: what it has sent, how it renders, the receipts it gives."""

    def __init__(self, svc: Services, hub: StreamHub, actor: Actor, language: str | None) -> None:
        self.svc = svc
        self.hub = hub
        self.actor = actor
        self.last = 0
        with transaction(svc.engine, write=False) as conn:
            self.reader = hotline.reader(conn, actor, language)
        # What a rendered message depends on: readers alike share its cached text.
        self.reading = (self.reader.language, self.reader.time_zone, actor.party)
        self._receipts: set[asyncio.Task[None]] = set()

    def catch_up(self) -> list[StreamEvent]:
        with transaction(self.svc.engine, write=False) as conn:
            return events_after(conn, self.actor, self.last, BATCH)

    def start_live(self) -> None:
        with transaction(self.svc.engine, write=False) as conn:
            self.last = latest_id(conn)

    def wire(self, event: StreamEvent) -> dict[str, Any]:
        payload = event.payload
        if event.kind == "message.sent" and "message" in payload:
            message = MessageOut.model_validate(payload["message"])
            message.rendered = templates.render(
                message, self.reader.language, self.reader.time_zone, self.actor.party
            )
            payload = {**payload, "message": message.model_dump(mode="json")}
        return {
            "id": event.id,
            "kind": event.kind,
            "at": event.at.isoformat().replace("+00:00", "Z"),
            "payload": payload,
        }

    def key(self, event: StreamEvent) -> tuple[Any, ...]:
        """What the event's text depends on: readers with the same key share it."""
        return (event.id, *self.reading) if event.kind == "message.sent" else (event.id,)

    def text(self, event: StreamEvent) -> str:
        """The event as JSON text, made once per process for every reader who reads it alike."""
        return self.hub.frame(
            self.key(event), lambda: json.dumps(self.wire(event), ensure_ascii=False)
        )

    def frames(self, events: list[StreamEvent]) -> list[str]:
        """The WebSocket frames for events ready together (see `frames_of`)."""
        return frames_of([self.text(e) for e in events], FRAME_LIMIT_CHARS)

    def write_direct(
        self, writer: FrameWriter, events: list[StreamEvent], shared: dict[Any, Any]
    ) -> bool:
        """Write the events the hub gives straight to the connection (`Subscription.direct`, on
        the event loop); False, with nothing sent and the mark not moved, if it cannot. What
        readers alike need (the frames' bytes, whether their party's receipts are given) is
        made by the first of them in `shared` and reused by the rest of the fan-out."""
        alike = events[0].id > self.last  # as every caught-up reader: `shared` applies
        new = events if alike else [e for e in events if e.id > self.last]
        if not new:
            return True
        # Keyed by the group's list, alive for the whole fan-out (so its id is not reused).
        made, receipts = (id(events), self.reading), (id(events), self.actor.party)
        wire = shared.get(made) if alike else None
        if wire is None:
            wire = [text_frame(f) for f in self.frames(new)]
            if alike:
                shared[made] = wire
        if not writer.write(wire):
            return False
        self.last = new[-1].id
        if alike:
            if receipts in shared:  # the first reader of the party gave them
                return True
            shared[receipts] = True
        delivered = self.to_deliver(new)
        if delivered:
            task = asyncio.get_running_loop().create_task(self.give_receipts(delivered))
            self._receipts.add(task)  # held until done: the loop keeps only weak references
            task.add_done_callback(self._receipts.discard)
        return True

    async def give_receipts(self, delivered: list[int]) -> None:
        """Write the delivered receipts that a push gave (`to_deliver`), in a worker thread."""
        # First let the other connections woken with this one send (their tasks are queued
        # ahead): the write's Python work would take the GIL from their sends.
        await asyncio.sleep(0)
        await asyncio.to_thread(self.deliver, delivered)

    def to_deliver(self, events: list[StreamEvent]) -> list[int]:
        """Messages to this officer's party just pushed whose delivered receipt this process
        has not given yet (called on the event loop)."""
        party = self.actor.party
        mine = [
            int(e.payload["message"]["id"])
            for e in events
            if e.kind == "message.sent" and party in e.payload["message"].get("to", [])
        ]
        return self.hub.not_yet_delivered(party, mine) if mine else []

    def deliver(self, message_ids: list[int]) -> None:
        """Give those delivered receipts (in a worker thread: it writes)."""
        if not message_ids:
            return
        try:
            with transaction(self.svc.engine, write=True) as conn:
                hotline.mark_delivered(conn, self.actor, message_ids, self.svc.clock())
        except Exception:  # the push happened; the next fetch gives the receipt instead
            log.exception("delivered receipts for messages %s not recorded", message_ids)

    def fresh(self, events: list[StreamEvent], *, from_table: bool) -> list[StreamEvent]:
        """Those to push that were not sent yet; the mark moves past all of them."""
        new = [e for e in events if e.id > self.last]
        if not new:
            return new
        self.last = new[-1].id
        # The hub pushed the subscription only these; the table has every event it may see.
        return [e for e in new if pushed(self.actor, e)] if from_table else new


def frames_of(texts: list[str], limit: int) -> list[str]:
    """Events' JSON texts, in order, as frames: one event alone as its object, more as a JSON
    array joined from the cached texts (no parse, no re-serialisation); a new frame starts only
    where the next text would take an array past `limit` characters."""
    if len(texts) <= 1:
        return texts
    frames: list[str] = []
    group: list[str] = []
    size = 2  # the brackets
    for text in texts:
        if group and size + len(text) > limit:
            frames.append(_array(group))
            group, size = [], 2
        group.append(text)
        size += len(text) + 1  # and its comma
    frames.append(_array(group))
    return frames


def _array(texts: list[str]) -> str:
    return texts[0] if len(texts) == 1 else "[" + ",".join(texts) + "]"


async def _events(
    session: Session,
    sub: Subscription,
    after: int | None,
    wait_s: float | None = None,
    before_wait: Callable[[], None] | None = None,
) -> AsyncIterator[list[StreamEvent]]:
    """Batches of events for one connection: first those after `after` from the table, then
    live ones from the hub (a subscription that overflowed catches up from the table instead).
    With `wait_s`, an empty batch comes when nothing arrived for that long (for keep-alives).
    `before_wait` runs each time the connection, caught up and its batch sent, waits for more."""
    if after is None:
        await asyncio.to_thread(session.start_live)
    else:
        session.last = after
    catching_up = after is not None
    while True:
        if catching_up:
            batch = await asyncio.to_thread(session.catch_up)
            fresh = session.fresh(batch, from_table=True)
            if fresh:
                yield fresh
            if len(batch) >= BATCH:
                continue
            catching_up = False
        if before_wait is not None:
            before_wait()
        taken = await sub.take(wait_s)
        if sub.ended:
            return
        if sub.overflowed:
            sub.overflowed = False
            catching_up = True
            continue
        if not taken:
            yield []
            continue
        fresh = session.fresh(taken, from_table=False)
        if fresh:
            yield fresh


async def _until_disconnect(websocket: WebSocket) -> None:
    """Read until the client goes; the stream takes no input, so a message over
    MAX_WS_MESSAGE_BYTES closes the connection (1009, message too big)."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        size = len(message.get("bytes") or b"") + len((message.get("text") or "").encode())
        if size > MAX_WS_MESSAGE_BYTES:
            await websocket.close(code=1009, reason=f"message over {MAX_WS_MESSAGE_BYTES} bytes")
            return


async def _deny(websocket: WebSocket, problem: Problem) -> None:
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(
            JSONResponse(
                problem.body(),
                status_code=problem.status,
                media_type="application/problem+json",
                headers={"WWW-Authenticate": "Bearer"} if problem.status == 401 else None,
            )
        )
    else:
        await websocket.close(code=4000 + problem.status, reason=problem.detail[:120])


@router.websocket("/v1/stream")
async def stream_websocket(websocket: WebSocket) -> None:
    svc: Services = websocket.app.state.services
    params = websocket.query_params
    try:
        token = _token(websocket.headers.get("authorization"), params.get("token"))
        after = _after(params.get("after"))
        language = params.get("lang")
        if language is not None and not re.fullmatch(LANGUAGE_PATTERN, language):
            raise Invalid(f"lang: not a language tag: {language!r}")
        actor = await asyncio.to_thread(_authenticate, svc, token)
        hub = hub_of(websocket.app)
        session = await asyncio.to_thread(Session, svc, hub, actor, language)
    except Problem as problem:
        await _deny(websocket, problem)
        return
    await websocket.accept()
    sub = await hub.subscribe(actor, token_hash(token))
    writer: FrameWriter | None = websocket.scope.get("extensions", {}).get(FRAME_WRITER)

    def go_direct() -> None:
        # Caught up, everything sent: from now on the hub writes this connection's frames.
        if writer is not None and not sub.pending and not sub.overflowed:
            sub.direct = functools.partial(session.write_direct, writer)

    async def pump() -> None:
        async for batch in _events(session, sub, after, before_wait=go_direct):
            for frame in session.frames(batch):
                await websocket.send_text(frame)
            delivered = session.to_deliver(batch)
            if delivered:  # most pushes give none: this process gave them already
                await session.give_receipts(delivered)

    # Two tasks for the connection's life, not two per batch: the pump, and a reader that
    # ends when the client goes away.
    tasks = {asyncio.create_task(pump()), asyncio.create_task(_until_disconnect(websocket))}
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            with contextlib.suppress(WebSocketDisconnect):
                task.result()
    finally:
        hub.unsubscribe(sub)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)


@router.get(
    "/v1/stream/sse",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_sse(
    request: Request,
    token: Annotated[str | None, Query(description="the token, if no Authorization header")] = None,
    after: Annotated[str | None, Query(description="the last event id you got")] = None,
    lang: Annotated[str | None, Query(pattern=LANGUAGE_PATTERN)] = None,
    authorization: Annotated[str | None, Header()] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    svc: Services = request.app.state.services
    start = _after(last_event_id, after)
    presented = _token(authorization, token)
    actor = await asyncio.to_thread(_authenticate, svc, presented)
    hub = hub_of(request.app)
    session = await asyncio.to_thread(Session, svc, hub, actor, lang)

    async def lines() -> AsyncIterator[str]:
        sub = await hub.subscribe(actor, token_hash(presented))
        try:
            yield "retry: 2000\n\n"
            async for batch in _events(session, sub, start, wait_s=KEEPALIVE_S):
                if not batch:
                    yield ": keep-alive\n\n"
                    continue
                yield "".join(
                    f"id: {e.id}\nevent: {e.kind}\ndata: {session.text(e)}\n\n" for e in batch
                )
                delivered = session.to_deliver(batch)
                if delivered:
                    await session.give_receipts(delivered)
        finally:
            hub.unsubscribe(sub)

    return StreamingResponse(
        lines(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
