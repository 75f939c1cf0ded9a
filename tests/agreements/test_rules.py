"""The pure rules: for every kind a compliant case and a breach caught with its evidence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from shapely.geometry import Point, Polygon

from deconfliction import geo
from deconfliction.agreements import rules
from deconfliction.agreements.rules import (
    Area,
    Binding,
    Planned,
    Track,
    check_plans,
    check_tracks,
    parse_rule,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)
# A 0.5 x 0.5 degree square zone at 36.0-36.5 E, 33.0-33.5 N, ground to 10 km.
ZONE_SHAPE = Polygon([(36, 33), (36.5, 33), (36.5, 33.5), (36, 33.5)])
ZONE = Area(7, "South", ZONE_SHAPE, 0, 10_000)
AREAS = {7: ZONE}


def square(lon: float, lat: float, size: float = 0.1) -> Polygon:
    return Polygon([(lon, lat), (lon + size, lat), (lon + size, lat + size), (lon, lat + size)])


def plan(
    activity_id: int,
    party: str,
    lon: float,
    lat: float,
    *,
    start_h: float = 30,
    notified_h: float = 0,
    lower: float = 3000,
    upper: float = 6000,
    kind: str = "air_patrol",
) -> Planned:
    start = T0 + timedelta(hours=start_h)
    volume = geo.Volume4D(
        square(lon, lat), geo.AltitudeBand(lower, upper, "MSL"), start, start + timedelta(hours=2)
    )
    return Planned(activity_id, 1, party, kind, T0 + timedelta(hours=notified_h), (volume,))


def binding(raw: dict[str, object], parties: tuple[str, ...] = ("IL", "TR")) -> Binding:
    return Binding(1, parties, parse_rule(raw))


def track(party: str, track_id: str, lon: float, lat: float, alt_m: float = 5000) -> Track:
    return Track(party, track_id, lon, lat, alt_m, T0 + timedelta(hours=31))


def test_zone_rule_plan_outside_is_compliant_inside_is_a_breach() -> None:
    rule = binding({"kind": "zone", "applies_to": ["TR"], "zone_id": 7})
    assert check_plans([rule], AREAS, [plan(1, "TR", 37.0, 34.0), plan(2, "IL", 36.2, 33.2)]) == []
    (breach,) = check_plans([rule], AREAS, [plan(3, "TR", 36.2, 33.2)])
    assert breach.party == "TR"
    assert breach.evidence()["activities"] == [3]
    assert breach.at == T0 + timedelta(hours=30)
    assert breach.evidence()["time"] == "2030-01-02T06:00:00Z"


def test_zone_rule_tracks() -> None:
    rule = binding({"kind": "zone", "applies_to": ["TR"], "zone_id": 7})
    now = T0 + timedelta(hours=31)
    assert check_tracks([rule], AREAS, [track("TR", "a", 37.0, 34.0)], [], now) == []
    # Above the zone's band: outside.
    assert check_tracks([rule], AREAS, [track("TR", "a", 36.2, 33.2, 12_000)], [], now) == []
    (breach,) = check_tracks([rule], AREAS, [track("TR", "a", 36.2, 33.2)], [], now)
    assert breach.evidence()["track_states"][0]["track"] == "a"
    assert breach.evidence()["track_states"][0]["lon"] == 36.2


def test_lead_time_rule() -> None:
    rule = binding({"kind": "lead_time", "applies_to": ["IL", "TR"], "zone_id": 7, "hours": 24})
    on_time = plan(1, "IL", 36.2, 33.2, start_h=30, notified_h=0)
    outside = plan(2, "TR", 38.0, 34.0, start_h=2, notified_h=0)
    assert check_plans([rule], AREAS, [on_time, outside]) == []
    late = plan(3, "TR", 36.2, 33.2, start_h=30, notified_h=20)
    (breach,) = check_plans([rule], AREAS, [late])
    assert breach.evidence()["activities"] == [3]
    assert breach.figures["lead_time_h"] == pytest.approx(10.0)
    assert breach.figures["agreed_h"] == 24


def test_separation_rule() -> None:
    rule = binding(
        {
            "kind": "separation",
            "applies_to": ["IL", "TR"],
            "zone_id": 7,
            "horizontal_m": 20_000,
            "vertical_m": 300,
        }
    )
    a = plan(1, "IL", 36.0, 33.0)
    far = plan(2, "TR", 36.35, 33.35)  # ~ 35 km apart (corner to corner)
    stacked = plan(3, "TR", 36.0, 33.0, lower=7000, upper=9000)  # 1,000 m above
    assert check_plans([rule], AREAS, [a, far, stacked]) == []
    near = plan(4, "TR", 36.15, 33.0, notified_h=1)  # ~ 4.6 km east of a, notified later
    (breach,) = check_plans([rule], AREAS, [a, near])
    assert breach.party == "TR"
    assert breach.evidence()["activities"] == [4, 1]
    assert 4_000 < breach.figures["horizontal_m"] < 5_000


def test_force_posture_standoff_from_a_line() -> None:
    line = [[35.8, 32.7], [35.8, 33.4]]  # a north-south line at 35.8 E
    rule = binding({"kind": "force_posture", "applies_to": ["TR"], "within_km": 40, "line": line})
    assert check_plans([rule], AREAS, [plan(1, "TR", 36.5, 33.0)]) == []  # ~65 km east
    (breach,) = check_plans([rule], AREAS, [plan(2, "TR", 36.0, 33.0)])  # ~18.7 km
    assert breach.evidence()["activities"] == [2]
    assert breach.figures["distance_km"] == pytest.approx(18.7, abs=0.3)
    now = T0 + timedelta(hours=31)
    assert check_tracks([rule], AREAS, [track("TR", "far", 36.5, 33.0)], [], now) == []
    (caught,) = check_tracks([rule], AREAS, [track("TR", "near", 35.9, 33.0)], [], now)
    assert caught.evidence()["track_states"][0]["track"] == "near"


def test_force_posture_ceiling() -> None:
    rule = binding({"kind": "force_posture", "applies_to": ["TR"], "zone_id": 7, "max_aircraft": 2})
    now = T0 + timedelta(hours=31)
    two = [track("TR", "a", 36.1, 33.1), track("TR", "b", 36.2, 33.2), track("TR", "c", 38, 34)]
    assert check_tracks([rule], AREAS, two, [], now) == []
    three = [*two, track("TR", "d", 36.3, 33.3)]
    (breach,) = check_tracks([rule], AREAS, three, [], now)
    assert sorted(s["track"] for s in breach.evidence()["track_states"]) == ["a", "b", "d"]
    assert breach.figures == {"aircraft": 3, "agreed_max": 2}


def test_notification_required() -> None:
    rule = binding(
        {
            "kind": "notification_required",
            "applies_to": ["IL"],
            "zone_id": 7,
            "activity_kinds": ["uav"],
        }
    )
    now = T0 + timedelta(hours=31)
    covering = plan(1, "IL", 36.15, 33.15, kind="uav")
    inside = track("IL", "heron", 36.2, 33.2)
    assert check_tracks([rule], AREAS, [inside], [covering], now) == []
    # Covered only by an activity of another kind: not notified as agreed.
    patrol = plan(2, "IL", 36.15, 33.15, kind="air_patrol")
    (breach,) = check_tracks([rule], AREAS, [inside], [patrol], now)
    assert breach.evidence()["track_states"][0]["track"] == "heron"
    assert breach.party == "IL"


@pytest.mark.parametrize(
    "raw",
    [
        {"kind": "zone", "applies_to": ["TR"], "zone_id": -1},
        {"kind": "lead_time", "applies_to": ["TR"], "zone_id": 1, "hours": -3},
        {
            "kind": "separation",
            "applies_to": ["TR"],
            "zone_id": 1,
            "horizontal_m": -5,
            "vertical_m": 300,
        },
        {
            "kind": "separation",
            "applies_to": ["TR"],
            "zone_id": 1,
            "horizontal_m": 0,
            "vertical_m": 0,
        },
        {"kind": "force_posture", "applies_to": ["TR"], "within_km": -10, "zone_id": 1},
        {
            "kind": "force_posture",
            "applies_to": ["TR"],
            "within_km": 10,
            "max_aircraft": 2,
            "zone_id": 1,
        },
        {"kind": "force_posture", "applies_to": ["TR"], "within_km": 10},
        {
            "kind": "force_posture",
            "applies_to": ["TR"],
            "max_aircraft": 2,
            "line": [[35, 33], [35, 34]],
        },
        {
            "kind": "force_posture",
            "applies_to": ["TR"],
            "within_km": 10,
            "line": [[35, 33], [35, 99]],
        },
        {
            "kind": "notification_required",
            "applies_to": ["TR"],
            "zone_id": 1,
            "activity_kinds": ["submarine"],
        },
        {"kind": "zone", "applies_to": [], "zone_id": 1},
        {"kind": "zone", "applies_to": ["TR"], "zone_id": 1, "radius": 3},
        {"kind": "curfew", "applies_to": ["TR"]},
    ],
)
def test_bad_rules_are_refused(raw: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        parse_rule(raw)


@given(
    lon=st.floats(35.0, 37.5),
    lat=st.floats(32.5, 34.0),
    ceiling=st.integers(0, 3),
    n=st.integers(0, 5),
)
def test_ceiling_matches_a_plain_count(lon: float, lat: float, ceiling: int, n: int) -> None:
    """Reference: count tracks inside the zone's box (the zone is a lon/lat rectangle)."""
    rule = binding(
        {"kind": "force_posture", "applies_to": ["TR"], "zone_id": 7, "max_aircraft": ceiling}
    )
    tracks = [track("TR", str(k), lon + 0.01 * k, lat) for k in range(n)]
    inside = [t for t in tracks if 36 < t.lon < 36.5 and 33 < t.lat < 33.5]
    near_edge = any(
        min(abs(t.lon - 36), abs(t.lon - 36.5), abs(t.lat - 33), abs(t.lat - 33.5)) < 1e-6
        for t in tracks
    )
    if near_edge:
        return
    breaches = check_tracks([rule], AREAS, tracks, [], T0)
    assert len(breaches) == (1 if len(inside) > ceiling else 0)


def test_separation_with_context_matches_the_full_check() -> None:
    """Checking one new plan against the others finds exactly the full check's breaches that
    involve it; pairs among the others are not re-examined."""
    rule = binding(
        {
            "kind": "separation",
            "applies_to": ["IL", "TR"],
            "zone_id": 7,
            "horizontal_m": 20_000,
            "vertical_m": 300,
        }
    )
    others = [
        plan(1, "IL", 36.0, 33.0),
        plan(2, "TR", 36.05, 33.0),  # breaks with 1: not the new plan's business
        plan(3, "IL", 36.35, 33.35),
    ]
    new = plan(4, "TR", 36.3, 33.3, notified_h=2)
    full = check_plans([rule], AREAS, [*others, new])
    focused = check_plans([rule], AREAS, [new], others)
    assert sorted(b.key for b in focused) == sorted(b.key for b in full if 4 in b.activities)
    assert [b.activities for b in focused] == [(4, 3)]


@settings(max_examples=25, deadline=None)
@given(
    points=st.lists(
        st.tuples(st.floats(35.0, 37.5), st.floats(32.5, 34.0)), min_size=1, max_size=12
    ),
    within_km=st.floats(1, 60),
)
@example(points=[(36.5, 33.125)], within_km=1.0)  # on the zone's edge: either answer is right
def test_vectorised_track_checks_match_one_track_at_a_time(
    points: list[tuple[float, float]], within_km: float
) -> None:
    """Reference: each track on its own projection (rules._point_gap_m, rules._line_gap_m)."""
    tracks = [track("TR", str(k), lon, lat) for k, (lon, lat) in enumerate(points)]
    line = [(35.8, 32.7), (35.8, 33.4)]
    now = T0 + timedelta(hours=31)
    zone_rule = binding({"kind": "zone", "applies_to": ["TR"], "zone_id": 7})
    standoff = binding(
        {"kind": "force_posture", "applies_to": ["TR"], "within_km": within_km, "line": line}
    )
    inside = {b.tracks[0]["track"] for b in check_tracks([zone_rule], AREAS, tracks, [], now)}
    near = {b.tracks[0]["track"] for b in check_tracks([standoff], AREAS, tracks, [], now)}
    for t in tracks:
        gap = rules._point_gap_m(ZONE.footprint, t.lon, t.lat)
        # Clear of the edge only: there the two planes may differ by centimetres either way.
        if gap > 1.0:
            assert t.track_id not in inside
        elif ZONE_SHAPE.buffer(-2e-5).contains(Point(t.lon, t.lat)):  # ~2 m inside
            assert t.track_id in inside
        line_gap = rules._line_gap_m(geo.Circle(t.lon, t.lat, 1.0), line) + 1.0
        if abs(line_gap - within_km * 1000) > 50:  # the reference's 1 m disc, plane differences
            assert (t.track_id in near) == (line_gap < within_km * 1000)
