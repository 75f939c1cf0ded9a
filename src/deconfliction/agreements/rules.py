"""Commitments as machine-checked rules, and their evaluation (pure: no I/O, no clock).

A rule is one of five kinds, told apart by `kind` (a pydantic discriminated union, strict:
unknown fields, negative distances and contradictory limits are refused). Evaluation takes what
the service loaded (binding rules, the areas they name, notified activities, track states) and
returns breaches, each with its evidence: the activities, the track states and the time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import numpy as np
import shapely
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator
from shapely.geometry import LineString, Point

from deconfliction import geo
from deconfliction.geo.boxes import Box, grow_box
from deconfliction.geo.model import check_lon_lat
from deconfliction.geo.projection import footprint_box
from deconfliction.parties.models import check_party_codes

ActivityKind = Literal["air_patrol", "transit", "exercise", "uav", "ground_movement"]
# Metres added to every lon/lat box cut: the local plane and lon/lat differ by far less.
BOX_MARGIN_M = 100.0


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Whose behaviour the rule constrains: party codes, all named in the commitment.
    applies_to: list[str] = Field(min_length=1, max_length=32)

    @model_validator(mode="after")
    def codes(self) -> _Rule:
        check_party_codes(self.applies_to, "applies_to")
        return self

    def zone_ids(self) -> set[int]:
        """The zones the rule names (the service checks that they exist)."""
        zone_id = getattr(self, "zone_id", None)
        return set() if zone_id is None else {zone_id}


class ZoneRule(_Rule):
    """No activity (and no track) of `applies_to` inside the agreed zone."""

    kind: Literal["zone"]
    zone_id: int = Field(ge=1)


class LeadTimeRule(_Rule):
    """Activities of `applies_to` entering the zone are notified at least `hours` ahead."""

    kind: Literal["lead_time"]
    zone_id: int = Field(ge=1)
    hours: float = Field(gt=0, le=24 * 90)


class SeparationRule(_Rule):
    """Inside the zone, volumes of two different parties of `applies_to` keep these minima."""

    kind: Literal["separation"]
    zone_id: int = Field(ge=1)
    horizontal_m: float = Field(ge=0, le=200_000)
    vertical_m: float = Field(ge=0, le=10_000)
    time_buffer_s: float = Field(0, ge=0, le=86_400)

    @model_validator(mode="after")
    def some_minimum(self) -> SeparationRule:
        if self.horizontal_m == 0 and self.vertical_m == 0:
            raise ValueError("separation minima are both zero: the rule would never apply")
        return self


class ForcePostureRule(_Rule):
    """Either a stand-off (no forces of `applies_to` within `within_km` of `line` or of the zone)
    or a ceiling (at most `max_aircraft` aircraft of each party of `applies_to` in the zone at
    once)."""

    kind: Literal["force_posture"]
    within_km: float | None = Field(None, gt=0, le=2_000)
    line: list[tuple[float, float]] | None = Field(None, min_length=2, max_length=500)
    zone_id: int | None = Field(None, ge=1)
    max_aircraft: int | None = Field(None, ge=0, le=10_000)

    @model_validator(mode="after")
    def one_limit(self) -> ForcePostureRule:
        if (self.within_km is None) == (self.max_aircraft is None):
            raise ValueError("force_posture needs exactly one of within_km and max_aircraft")
        if self.within_km is not None and (self.line is None) == (self.zone_id is None):
            raise ValueError("a stand-off (within_km) needs exactly one of line and zone_id")
        if self.max_aircraft is not None and (self.zone_id is None or self.line is not None):
            raise ValueError("a ceiling (max_aircraft) needs zone_id and no line")
        for lon, lat in self.line or []:
            check_lon_lat(lon, lat, "line point")
        return self


class NotificationRequiredRule(_Rule):
    """Activities of these kinds by `applies_to` in the zone are notified: a track of such a
    party in the zone that no notified activity of its party covers is a breach."""

    kind: Literal["notification_required"]
    zone_id: int = Field(ge=1)
    activity_kinds: list[ActivityKind] = Field(min_length=1, max_length=5)


Rule = Annotated[
    ZoneRule | LeadTimeRule | SeparationRule | ForcePostureRule | NotificationRequiredRule,
    Field(discriminator="kind"),
]
RULE: TypeAdapter[Rule] = TypeAdapter(Rule)


def parse_rule(raw: Any) -> Rule:
    """A rule from JSON data (raises pydantic's ValidationError with the reason)."""
    return RULE.validate_python(raw)


@dataclass(frozen=True)
class Area:
    """A zone as rules see it: its footprint and altitude band."""

    zone_id: int
    name: str
    footprint: geo.Footprint
    lower_m: float
    upper_m: float


@dataclass(frozen=True)
class Binding:
    """A commitment that binds: its id, its parties and its rule."""

    commitment_id: int
    parties: tuple[str, ...]
    rule: Rule


@dataclass(frozen=True)
class Planned:
    """A notified activity's current plan."""

    activity_id: int
    version: int
    party: str
    kind: str
    notified_at: datetime
    volumes: tuple[geo.Volume4D, ...]


@dataclass(frozen=True)
class Track:
    """One track state of the live picture."""

    party: str
    track_id: str
    lon: float
    lat: float
    alt_m: float
    time: datetime


@dataclass(frozen=True)
class Breach:
    """A binding rule broken: by whom, when, what happened, and the evidence."""

    commitment_id: int
    rule_kind: str
    party: str
    at: datetime
    description: str
    key: str  # the same breach seen twice has the same key: it is stored once
    activities: tuple[int, ...] = ()
    tracks: tuple[dict[str, Any], ...] = ()
    figures: dict[str, float] = field(default_factory=dict)

    def evidence(self) -> dict[str, Any]:
        return {
            "activities": list(self.activities),
            "track_states": list(self.tracks),
            "time": self.at.isoformat().replace("+00:00", "Z"),
            **self.figures,
        }


def _footprint_local(fp: geo.Footprint, projection: geo.LocalProjection) -> Any:
    return projection.footprint_local(fp)


def _gap_m(a: geo.Footprint, b: geo.Footprint) -> float:
    return geo.horizontal_distance_m(a, b)


def _line_gap_m(fp: geo.Footprint, line: Sequence[tuple[float, float]]) -> float:
    projection = geo.LocalProjection.around(fp)
    local_line = projection.to_local(LineString(line))
    return float(shapely.distance(_footprint_local(fp, projection), local_line))


def _point_gap_m(fp: geo.Footprint, lon: float, lat: float) -> float:
    projection = geo.LocalProjection(lon, lat)
    return float(shapely.distance(_footprint_local(fp, projection), Point(0.0, 0.0)))


def _bands_overlap(lower_a: float, upper_a: float, lower_b: float, upper_b: float) -> bool:
    return lower_a < upper_b and lower_b < upper_a


def _in_area(volume: geo.Volume4D, area: Area) -> bool:
    band = volume.altitude
    return _bands_overlap(band.lower_m, band.upper_m, area.lower_m, area.upper_m) and (
        _gap_m(volume.footprint, area.footprint) == 0.0
    )


def _track_json(track: Track) -> dict[str, Any]:
    return {
        "party": track.party,
        "track": track.track_id,
        "lon": track.lon,
        "lat": track.lat,
        "alt_m": track.alt_m,
        "time": track.time.isoformat().replace("+00:00", "Z"),
    }


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M")


def check_plans(
    bindings: Iterable[Binding],
    areas: dict[int, Area],
    plans: Sequence[Planned],
    others: Sequence[Planned] = (),
) -> list[Breach]:
    """Breaches by notified plans (the strategic side): zone, lead_time, separation and
    stand-off rules against every volume of `plans`. `others` are plans already checked: only
    their pairs with `plans` count for separation (a new filing costs O(others), not O(n^2))."""
    out: list[Breach] = []
    for binding in bindings:
        rule = binding.rule
        cid = binding.commitment_id
        bound = [p for p in plans if p.party in rule.applies_to]
        if isinstance(rule, ZoneRule):
            area = areas[rule.zone_id]
            for plan in bound:
                inside = [v for v in plan.volumes if _in_area(v, area)]
                if inside:
                    out.append(
                        Breach(
                            cid,
                            rule.kind,
                            plan.party,
                            min(v.start for v in inside),
                            f"{plan.party} activity {plan.activity_id} enters {area.name}",
                            f"{cid}/activity/{plan.activity_id}/{plan.version}",
                            activities=(plan.activity_id,),
                        )
                    )
        elif isinstance(rule, LeadTimeRule):
            area = areas[rule.zone_id]
            needed = timedelta(hours=rule.hours)
            for plan in bound:
                inside = [v for v in plan.volumes if _in_area(v, area)]
                if not inside:
                    continue
                start = min(v.start for v in inside)
                ahead = start - plan.notified_at
                if ahead < needed:
                    out.append(
                        Breach(
                            cid,
                            rule.kind,
                            plan.party,
                            plan.notified_at,
                            f"{plan.party} activity {plan.activity_id} notified "
                            f"{ahead.total_seconds() / 3600:.1f} h before entering {area.name}"
                            f" ({rule.hours:g} h agreed)",
                            f"{cid}/activity/{plan.activity_id}/{plan.version}",
                            activities=(plan.activity_id,),
                            figures={
                                "lead_time_h": ahead.total_seconds() / 3600,
                                "agreed_h": rule.hours,
                            },
                        )
                    )
        elif isinstance(rule, SeparationRule):
            context = [p for p in others if p.party in rule.applies_to]
            out += _separation(cid, rule, areas[rule.zone_id], bound, context)
        elif isinstance(rule, ForcePostureRule) and rule.within_km is not None:
            limit_m = rule.within_km * 1000.0
            for plan in bound:
                gaps = [_standoff_gap_m(rule, areas, v.footprint) for v in plan.volumes]
                closest = min(gaps)
                if closest < limit_m:
                    near = [v for v, g in zip(plan.volumes, gaps, strict=True) if g < limit_m]
                    out.append(
                        Breach(
                            cid,
                            rule.kind,
                            plan.party,
                            min(v.start for v in near),
                            f"{plan.party} activity {plan.activity_id} comes within "
                            f"{closest / 1000:.1f} km of {_standoff_name(rule, areas)}"
                            f" ({rule.within_km:g} km agreed)",
                            f"{cid}/activity/{plan.activity_id}/{plan.version}",
                            activities=(plan.activity_id,),
                            figures={"distance_km": closest / 1000, "agreed_km": rule.within_km},
                        )
                    )
    return out


def _standoff_gap_m(rule: ForcePostureRule, areas: dict[int, Area], fp: geo.Footprint) -> float:
    if rule.line is not None:
        return _line_gap_m(fp, rule.line)
    assert rule.zone_id is not None
    return _gap_m(fp, areas[rule.zone_id].footprint)


def _standoff_name(rule: ForcePostureRule, areas: dict[int, Area]) -> str:
    if rule.line is not None:
        return "the agreed line"
    assert rule.zone_id is not None
    return areas[rule.zone_id].name


def _separation(
    cid: int, rule: SeparationRule, area: Area, plans: list[Planned], others: list[Planned]
) -> list[Breach]:
    checked = [(p, [v for v in p.volumes if _in_area(v, area)]) for p in plans]
    context = [(p, [v for v in p.volumes if _in_area(v, area)]) for p in others]
    buffer = timedelta(seconds=rule.time_buffer_s)
    out: list[Breach] = []
    for i, (a, volumes_a) in enumerate(checked):
        for b, volumes_b in [*checked[i + 1 :], *context]:
            if a.party == b.party:
                continue
            for va in volumes_a:
                for vb in volumes_b:
                    if va.start >= vb.end + buffer or vb.start >= va.end + buffer:
                        continue
                    vertical = max(
                        va.altitude.lower_m - vb.altitude.upper_m,
                        vb.altitude.lower_m - va.altitude.upper_m,
                        0.0,
                    )
                    overlap = _bands_overlap(
                        va.altitude.lower_m,
                        va.altitude.upper_m,
                        vb.altitude.lower_m,
                        vb.altitude.upper_m,
                    )
                    if not (overlap or vertical < rule.vertical_m):
                        continue
                    horizontal = _gap_m(va.footprint, vb.footprint)
                    if horizontal > 0 and horizontal >= rule.horizontal_m:
                        continue
                    # The later filing broke the minima: it is the breach's party.
                    late, early = (a, b) if a.notified_at >= b.notified_at else (b, a)
                    out.append(
                        Breach(
                            cid,
                            rule.kind,
                            late.party,
                            max(va.start, vb.start),
                            f"activities {a.activity_id} ({a.party}) and {b.activity_id} "
                            f"({b.party}) within {horizontal:.0f} m / {vertical:.0f} m in "
                            f"{area.name} (minima {rule.horizontal_m:g} m / "
                            f"{rule.vertical_m:g} m)",
                            f"{cid}/pair/{early.activity_id}.{early.version}/"
                            f"{late.activity_id}.{late.version}",
                            activities=(late.activity_id, early.activity_id),
                            figures={"horizontal_m": horizontal, "vertical_m": vertical},
                        )
                    )
                    break
                else:
                    continue
                break
    return out


def _local_gaps_m(
    projection: geo.LocalProjection, target: Any, tracks: Sequence[Track]
) -> NDArray[np.float64]:
    """Distances (m) from each track to `target` (a geometry in `projection`'s plane), all
    tracks projected at once: the loop checks thousands of tracks a second."""
    if not tracks:
        return np.zeros(0)
    x, y = projection.transform_points(
        np.array([t.lon for t in tracks]), np.array([t.lat for t in tracks])
    )
    return np.asarray(shapely.distance(target, shapely.points(x, y)), dtype=np.float64)


def _in_box(box: Box, tracks: Sequence[Track]) -> list[Track]:
    """The tracks inside a lon/lat box: a cheap first cut before projecting (the box of a
    footprint grown by a distance contains every point within that distance of it)."""
    west, south, east, north = box
    return [t for t in tracks if west <= t.lon <= east and south <= t.lat <= north]


def _area_gaps_m(
    fp: geo.Footprint, tracks: Sequence[Track], within_m: float = 0.0
) -> list[tuple[Track, float]]:
    """(track, distance) for the tracks that may be within `within_m` of the footprint."""
    near = _in_box(grow_box(footprint_box(fp), within_m + BOX_MARGIN_M), tracks)
    projection = geo.LocalProjection.around(fp)
    gaps = _local_gaps_m(projection, projection.footprint_local(fp), near)
    return list(zip(near, gaps.tolist(), strict=True))


def _line_gaps_m(
    line: Sequence[tuple[float, float]], tracks: Sequence[Track], within_m: float
) -> list[tuple[Track, float]]:
    """(track, distance) for the tracks that may be within `within_m` of the line."""
    lons, lats = [p[0] for p in line], [p[1] for p in line]
    box = (min(lons), min(lats), max(lons), max(lats))
    near = _in_box(grow_box(box, within_m + BOX_MARGIN_M), tracks)
    projection = geo.LocalProjection((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    gaps = _local_gaps_m(projection, projection.to_local(LineString(line)), near)
    return list(zip(near, gaps.tolist(), strict=True))


def _inside(area: Area, tracks: Sequence[Track]) -> list[Track]:
    banded = [t for t in tracks if area.lower_m <= t.alt_m <= area.upper_m]
    return [t for t, gap in _area_gaps_m(area.footprint, banded) if gap == 0.0]


def check_tracks(
    bindings: Iterable[Binding],
    areas: dict[int, Area],
    tracks: Sequence[Track],
    plans: Sequence[Planned],
    now: datetime,
) -> list[Breach]:
    """Breaches by the live picture at `now` (the tactical side): tracks inside a barred zone,
    within a stand-off, over a ceiling, or flying unnotified where notification is required.
    Keys repeat within the minute, so a breach lasting seconds is stored once a minute at most."""
    out: list[Breach] = []
    minute = _stamp(now)
    for binding in bindings:
        rule = binding.rule
        cid = binding.commitment_id
        bound = [t for t in tracks if t.party in rule.applies_to]
        if isinstance(rule, ZoneRule):
            area = areas[rule.zone_id]
            for track in _inside(area, bound):
                out.append(
                    Breach(
                        cid,
                        rule.kind,
                        track.party,
                        track.time,
                        f"{track.party} track {track.track_id} inside {area.name}",
                        f"{cid}/track/{track.party}/{track.track_id}/{minute}",
                        tracks=(_track_json(track),),
                    )
                )
        elif isinstance(rule, ForcePostureRule) and rule.within_km is not None:
            limit_m = rule.within_km * 1000.0
            if rule.line is not None:
                gaps = _line_gaps_m(rule.line, bound, limit_m)
            else:
                assert rule.zone_id is not None
                gaps = _area_gaps_m(areas[rule.zone_id].footprint, bound, limit_m)
            for track, gap in gaps:
                if gap < limit_m:
                    out.append(
                        Breach(
                            cid,
                            rule.kind,
                            track.party,
                            track.time,
                            f"{track.party} track {track.track_id} {gap / 1000:.1f} km from "
                            f"{_standoff_name(rule, areas)} ({rule.within_km:g} km agreed)",
                            f"{cid}/track/{track.party}/{track.track_id}/{minute}",
                            tracks=(_track_json(track),),
                            figures={"distance_km": gap / 1000, "agreed_km": rule.within_km},
                        )
                    )
        elif isinstance(rule, ForcePostureRule) and rule.max_aircraft is not None:
            assert rule.zone_id is not None
            area = areas[rule.zone_id]
            inside_all = _inside(area, bound)
            for party in rule.applies_to:
                inside = [t for t in inside_all if t.party == party]
                if len(inside) > rule.max_aircraft:
                    out.append(
                        Breach(
                            cid,
                            rule.kind,
                            party,
                            now,
                            f"{len(inside)} aircraft of {party} in {area.name} at once "
                            f"(at most {rule.max_aircraft} agreed)",
                            f"{cid}/ceiling/{party}/{minute}",
                            tracks=tuple(_track_json(t) for t in inside),
                            figures={"aircraft": len(inside), "agreed_max": rule.max_aircraft},
                        )
                    )
        elif isinstance(rule, NotificationRequiredRule):
            area = areas[rule.zone_id]
            uncovered = _inside(area, bound)
            for plan in plans:
                if plan.kind in rule.activity_kinds and uncovered:
                    uncovered = [t for t in uncovered if not _covered_by(plan, t)]
            for track in uncovered:
                out.append(
                    Breach(
                        cid,
                        rule.kind,
                        track.party,
                        track.time,
                        f"{track.party} track {track.track_id} in {area.name} with no "
                        f"notified activity ({', '.join(rule.activity_kinds)})",
                        f"{cid}/track/{track.party}/{track.track_id}/{minute}",
                        tracks=(_track_json(track),),
                    )
                )
    return out


def _covered_by(plan: Planned, track: Track) -> bool:
    return plan.party == track.party and any(
        v.start <= track.time <= v.end
        and v.altitude.lower_m <= track.alt_m <= v.altitude.upper_m
        and _point_gap_m(v.footprint, track.lon, track.lat) == 0.0
        for v in plan.volumes
    )
