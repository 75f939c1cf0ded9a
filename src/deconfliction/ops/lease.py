"""The leader lease: one row per singleton job (holder, expiry), so that of several replicas on
one database exactly one runs the hotline scheduler, the checkpoint signer and the tactical loop.

A replica takes the lease with one conditional UPDATE (``WHERE holder = me OR expires_at <=
now``) or, when no row exists yet, an INSERT that the primary key lets only one replica win;
it renews every third of the time to live. A leader that dies stops renewing, and another
replica takes over once the expiry passes: within ``ttl_s + ttl_s / 3`` of the last renewal.
A leader that cannot renew (database gone, lease taken) stops its jobs at once.

The lease decides who does the work; it is not what makes the work happen once. Each hotline
timer is still claimed by its own conditional UPDATE and each checkpoint size is unique, so a
leader that pauses past its expiry and wakes next to a new one fires nothing twice. Expiry is
read from each replica's wall clock: clocks must agree to well within ``ttl_s`` (NTP).

The SQL is plain UPDATE / INSERT / SELECT on a primary key, the same on SQLite, PostgreSQL and
CockroachDB (which runs every transaction SERIALIZABLE: a losing renewal there is a retryable
error, handled here like any failed renewal).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, case, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from deconfliction.http import utc_now
from deconfliction.store import tables as t
from deconfliction.store.db import transaction

LEADER = "leader"  # the lease of the background jobs
TTL_S = 10.0  # default time to live; DECONFLICTION_LEASE_TTL_S overrides it
log = logging.getLogger(__name__)


def holder_id() -> str:
    """A name for this replica: host, process and a random part (a restarted process is new)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def acquire(engine: Engine, holder: str, now: datetime, ttl_s: float, name: str = LEADER) -> bool:
    """Take or renew the lease ``name`` for ``holder`` until ``now + ttl_s``; whether it holds."""
    lease = t.leader_leases
    expires = now + timedelta(seconds=ttl_s)
    try:
        with transaction(engine, write=True) as conn:
            taken = conn.execute(
                update(lease)
                .where(
                    lease.c.name == name,
                    (lease.c.holder == holder) | (lease.c.expires_at <= now),
                )
                .values(
                    holder=holder,
                    expires_at=expires,
                    acquired_at=case((lease.c.holder == holder, lease.c.acquired_at), else_=now),
                )
            )
            if taken.rowcount == 1:
                return True
            if conn.execute(select(lease.c.name).where(lease.c.name == name)).first():
                return False
            conn.execute(
                insert(lease).values(name=name, holder=holder, expires_at=expires, acquired_at=now)
            )
            return True
    except IntegrityError:
        return False  # another replica inserted the first row at the same moment


def release(engine: Engine, holder: str, now: datetime, name: str = LEADER) -> None:
    """Give the lease up now (a clean shutdown), so another replica need not wait for expiry."""
    lease = t.leader_leases
    with transaction(engine, write=True) as conn:
        conn.execute(
            update(lease)
            .where(lease.c.name == name, lease.c.holder == holder)
            .values(expires_at=now)
        )


def current_holder(engine: Engine, now: datetime, name: str = LEADER) -> str | None:
    """Who holds the lease at ``now``, if anyone."""
    lease = t.leader_leases
    with transaction(engine, write=False) as conn:
        row = conn.execute(
            select(lease.c.holder).where(lease.c.name == name, lease.c.expires_at > now)
        ).first()
    return None if row is None else str(row.holder)


class Leadership:
    """Runs ``on_lead`` when this replica gains the lease and ``on_follow`` when it loses it.

    ``start()`` tries once before returning, so a single server leads from its first request;
    then a task renews every ``ttl_s / 3``. ``stop()`` ends the leader jobs and releases.
    """

    def __init__(
        self,
        engine: Engine,
        on_lead: Callable[[], Awaitable[None]],
        on_follow: Callable[[], Awaitable[None]],
        *,
        ttl_s: float | None = None,
        holder: str | None = None,
        now: Callable[[], datetime] = utc_now,
        name: str = LEADER,
    ) -> None:
        self.engine, self.on_lead, self.on_follow = engine, on_lead, on_follow
        if ttl_s is None:
            ttl_s = float(os.environ.get("DECONFLICTION_LEASE_TTL_S", TTL_S))
        self.ttl_s, self.now, self.name = ttl_s, now, name
        self.holder = holder or holder_id()
        self.leading = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._step()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.leading:
            self.leading = False
            await self.on_follow()
            try:
                await asyncio.to_thread(release, self.engine, self.holder, self.now(), self.name)
            except SQLAlchemyError:
                log.exception("could not release the leader lease; it expires by itself")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                await self._step()
            except Exception:
                # Renewing must outlive any one failure: a dead renewal loop would leave this
                # replica's jobs running (or stopped) for ever, whatever the lease says.
                log.exception("leader lease %s: step failed; trying again", self.name)

    async def _step(self) -> None:
        try:
            held = await asyncio.to_thread(
                acquire, self.engine, self.holder, self.now(), self.ttl_s, self.name
            )
        except SQLAlchemyError:
            log.exception("leader lease renewal failed; stepping down")
            held = False
        if held and not self.leading:
            log.info("leader lease %s taken by %s", self.name, self.holder)
            self.leading = True
            try:
                await self.on_lead()
            except Exception:
                # Half the jobs started is worse than none: stop them, give the lease up (a
                # healthy replica may take it) and start afresh at the next renewal.
                log.exception("leader lease %s: starting the jobs failed; stepping down", self.name)
                self.leading = False
                try:
                    await self.on_follow()
                finally:
                    await asyncio.to_thread(
                        release, self.engine, self.holder, self.now(), self.name
                    )
        elif not held and self.leading:
            log.warning("leader lease %s lost by %s", self.name, self.holder)
            self.leading = False
            await self.on_follow()
