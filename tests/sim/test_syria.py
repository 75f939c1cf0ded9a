"""The bundled Syria scenario: well-formed data, a deterministic day, the designed conflicts.

Overlaps are checked here with shapely in a crude local metric frame (equirectangular at 34°N),
independent of the detection engine, so that the scenario is checked against its own intent.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise, product
from typing import Any

import pytest
import shapely
from shapely.geometry import LineString, Point, shape

from deconfliction.sim import syria

DAY_START = datetime(2026, 11, 23, tzinfo=UTC)
DAY_END = DAY_START + timedelta(hours=24)
H_MIN, V_MIN, T_BUFFER = 9260.0, 300.0, 600.0  # the parties config's minima
# The day must be clear of unplanned conflicts with room to spare: the crude frame is a few per
# cent off, and a detector may widen both windows and both bands by the minimum.
SLACK = (1.5 * H_MIN, 2 * V_MIN, 2 * T_BUFFER)
KX, KY = 111_320 * math.cos(math.radians(34)), 110_574  # metres per degree at 34°N
KINDS = {"air_patrol", "transit", "exercise", "uav", "ground_movement"}


@dataclass(frozen=True)
class Piece:
    """One volume (or route leg) in metres: footprint, altitude band, time window."""

    geom: Any
    lower: float
    upper: float
    start: datetime
    end: datetime

    def near(self, other: Piece, h: float, v: float, t: float) -> bool:
        return (
            self.geom.distance(other.geom) < h
            and self.lower - other.upper < v
            and other.lower - self.upper < v
            and (self.start - other.end).total_seconds() < t
            and (other.start - self.end).total_seconds() < t
        )


STRICT = (1.0, 0.0, 0.0)  # really overlapping: touching footprints, bands and windows


def _metric(geom: Any) -> Any:
    return shapely.transform(geom, lambda xy: xy * [KX, KY])


def _footprint(body: dict[str, Any]) -> Any:
    if "circle" in body:
        c = body["circle"]
        return _metric(Point(c["center"])).buffer(c["radius_m"])
    return _metric(shape(body["footprint"]))


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _piece(geom: Any, band: dict[str, Any], start: str, end: str) -> Piece:
    return Piece(geom, band["lower_m"], band["upper_m"], _t(start), _t(end))


def _pieces(activity: dict[str, Any]) -> list[Piece]:
    if "volumes" in activity:
        return [
            _piece(_footprint(v), v["altitude"], v["time"]["start"], v["time"]["end"])
            for v in activity["volumes"]
        ]
    route = activity["route"]
    legs = [
        (_metric(LineString([(a["lon"], a["lat"]), (b["lon"], b["lat"])])), a["time"], b["time"])
        for a, b in pairwise(route["waypoints"])
    ]
    return [_piece(g.buffer(route["half_width_m"]), route["altitude"], s, e) for g, s, e in legs]


def _zone_piece(zone: dict[str, Any]) -> Piece:
    end = zone["valid_to"] or datetime.max.replace(tzinfo=UTC).isoformat()
    return _piece(_footprint(zone), zone["altitude"], zone["valid_from"], end)


def _conflicts(seed: int, h: float, v: float, t: float) -> set[tuple[str, str]]:
    """(activity, activity or zone) pairs of different parties that come within the minima."""
    acts = [(p, a["title"], _pieces(a)) for p, a in syria.day(DAY_START, seed)]
    zones = [(o, z["name"], [_zone_piece(z)]) for o, z in syria.zones(DAY_START)]
    found = set()
    for (pa, ta, xs), (pb, tb, ys) in product(acts, acts + zones):
        if pa < pb and any(x.near(y, h, v, t) for x, y in product(xs, ys)):
            found.add((ta, tb))
    for (pa, ta, xs), (pb, tb, ys) in product(zones, acts):
        if pb != pa and any(x.near(y, h, v, t) for x, y in product(xs, ys)):
            found.add((tb, ta))
    return found


def _normal(pairs: set[tuple[str, str]] | list[tuple[str, str]]) -> set[frozenset[str]]:
    return {frozenset(p) for p in pairs}


def test_parties_config() -> None:
    config = tomllib.loads(syria.parties_config_text())
    assert config["area"] == "Syria"
    assert config["minima"] == {"horizontal_m": H_MIN, "vertical_m": V_MIN, "time_buffer_s": 600}
    parties = {p["code"]: p for p in config["party"]}
    assert {c: (p["kind"], p["language"]) for c, p in parties.items()} == {
        "TR": ("participant", "tr"),
        "IL": ("participant", "he"),
        "AZ": ("mediator", "az"),
        "UNDOF": ("observer", "en"),
    }
    ids = [o["id"] for p in config["party"] for o in p["officer"]]
    assert len(ids) == len(set(ids))
    roles = {c: sorted(o["role"] for o in p["officer"]) for c, p in parties.items()}
    assert roles["TR"] == roles["IL"] == ["commander", "commander", "officer"]
    assert roles["AZ"] == ["mediator"] and roles["UNDOF"] == ["observer"]


def _check_polygon(footprint: dict[str, Any], north: float) -> None:
    assert footprint["type"] == "Polygon" and len(footprint["coordinates"]) == 1
    ring = footprint["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) >= 4
    poly = shape(footprint)
    assert poly.is_valid and poly.exterior.is_ccw
    for lon, lat in ring:
        _check_point(lon, lat, north)


def _check_point(lon: float, lat: float, north: float) -> None:
    assert 35.0 <= lon <= 42.5 and 32.0 <= lat <= north, (lon, lat)


def _check_shape(body: dict[str, Any], north: float) -> None:
    if "circle" in body:
        assert body["circle"]["radius_m"] > 0 and "footprint" not in body
        lon, lat = body["circle"]["center"]
        _check_point(lon, lat, north)
    else:
        _check_polygon(body["footprint"], north)


def _check_band(band: dict[str, Any]) -> None:
    assert band["reference"] == "MSL" and 0 <= band["lower_m"] < band["upper_m"] <= 20_000


def test_zones_are_well_formed() -> None:
    zones = syria.zones(DAY_START)
    names = [z["name"] for _, z in zones]
    assert len(names) == len(set(names)) and {o for o, _ in zones} == {"TR", "IL"}
    for _, zone in zones:
        _check_shape(zone, 37.5)
        _check_band(zone["altitude"])
        assert zone["valid_from"] == "2026-11-23T00:00:00Z" and zone["valid_to"] is None
        assert (zone["rule"] == "notify") == (zone["lead_time_s"] == 86_400)
        assert zone["rule"] in {"no_entry", "notify", "caution"}


@pytest.mark.parametrize("seed", [2025, 1, 7])
def test_activities_are_well_formed(seed: int) -> None:
    day = syria.day(DAY_START, seed)
    assert 30 <= len(day) <= 60
    assert len({a["title"] for _, a in day}) == len(day)
    for party, activity in day:
        assert party in {"TR", "IL"} and activity["kind"] in KINDS and activity["callsign"]
        assert party not in activity.get("notified_to", [])
        # Only Turkish flights in from Turkish bases reach north of Syria.
        north = 38.5 if party == "TR" else 37.5
        if "route" in activity:
            route = activity["route"]
            _check_band(route["altitude"])
            assert route["half_width_m"] > 0
            times = [_t(w["time"]) for w in route["waypoints"]]
            assert times == sorted(set(times)) and DAY_START <= times[0] < times[-1] <= DAY_END
            for w in route["waypoints"]:
                _check_point(w["lon"], w["lat"], north)
        else:
            for volume in activity["volumes"]:
                _check_shape(volume, north)
                _check_band(volume["altitude"])
                start, end = _t(volume["time"]["start"]), _t(volume["time"]["end"])
                assert DAY_START <= start < end <= DAY_END


def test_day_is_deterministic() -> None:
    assert syria.day(DAY_START, 7) == syria.day(DAY_START, 7)
    assert syria.day(DAY_START, 7) != syria.day(DAY_START, 8)
    assert syria.day(DAY_START) == syria.day(DAY_START.astimezone(), 2025)
    with pytest.raises(ValueError, match="time zone"):
        syria.day(datetime(2026, 11, 23))


def test_designed_conflicts_really_overlap() -> None:
    assert _normal(syria.expected_conflicts()) <= _normal(_conflicts(2025, *STRICT))


@pytest.mark.parametrize("seed", [2025, 1, 7, 42, 1234])
def test_no_conflict_but_the_designed_ones(seed: int) -> None:
    assert _normal(_conflicts(seed, *SLACK)) == _normal(syria.expected_conflicts())


def test_near_miss_is_separated_only_vertically() -> None:
    day = {a["title"]: _pieces(a) for _, a in syria.day(DAY_START)}
    tr, il = (day[title] for title in syria.NEAR_MISS)
    assert any(x.near(y, 1.0, math.inf, 0.0) for x, y in product(tr, il))
    assert not any(x.near(y, math.inf, 1000.0, math.inf) for x, y in product(tr, il))


def test_rounds() -> None:
    first, second = syria.ROUNDS
    assert (first.number, first.date, first.host) == (1, date(2025, 4, 9), "AZ")
    assert (second.number, second.date, second.host) == (2, date(2025, 5, 8), "AZ")
    assert "Baku" in first.venue and "Baku" in second.venue
    for r in syria.ROUNDS:
        assert {p.party for p in r.positions} <= {"TR", "IL"}
        assert all(p.text and p.wording and p.source.endswith(".txt") for p in r.positions)
