"""The hotline's timers: escalations past acknowledgement deadlines and periodic comms checks.

Timers are rows (`hotline_recipients.next_escalation_at`, `hotline_channels.next_comms_check_at`),
so they survive a restart: a new process's first pass does what fell due while nothing ran. Each
timer is claimed by a conditional UPDATE on the value that was read (`... WHERE
next_escalation_at = :old`) in the transaction that records what it did, so it fires once however
many schedulers (threads, processes, servers) run; a claim that loses does nothing.

`run_due(engine, now)` is one pass; `loop` runs passes forever in an asyncio task (start it in the
app's lifespan); `SchedulerThread` does the same in a thread, for a process without an event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from deconfliction.hotline import service
from deconfliction.store.db import transaction

EVERY_S = 1.0
BATCH = 100
log = logging.getLogger(__name__)


def run_due(engine: Engine, now: datetime) -> int:
    """One pass: make missing channels, send due comms checks, fire due escalations (each in a
    transaction of its own). Returns how many timers this pass fired."""
    with transaction(engine, write=False) as conn:
        missing = service.missing_channels(conn)
    if missing:
        with transaction(engine, write=True) as conn:
            service.ensure_channels(conn, now)
    fired = 0
    while True:
        with transaction(engine, write=False) as conn:
            checks = service.due_comms_checks(conn, now, BATCH)
        for pair, due_at in checks:
            with transaction(engine, write=True) as conn:
                fired += service.send_comms_check(conn, pair, due_at, now)
        if len(checks) < BATCH:
            break
    seen: set[tuple[int, str, datetime]] = set()
    while True:
        with transaction(engine, write=False) as conn:
            due = service.due_escalations(conn, now, BATCH)
        fresh = [d for d in due if (d.message_id, d.party, d.at) not in seen]
        for item in fresh:
            seen.add((item.message_id, item.party, item.at))
            with transaction(engine, write=True) as conn:
                fired += service.escalate(conn, item, now)
        if len(due) < BATCH or not fresh:
            break
    return fired


async def loop(engine: Engine, clock: Callable[[], datetime], every_s: float = EVERY_S) -> None:
    """Run a pass every `every_s` seconds until cancelled; a failed pass is logged and retried."""
    while True:
        try:
            await asyncio.to_thread(run_due, engine, clock())
        except Exception:
            log.exception("hotline scheduler pass failed; retrying")
        await asyncio.sleep(every_s)


class SchedulerThread:
    """The scheduler in a daemon thread: `start()`, then `stop()` (waits for the pass to end)."""

    def __init__(
        self, engine: Engine, clock: Callable[[], datetime], every_s: float = EVERY_S
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hotline-scheduler", daemon=True)

    def start(self) -> SchedulerThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                run_due(self.engine, self.clock())
            except Exception:
                log.exception("hotline scheduler pass failed; retrying")
            self._stop.wait(self.every_s)
