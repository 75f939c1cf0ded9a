"""The track inbox: states a follower replica received, handed to the leader's tactical loop.

With several replicas on PostgreSQL the tactical loop runs only on the leader (``ops.lease``),
but a load balancer sends posts and feeds to any replica. A follower keeps each accepted state
in its own picture (its readers see it) and hands it on through the database:

- :class:`Outbox` (follower): accepted states wait in memory (at most ``MAX_PENDING``) and are
  written to ``track_inbox`` every ``FLUSH_S``, at most ``BATCH`` rows a transaction, with a
  ``pg_notify`` on the schema's inbox channel that is delivered when (and only if) it commits.
  A state that cannot be written (database unreachable, or the backlog full) is counted as
  dropped by its feed's counters, with the reason;
- :class:`InboxReader` (leader): LISTENs on the channel, and polls every ``POLL_S`` in case a
  notification was missed; each wake takes the rows (``take``: deleted and returned in one
  statement, so two replicas during a handover never both take a row) and gives each state to
  the leader's intake, which checks it as a local state. A new leader first takes what was
  left; states older than their stale time are dropped by the intake rules.

The party of a row is the one the follower's intake gave the state: the feed's binding or the
poster's credentials; nothing a client sends can set it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence

import psycopg
from sqlalchemy import Connection, Engine, delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from deconfliction.feeds.servers import FeedCounters, Intake
from deconfliction.store import tables as t
from deconfliction.store.db import transaction
from deconfliction.stream.service import listen_url
from deconfliction.tracks.picture import TrackState

log = logging.getLogger(__name__)
CHANNEL = "deconfliction_track_inbox"
FLUSH_S = 0.1  # how often a follower writes its accepted states
BATCH = 1000  # rows a transaction, written or taken
MAX_PENDING = 20_000  # states a follower holds while the database is slow; more are dropped
POLL_S = 1.0  # the leader's read when no notification came
LISTEN_RETRY_S = 1.0
UNREACHABLE = "leader_unreachable"  # the state could not be written to the inbox
BACKLOG_FULL = "inbox_backlog_full"  # MAX_PENDING states already wait

_channels: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def channel(conn: Connection) -> str:
    """The inbox's NOTIFY channel in the schema ``conn`` works in (channels are per database:
    two deployments in two schemas of one database must not wake each other)."""
    name = _channels.get(conn.engine)
    if name is None:
        schema = str(conn.execute(select(func.current_schema())).scalar_one())
        digest = hashlib.sha256(schema.encode()).hexdigest()[:16]
        name = _channels[conn.engine] = f"{CHANNEL}_{digest}"
    return name


def put(conn: Connection, states: Sequence[TrackState]) -> None:
    """Write ``states`` to the inbox (in the caller's transaction) and wake the leader."""
    if not states:
        return
    conn.execute(
        insert(t.track_inbox),
        [
            {
                "party": s.party,
                "track_id": s.id,
                "source": s.source,
                "callsign": s.callsign,
                "type": s.type,
                "lat": s.lat,
                "lon": s.lon,
                "alt_m": s.alt_m,
                "gs_mps": s.gs_mps,
                "course_deg": s.course_deg,
                "vs_mps": s.vs_mps,
                "time": s.time,
                "stale_at": s.stale_at,
            }
            for s in states
        ],
    )
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_notify(channel(conn), "")))


def take(conn: Connection, limit: int = BATCH) -> list[TrackState]:
    """Delete and return the oldest ``limit`` rows of the inbox, in the order written."""
    inbox = t.track_inbox
    oldest = select(inbox.c.id).order_by(inbox.c.id).limit(limit)
    rows = conn.execute(delete(inbox).where(inbox.c.id.in_(oldest)).returning(inbox)).all()
    return [
        TrackState(
            party=r.party,
            id=r.track_id,
            lat=r.lat,
            lon=r.lon,
            alt_m=r.alt_m,
            gs_mps=r.gs_mps,
            course_deg=r.course_deg,
            vs_mps=r.vs_mps,
            time=r.time,
            stale_at=r.stale_at,
            source=r.source,
            callsign=r.callsign,
            type=r.type,
        )
        for r in sorted(rows, key=lambda r: int(r.id))
    ]


class Outbox:
    """A follower's accepted states on their way to the inbox (thread-safe: the API's worker
    threads and the feeds' event loop offer)."""

    def __init__(self, engine: Engine, max_pending: int = MAX_PENDING) -> None:
        self.engine = engine
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self._pending: deque[tuple[TrackState, FeedCounters]] = deque()

    def offer(self, state: TrackState, counters: FeedCounters) -> None:
        with self._lock:
            if len(self._pending) < self.max_pending:
                self._pending.append((state, counters))
                return
        counters.drop(BACKLOG_FULL)

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def flush(self) -> int:
        """Write what waits, ``BATCH`` states a transaction; how many were written. A batch
        that fails is counted as dropped (``UNREACHABLE``) and the rest wait for the next
        flush."""
        written = 0
        while True:
            with self._lock:
                batch = [self._pending.popleft() for _ in range(min(BATCH, len(self._pending)))]
            if not batch:
                return written
            try:
                with transaction(self.engine, write=True) as conn:
                    put(conn, [state for state, _ in batch])
            except SQLAlchemyError:
                log.warning("track inbox write failed: %d states dropped", len(batch))
                for _, counters in batch:
                    counters.drop(UNREACHABLE)
                return written
            written += len(batch)

    async def run(self) -> None:
        """Flush every ``FLUSH_S`` until cancelled (each flush in a worker thread)."""
        while True:
            await asyncio.sleep(FLUSH_S)
            if self.pending():
                await asyncio.to_thread(self.flush)


class InboxIntake(Intake):
    """The intake of a replica: a state kept here is also handed to the leader through
    ``outbox`` while ``forwarding`` says this replica follows."""

    def __init__(self, intake: Intake, outbox: Outbox | None) -> None:
        super().__init__(intake.picture, intake.rules, intake.clock)
        self.outbox = outbox
        self.forwarding = False

    def offer(self, state: TrackState, counters: FeedCounters) -> str | None:
        reason = self.keep(state, counters)
        if reason is None and self.forwarding and self.outbox is not None:
            self.outbox.offer(state, counters)
        return reason

    def keep(self, state: TrackState, counters: FeedCounters) -> str | None:
        """Check ``state`` and keep it here only (a state taken from the inbox)."""
        return super().offer(state, counters)


class InboxReader:
    """The leader's side: takes the inbox's rows as they come and gives each state to
    ``deliver`` (in the event loop)."""

    def __init__(self, engine: Engine, deliver: Callable[[TrackState], object]) -> None:
        self.engine = engine
        self.deliver = deliver
        self.taken = 0
        self.wakeup: asyncio.Event | None = None  # while run() runs: set, it reads again

    def _take(self) -> list[TrackState]:
        with transaction(self.engine, write=True) as conn:
            return take(conn)

    def _channel(self) -> str:
        with transaction(self.engine, write=False) as conn:
            return channel(conn)

    async def drain(self) -> int:
        """Take every row there is now; how many states were delivered."""
        delivered = 0
        while True:
            states = await asyncio.to_thread(self._take)
            for state in states:
                self.deliver(state)
            delivered += len(states)
            self.taken += len(states)
            if len(states) < BATCH:
                return delivered

    async def _listen(self, wakeup: asyncio.Event) -> None:
        while True:
            try:
                name = await asyncio.to_thread(self._channel)
                async with await psycopg.AsyncConnection.connect(
                    listen_url(self.engine), autocommit=True
                ) as conn:
                    await conn.execute(f'LISTEN "{name}"')
                    wakeup.set()  # what came while not listening is read now
                    async for _ in conn.notifies():
                        wakeup.set()
            except (psycopg.Error, SQLAlchemyError):
                log.warning("track inbox LISTEN connection lost; retrying", exc_info=True)
            await asyncio.sleep(LISTEN_RETRY_S)

    async def run(self) -> None:
        """Drain at once (what a former leader left), then on every notification and every
        ``POLL_S``, until cancelled."""
        self.wakeup = wakeup = asyncio.Event()
        listener = asyncio.create_task(self._listen(wakeup))
        try:
            while True:
                wakeup.clear()
                try:
                    await self.drain()
                except SQLAlchemyError:
                    log.warning("track inbox read failed; retrying", exc_info=True)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_S):
                        await wakeup.wait()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
