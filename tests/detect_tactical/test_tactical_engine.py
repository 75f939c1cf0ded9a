"""The tactical engine against hand-computed encounters and against the brute-force reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deconfliction.detect.tactical import (
    TacticalConflict,
    TacticalMinima,
    TrackBatch,
    candidate_pairs,
    detect_conflicts,
    pair_test,
    plane_for,
)
from deconfliction.detect.tactical_plane import ConformalPlane, PlaneTracks

from .reference import reference_conflicts
from .support import CENTRE, EAST, GEOD, NORTH, SOUTH, WEST, batch, offset, syria_traffic

MINIMA = TacticalMinima()
LAT0, LON0 = CENTRE


def at(east_km: float, north_km: float) -> tuple[float, float]:
    return offset(LAT0, LON0, east_km * 1000.0, north_km * 1000.0)


def inbound(east_km: float, north_km: float) -> tuple[float, float, float]:
    """(lat, lon, course) of a track at that offset from the centre, flying straight at it."""
    lat, lon = at(east_km, north_km)
    course, _, _ = GEOD.inv(lon, lat, LON0, LAT0)
    return lat, lon, course % 360.0


def one(conflicts: list[TacticalConflict]) -> TacticalConflict:
    assert len(conflicts) == 1, conflicts
    return conflicts[0]


# Hand-computed encounters near the centre of the plane, where its scale is 1 to 1e-5: figures
# agree with the flat-earth arithmetic to a few centimetres and milliseconds.


def test_head_on_level() -> None:
    # 40 km apart, closing at 400 m/s: CPA at 100 s, inside 5 NM from (40000 -/+ 9260) / 400.
    b = batch(
        [
            ("A", "TR", *inbound(-20, 0)[:2], 6000.0, 200.0, inbound(-20, 0)[2], 0.0),
            ("B", "IL", *inbound(20, 0)[:2], 6000.0, 200.0, inbound(20, 0)[2], 0.0),
        ]
    )
    c = one(detect_conflicts(b, origin=CENTRE))
    assert (c.a, c.b) == ("A", "B")
    assert c.tcpa_s == pytest.approx(100.0, abs=0.05)
    assert c.dcpa_m == pytest.approx(0.0, abs=30.0)
    assert c.t_in_s == pytest.approx((40000 - 9260) / 400, abs=0.05)
    assert c.t_out_s == pytest.approx((40000 + 9260) / 400, abs=0.05)


def test_head_on_vertically_separated_by_exactly_the_minimum_is_clear() -> None:
    rows = [
        ("A", "TR", *at(-20, 0), 0.0, 200.0, 90.0, 0.0),
        ("B", "IL", *at(20, 0), 304.8, 200.0, 270.0, 0.0),
    ]
    assert detect_conflicts(batch(rows)) == []
    rows[1] = ("B", "IL", *at(20, 0), 304.7, 200.0, 270.0, 0.0)
    assert len(detect_conflicts(batch(rows))) == 1


def test_crossing_at_right_angles() -> None:
    # Both reach the origin at 200 s; relative speed 150 * sqrt(2).
    b = batch(
        [
            ("east", "TR", *inbound(-30, 0)[:2], 6000.0, 150.0, inbound(-30, 0)[2], 0.0),
            ("north", "IL", *inbound(0, -30)[:2], 6000.0, 150.0, inbound(0, -30)[2], 0.0),
        ]
    )
    c = one(detect_conflicts(b, origin=CENTRE))
    half = 9260.0 / (150.0 * math.sqrt(2.0))
    assert (c.a, c.b) == ("east", "north")
    assert c.tcpa_s == pytest.approx(200.0, abs=0.2)
    assert c.dcpa_m == pytest.approx(0.0, abs=30.0)
    assert c.t_in_s == pytest.approx(200.0 - half, abs=0.3)
    assert c.t_out_s == pytest.approx(200.0 + half, abs=0.3)


def test_overtaking_reports_closest_approach_within_the_lookahead() -> None:
    # B 20 km ahead and 2 km to the side, 50 m/s slower: raw tcpa 400 s, beyond the look-ahead;
    # loss of separation from 400 - sqrt(9260^2 - 2000^2) / 50 = 219.2 s.
    b = batch(
        [
            ("fast", "TR", *at(0, 0), 6000.0, 250.0, 0.0, 0.0),
            ("slow", "IL", *at(2, 20), 6000.0, 200.0, 0.0, 0.0),
        ]
    )
    c = one(detect_conflicts(b, origin=CENTRE))
    assert c.t_in_s == pytest.approx(400.0 - math.sqrt(9260.0**2 - 2000.0**2) / 50.0, abs=0.5)
    assert c.t_out_s == 300.0
    assert c.tcpa_s == 300.0
    assert c.dcpa_m == pytest.approx(math.hypot(5000.0, 2000.0), abs=25.0)


def test_formation_flight_zero_relative_velocity() -> None:
    # Same place and velocity vector: relative velocity exactly zero, inside for ever.
    lat, lon = at(0, 0)
    b = batch(
        [
            ("lead", "TR", lat, lon, 6000.0, 200.0, 45.0, 0.0),
            ("wing", "IL", lat, lon, 6100.0, 200.0, 45.0, 0.0),
            ("far", "SY", lat, lon, 9000.0, 200.0, 45.0, 0.0),
        ]
    )
    c = one(detect_conflicts(b))
    assert (c.a, c.b, c.tcpa_s, c.dcpa_m, c.t_in_s, c.t_out_s) == ("lead", "wing", 0, 0, 0, 300)


def test_stationary_tracks_inside_or_outside_the_minimum() -> None:
    b = batch(
        [
            ("a", "TR", *at(0, 0), 1000.0, 0.0, 0.0, 0.0),
            ("b", "IL", *at(5, 0), 1000.0, 0.0, 0.0, 0.0),
            ("c", "SY", *at(30, 0), 1000.0, 0.0, 0.0, 0.0),
        ]
    )
    c = one(detect_conflicts(b, origin=CENTRE))
    assert (c.a, c.b, c.tcpa_s, c.t_in_s, c.t_out_s) == ("a", "b", 0.0, 0.0, 300.0)
    assert c.dcpa_m == pytest.approx(5000.0, abs=1.0)


def test_climb_into_a_level_neighbour() -> None:
    # Same velocity 5 km apart; B climbs from 1000 m below at 10 m/s: vertically inside from
    # (1000 - 304.8) / 10 to (1000 + 304.8) / 10.
    b = batch(
        [
            ("level", "TR", *at(0, 0), 5000.0, 0.0, 0.0, 0.0),
            ("climber", "IL", *at(5, 0), 4000.0, 0.0, 0.0, 10.0),
        ]
    )
    c = one(detect_conflicts(b))
    assert c.t_in_s == pytest.approx(69.52)
    assert c.t_out_s == pytest.approx(130.48)


def test_diverging_pair_already_in_loss_of_separation() -> None:
    b = batch(
        [
            ("a", "TR", *at(0, 0), 5000.0, 100.0, 270.0, 0.0),
            ("b", "IL", *at(3, 0), 5000.0, 100.0, 90.0, 0.0),
        ]
    )
    c = one(detect_conflicts(b, origin=CENTRE))
    assert c.tcpa_s == 0.0
    assert c.t_in_s == 0.0
    assert c.dcpa_m == pytest.approx(3000.0, abs=1.0)
    assert c.t_out_s == pytest.approx((9260.0 - 3000.0) / 200.0, abs=0.05)


def test_same_party_pairs_only_on_request() -> None:
    b = batch(
        [
            ("A", "TR", *at(-20, 0), 6000.0, 200.0, 90.0, 0.0),
            ("B", "TR", *at(20, 0), 6000.0, 200.0, 270.0, 0.0),
        ]
    )
    assert detect_conflicts(b) == []
    assert [(c.a, c.b) for c in detect_conflicts(b, same_party=True)] == [("A", "B")]


def test_pair_ids_ordered_and_list_sorted() -> None:
    b = batch(
        [
            ("z", "TR", *at(-20, 0), 6000.0, 200.0, 90.0, 0.0),
            ("y", "IL", *at(20, 0), 6000.0, 200.0, 270.0, 0.0),
            ("b", "TR", *at(-20, 50), 6000.0, 200.0, 90.0, 0.0),
            ("a", "IL", *at(20, 50), 6000.0, 200.0, 270.0, 0.0),
        ]
    )
    assert [(c.a, c.b) for c in detect_conflicts(b)] == [("a", "b"), ("y", "z")]


def test_empty_and_single_track() -> None:
    assert detect_conflicts(batch([])) == []
    assert detect_conflicts(batch([("a", "TR", 34.0, 38.0, 100.0, 1.0, 0.0, 0.0)])) == []


def test_minima_must_be_positive() -> None:
    with pytest.raises(ValueError, match="horizontal_m"):
        TacticalMinima(horizontal_m=0.0)
    with pytest.raises(ValueError, match="lookahead_s"):
        TacticalMinima(lookahead_s=math.nan)


# Exact boundaries, on plane states placed symmetrically about the centre of the plane, where
# the point scale is exactly 1 and every figure below is exact in binary floating point.

PLANE = ConformalPlane(*CENTRE)


def kernel(
    x: list[float],
    y: list[float],
    u: list[float],
    v: list[float],
    z: list[float],
    w: list[float],
    minima: TacticalMinima,
) -> tuple[bool, float, float, float, float]:
    tracks = PlaneTracks(*(np.array(c, dtype=np.float64) for c in (x, y, u, v)))
    f = pair_test(
        PLANE,
        tracks,
        np.array(z),
        np.array(w),
        np.array([0], dtype=np.int64),
        np.array([1], dtype=np.int64),
        minima,
    )
    return (
        bool(f.conflict[0]),
        float(f.tcpa_s[0]),
        float(f.dcpa_m[0]),
        float(f.t_in_s[0]),
        float(f.t_out_s[0]),
    )


def test_closest_approach_exactly_at_the_horizontal_minimum_is_clear() -> None:
    minima = TacticalMinima(9260.0, 300.0, 600.0)
    args = ([-4630.0, 4630.0], [-50000.0, 50000.0], [0.0, 0.0], [100.0, -100.0])
    hit, tcpa, dcpa, _, _ = kernel(*args, [0.0, 0.0], [0.0, 0.0], minima)
    assert (hit, tcpa, dcpa) == (False, 500.0, 9260.0)
    hit, *_ = kernel(*args, [0.0, 0.0], [0.0, 0.0], TacticalMinima(9260.001, 300.0, 600.0))
    assert hit


def test_level_exactly_at_the_vertical_minimum_is_clear() -> None:
    minima = TacticalMinima(9260.0, 300.0, 300.0)
    args = ([-1000.0, 1000.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0])
    assert not kernel(*args, [0.0, 300.0], [0.0, 0.0], minima)[0]
    assert kernel(*args, [0.0, 299.5], [0.0, 0.0], minima)[0]


def test_stationary_exactly_at_the_horizontal_minimum_is_clear() -> None:
    minima = TacticalMinima(9260.0, 300.0, 300.0)
    flat = ([0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0])
    assert not kernel([-4630.0, 4630.0], *flat, minima)[0]
    assert kernel([-4629.5, 4630.0], *flat, minima)[0]


def test_loss_starting_exactly_at_the_lookahead_is_not_a_conflict() -> None:
    # B 600 m above, descending 1 m/s relative: vertically inside during (300, 900).
    args = ([-1000.0, 1000.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0])
    assert not kernel(*args, [0.0, 600.0], [0.0, -1.0], TacticalMinima(9260.0, 300.0, 300.0))[0]
    hit, _, _, t_in, t_out = kernel(
        *args, [0.0, 600.0], [0.0, -1.0], TacticalMinima(9260.0, 300.0, 300.5)
    )
    assert (hit, t_in, t_out) == (True, 300.0, 300.5)


def test_loss_ending_exactly_now_is_not_a_conflict() -> None:
    # B 300 m above and climbing away: vertically inside during (-inf.., 0).
    args = ([-1000.0, 1000.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0])
    assert not kernel(*args, [0.0, 300.0], [0.0, 1.0], TacticalMinima(9260.0, 300.0, 300.0))[0]


# Properties: the fast engine returns exactly the reference's pairs and figures.


@st.composite
def traffic(draw: st.DrawFn) -> tuple[TrackBatch, TacticalMinima, bool]:
    """Random traffic: clusters dense to sparse, anywhere in Syria up to its corners, on an
    altitude grid whose steps hit the vertical minimum exactly, with stationary tracks, shared
    positions (zero relative velocity) and level, climbing and descending tracks."""
    n = draw(st.integers(2, 30))
    lat0 = draw(st.sampled_from([SOUTH, NORTH]) | st.floats(SOUTH, NORTH))
    lon0 = draw(st.sampled_from([WEST, EAST]) | st.floats(WEST, EAST))
    spread = draw(st.sampled_from([0.02, 0.2, 1.0, 4.0]))
    step = draw(st.sampled_from([100.0, 150.0, 300.0]))
    minima = TacticalMinima(
        draw(st.sampled_from([9260.0, 5556.0, 20_000.0])),
        draw(st.sampled_from([300.0, 600.0])),
        draw(st.sampled_from([120.0, 300.0, 600.0])),
    )
    parties = draw(st.sampled_from([("A",), ("A", "B"), ("A", "B", "C")]))
    coordinate = st.floats(-spread, spread)
    rows: list[tuple[str, str, float, float, float, float, float, float]] = []
    for k in range(n):
        if rows and draw(st.integers(0, 5)) == 0:
            lat, lon = rows[-1][2], rows[-1][3]
        else:
            lat = min(max(lat0 + draw(coordinate), -90.0), 90.0)
            lon = min(max(lon0 + draw(coordinate), -180.0), 180.0)
        gs = draw(st.sampled_from([0.0, 150.0]) | st.floats(0.0, 300.0))
        course = draw(st.sampled_from([0.0, 90.0, 180.0, 270.0]) | st.floats(0.0, 360.0))
        vs = draw(st.sampled_from([0.0, 0.0, 5.0, -5.0]) | st.floats(-20.0, 20.0))
        alt = draw(st.integers(0, 12)) * step
        rows.append((f"t{k:02d}", draw(st.sampled_from(parties)), lat, lon, alt, gs, course, vs))
    return batch(rows), minima, draw(st.booleans())


def assert_same(got: list[TacticalConflict], want: list[TacticalConflict]) -> None:
    assert [(c.a, c.b) for c in got] == [(c.a, c.b) for c in want]
    for g, w in zip(got, want, strict=True):
        for name in ("tcpa_s", "dcpa_m", "t_in_s", "t_out_s"):
            assert getattr(g, name) == pytest.approx(getattr(w, name), rel=1e-6, abs=1e-6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traffic())
def test_engine_equals_brute_force_reference(case: tuple[TrackBatch, TacticalMinima, bool]) -> None:
    b, minima, same_party = case
    assert_same(
        detect_conflicts(b, minima, same_party=same_party),
        reference_conflicts(b, minima, same_party),
    )


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(80.0, 89.5),
            st.floats(-180.0, 180.0),
            st.integers(0, 4).map(lambda k: k * 150.0),
            st.floats(0.0, 300.0),
            st.floats(0.0, 360.0),
            st.sampled_from([0.0, 10.0, -10.0]),
        ),
        min_size=2,
        max_size=20,
    )
)
def test_engine_equals_reference_near_the_pole(
    rows: list[tuple[float, float, float, float, float, float]],
) -> None:
    # Far outside the region the plane is meant for, the figures lose geodesic accuracy but
    # the engine must still agree with the reference on the same plane.
    b = batch([(f"p{k}", "AB"[k % 2], *r) for k, r in enumerate(rows)])
    minima = TacticalMinima(50_000.0, 300.0, 300.0)
    assert_same(detect_conflicts(b, minima), reference_conflicts(b, minima))


def test_broad_phase_keeps_every_conflict_of_dense_syria_traffic() -> None:
    # 1,500 tracks, all 1.1 million pairs through the vectorised pair test in chunks.
    b = syria_traffic(1500, seed=7)
    plane = plane_for(b)
    tracks = plane.tracks(b.lat, b.lon, b.gs_mps, b.course_deg)
    i_all, j_all = np.triu_indices(len(b), 1)
    want: set[tuple[int, int]] = set()
    for start in range(0, i_all.shape[0], 200_000):
        i = i_all[start : start + 200_000].astype(np.int64)
        j = j_all[start : start + 200_000].astype(np.int64)
        hit = pair_test(plane, tracks, b.alt_m, b.vs_mps, i, j, MINIMA).conflict
        want |= set(zip(i[hit].tolist(), j[hit].tolist(), strict=True))
    ci, cj = candidate_pairs(plane, tracks, b, MINIMA, same_party=True)
    candidates = {(min(p), max(p)) for p in zip(ci.tolist(), cj.tolist(), strict=True)}
    assert len(candidates) == ci.shape[0]  # each pair once
    assert want <= candidates
    assert len(want) > 50
    found = detect_conflicts(b, same_party=True)
    assert {(int(c.a[1:]), int(c.b[1:])) for c in found} == want


def test_tracks_on_opposite_sides_of_the_globe_are_refused() -> None:
    # The plane's centre is the middle of the lat/lon box (0, 0); (0, 180) is its antipode.
    b = batch(
        [
            ("a", "TR", 0.0, -180.0, 100.0, 1.0, 0.0, 0.0),
            ("b", "IL", 0.0, 180.0, 100.0, 1.0, 0.0, 0.0),
        ]
    )
    with pytest.raises(ValueError, match="too far apart"):
        detect_conflicts(b)
