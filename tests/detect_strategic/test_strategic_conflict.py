"""The conflict rule: strict gaps in every dimension, touching semantics, the reported overlap."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely import MultiPolygon, Polygon

from deconfliction.detect.strategic import (
    GEOID_MARGIN_M,
    Overlap,
    SeparationMinima,
    conflict,
    pairwise_conflicts,
)
from deconfliction.geo import AltitudeBand, Circle, Footprint, GeoError, Volume4D
from tests.detect_strategic.reference import T0, band, footprints, reference, window

GEOD = Geod(ellps="WGS84")
ZERO = SeparationMinima(0.0, 0.0, 0.0)
WEST = Polygon([(36.0, 33.0), (36.1, 33.0), (36.1, 33.1), (36.0, 33.1)])
EAST = Polygon([(36.1, 33.0), (36.2, 33.0), (36.2, 33.1), (36.1, 33.1)])
CORNER = Polygon([(36.1, 33.1), (36.2, 33.1), (36.2, 33.2), (36.1, 33.2)])
BAND = AltitudeBand(1000.0, 3000.0)


def vol(
    footprint: Footprint = WEST,
    altitude: AltitudeBand = BAND,
    start_h: float = 0.0,
    end_h: float = 2.0,
) -> Volume4D:
    return Volume4D(footprint, altitude, T0 + timedelta(hours=start_h), T0 + timedelta(hours=end_h))


def test_minima_are_validated() -> None:
    for bad in ({"horizontal_m": -1.0}, {"vertical_m": float("nan")}, {"time_buffer_s": 1e400}):
        values = {"horizontal_m": 0.0, "vertical_m": 0.0, "time_buffer_s": 0.0} | bad
        with pytest.raises(GeoError, match="separation minimum"):
            SeparationMinima(**values)


def test_overlapping_interiors_always_conflict() -> None:
    overlap = conflict(vol(), vol(), ZERO)
    assert overlap is not None
    assert overlap.distance_m == 0.0
    assert (overlap.lower_m, overlap.upper_m) == (1000.0, 3000.0)
    assert (overlap.start, overlap.end) == (T0, T0 + timedelta(hours=2))
    assert overlap.region.area == pytest.approx(WEST.area, rel=1e-6)


@pytest.mark.parametrize("other", [EAST, CORNER])
def test_shared_edge_or_corner_needs_a_positive_horizontal_minimum(other: Polygon) -> None:
    assert conflict(vol(WEST), vol(other), ZERO) is None
    overlap = conflict(vol(WEST), vol(other), SeparationMinima(1.0, 0.0, 0.0))
    assert overlap is not None
    assert overlap.distance_m == 0.0
    assert overlap.region.area > 0.0


def test_bands_that_touch_need_a_positive_vertical_minimum() -> None:
    low, high = vol(altitude=AltitudeBand(0.0, 1000.0)), vol(altitude=AltitudeBand(1000.0, 2000.0))
    assert conflict(low, high, ZERO) is None
    overlap = conflict(low, high, SeparationMinima(0.0, 300.0, 0.0))
    assert overlap is not None
    # Each band's part within 300 m of the other.
    assert (overlap.lower_m, overlap.upper_m) == (700.0, 1300.0)
    assert (
        conflict(low, vol(altitude=AltitudeBand(1300.0, 2000.0)), SeparationMinima(0, 300, 0))
        is None
    )
    assert conflict(low, vol(altitude=AltitudeBand(1299.0, 2000.0)), SeparationMinima(0, 300, 0))


def test_windows_that_touch_need_a_positive_buffer() -> None:
    first, second = vol(start_h=0.0, end_h=1.0), vol(start_h=1.0, end_h=2.0)
    assert conflict(first, second, ZERO) is None
    overlap = conflict(first, second, SeparationMinima(0.0, 0.0, 600.0))
    assert overlap is not None
    assert (overlap.start, overlap.end) == (
        T0 + timedelta(minutes=50),
        T0 + timedelta(minutes=70),
    )
    later = vol(start_h=1.0 + 600 / 3600, end_h=2.0)
    assert conflict(first, later, SeparationMinima(0.0, 0.0, 600.0)) is None


def test_intervals_are_clipped_to_the_span_of_both() -> None:
    overlap = conflict(
        vol(altitude=AltitudeBand(0.0, 5000.0), start_h=0, end_h=5),
        vol(altitude=AltitudeBand(1000.0, 2000.0), start_h=1, end_h=2),
        SeparationMinima(0.0, 300.0, 1800.0),
    )
    assert overlap is not None
    assert (overlap.lower_m, overlap.upper_m) == (700.0, 2300.0)
    assert (overlap.start, overlap.end) == (T0 + timedelta(minutes=30), T0 + timedelta(hours=2.5))


def test_mixed_references_widen_the_vertical_minimum_by_the_geoid_margin() -> None:
    low = vol(altitude=AltitudeBand(0.0, 1000.0, "MSL"))
    gap = GEOID_MARGIN_M - 1.0
    assert conflict(low, vol(altitude=AltitudeBand(1000.0 + gap, 2000.0, "W84")), ZERO)
    assert conflict(low, vol(altitude=AltitudeBand(1000.0 + gap, 2000.0, "MSL")), ZERO) is None
    assert conflict(low, vol(altitude=AltitudeBand(1000.0 + GEOID_MARGIN_M, 2000.0)), ZERO) is None


def test_horizontal_minimum_is_strict() -> None:
    a = Circle(36.0, 33.0, 1_000.0)
    lon, lat, _ = GEOD.fwd(36.0, 33.0, 90.0, 5_000.0)
    b = Circle(lon, lat, 1_000.0)
    distance = GEOD.inv(a.lon, a.lat, b.lon, b.lat)[2] - 2_000.0
    assert conflict(vol(a), vol(b), SeparationMinima(distance, 0, 0)) is None
    overlap = conflict(vol(a), vol(b), SeparationMinima(distance + 0.01, 0, 0))
    assert overlap is not None
    assert overlap.distance_m == pytest.approx(3_000.0, abs=1e-6)


def test_circles_that_just_touch() -> None:
    a = Circle(36.0, 33.0, 1.0)
    lon, lat, _ = GEOD.fwd(36.0, 33.0, 45.0, 4_000.0)
    centres = GEOD.inv(36.0, 33.0, lon, lat)[2]
    # Halves of a float are exact, so the gap is exactly 0 in either order.
    a, b = Circle(36.0, 33.0, centres / 2.0), Circle(lon, lat, centres / 2.0)
    assert conflict(vol(a), vol(b), ZERO) is None
    assert conflict(vol(b), vol(a), ZERO) is None
    assert conflict(vol(a), vol(b), SeparationMinima(0.5, 0, 0)) is not None


def test_circle_against_polygons() -> None:
    inside = Circle(36.05, 33.05, 500.0)
    assert conflict(vol(WEST), vol(inside), ZERO) is not None
    assert conflict(vol(inside), vol(WEST), ZERO) is not None
    # 1 km east of WEST's east edge, radius 900 m: 100 m apart.
    lon, _, _ = GEOD.fwd(36.1, 33.05, 90.0, 1_000.0)
    near = Circle(lon, 33.05, 900.0)
    assert conflict(vol(WEST), vol(near), ZERO) is None
    overlap = conflict(vol(WEST), vol(near), SeparationMinima(101.0, 0, 0))
    assert overlap is not None
    assert overlap.distance_m == pytest.approx(100.0, abs=0.5)
    assert conflict(vol(WEST), vol(near), SeparationMinima(99.0, 0, 0)) is None


def test_region_is_each_part_within_the_minimum_of_the_other() -> None:
    overlap = conflict(vol(WEST), vol(EAST), SeparationMinima(1_000.0, 0, 0))
    assert overlap is not None
    region = overlap.region
    # A strip on each side of the shared edge, ~1 km (0.0107 deg at 33 N) wide each way.
    west, south, east, north = region.bounds
    # Drawn from outside: ~0.1% of the minimum wider, and decimetres where edges were split.
    assert west == pytest.approx(36.1 - 1_000 / 93_400, abs=2e-5)
    assert east == pytest.approx(36.1 + 1_000 / 93_400, abs=2e-5)
    assert (south, north) == pytest.approx((33.0, 33.1), abs=1e-5)
    assert region is overlap.region  # drawn once


def test_overlap_equality_ignores_the_drawing() -> None:
    first = conflict(vol(WEST), vol(EAST), SeparationMinima(10.0, 0, 0))
    second = conflict(vol(WEST), vol(EAST), SeparationMinima(10.0, 0, 0))
    assert isinstance(first, Overlap)
    assert first == second
    assert "draw_region" not in repr(first)


def test_batch_equals_one_by_one() -> None:
    others = [
        vol(EAST),
        vol(CORNER),
        vol(Circle(36.3, 33.3, 2_000.0)),
        vol(WEST, start_h=5, end_h=6),
    ]
    minima = SeparationMinima(5_000.0, 0.0, 0.0)
    first = vol(WEST)
    pairs = [(first, other) for other in others] + [(other, first) for other in others]
    assert pairwise_conflicts(pairs, minima) == [conflict(a, b, minima) for a, b in pairs]
    assert pairwise_conflicts([], minima) == []


@settings(max_examples=300, deadline=None)
@given(
    a=footprints,
    b=footprints,
    band_a=band(),
    band_b=band(),
    window_a=window(),
    window_b=window(),
    horizontal=st.sampled_from([0.0, 500.0, 3_000.0]),
    vertical=st.sampled_from([0.0, 300.0]),
    buffer=st.sampled_from([0.0, 900.0]),
)
def test_agrees_with_the_independent_reference(
    a: Footprint,
    b: Footprint,
    band_a: AltitudeBand,
    band_b: AltitudeBand,
    window_a: tuple,  # type: ignore[type-arg]
    window_b: tuple,  # type: ignore[type-arg]
    horizontal: float,
    vertical: float,
    buffer: float,
) -> None:
    first, second = Volume4D(a, band_a, *window_a), Volume4D(b, band_b, *window_b)
    minima = SeparationMinima(horizontal, vertical, buffer)
    verdict = reference(first, second, minima)
    found = conflict(first, second, minima)
    if not verdict.borderline:
        assert (found is not None) == verdict.conflict
    if found is not None:
        assert found.lower_m < found.upper_m
        assert found.start < found.end
        assert isinstance(found.region, Polygon | MultiPolygon)
        assert not found.region.is_empty
        assert shapely.is_valid(found.region)


def test_overlap_thinner_than_rounding_still_has_a_region() -> None:
    below = math.nextafter(33.1, 0.0)  # one float below WEST's north edge
    sliver = Polygon([(36.0, below), (36.1, below), (36.1, 33.2), (36.0, 33.2)])
    overlap = conflict(vol(WEST), vol(sliver), ZERO)
    assert overlap is not None  # the interiors do overlap, by one float
    assert isinstance(overlap.region, Polygon)
    assert overlap.region.area > 0.0


def test_regions_of_corner_touching_squares_are_valid() -> None:
    """A case hypothesis found: parts that nearly touch must not cross back in degrees."""
    a = Polygon([(36.0, 33.04), (36.02, 33.04), (36.02, 33.06), (36.0, 33.06)])
    b = Polygon([(36.02, 33.02), (36.04, 33.02), (36.04, 33.04), (36.02, 33.04)])
    for minima in (SeparationMinima(500.0, 0, 0), SeparationMinima(1.0, 0, 0)):
        overlap = conflict(vol(a), vol(b), minima)
        assert overlap is not None
        assert shapely.is_valid(overlap.region)
        assert not overlap.region.is_empty


FRAME = Polygon(
    [(36.0, 33.0), (36.3, 33.0), (36.3, 33.3), (36.0, 33.3)],
    [[(36.1, 33.1), (36.2, 33.1), (36.2, 33.2), (36.1, 33.2)]],
)
ISLANDS = MultiPolygon(
    [
        Polygon([(36.5, 33.0), (36.6, 33.0), (36.6, 33.1)]),
        Polygon([(36.7, 33.2), (36.9, 33.2), (36.9, 33.4), (36.7, 33.4)]),
    ]
)


@pytest.mark.parametrize("horizontal", [0.0, 2_000.0, 5_000.0, 9_260.0, 20_000.0])
@pytest.mark.parametrize(
    "other",
    [
        Polygon([(36.13, 33.13), (36.17, 33.13), (36.17, 33.17), (36.13, 33.17)]),  # in the hole
        Circle(36.15, 33.15, 3_000.0),  # in the hole, reaching out with larger minima
        Circle(36.62, 33.3, 2_000.0),
        Polygon([(36.35, 33.05), (36.45, 33.05), (36.45, 33.15)]),
        ISLANDS,
    ],
)
@pytest.mark.parametrize("first", [FRAME, ISLANDS])
def test_holes_and_multipolygons_agree_with_the_reference(
    first: Polygon | MultiPolygon, other: Footprint, horizontal: float
) -> None:
    minima = SeparationMinima(horizontal, 0.0, 0.0)
    verdict = reference(vol(first), vol(other), minima)
    found = conflict(vol(first), vol(other), minima)
    if not verdict.borderline:
        assert (found is not None) == verdict.conflict
    assert pairwise_conflicts([(vol(first), vol(other))], minima) == [found]
