"""The event stream: every change a party may see, as numbered events, for push to clients.

`publish` writes an event in the transaction of the change it tells of, so an event exists if and
only if the change committed. Event ids follow commit order: `publish` first takes the log's lock
(the `ledger_state` row, FOR UPDATE on PostgreSQL; SQLite has one writer), which every write
transaction holds until it commits, so a reader that has seen id N has seen every id below N and
`id > after` misses nothing and repeats nothing.

Delivery across server processes is by polling: each process runs one `StreamHub` that reads new
rows every POLL_S seconds and fans them out to its subscribers (WebSocket and SSE connections),
filtered by audience. Latency is at most POLL_S plus a query (about 150-200 ms); the database
sees one query per process per POLL_S, however many clients are connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, func, insert, select

from deconfliction.parties.models import Actor
from deconfliction.store import tables as t
from deconfliction.store.db import transaction

POLL_S = 0.15
BATCH = 500
QUEUE_LIMIT = 2000
CACHE_LIMIT = 4096
log = logging.getLogger(__name__)


class StreamEvent(BaseModel):
    id: int
    kind: str
    at: datetime
    audience: list[str]
    payload: dict[str, Any]


def publish(
    conn: Connection, audience: Iterable[str], kind: str, payload: dict[str, Any], now: datetime
) -> int:
    """Add an event for `audience` (party codes; mediators see every event). Call it inside the
    write transaction of the change; returns the event id."""
    parties = sorted(set(audience))
    # Hold the log's lock before taking an id: ids are then handed out in commit order.
    conn.execute(select(t.ledger_state.c.size).where(t.ledger_state.c.id == 1).with_for_update())
    made = conn.execute(
        insert(t.stream_events).values(kind=kind, audience=parties, payload=payload, at=now)
    ).inserted_primary_key
    assert made is not None
    event_id = int(made[0])
    if parties:
        conn.execute(
            insert(t.stream_audience), [{"event_id": event_id, "party": p} for p in parties]
        )
    return event_id


def _event(row: Any) -> StreamEvent:
    return StreamEvent(
        id=row.id, kind=row.kind, at=row.at, audience=list(row.audience), payload=row.payload
    )


def sees(actor: Actor, event: StreamEvent) -> bool:
    return actor.sees_all_shared or actor.party in event.audience


def events_after(
    conn: Connection, actor: Actor, after: int, limit: int = BATCH
) -> list[StreamEvent]:
    """The events the actor may see with id > after, oldest first."""
    query = select(t.stream_events).where(t.stream_events.c.id > after)
    if not actor.sees_all_shared:
        query = query.where(
            t.stream_events.c.id.in_(
                select(t.stream_audience.c.event_id).where(
                    t.stream_audience.c.party == actor.party,
                    t.stream_audience.c.event_id > after,
                )
            )
        )
    rows = conn.execute(query.order_by(t.stream_events.c.id).limit(limit)).all()
    return [_event(r) for r in rows]


def latest_id(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(t.stream_events.c.id), 0))).scalar_one())


@dataclass(eq=False)
class Subscription:
    actor: Actor
    queue: asyncio.Queue[StreamEvent] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_LIMIT)
    )
    # Set when the queue overflowed (a slow client): it catches up from the table instead.
    overflowed: bool = False


class StreamHub:
    """One per process and event loop: polls the table and fans events out to subscribers."""

    def __init__(self, engine: Engine, poll_s: float = POLL_S) -> None:
        self.engine = engine
        self.poll_s = poll_s
        self.subscribers: set[Subscription] = set()
        self.last = 0
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._starting: asyncio.Lock | None = None
        # Shared by this process's connections: an event's frame per way of reading it
        # (rendered once, not once per client), and the delivered receipts already given.
        self._frames: OrderedDict[tuple[Any, ...], str] = OrderedDict()
        self._delivered: OrderedDict[tuple[int, str], None] = OrderedDict()

    def frame(self, key: tuple[Any, ...], make: Callable[[], str]) -> str:
        found = self._frames.get(key)
        if found is None:
            found = self._frames[key] = make()
            if len(self._frames) > CACHE_LIMIT:
                self._frames.popitem(last=False)
        return found

    def not_yet_delivered(self, party: str, message_ids: list[int]) -> list[int]:
        """Those of the messages this process has not yet given `party`'s delivered receipt
        for; from now on, it has."""
        fresh = [m for m in message_ids if (m, party) not in self._delivered]
        for m in fresh:
            self._delivered[(m, party)] = None
        while len(self._delivered) > CACHE_LIMIT:
            self._delivered.popitem(last=False)
        return fresh

    async def subscribe(self, actor: Actor) -> Subscription:
        """Register, then let the caller catch up from the table: an event committed before the
        registration is in the catch-up, one committed after it comes through the queue (both,
        at worst: the caller skips ids it already sent)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (a test client, a restart): start over
            self._loop = loop
            self._task = None
            self._starting = asyncio.Lock()
            self.subscribers.clear()
        assert self._starting is not None
        async with self._starting:
            if self._task is None or self._task.done():
                # The poller starts from the newest id read now, before the caller's catch-up.
                self.last = await asyncio.to_thread(self._latest)
                self._task = loop.create_task(self._run())
            sub = Subscription(actor)
            self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)

    def _latest(self) -> int:
        with transaction(self.engine, write=False) as conn:
            return latest_id(conn)

    def _fetch(self, after: int) -> list[StreamEvent]:
        with transaction(self.engine, write=False) as conn:
            rows = conn.execute(
                select(t.stream_events)
                .where(t.stream_events.c.id > after)
                .order_by(t.stream_events.c.id)
                .limit(BATCH)
            ).all()
        return [_event(r) for r in rows]

    async def _run(self) -> None:
        while self.subscribers:
            try:
                events = await asyncio.to_thread(self._fetch, self.last)
            except Exception:  # a database hiccup must not end the stream for everyone
                log.exception("stream poll failed; retrying")
                events = []
            for event in events:
                self.last = event.id
                for sub in list(self.subscribers):
                    if sees(sub.actor, event):
                        try:
                            sub.queue.put_nowait(event)
                        except asyncio.QueueFull:
                            sub.overflowed = True
            if len(events) < BATCH:
                await asyncio.sleep(self.poll_s)
        self._task = None

    async def close(self) -> None:
        self.subscribers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._task
            self._task = None
