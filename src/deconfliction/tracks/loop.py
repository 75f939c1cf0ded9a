"""The tactical loop: once a second, the live picture against itself and against the zones.

:meth:`TacticalLoop.step` is one cycle at a given ``now`` (no clock read inside): expire stale
tracks, dead-reckon every track to ``now``, detect losses of separation between tracks of
different parties (``detect_conflicts`` in a plane fixed at the middle of the area, CPA distances
on the geodesic) and predicted entries into the ``no_entry`` and ``caution`` zones of other
parties (footprint and altitude band), let the hysteresis (``alerting.Hysteresis``) decide what to
raise, update and clear, and last write the picture's changes to ``track_states`` (one batch).
Raising and clearing are facts of the signed record; all the cycle's alert changes are one
transaction. The hooks:

- ``on_alert(alert, event)``, event "raised" | "updated" | "cleared", after the commit (in the
  loop's worker thread): push it to clients, open a hotline thread when ``alert.t_in_s`` is short.
  An alert is updated at once in the cycle its ``t_in_s`` first falls under
  ``LoopConfig.imminent_s`` (default 120 s), so a threshold of that value is seen without delay;
- ``on_alert_in_tx(conn, alert, event)``, inside the cycle's transaction: to write what must
  commit with the alert (a stream event, a hotline message).

:class:`Live` bundles what the API and the lifespan need: picture, intake rules, feed servers, the
loop and its asyncio task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select

from deconfliction.activities.models import ActivityOut
from deconfliction.activities.service import list_activities
from deconfliction.detect.tactical import (
    TacticalMinima,
    TacticalZone,
    detect_conflicts,
    predict_zone_entries,
    with_geodesic_dcpa,
)
from deconfliction.feeds.servers import FeedConfig, FeedCounters, FeedServers, Intake
from deconfliction.geo import outer_polygon
from deconfliction.parties.models import Actor
from deconfliction.store import tables as t
from deconfliction.store.db import transaction
from deconfliction.tracks import service
from deconfliction.tracks.alerting import Finding, Hysteresis, pair_findings, zone_findings
from deconfliction.tracks.models import AlertOut, FeedOut
from deconfliction.tracks.picture import SYRIA_CENTRE, IntakeRules, TrackPicture, batch_at
from deconfliction.tracks.simulate import simulate_tracks
from deconfliction.zones.service import list_zones, zone_volume

log = logging.getLogger(__name__)
OnAlert = Callable[[AlertOut, str], None]
OnAlertInTx = Callable[[Connection, AlertOut, str], None]
Clock = Callable[[], datetime]


# Zones are declared to every party; the loop reads them as any reader would.
ZONE_READER = Actor(officer="tactical-loop", party="_", role="observer", party_kind="observer")


@dataclass(frozen=True)
class LoopConfig:
    minima: TacticalMinima = field(default_factory=TacticalMinima)
    origin: tuple[float, float] = SYRIA_CENTRE  # (lat, lon) of the detection plane
    clear_after: int = 3  # cycles out of conflict before an alert is cleared
    update_every: int = 5  # cycles between updates of a lasting alert
    imminent_s: float = 120.0  # an alert is updated at once when t_in_s first falls below
    zone_rules: tuple[str, ...] = ("no_entry", "caution")
    zones_every_s: float = 10.0  # how often the zones are read again
    every_s: float = 1.0


@dataclass
class StepResult:
    tracks: int
    findings: list[Finding]
    events: list[tuple[AlertOut, str]]
    flushed: int
    seconds: float


class TacticalLoop:
    def __init__(
        self,
        engine: Engine,
        picture: TrackPicture,
        config: LoopConfig = LoopConfig(),
        *,
        on_alert: OnAlert | None = None,
        on_alert_in_tx: OnAlertInTx | None = None,
        persist: bool = True,
    ) -> None:
        self.engine = engine
        self.picture = picture
        self.config = config
        self.on_alert = on_alert
        self.on_alert_in_tx = on_alert_in_tx
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

    def detect(self, now: datetime) -> tuple[int, list[Finding]]:
        """What the picture holds at ``now``: the number of tracks and the findings."""
        states = self.picture.snapshot(now)
        batch = batch_at(states, now)
        cfg = self.config
        conflicts = detect_conflicts(batch, cfg.minima, origin=cfg.origin)
        findings = pair_findings(batch, with_geodesic_dcpa(batch, conflicts))
        zones = self.zones(now)
        if zones and len(batch):
            entries = predict_zone_entries(batch, zones, cfg.minima.lookahead_s, origin=cfg.origin)
            findings += zone_findings(batch, entries, self._owners)
        return len(batch), findings

    def step(self, now: datetime) -> StepResult:
        """One cycle at ``now``. The picture's changes are written last, after the alerts and
        their hooks, so that a slow database write never delays an alert."""
        started = time.perf_counter()
        if not self._resumed:
            self.resume()
        self.picture.expire(now)
        try:
            tracks, findings, events = self._alerts(now)
        finally:
            flushed = 0
            if self.persist:
                try:
                    flushed = service.flush_picture(self.engine, self.picture)
                except Exception:  # the picture keeps the changes for the next cycle
                    log.exception("writing the track picture failed; will retry")
        return StepResult(tracks, findings, events, flushed, time.perf_counter() - started)

    def _alerts(self, now: datetime) -> tuple[int, list[Finding], list[tuple[AlertOut, str]]]:
        tracks, findings = self.detect(now)
        plan = self.hysteresis.observe(findings)
        events: list[tuple[AlertOut, str]] = []
        raised_ids: list[int] = []
        if plan:
            with transaction(self.engine, write=True) as conn:
                for finding in plan.raised:
                    alert = service.raise_alert(conn, finding, now)
                    raised_ids.append(alert.id)
                    events.append((alert, "raised"))
                for alert_id, finding in plan.updated:
                    events.append((service.update_alert(conn, alert_id, finding, now), "updated"))
                for alert_id, _ in plan.cleared:
                    events.append((service.clear_alert(conn, alert_id, now), "cleared"))
                if self.on_alert_in_tx is not None:
                    for alert, event in events:
                        self.on_alert_in_tx(conn, alert, event)
        self.hysteresis.apply(plan, raised_ids)
        if self.on_alert is not None:
            for alert, event in events:
                try:
                    self.on_alert(alert, event)
                except Exception:
                    log.exception("on_alert hook failed for alert %s (%s)", alert.id, event)
        return tracks, findings, events

    async def run(self, clock: Clock) -> None:
        """Step every ``config.every_s`` seconds until cancelled (each step in a worker
        thread); a failed step is logged and the next one runs."""
        every = self.config.every_s
        while True:
            began = time.monotonic()
            try:
                await asyncio.to_thread(self.step, clock())
            except Exception:
                log.exception("tactical loop step failed")
            await asyncio.sleep(max(0.0, every - (time.monotonic() - began)))


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
        run_loop: bool = True,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.rules = rules or IntakeRules(origin=config.origin)
        self.picture = TrackPicture(self.rules.max_tracks)
        self.feeds = FeedServers(list(feeds or []), self.picture, self.rules, clock)
        self.intake: Intake = self.feeds.intake
        self.loop = TacticalLoop(
            engine, self.picture, config, on_alert=on_alert, on_alert_in_tx=on_alert_in_tx
        )
        self.run_loop = run_loop
        self._api: dict[str, FeedCounters] = {}
        self._task: asyncio.Task[None] | None = None
        self._simulation: asyncio.Task[None] | None = None
        self._simulated = False
        self.sim_counters = FeedCounters("sim", "sim", SIM_PARTY)

    def api_counters(self, party: str) -> FeedCounters:
        found = self._api.get(party)
        if found is None:
            found = self._api.setdefault(party, FeedCounters(f"api:{party}", "api", party))
            found.listening = True
        return found

    def feed_status(self) -> list[FeedOut]:
        found = [*self.feeds.status(), *(c.out() for _, c in sorted(self._api.items()))]
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
        if self.run_loop:
            self._task = asyncio.create_task(self.loop.run(self.clock))

    def start_simulation(
        self, start: datetime, shift: timedelta = timedelta(0), every_s: float = 1.0
    ) -> None:
        """Feed the picture with the simulated tracks of the stored activities (the demo), see
        :func:`run_simulation`; stopped by :meth:`stop`."""
        self.sim_counters.listening = self._simulated = True
        self._simulation = asyncio.create_task(
            run_simulation(self, start, shift=shift, every_s=every_s)
        )

    async def stop(self) -> None:
        for task in (self._simulation, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._simulation = None
        self.sim_counters.listening = False
        await self.feeds.stop()
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
