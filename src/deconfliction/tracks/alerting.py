"""From engine results to alerts (pure: no I/O, no clock).

:func:`pair_findings` and :func:`zone_findings` turn what the tactical engine found in one cycle
into :class:`Finding`\\ s, each with the geometry a map or a TAK client draws. :class:`Hysteresis`
decides, cycle after cycle, which findings raise a new alert, which update one, and which alerts
are cleared: an alert is raised the first cycle its pair (or track and zone) is in conflict, kept
while it is, and cleared only after ``clear_after`` consecutive cycles without it, so a pair
hovering at the edge of the minima keeps one alert instead of raising and clearing it each
second. While it lasts an alert is updated every ``update_every`` cycles, and at once in the cycle
its time to conflict first drops under ``imminent_s``.

The hysteresis plans a cycle (:meth:`Hysteresis.observe`) without changing itself; the caller
applies the plan (:meth:`Hysteresis.apply`) once what it implies is stored, so a failed write
leaves the state as it was and the next cycle tries again. A caller that stores updates and
clears only after applying the plan gives back those it failed to store
(:meth:`Hysteresis.give_back`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from pyproj import Geod

from deconfliction.detect.tactical import TacticalConflict, TrackBatch, ZoneEntry

_GEOD = Geod(ellps="WGS84")
Key = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Finding:
    """One predicted loss of separation (``pair``: tracks ``a`` < ``b``) or zone entry
    (``zone``: track ``a`` into ``zone``) in one cycle. ``segment`` is two (lon, lat) points:
    a and b at the closest approach, or a now and at its entry point."""

    kind: Literal["pair", "zone"]
    a: str
    b: str | None
    zone: int | None
    party_a: str
    party_b: str
    tcpa_s: float | None
    dcpa_m: float | None
    t_in_s: float
    t_out_s: float | None
    segment: tuple[tuple[float, float], tuple[float, float]]
    altitudes_m: tuple[float, float]

    @property
    def key(self) -> Key:
        return (self.kind, self.a, self.b if self.b is not None else str(self.zone))

    @property
    def parties(self) -> list[str]:
        return sorted({self.party_a, self.party_b})


def _ahead(
    batch: TrackBatch, rows: list[int], seconds: list[float]
) -> tuple[list[float], list[float], list[float]]:
    """Where the tracks ``rows`` are after ``seconds``, straight on: lon, lat, alt lists."""
    idx = np.array(rows, dtype=np.int64)
    t = np.array(seconds, dtype=np.float64)
    lon, lat, _ = _GEOD.fwd(
        batch.lon[idx], batch.lat[idx], batch.course_deg[idx], batch.gs_mps[idx] * t
    )
    alt = batch.alt_m[idx] + batch.vs_mps[idx] * t
    return (np.atleast_1d(lon).tolist(), np.atleast_1d(lat).tolist(), np.atleast_1d(alt).tolist())


def pair_findings(batch: TrackBatch, conflicts: Iterable[TacticalConflict]) -> list[Finding]:
    """Findings for conflicts found in ``batch`` (``dcpa_m`` as given: pass the geodesic
    figures of :func:`with_geodesic_dcpa`)."""
    found = list(conflicts)
    if not found:
        return []
    index = {track: k for k, track in enumerate(batch.ids)}
    rows_a = [index[c.a] for c in found]
    rows_b = [index[c.b] for c in found]
    t = [c.tcpa_s for c in found]
    lon_a, lat_a, alt_a = _ahead(batch, rows_a, t)
    lon_b, lat_b, alt_b = _ahead(batch, rows_b, t)
    return [
        Finding(
            kind="pair",
            a=c.a,
            b=c.b,
            zone=None,
            party_a=batch.party[ra],
            party_b=batch.party[rb],
            tcpa_s=c.tcpa_s,
            dcpa_m=c.dcpa_m,
            t_in_s=c.t_in_s,
            t_out_s=c.t_out_s,
            segment=((lon_a[k], lat_a[k]), (lon_b[k], lat_b[k])),
            altitudes_m=(alt_a[k], alt_b[k]),
        )
        for k, (c, ra, rb) in enumerate(zip(found, rows_a, rows_b, strict=True))
    ]


def zone_findings(
    batch: TrackBatch, entries: Iterable[ZoneEntry], owners: Mapping[str, str]
) -> list[Finding]:
    """Findings for zone entries predicted in ``batch``: ``owners`` maps a zone id (as given
    to the engine, the zone's number as text) to the party that declared it. An entry of a
    track of the zone's own party is no infringement and is left out."""
    index = {track: k for k, track in enumerate(batch.ids)}
    kept = [e for e in entries if owners[e.zone] != batch.party[index[e.track]]]
    if not kept:
        return []
    rows = [index[e.track] for e in kept]
    t = [e.t_entry_s for e in kept]
    lon, lat, alt = _ahead(batch, rows, t)
    return [
        Finding(
            kind="zone",
            a=e.track,
            b=None,
            zone=int(e.zone),
            party_a=batch.party[r],
            party_b=owners[e.zone],
            tcpa_s=None,
            dcpa_m=None,
            t_in_s=e.t_entry_s,
            t_out_s=None,
            segment=((float(batch.lon[r]), float(batch.lat[r])), (lon[k], lat[k])),
            altitudes_m=(float(batch.alt_m[r]), alt[k]),
        )
        for k, (e, r) in enumerate(zip(kept, rows, strict=True))
    ]


@dataclass(frozen=True, slots=True)
class Tracked:
    """An alert the hysteresis holds: its id once stored, the last finding, how many cycles
    in a row it was missing and how many cycles since it was last raised or updated."""

    alert_id: int | None
    finding: Finding
    misses: int = 0
    since_update: int = 0
    imminent: bool = False


@dataclass
class Plan:
    raised: list[Finding] = field(default_factory=list)
    updated: list[tuple[int, Finding]] = field(default_factory=list)
    cleared: list[tuple[int, Finding]] = field(default_factory=list)
    # The raised or updated alerts whose time to conflict fell under ``imminent_s`` this cycle
    # (each alert once in its life): the hotline's FLASH threads.
    imminent: set[Key] = field(default_factory=set)
    next_state: dict[Key, Tracked] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.raised or self.updated or self.cleared)


class Hysteresis:
    def __init__(self, clear_after: int = 3, update_every: int = 5, imminent_s: float = 120.0):
        if clear_after < 1 or update_every < 1:
            raise ValueError("clear_after and update_every must be at least 1")
        self.clear_after = clear_after
        self.update_every = update_every
        self.imminent_s = imminent_s
        self._active: dict[Key, Tracked] = {}

    @property
    def active(self) -> dict[Key, Tracked]:
        return dict(self._active)

    def resume(self, alert_id: int, finding: Finding) -> None:
        """Hold an alert read back from storage (after a restart): it is not raised again."""
        self._active[finding.key] = Tracked(
            alert_id, finding, imminent=finding.t_in_s < self.imminent_s
        )

    def observe(self, findings: Iterable[Finding], counted: bool = True) -> Plan:
        """The plan for a cycle that found ``findings``; changes nothing until applied.

        A cycle that is not ``counted`` (one run early because new states arrived) raises new
        alerts and updates those that become imminent, but counts no miss and no cycle towards
        ``clear_after`` and ``update_every``: clearing and periodic updates keep the pace of the
        counted (1 Hz) cycles, however often the loop reacts."""
        plan = Plan()
        seen: set[Key] = set()
        for finding in findings:
            key = finding.key
            if key in seen:
                continue
            seen.add(key)
            held = self._active.get(key)
            imminent = finding.t_in_s < self.imminent_s
            if held is None:
                plan.raised.append(finding)
                plan.next_state[key] = Tracked(None, finding, imminent=imminent)
                if imminent:
                    plan.imminent.add(key)
                continue
            since = held.since_update + (1 if counted else 0)
            now_imminent = imminent and not held.imminent
            if since >= self.update_every or now_imminent:
                assert held.alert_id is not None
                plan.updated.append((held.alert_id, finding))
                since = 0
            if now_imminent:
                plan.imminent.add(key)
            plan.next_state[key] = Tracked(
                held.alert_id, finding, 0, since, held.imminent or imminent
            )
        for key, held in self._active.items():
            if key in seen:
                continue
            if not counted:
                plan.next_state[key] = held
                continue
            misses = held.misses + 1
            if misses >= self.clear_after:
                assert held.alert_id is not None
                plan.cleared.append((held.alert_id, held.finding))
            else:
                plan.next_state[key] = replace(held, misses=misses)
        return plan

    def apply_raised(self, plan: Plan, raised_ids: list[int]) -> None:
        """Hold only the alerts ``plan`` raised, stored under ``raised_ids``, and leave the rest
        as it was (the plan's updates and clears could not be stored: planned again)."""
        if len(raised_ids) != len(plan.raised):
            raise ValueError("one id per raised alert")
        for finding, alert_id in zip(plan.raised, raised_ids, strict=True):
            self._active[finding.key] = replace(plan.next_state[finding.key], alert_id=alert_id)

    def give_back(
        self, updated: list[tuple[int, Finding]], cleared: list[tuple[int, Finding]]
    ) -> None:
        """Updates and clears of an applied plan that could not be stored after all: the next
        counted cycle plans them again (an update, if the alert is still held; a clear, if the
        alert is still missing then, else it goes on)."""
        for alert_id, finding in updated:
            held = self._active.get(finding.key)
            if held is not None and held.alert_id == alert_id:
                self._active[finding.key] = replace(held, since_update=self.update_every - 1)
        for alert_id, finding in cleared:
            if finding.key not in self._active:
                self._active[finding.key] = Tracked(
                    alert_id,
                    finding,
                    misses=self.clear_after - 1,
                    imminent=finding.t_in_s < self.imminent_s,
                )

    def apply(self, plan: Plan, raised_ids: list[int]) -> None:
        """Make ``plan`` the state, with the ids the raised alerts were stored under."""
        if len(raised_ids) != len(plan.raised):
            raise ValueError("one id per raised alert")
        state = dict(plan.next_state)
        for finding, alert_id in zip(plan.raised, raised_ids, strict=True):
            state[finding.key] = replace(state[finding.key], alert_id=alert_id)
        self._active = state
