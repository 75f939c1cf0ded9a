"""Zone infringement prediction: footprint and altitude band, straight-line extrapolation."""

from __future__ import annotations

import pytest
import shapely
from shapely import MultiPolygon, Polygon

from deconfliction.detect.tactical import TacticalZone, ZoneEntry, predict_zone_entries

from .support import GEOD, batch

# 36.0-36.5 E, 33.0-33.5 N, 0-6,000 m.
SQUARE = Polygon([(36.0, 33.0), (36.5, 33.0), (36.5, 33.5), (36.0, 33.5)])
ZONE = TacticalZone("Z", SQUARE, 0.0, 6000.0)


def seconds_to_meridian(
    lat: float, lon: float, course: float, target_lon: float, gs: float
) -> float:
    """Time for a geodesic flight to reach a meridian (bisection on the distance)."""
    lo, hi = 0.0, 200_000.0
    for _ in range(60):
        mid = (lo + hi) / 2.0
        lon2, _, _ = GEOD.fwd(lon, lat, course, mid)
        lo, hi = (mid, hi) if lon2 < target_lon else (lo, mid)
    return lo / gs


def entries(
    rows: list[tuple[str, float, float, float, float, float, float]], look: float = 300.0
) -> list[ZoneEntry]:
    return predict_zone_entries(batch([(r[0], "TR", *r[1:]) for r in rows]), [ZONE], look)


def test_entry_time_through_the_side() -> None:
    (e,) = entries([("t", 33.25, 35.8, 3000.0, 200.0, 90.0, 0.0)])
    assert (e.track, e.zone) == ("t", "Z")
    assert e.t_entry_s == pytest.approx(
        seconds_to_meridian(33.25, 35.8, 90.0, 36.0, 200.0), abs=0.2
    )


def test_altitude_band_is_honoured() -> None:
    assert entries([("above", 33.25, 35.8, 7000.0, 200.0, 90.0, 0.0)]) == []
    # Descending 10 m/s from 7,000 m: inside the footprint from ~93 s, inside the band from 100 s.
    (e,) = entries([("down", 33.25, 35.8, 7000.0, 200.0, 90.0, -10.0)])
    assert e.t_entry_s == pytest.approx(100.0)
    # Climbing out of the band before reaching the footprint: no entry.
    assert entries([("up", 33.25, 35.8, 5500.0, 200.0, 90.0, 10.0)]) == []


def test_band_bounds_and_edges_count_as_inside() -> None:
    (e,) = entries([("top", 33.25, 36.2, 6000.0, 0.0, 0.0, 0.0)])
    assert e.t_entry_s == 0.0
    (e,) = entries([("edge", 33.25, 36.0, 3000.0, 0.0, 0.0, 0.0)])
    assert e.t_entry_s == 0.0


def test_inside_away_beyond_lookahead_and_stationary() -> None:
    found = entries(
        [
            ("inside", 33.25, 36.25, 3000.0, 250.0, 45.0, 0.0),
            ("away", 33.25, 35.8, 3000.0, 200.0, 270.0, 0.0),
            ("late", 33.25, 35.0, 3000.0, 100.0, 90.0, 0.0),
            ("parked", 33.25, 35.9, 3000.0, 0.0, 90.0, 0.0),
        ]
    )
    assert found == [ZoneEntry("inside", "Z", 0.0)]
    (late,) = entries([("late", 33.25, 35.0, 3000.0, 100.0, 90.0, 0.0)], look=1000.0)
    assert late.t_entry_s == pytest.approx(
        seconds_to_meridian(33.25, 35.0, 90.0, 36.0, 100.0), abs=0.5
    )


def test_first_entry_into_a_concave_footprint() -> None:
    # A U open to the west; a track flying east along its middle enters at the bottom of the U
    # (36.3 E), not at its arms (36.0 E), which it passes between.
    u_shape = Polygon(
        [
            (36.0, 33.0),
            (36.5, 33.0),
            (36.5, 33.5),
            (36.0, 33.5),
            (36.0, 33.4),
            (36.3, 33.4),
            (36.3, 33.1),
            (36.0, 33.1),
        ]
    )
    found = predict_zone_entries(
        batch([("t", "TR", 33.25, 35.9, 3000.0, 250.0, 90.0, 0.0)]),
        [("U", u_shape, 0.0, 6000.0)],
        300.0,
    )
    (e,) = found
    assert e.t_entry_s == pytest.approx(
        seconds_to_meridian(33.25, 35.9, 90.0, 36.3, 250.0), abs=0.2
    )


def test_multipolygon_several_zones_sorted() -> None:
    far = Polygon([(40.0, 35.0), (40.1, 35.0), (40.1, 35.1), (40.0, 35.1)])
    multi = MultiPolygon([shapely.box(36.6, 33.2, 36.7, 33.3), far])
    b = batch(
        [
            ("b", "TR", 33.25, 35.8, 3000.0, 200.0, 90.0, 0.0),
            ("a", "IL", 35.05, 40.05, 100.0, 0.0, 0.0, 0.0),
        ]
    )
    found = predict_zone_entries(
        b, [("M", multi, 0.0, 500.0), ZONE, ("low", SQUARE, 0.0, 50.0)], 600.0
    )
    assert [(e.track, e.zone) for e in found] == [("a", "M"), ("b", "Z")]
    assert found[0].t_entry_s == 0.0


def test_bad_zones_and_lookahead() -> None:
    b = batch([("t", "TR", 33.25, 35.8, 3000.0, 200.0, 90.0, 0.0)])
    with pytest.raises(ValueError, match="altitude band"):
        predict_zone_entries(b, [("Z", SQUARE, 100.0, 50.0)], 300.0)
    with pytest.raises(ValueError, match="invalid"):
        bow_tie = Polygon([(36.0, 33.0), (36.5, 33.5), (36.5, 33.0), (36.0, 33.5)])
        predict_zone_entries(b, [("Z", bow_tie, 0.0, 50.0)], 300.0)
    with pytest.raises(ValueError, match="Polygon"):
        predict_zone_entries(b, [("Z", shapely.Point(36.0, 33.0), 0.0, 50.0)], 300.0)
    with pytest.raises(ValueError, match="lookahead_s"):
        predict_zone_entries(b, [ZONE], 0.0)
    assert predict_zone_entries(b, [], 300.0) == []
