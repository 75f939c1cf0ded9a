"""The tactical loop: once a second, the live picture against itself and against the zones.

:meth:`TacticalLoop.step` is one cycle at a given ``now`` (no clock read inside): expire stale
tracks, dead-reckon every track to ``now``, detect losses of separation between tracks of
different parties (``detect_conflicts`` in a plane fixed at the middle of the area, CPA distances
on the geodesic) and predicted entries into the ``no_entry`` and ``caution`` zones of other
parties (footprint and altitude band), let the hysteresis (``alerting.Hysteresis``) decide what to
raise, update and clear, and last write the picture's changes to ``track_states`` (in pieces).
Raising and clearing are facts of the signed record. A cycle's new alerts are one transaction,
committed first; its updates and clears another, after it. The hooks:

- ``on_alert(alert, event)``, event "raised" | "updated" | "cleared", after the commit (in the
  loop's worker thread): push it to clients, open a hotline thread when ``alert.t_in_s`` is short.
  An alert is updated at once in the cycle its ``t_in_s`` first falls under
  ``LoopConfig.imminent_s`` (default 120 s), so a threshold of that value is seen without delay;
- ``on_alert_in_tx(conn, alert, event)``, inside the transaction that stores the change: to
  write what must commit with the alert (a stream event);
- ``on_imminent_in_tx(conn, alert)``, inside the same transaction, once in an alert's life: in
  the cycle it is raised with ``t_in_s`` under ``imminent_s``, or updated as it falls under (the
  FLASH hotline thread to both parties). A restart resumes open alerts with what they were, so
  an alert already imminent is not told twice.

Besides the counted cycles every ``every_s``, the loop runs a cycle as soon as new states have
arrived, at most every ``react_s``: a new encounter is alerted within about ``react_s`` plus a
cycle instead of up to a second later. Those extra cycles look only at the tracks that
reported since the last cycle (their pairs with every track, exactly as the whole picture's
detection finds them: ``detect_conflicts_of``), and raise and update only; misses and periodic
updates are counted on the 1 Hz cycles alone (``Hysteresis.observe``), so the hysteresis keeps
its pace, and the picture is written after a counted cycle every ``picture_every_s``. The
running loop (:meth:`TacticalLoop.run`) also writes a counted cycle's routine updates and its
clears after it, a few alerts a transaction, while the early cycles go on (an update stored late
never undoes a newer one; one that fails is planned again by the next counted cycle): with
hundreds of open alerts they would otherwise hold the next new alert back.

:class:`Live` bundles what the API and the lifespan need: picture, intake rules, feed servers
(their sockets and parsing in a feed process of their own, ``feeds.process``), the loop and its
asyncio task. On PostgreSQL (several replicas) a follower's Live also hands every state it
accepts to the leader through the track inbox (``tracks.inbox``), and the leader takes them into
its picture, so that the loop checks every state whichever replica received it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine, select

from deconfliction.activities.models import ActivityOut
from deconfliction.activities.service import list_activities
from deconfliction.agreements.checks import check_picture
from deconfliction.detect.tactical import (
    TacticalMinima,
    TacticalZone,
    TrackBatch,
    detect_conflicts,
    detect_conflicts_of,
    predict_zone_entries,
    with_geodesic_dcpa,
)
from deconfliction.feeds.servers import FeedConfig, FeedCounters, FeedServers
from deconfliction.geo import outer_polygon
from deconfliction.geo.schedule import active_windows
from deconfliction.parties.models import Actor
from deconfliction.store import tables as t
from deconfliction.store.db import transaction
from deconfliction.tracks import service
from deconfliction.tracks.alerting import (
    Finding,
    Hysteresis,
    Key,
    pair_findings,
    zone_findings,
)
from deconfliction.tracks.inbox import InboxIntake, InboxReader, Outbox
from deconfliction.tracks.models import AlertOut, FeedOut
from deconfliction.tracks.picture import SYRIA_CENTRE, IntakeRules, TrackPicture, TrackState
from deconfliction.tracks.simulate import simulate_tracks
from deconfliction.zones.service import list_zones, zone_schedule, zone_volume

log = logging.getLogger(__name__)
OnAlert = Callable[[AlertOut, str], None]
OnAlertInTx = Callable[[Connection, AlertOut, str], None]
OnImminentInTx = Callable[[Connection, AlertOut], None]
WATCH_S = 0.01  # how often the loop looks whether states arrived (reading a counter)
ALERT_PIECE = 5  # deferred updates and clears a transaction (see TacticalLoop.write_alerts)
Clock = Callable[[], datetime]


# Zones are declared to every party; the loop reads them as any reader would.
ZONE_READER = Actor(officer="tactical-loop", party="_", role="observer", party_kind="observer")


@dataclass(frozen=True)
class LoopConfig:
    minima: TacticalMinima = field(default_factory=TacticalMinima)
    origin: tuple[float, float] = SYRIA_CENTRE  # (lat, lon) of the detection plane
    clear_after: int = 3  # cycles out of conflict before an alert is cleared
    update_every: int = 5  # cycles between updates of a lasting alert
    # Under this time to conflict an alert is imminent: updated at once, and told on the hotline
    # (FLASH) to both parties.
    imminent_s: float = 120.0
    zone_rules: tuple[str, ...] = ("no_entry", "caution")
    zones_every_s: float = 10.0  # how often the zones are read again
    every_s: float = 1.0
    react_s: float | None = 0.05  # an early cycle when states arrived, at most this often
    # How often the running loop writes the picture's changes to ``track_states`` (for a
    # restart): each write takes the database writer, so not every second.
    picture_every_s: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str], every_s: float = 1.0) -> LoopConfig:
        """The server's settings: DECONFLICTION_FLASH_UNDER_S (the imminent threshold, seconds)
        and DECONFLICTION_REACT_MS (0: no early cycles, only the 1 Hz ones)."""
        try:
            imminent_s = float(env.get("DECONFLICTION_FLASH_UNDER_S", cls.imminent_s))
            react_ms = float(env.get("DECONFLICTION_REACT_MS", 1000 * (cls.react_s or 0)))
        except ValueError as exc:
            raise ValueError(
                f"DECONFLICTION_FLASH_UNDER_S / DECONFLICTION_REACT_MS: {exc}"
            ) from exc
        if not (0 <= imminent_s <= 3600 and 0 <= react_ms <= 60_000):
            raise ValueError(
                "DECONFLICTION_FLASH_UNDER_S must be 0-3600, DECONFLICTION_REACT_MS 0-60000"
            )
        return cls(every_s=every_s, imminent_s=imminent_s, react_s=react_ms / 1000 or None)


@dataclass
class AlertWrites:
    """A counted cycle's routine updates and clears, left to :meth:`TacticalLoop.write_alerts`
    (the hysteresis already holds them as done; what fails is given back to it)."""

    now: datetime
    updated: list[tuple[int, Finding]]
    cleared: list[tuple[int, Finding]]

    def __bool__(self) -> bool:
        return bool(self.updated or self.cleared)


@dataclass
class StepResult:
    tracks: int
    findings: list[Finding]
    events: list[tuple[AlertOut, str]]
    flushed: int
    seconds: float
    deferred: AlertWrites | None = None  # with ``defer``: the writes left to the caller


class TacticalLoop:
    def __init__(
        self,
        engine: Engine,
        picture: TrackPicture,
        config: LoopConfig = LoopConfig(),
        *,
        on_alert: OnAlert | None = None,
        on_alert_in_tx: OnAlertInTx | None = None,
        on_imminent_in_tx: OnImminentInTx | None = None,
        persist: bool = True,
    ) -> None:
        self.engine = engine
        self.picture = picture
        self.config = config
        self.on_alert = on_alert
        self.on_alert_in_tx = on_alert_in_tx
        self.on_imminent_in_tx = on_imminent_in_tx
        self.persist = persist
        self.hysteresis = Hysteresis(config.clear_after, config.update_every, config.imminent_s)
        self._resumed = False
        self._zones: list[TacticalZone] = []
        self._owners: dict[str, str] = {}
        self._zones_read_at: datetime | None = None

    def resume(self) -> int:
        """Hold the alerts stored as open (after a restart), so they are not raised again."""
        with transaction(self.engine, write=False) as conn:
            found = service.open_alerts(conn)
        for alert_id, finding in found:
            self.hysteresis.resume(alert_id, finding)
        self._resumed = True
        return len(found)

    def zones(self, now: datetime) -> list[TacticalZone]:
        """The zones that apply at ``now`` (read again every ``zones_every_s``)."""
        due = self._zones_read_at is None or not (
            self._zones_read_at
            <= now
            < self._zones_read_at + timedelta(seconds=self.config.zones_every_s)
        )
        if due:
            with transaction(self.engine, write=False) as conn:
                found = list_zones(conn, ZONE_READER, active_at=now)
            zones: list[TacticalZone] = []
            owners: dict[str, str] = {}
            for zone in found:
                if zone.status not in ("declared", "agreed"):
                    continue
                if zone.rule not in self.config.zone_rules:
                    continue
                volume = zone_volume(zone)
                # A scheduled zone counts only if active within the look-ahead of this read.
                ahead = now + timedelta(
                    seconds=self.config.minima.lookahead_s + self.config.zones_every_s
                )
                if not active_windows(zone_schedule(zone), volume.start, volume.end, now, ahead):
                    continue
                zones.append(
                    TacticalZone(
                        str(zone.id),
                        outer_polygon(volume.footprint),
                        volume.altitude.lower_m,
                        volume.altitude.upper_m,
                    )
                )
                owners[str(zone.id)] = zone.owner
            self._zones, self._owners, self._zones_read_at = zones, owners, now
        return self._zones

    def detect(self, now: datetime, reported: set[str] | None = None) -> tuple[int, list[Finding]]:
        """What the picture holds at ``now``: the number of tracks and the findings; with
        ``reported`` (track keys), only the findings that involve those tracks: their pairs
        with every track, exactly as the whole picture's detection finds them, and their zone
        entries."""
        batch = self.picture.batch(now)
        cfg = self.config
        zones = self.zones(now)
        if reported is None:
            conflicts = detect_conflicts(batch, cfg.minima, origin=cfg.origin)
            movers = batch
        else:
            rows = np.array(
                [k for k, key in enumerate(batch.ids) if key in reported], dtype=np.int64
            )
            conflicts = detect_conflicts_of(batch, rows, cfg.minima, origin=cfg.origin)
            movers = _rows_of(batch, rows) if zones else batch
        findings = pair_findings(batch, with_geodesic_dcpa(batch, conflicts))
        if zones and len(movers):
            entries = predict_zone_entries(movers, zones, cfg.minima.lookahead_s, origin=cfg.origin)
            findings += zone_findings(movers, entries, self._owners)
        return len(batch), findings

    def step(
        self, now: datetime, counted: bool = True, write: bool = True, defer: bool = False
    ) -> StepResult:
        """One cycle at ``now``. The picture's changes are written last, after the alerts and
        their hooks, so that a slow database write never delays an alert (``write`` off: the
        caller writes them, see :meth:`run`). A cycle that is not ``counted`` (run early on new
        states) neither expires nor writes the picture, counts nothing in the hysteresis, and
        looks only at the tracks that reported since the last cycle (their pairs with every
        track, and their zone entries): the others' findings are as the last cycle left them.
        With ``defer``, a counted cycle stores its new alerts and the updates of alerts turning
        imminent, and leaves its routine updates and clears to the caller
        (``StepResult.deferred``, for :meth:`write_alerts`)."""
        started = time.perf_counter()
        if not self._resumed:
            self.resume()
        if counted:
            self.picture.expire(now)
        try:
            reported = self.picture.take_reported()
            tracks, findings, events, deferred = self._alerts(
                now, None if counted else reported, defer and counted
            )
            if counted:  # the live picture against the binding commitments
                check_picture(self.engine, self.picture.snapshot(now), now)
        finally:
            flushed = self.write_picture() if self.persist and counted and write else 0
        seconds = time.perf_counter() - started
        return StepResult(tracks, findings, events, flushed, seconds, deferred)

    def write_picture(self) -> int:
        """Write the picture's changes to ``track_states``; how many were written."""
        try:
            return service.flush_picture(self.engine, self.picture)
        except Exception:  # the picture keeps the changes for the next write
            log.exception("writing the track picture failed; will retry")
            return 0

    def _alerts(
        self, now: datetime, reported: set[str] | None = None, defer: bool = False
    ) -> tuple[int, list[Finding], list[tuple[AlertOut, str]], AlertWrites | None]:
        """Detect, plan and store one cycle's alert changes; ``reported`` (an early cycle):
        only the findings of the tracks that reported, see :meth:`detect`; ``defer``: the
        routine updates and the clears are returned, not stored."""
        tracks, findings = self.detect(now, reported)
        plan = self.hysteresis.observe(findings, counted=reported is None)
        raised: list[tuple[AlertOut, str]] = []
        if plan.raised:
            # New alerts first, in a small transaction of their own: they are what is urgent,
            # and the cycle's updates and clears (many a second with hundreds of open alerts)
            # must not delay their commit, hence their push on the stream.
            with transaction(self.engine, write=True) as conn:
                imminent = []
                for finding in plan.raised:
                    alert = service.raise_alert(conn, finding, now)
                    raised.append((alert, "raised"))
                    if finding.key in plan.imminent:
                        imminent.append(alert)
                self._in_tx(conn, raised, imminent)
            self._tell(raised)
        raised_ids = [alert.id for alert, _ in raised]
        deferred = None
        updated, cleared = plan.updated, plan.cleared
        if defer:
            # An alert turning imminent is told now (its FLASH thread); the rest can wait for
            # the next early cycles' new alerts.
            updated = [(a, f) for a, f in plan.updated if f.key in plan.imminent]
            routine = [(a, f) for a, f in plan.updated if f.key not in plan.imminent]
            deferred = AlertWrites(now, routine, plan.cleared)
            cleared = []
        changed: list[tuple[AlertOut, str]] = []
        if updated or cleared:
            try:
                with transaction(self.engine, write=True) as conn:
                    changed, imminent = self._store(conn, now, updated, cleared, plan.imminent)
                    self._in_tx(conn, changed, imminent)
            except Exception:
                # The new alerts are stored: hold them, and plan the rest again next cycle.
                self.hysteresis.apply_raised(plan, raised_ids)
                raise
            self._tell(changed)
        self.hysteresis.apply(plan, raised_ids)
        return tracks, findings, raised + changed, deferred

    @staticmethod
    def _store(
        conn: Connection,
        now: datetime,
        updated: list[tuple[int, Finding]],
        cleared: list[tuple[int, Finding]],
        imminent_keys: set[Key],
    ) -> tuple[list[tuple[AlertOut, str]], list[AlertOut]]:
        """Store updates and clears; what changed, and the updated alerts turning imminent.
        An update older than the alert's last one (written late) is left out."""
        changed: list[tuple[AlertOut, str]] = []
        imminent = []
        for alert_id, finding in updated:
            alert = service.update_alert(conn, alert_id, finding, now)
            if alert is None:
                continue
            changed.append((alert, "updated"))
            if finding.key in imminent_keys:
                imminent.append(alert)
        for alert_id, _ in cleared:
            changed.append((service.clear_alert(conn, alert_id, now), "cleared"))
        return changed, imminent

    def write_alerts(self, writes: AlertWrites) -> AlertWrites | None:
        """Store a counted cycle's deferred updates and clears, ``ALERT_PIECE`` alerts a
        transaction with a pause between them (a new alert waits for the database writer at
        most one piece); returns what could not be stored (None: everything was), for
        :meth:`give_back`."""
        items = [(a, f, False) for a, f in writes.updated] + [
            (a, f, True) for a, f in writes.cleared
        ]
        for start in range(0, len(items), ALERT_PIECE):
            if start:
                time.sleep(service.PIECE_PAUSE_S)
            piece = items[start : start + ALERT_PIECE]
            try:
                with transaction(self.engine, write=True) as conn:
                    changed, _ = self._store(
                        conn,
                        writes.now,
                        [(a, f) for a, f, clear in piece if not clear],
                        [(a, f) for a, f, clear in piece if clear],
                        set(),
                    )
                    self._in_tx(conn, changed, [])
            except Exception:
                log.exception("storing the alerts' updates failed; planned again")
                rest = items[start:]
                return AlertWrites(
                    writes.now,
                    [(a, f) for a, f, clear in rest if not clear],
                    [(a, f) for a, f, clear in rest if clear],
                )
            self._tell(changed)
        return None

    def give_back(self, unwritten: AlertWrites) -> None:
        """Deferred writes that failed: the next counted cycle plans them again."""
        self.hysteresis.give_back(unwritten.updated, unwritten.cleared)

    def _in_tx(
        self, conn: Connection, events: list[tuple[AlertOut, str]], imminent: list[AlertOut]
    ) -> None:
        if self.on_alert_in_tx is not None:
            for alert, event in events:
                self.on_alert_in_tx(conn, alert, event)
        if self.on_imminent_in_tx is not None:
            for alert in imminent:
                self.on_imminent_in_tx(conn, alert)

    def _tell(self, events: list[tuple[AlertOut, str]]) -> None:
        if self.on_alert is not None:
            for alert, event in events:
                try:
                    self.on_alert(alert, event)
                except Exception:
                    log.exception("on_alert hook failed for alert %s (%s)", alert.id, event)

    async def run(self, clock: Clock) -> None:
        """Step every ``config.every_s`` seconds until cancelled, and in between as soon as the
        picture received states, at most every ``config.react_s`` and never sooner after a
        cycle than that cycle took, or ``react_s`` if less (each step in a worker thread; the
        feed process's batches are taken in between); a failed step is logged and the next
        one runs. The picture is written after a counted cycle every ``picture_every_s`` by a
        task of its own, in pieces, so that early cycles go on while it is written and their
        alerts wait for the database writer at most one piece."""
        every, react = self.config.every_s, self.config.react_s
        due = time.monotonic()  # the next counted cycle
        early = due  # the earliest next early cycle
        seen = -1  # the picture's version the last cycle read
        writing: asyncio.Task[int] | None = None
        written = time.monotonic()  # the last picture write (the picture was just loaded)
        # The last counted cycle's routine updates and clears, written while early cycles go on.
        storing: asyncio.Task[AlertWrites | None] | None = None
        try:
            while True:
                began = time.monotonic()
                counted = began >= due
                version = self.picture.version
                if counted or (react is not None and version != seen and began >= early):
                    seen = version
                    if counted and storing is not None:
                        unwritten = await storing  # before the hysteresis plans them again
                        storing = None
                        if unwritten is not None:
                            self.give_back(unwritten)
                    try:
                        result = await asyncio.to_thread(self.step, clock(), counted, False, True)
                        if result.deferred:
                            storing = asyncio.create_task(
                                asyncio.to_thread(self.write_alerts, result.deferred)
                            )
                    except Exception:
                        log.exception("tactical loop step failed")
                    ended = time.monotonic()
                    if counted:
                        due = max(due + every, began)  # late: no burst of cycles to catch up
                        if (
                            self.persist
                            and ended - written >= self.config.picture_every_s
                            and (writing is None or writing.done())
                        ):
                            written = ended
                            writing = asyncio.create_task(asyncio.to_thread(self.write_picture))
                    if react is not None:
                        # A pause after the cycle as long as it took, up to ``react``: taking
                        # the feed process's batches and the stream keep their share of the
                        # interpreter, and a long cycle (a big transaction of updates) does not
                        # hold the next one back for long.
                        early = max(began + react, ended + min(ended - began, react))
                now = time.monotonic()
                pause = due - now
                if react is not None:
                    # Look at the picture again at the earliest next early cycle, or soon.
                    pause = min(pause, max(early - now, WATCH_S))
                await asyncio.sleep(max(0.0, pause))
        finally:
            for task in (storing, writing):
                if task is not None:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task


def _rows_of(batch: TrackBatch, rows: NDArray[np.int64]) -> TrackBatch:
    """The tracks of ``batch`` at ``rows``, as a batch of their own."""
    picked = rows.tolist()
    return TrackBatch(
        [batch.ids[k] for k in picked],
        [batch.party[k] for k in picked],
        batch.lat[rows],
        batch.lon[rows],
        batch.alt_m[rows],
        batch.gs_mps[rows],
        batch.course_deg[rows],
        batch.vs_mps[rows],
    )


class Live:
    """The live picture's parts, for the API routes (``app.state.live``) and the lifespan."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        feeds: list[FeedConfig] | None = None,
        *,
        config: LoopConfig = LoopConfig(),
        rules: IntakeRules | None = None,
        on_alert: OnAlert | None = None,
        on_alert_in_tx: OnAlertInTx | None = None,
        on_imminent_in_tx: OnImminentInTx | None = None,
        run_loop: bool = True,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.rules = rules or IntakeRules(origin=config.origin)
        self.picture = TrackPicture(self.rules.max_tracks)
        self.feeds = FeedServers(list(feeds or []), self.picture, self.rules, clock)
        # Several replicas share only a PostgreSQL database; SQLite is one server.
        self.outbox = Outbox(engine) if engine.dialect.name == "postgresql" else None
        self.intake: InboxIntake = InboxIntake(self.feeds.intake, self.outbox)
        self.feeds.intake = self.intake  # the feeds hand their states to the same intake
        self.inbox = InboxReader(engine, self._relayed) if self.outbox is not None else None
        self.loop = TacticalLoop(
            engine,
            self.picture,
            config,
            on_alert=on_alert,
            on_alert_in_tx=on_alert_in_tx,
            on_imminent_in_tx=on_imminent_in_tx,
        )
        self.run_loop = run_loop
        self.leader = True  # False while another replica holds the leader lease (ops.lease)
        self._api: dict[str, FeedCounters] = {}
        self._relay: dict[str, FeedCounters] = {}
        self._task: asyncio.Task[None] | None = None
        self._reading: asyncio.Task[None] | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._simulation: asyncio.Task[None] | None = None
        self._simulated = False
        self.sim_counters = FeedCounters("sim", "sim", SIM_PARTY)

    def api_counters(self, party: str) -> FeedCounters:
        found = self._api.get(party)
        if found is None:
            found = self._api.setdefault(party, FeedCounters(f"api:{party}", "api", party))
            found.listening = True
        return found

    def relay_counters(self, party: str) -> FeedCounters:
        """The leader's counters of the states of ``party`` taken from the inbox."""
        found = self._relay.get(party)
        if found is None:
            found = self._relay.setdefault(party, FeedCounters(f"relay:{party}", "relay", party))
            found.listening = True
        return found

    def _relayed(self, state: TrackState) -> None:
        """A state a follower accepted: checked and kept here as a local one (not handed on)."""
        counters = self.relay_counters(state.party)
        counters.seen(self.clock())
        self.intake.keep(state, counters)

    def feed_status(self) -> list[FeedOut]:
        found = [
            *self.feeds.status(),
            *(c.out() for _, c in sorted(self._api.items())),
            *(c.out() for _, c in sorted(self._relay.items())),
        ]
        if self._simulated:
            found.append(self.sim_counters.out())
        return found

    def check_parties(self) -> None:
        """Every feed is bound to a participant party of the area."""
        with transaction(self.engine, write=False) as conn:
            kinds = {r.code: r.kind for r in conn.execute(select(t.parties))}
        for feed in self.feeds:
            party = feed.config.party
            if kinds.get(party) != "participant":
                raise ValueError(
                    f"feed {feed.counters.name}: {party} is not a participant party of the area"
                )

    async def start(self) -> None:
        """Check the feeds' parties, put the stored picture back, start the feed servers and
        (unless ``run_loop`` is off) the 1 Hz loop."""
        self.check_parties()
        await asyncio.to_thread(service.load_picture, self.engine, self.picture, self.clock())
        await self.feeds.start()
        if self.outbox is not None:
            self._flushing = asyncio.create_task(self.outbox.run())
        self.intake.forwarding = not self.leader
        if self.leader:
            self._read_inbox()
        if self.run_loop and self.leader:
            self._task = asyncio.create_task(self.loop.run(self.clock))

    def _read_inbox(self) -> None:
        if self.inbox is not None and self._reading is None:
            self._reading = asyncio.create_task(self.inbox.run())

    def start_simulation(
        self, start: datetime, shift: timedelta = timedelta(0), every_s: float = 1.0
    ) -> None:
        """Feed the picture with the simulated tracks of the stored activities (the demo), see
        :func:`run_simulation`; stopped by :meth:`stop`."""
        self.sim_counters.listening = self._simulated = True
        self._simulation = asyncio.create_task(
            run_simulation(self, start, shift=shift, every_s=every_s)
        )

    async def lead(self) -> None:
        """This replica took the leader lease: run the tactical loop here."""
        self.leader = True
        self.intake.forwarding = False
        self._read_inbox()
        if self.run_loop and self._task is None:
            self._task = asyncio.create_task(self.loop.run(self.clock))

    async def follow(self) -> None:
        """Another replica leads: stop the tactical loop here (feeds and picture go on, and
        the states accepted here go to the leader through the inbox)."""
        self.leader = False
        self.intake.forwarding = True
        for task in (self._task, self._reading):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._reading = None

    async def stop(self) -> None:
        for task in (self._simulation, self._task, self._reading, self._flushing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._simulation = self._reading = self._flushing = None
        self.sim_counters.listening = False
        await self.feeds.stop()
        if self.outbox is not None:  # what the feeds accepted last still reaches the leader
            await asyncio.to_thread(self.outbox.flush)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(service.flush_picture, self.engine, self.picture)

    async def __aenter__(self) -> Live:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()


SIM_PARTY = "_sim"  # the simulation's counters: each simulated state is its activity's party's


def stored_activities(engine: Engine, now: datetime) -> list[ActivityOut]:
    """Every notified activity (what the mediator reads), for the simulation."""
    reader = Actor(officer="demo-sim", party=SIM_PARTY, role="mediator", party_kind="mediator")
    with transaction(engine, write=False) as conn:
        return list_activities(conn, reader, now)


async def run_simulation(
    live: Live,
    start: datetime,
    *,
    shift: timedelta = timedelta(0),
    every_s: float = 1.0,
    reload_every_s: float = 60.0,
) -> None:
    """Every ``every_s``: the stored activities' tracks where they are at ``clock() + shift``
    (:func:`~deconfliction.tracks.simulate.simulate_tracks`), stamped with ``clock()``, into the
    picture through the intake rules. ``shift`` replays another hour of the day now: with the
    Syria demo, ``shift = day_start + 8 h 10 min - now`` shows the IL patrol crossing the TR UAV
    near T4 (an alert within about two minutes). Activities are read again every
    ``reload_every_s``."""
    activities: list[ActivityOut] = []
    loaded_at: float | None = None
    while True:
        began = time.monotonic()
        try:
            real = live.clock()
            if loaded_at is None or began - loaded_at >= reload_every_s:
                activities = await asyncio.to_thread(stored_activities, live.engine, real)
                loaded_at = began
            for state in simulate_tracks(activities, start, real + shift, stamp=real):
                live.sim_counters.seen(real)
                live.intake.offer(state, live.sim_counters)
        except Exception:
            log.exception("simulation step failed")
        await asyncio.sleep(max(0.0, every_s - (time.monotonic() - began)))
