"""The event stream: every change a party may see, as numbered events, for push to clients.

`publish` writes an event in the transaction of the change it tells of, so an event exists if and
only if the change committed. Event ids follow commit order: `publish` first takes the log's lock
(the `ledger_state` row, FOR UPDATE on PostgreSQL; SQLite has one writer), which every write
transaction holds until it commits, so a reader that has seen id N has seen every id below N and
`id > after` misses nothing and repeats nothing.

Delivery is pushed. Each process runs one `StreamHub` per event loop; it sleeps until woken, then
reads the new rows once (`id > last`) and fans each event out to the subscribers (WebSocket and
SSE connections) of the parties in its audience (`pushed_parties`) and to those who see
everything, waking each subscriber once per read, however many events it got (a WebSocket that
can take them directly gets its frames written by the hub instead, `stream.wire`). It is woken
- in process, right after the commit of a transaction that published (the connection's pool
  check-in, which follows the commit): no wait at all for events written by this server;
- across processes on PostgreSQL, by a NOTIFY with the event id, sent inside the publishing
  transaction (so delivered only if it commits) to one `LISTEN` connection per hub, on a
  channel of the schema's own (`channel`);
- by a slow poll (`FALLBACK_POLL_S`) in case a notification was missed (the listening connection
  dropped; several servers on one SQLite file). A wake is only a hint to read the table, so a
  lost, early or doubled one cannot lose or repeat an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from pydantic import BaseModel
from sqlalchemy import Connection, Engine, String, bindparam, event, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from deconfliction.parties.models import Actor
from deconfliction.parties.service import lapsed_tokens
from deconfliction.record import log as record_log
from deconfliction.store import tables as t
from deconfliction.store.db import (
    fetch_rows,
    first_in_transaction,
    insert_returning_ids,
    run_rows,
    transaction,
)

FALLBACK_POLL_S = 2.0
# How often a hub checks its connections' tokens: a stream of a revoked or expired token ends
# within this (and a fallback poll).
TOKEN_CHECK_S = 30.0
LISTEN_RETRY_S = 1.0
CHANNEL = "deconfliction_stream"
BATCH = 500
QUEUE_LIMIT = 2000
CACHE_LIMIT = 4096
# conn.info keys: event ids published in the open transaction, then committed but not yet told.
PUBLISHED = "stream.published"
COMMITTED = "stream.committed"
DELIVERED = "message.delivered"
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
    return publish_many(conn, [(audience, kind, payload)], now)[0]


def publish_many(
    conn: Connection,
    events: Sequence[tuple[Iterable[str], str, dict[str, Any]]],
    now: datetime,
) -> list[int]:
    """Add several events (audience, kind, payload) in order, with one lock, one INSERT per table
    and one wake-up for the lot; returns their ids."""
    if not events:
        return []
    # Hold the log's lock before taking ids: ids are then handed out in commit order.
    record_log.lock(conn)
    parties = [sorted(set(audience)) for audience, _, _ in events]
    rows = [
        {"kind": kind, "audience": codes, "payload": payload, "at": now}
        for codes, (_, kind, payload) in zip(parties, events, strict=True)
    ]
    ids = insert_returning_ids(conn, t.stream_events, rows)
    audiences = [
        {"event_id": event_id, "party": party}
        for event_id, codes in zip(ids, parties, strict=True)
        for party in codes
    ]
    run_rows(conn, _INSERT_AUDIENCE, audiences)
    conn.info.setdefault(PUBLISHED, []).extend(ids)
    # Delivered to every listening server when (and only if) this transaction commits; it only
    # wakes them (they read every event after their last), so once per transaction.
    if conn.dialect.name == "postgresql" and first_in_transaction(conn, _NOTIFIED):
        conn.execute(_NOTIFY, {"channel": channel(conn), "id": str(ids[-1])})
    return ids


# `publish_many`'s statements, built once (building one costs about as much as running it).
_INSERT_AUDIENCE = insert(t.stream_audience)
# What a hub reads when woken (every event, for its process's connections to filter).
_EVENTS_AFTER = (
    select(t.stream_events)
    .where(t.stream_events.c.id > bindparam("after"))
    .order_by(t.stream_events.c.id)
    .limit(BATCH)
)
_NOTIFIED = "deconfliction.stream_notified_by"
_NOTIFY = select(func.pg_notify(bindparam("channel", type_=String), bindparam("id", type_=String)))


_channels: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def channel(conn: Connection) -> str:
    """The NOTIFY channel of the schema `conn` works in: channels are per database, and two
    deployments (or test sessions) in two schemas of one database must not wake each other."""
    name = _channels.get(conn.engine)
    if name is None:
        schema = str(conn.execute(select(func.current_schema())).scalar_one())
        digest = hashlib.sha256(schema.encode()).hexdigest()[:16]
        name = _channels[conn.engine] = f"{CHANNEL}_{digest}"
    return name


def _event(row: Any) -> StreamEvent:
    return StreamEvent(
        id=row.id, kind=row.kind, at=row.at, audience=list(row.audience), payload=row.payload
    )


def pushed_parties(event: StreamEvent) -> list[str]:
    """The parties whose officers' connections are pushed `event` (mediators get every event):
    its audience, but for a `message.delivered` receipt not the party whose receipt it is. The
    receipt is of use to the sender's party and the mediator; the recipient's own clients just
    got the message, and pushing them their party's receipt doubled a message's frames. Read
    and acknowledged receipts stay pushed to them: those tell that a colleague took it."""
    if event.kind == DELIVERED:
        return [p for p in event.audience if p != event.payload.get("party")]
    return event.audience


def pushed(actor: Actor, event: StreamEvent) -> bool:
    return actor.sees_all_shared or actor.party in pushed_parties(event)


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


# The hubs to wake after a commit on each engine (weak: a closed app's hub just goes away).
_hubs: weakref.WeakKeyDictionary[Engine, weakref.WeakSet[StreamHub]] = weakref.WeakKeyDictionary()


def _on_commit(conn: Connection) -> None:
    published = conn.info.pop(PUBLISHED, None)
    if published:
        conn.info.setdefault(COMMITTED, []).extend(published)


def _on_rollback(conn: Connection) -> None:
    conn.info.pop(PUBLISHED, None)


def _watch_commits(engine: Engine, hub: StreamHub) -> None:
    """Wake `hub` whenever a transaction on `engine` that published an event has committed.

    The Connection's `commit` event comes before the database commits, so it only moves the ids
    aside; the pool check-in that follows the commit (the end of `transaction`) wakes the hubs.
    """
    hubs = _hubs.get(engine)
    if hubs is None:
        hubs = _hubs[engine] = weakref.WeakSet()
        woken = hubs

        def on_checkin(_dbapi_conn: Any, record: Any) -> None:
            if record is not None and record.info.pop(COMMITTED, None):
                for each in list(woken):
                    each.wake()

        event.listen(engine, "commit", _on_commit)
        event.listen(engine, "rollback", _on_rollback)
        event.listen(engine, "checkin", on_checkin)
    hubs.add(hub)


def listen_url(engine: Engine) -> str:
    url = engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


@dataclass(eq=False)
class Subscription:
    """One connection's share of the hub: the events pushed to it and not yet taken, and the
    waiter its connection sleeps on (woken once per fan-out, not once per event)."""

    actor: Actor
    pending: list[StreamEvent] = field(default_factory=list)
    # Set when more than QUEUE_LIMIT waited (a slow client): it catches up from the table.
    overflowed: bool = False
    waiter: asyncio.Future[None] | None = None
    # The hub's event loop: asking for the running loop costs a getpid() system call, and a
    # connection waits once per frame.
    loop: asyncio.AbstractEventLoop | None = None
    # Set while the connection takes its events straight from the fan-out (a WebSocket whose
    # frames the hub may write itself, `stream.wire`), with nothing pending: called with them
    # (the same list for its whole group) and a dict shared by the fan-out's calls, instead of
    # a push and a wake; False means it could not take them (slow or closing) and sent none:
    # the connection then catches up from the table like an overflowed one.
    direct: Callable[[list[StreamEvent], dict[Any, Any]], bool] | None = None
    # Set when the server stops, or the connection's token was revoked or expired: the
    # connection's stream ends.
    ended: bool = False
    # The SHA-256 of the token the connection authenticated with, checked every TOKEN_CHECK_S.
    token_hash: str | None = None

    def end(self) -> None:
        self.ended = True
        self.direct = None
        self.wake()

    def push(self, event: StreamEvent) -> None:
        if self.overflowed:
            return
        if len(self.pending) >= QUEUE_LIMIT:
            self.overflowed = True
            self.pending.clear()
            return
        self.pending.append(event)

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def take(self, wait_s: float | None = None) -> list[StreamEvent]:
        """The events pushed since the last take, waiting for at least one (at most `wait_s`:
        then none). After an overflow, check `overflowed` first: what was pending is gone;
        once `ended`, it waits no more."""
        if not self.pending and not self.overflowed and not self.ended:
            self.waiter = (self.loop or asyncio.get_running_loop()).create_future()
            try:
                if wait_s is None:  # a WebSocket waits on the future itself: a timeout costs more
                    await self.waiter
                else:
                    async with asyncio.timeout(wait_s):
                        await self.waiter
            except TimeoutError:
                return []
            finally:
                self.waiter = None
        taken, self.pending = self.pending, []
        return taken


class StreamHub:
    """One per process and event loop: reads each new event once when woken and fans it out."""

    def __init__(
        self,
        engine: Engine,
        fallback_s: float = FALLBACK_POLL_S,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        token_check_s: float = TOKEN_CHECK_S,
    ) -> None:
        self.engine = engine
        self.fallback_s = fallback_s
        self.clock = clock
        self.token_check_s = token_check_s
        self.subscribers: set[Subscription] = set()
        # Who gets what, so that fanning an event out costs its audience, not every client.
        self._by_party: dict[str, set[Subscription]] = {}
        self._see_all: set[Subscription] = set()
        self.last = 0
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._starting: asyncio.Lock | None = None
        self._wakeup: asyncio.Event | None = None
        # Shared by this process's connections: an event's frame per way of reading it
        # (rendered once, not once per client), and the delivered receipts already given.
        self._frames: OrderedDict[tuple[Any, ...], str] = OrderedDict()
        self._delivered: OrderedDict[tuple[int, str], None] = OrderedDict()
        _watch_commits(engine, self)

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

    def wake(self) -> None:
        """Tell the hub new events may exist (from any thread)."""
        loop, wakeup = self._loop, self._wakeup
        if loop is None or wakeup is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody to tell
            loop.call_soon_threadsafe(wakeup.set)

    async def subscribe(self, actor: Actor, token_hash: str | None = None) -> Subscription:
        """Register, then let the caller catch up from the table: an event committed before the
        registration is in the catch-up, one committed after it is pushed to the subscription
        (both, at worst: the caller skips ids it already sent)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (a test client, a restart): start over
            self._loop = loop
            self._task = None
            self._starting = asyncio.Lock()
            self._wakeup = asyncio.Event()
            self.subscribers.clear()
            self._by_party.clear()
            self._see_all.clear()
        assert self._starting is not None
        async with self._starting:
            if self._task is None or self._task.done():
                # The hub starts from the newest id read now, before the caller's catch-up.
                self.last = await asyncio.to_thread(self._latest)
                self._task = loop.create_task(self._run())
            sub = Subscription(actor, loop=loop, token_hash=token_hash)
            self.subscribers.add(sub)
            if actor.sees_all_shared:
                self._see_all.add(sub)
            else:
                self._by_party.setdefault(actor.party, set()).add(sub)
        return sub

    def end_streams(self) -> None:
        """The server stops: every connection's stream ends (its client reconnects with its
        last id to another server, or this one once started again)."""
        for sub in self.subscribers:
            sub.end()

    async def _end_lapsed(self) -> None:
        """End the streams whose token no longer authenticates (revoked, expired)."""
        hashes = {s.token_hash for s in self.subscribers if s.token_hash is not None}
        if not hashes:
            return
        try:
            lapsed = await asyncio.to_thread(self._lapsed, hashes)
        except Exception:  # checked again next time
            log.exception("checking the streams' tokens failed; retrying")
            return
        for sub in [s for s in self.subscribers if s.token_hash in lapsed]:
            sub.end()

    def _lapsed(self, hashes: set[str]) -> set[str]:
        with transaction(self.engine, write=False) as conn:
            return lapsed_tokens(conn, hashes, self.clock())

    def unsubscribe(self, sub: Subscription) -> None:
        sub.direct = None
        self.subscribers.discard(sub)
        self._see_all.discard(sub)
        self._by_party.get(sub.actor.party, set()).discard(sub)

    def _latest(self) -> int:
        with transaction(self.engine, write=False) as conn:
            return latest_id(conn)

    def _channel(self) -> str:
        with transaction(self.engine, write=False) as conn:
            return channel(conn)

    def _fetch(self, after: int) -> list[StreamEvent]:
        with transaction(self.engine, write=False) as conn:
            rows = fetch_rows(conn, _EVENTS_AFTER, {"after": after})
        return [_event(r) for r in rows]

    def _fan_out(self, events: list[StreamEvent]) -> None:
        """Give each event to the subscriptions it is pushed to: a direct one gets its group's
        events in one call, the others have them pushed and are woken once. A subscription is
        in `_see_all` or in one party's set, so none gets an event twice."""
        touched: dict[int, tuple[set[Subscription], list[StreamEvent]]] = {}
        for each in events:
            self.last = each.id
            groups = [self._see_all, *(self._by_party.get(p) for p in pushed_parties(each))]
            for group in groups:
                if group:
                    touched.setdefault(id(group), (group, []))[1].append(each)
        # What the direct writers of this fan-out made, for the next of their group to reuse.
        shared: dict[Any, Any] = {}
        for group, given in touched.values():
            for sub in group:  # nothing here runs a task: the group cannot change meanwhile
                if sub.direct is None:
                    for each in given:
                        sub.push(each)
                    sub.wake()
                    continue
                try:
                    took = sub.direct(given, shared)
                except Exception:  # one connection's failure must not end the fan-out
                    log.exception("direct stream write failed; the connection catches up")
                    took = False
                if not took:
                    sub.direct = None
                    sub.overflowed = True
                    sub.wake()

    async def _listen(self) -> None:
        """PostgreSQL: one LISTEN connection; each notification wakes the hub. Reconnects after
        a failure, and wakes the hub once connected (what was missed meanwhile is read then)."""
        assert self._wakeup is not None
        wakeup = self._wakeup
        while True:
            try:
                name = await asyncio.to_thread(self._channel)
                async with await psycopg.AsyncConnection.connect(
                    listen_url(self.engine), autocommit=True
                ) as conn:
                    await conn.execute(f'LISTEN "{name}"')
                    wakeup.set()
                    async for _ in conn.notifies():
                        wakeup.set()
            except (psycopg.Error, SQLAlchemyError):
                log.warning("stream LISTEN connection lost; retrying", exc_info=True)
            await asyncio.sleep(LISTEN_RETRY_S)

    async def _run(self) -> None:
        assert self._wakeup is not None
        wakeup = self._wakeup
        listener = None
        if self.engine.dialect.name == "postgresql":
            listener = asyncio.get_running_loop().create_task(self._listen())
        loop = asyncio.get_running_loop()
        check_at = loop.time() + self.token_check_s
        try:
            while True:
                if not self.subscribers:
                    # Cleared in the same step as the check: a later subscriber starts a new run.
                    self._task = None
                    return
                if loop.time() >= check_at:
                    check_at = loop.time() + self.token_check_s
                    await self._end_lapsed()
                wakeup.clear()  # a wake from now on means: read again
                try:
                    events = await asyncio.to_thread(self._fetch, self.last)
                except Exception:  # a database hiccup must not end the stream for everyone
                    log.exception("stream read failed; retrying")
                    events = []
                self._fan_out(events)
                if len(events) >= BATCH:
                    continue
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.fallback_s):
                        await wakeup.wait()
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    async def close(self) -> None:
        self.subscribers.clear()
        self._by_party.clear()
        self._see_all.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._task
            self._task = None
