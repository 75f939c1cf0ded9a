"""Metric geometry: projections, outer polygons of circles, distances against the geodesic."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely import Point, Polygon

from deconfliction.geo import (
    Circle,
    Footprint,
    GeoError,
    LocalProjection,
    horizontal_distance_m,
    outer_polygon,
)

GEOD = Geod(ellps="WGS84")


def geodesic_circle(
    circle: Circle, radius: float, count: int = 720
) -> tuple[np.ndarray, np.ndarray]:
    azimuths = np.linspace(0.0, 360.0, count, endpoint=False)
    lons, lats, _ = GEOD.fwd(
        np.full(count, circle.lon), np.full(count, circle.lat), azimuths, np.full(count, radius)
    )
    return np.asarray(lons), np.asarray(lats)


def _boundary(
    fp: Polygon, step_deg: float, near: tuple[float, float] | None = None, reach: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    line = fp.boundary
    if near is not None:
        box = (near[0] - reach, near[1] - reach, near[0] + reach, near[1] + reach)
        line = shapely.clip_by_rect(line, *box)
    coords = shapely.get_coordinates(shapely.segmentize(line, step_deg))
    return coords[:, 0], coords[:, 1]


def _closest(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
) -> tuple[float, tuple[float, float], tuple[float, float]]:
    grid = np.meshgrid(np.arange(len(a[0])), np.arange(len(b[0])), indexing="ij")
    i, j = grid[0].ravel(), grid[1].ravel()
    _, _, distance = GEOD.inv(a[0][i], a[1][i], b[0][j], b[1][j])
    best = int(np.argmin(distance))
    return (
        float(distance[best]),
        (float(a[0][i[best]]), float(a[1][i[best]])),
        (float(b[0][j[best]]), float(b[1][j[best]])),
    )


# (step, reach) of each sampling stage around the closest pair of the previous one.
STAGES = ((0.0002, 0.01), (0.00001, 0.0005))


def sampled_distance(a: Polygon, b: Footprint) -> float:
    """Minimum geodesic distance between sampled boundaries: coarse everywhere, then finer and
    finer around the closest pair, down to ~1 m spacing (an upper bound, tight to millimetres).
    A circle is its centre, its radius subtracted at the end."""
    if isinstance(b, Circle):
        centre = (np.array([b.lon]), np.array([b.lat]))
        distance, near, _ = _closest(_boundary(a, 0.005), centre)
        for step, reach in STAGES:
            distance, near, _ = _closest(_boundary(a, step, near, reach), centre)
        return distance - b.radius_m
    distance, near_a, near_b = _closest(_boundary(a, 0.005), _boundary(b, 0.005))
    for step, reach in STAGES:
        distance, near_a, near_b = _closest(
            _boundary(a, step, near_a, reach), _boundary(b, step, near_b, reach)
        )
    return distance


def test_distance_from_the_centre_is_geodesic() -> None:
    proj = LocalProjection(36.0, 33.0)
    for azimuth, distance in [(0.0, 1_000.0), (77.0, 50_000.0), (200.0, 300_000.0)]:
        lon, lat, _ = GEOD.fwd(36.0, 33.0, azimuth, distance)
        x, y = proj.point_local(lon, lat)
        assert math.hypot(x, y) == pytest.approx(distance, rel=1e-9)


def test_round_trip_and_repr() -> None:
    proj = LocalProjection(36.0, 33.0)
    square = Polygon([(36.0, 33.0), (36.2, 33.0), (36.2, 33.2), (36.0, 33.2)])
    back = proj.to_lonlat(proj.to_local(square))
    assert shapely.equals_exact(back, square, tolerance=1e-9)
    assert repr(proj) == "LocalProjection(36.0, 33.0)"
    with pytest.raises(GeoError, match="projection centre"):
        LocalProjection(200.0, 0.0)
    with pytest.raises(GeoError, match="at least one footprint"):
        LocalProjection.around()


def test_around_snaps_to_even_degrees() -> None:
    proj = LocalProjection.around(Circle(36.3, 33.6, 5000.0), Circle(37.9, 33.9, 5000.0))
    assert (proj.lon0, proj.lat0) == (38.0, 34.0)


@settings(max_examples=40, deadline=None)
@given(
    lon=st.floats(-170.0, 170.0),
    lat=st.floats(-70.0, 70.0),
    radius=st.sampled_from([100.0, 5_000.0, 50_000.0, 200_000.0, 2_000_000.0]),
)
def test_outer_polygon_contains_the_circle_and_hugs_it(
    lon: float, lat: float, radius: float
) -> None:
    try:
        circle = Circle(lon, lat, radius)
    except GeoError:
        return  # too close to the antimeridian for this radius
    outer = outer_polygon(circle)
    lons, lats = geodesic_circle(circle, radius)
    assert shapely.contains_xy(outer, lons, lats).all()
    # Not much bigger: a ring 0.5% outside the circle is outside the polygon.
    lons, lats = geodesic_circle(circle, radius * 1.005)
    assert not shapely.contains_xy(outer, lons, lats).any()


def test_outer_polygon_of_a_polygon_is_itself() -> None:
    square = Polygon([(36.0, 33.0), (36.2, 33.0), (36.2, 33.2), (36.0, 33.2)])
    assert outer_polygon(square) is square


@pytest.mark.parametrize("radius", [300.0, 5_000.0, 200_000.0, 2_000_000.0])
def test_circle_in_metres_is_within_a_metre(radius: float) -> None:
    circle = Circle(36.0, 33.0, radius)
    local = LocalProjection(36.0, 33.0).footprint_local(circle)
    ring = shapely.get_coordinates(local.exterior)
    assert np.hypot(ring[:, 0], ring[:, 1]) == pytest.approx(radius, rel=1e-9)
    # Inscribed: the deepest point of each side (its middle) is less than 1 m inside.
    middles = (ring[:-1] + ring[1:]) / 2.0
    assert radius - np.hypot(middles[:, 0], middles[:, 1]).min() < 1.0


def test_circle_distances_are_exact() -> None:
    a, b = Circle(35.9, 33.1, 4_000.0), Circle(36.2, 33.15, 6_000.0)
    _, _, centres = GEOD.inv(a.lon, a.lat, b.lon, b.lat)
    assert horizontal_distance_m(a, b) == pytest.approx(centres - 10_000.0, abs=1e-6)
    assert horizontal_distance_m(a, b) == horizontal_distance_m(b, a)
    assert horizontal_distance_m(a, Circle(35.95, 33.1, 4_000.0)) == 0.0


@settings(max_examples=25, deadline=None)
@given(
    lon=st.floats(35.5, 36.5),
    lat=st.floats(32.0, 37.0),
    size=st.floats(0.02, 0.3),
    gap=st.floats(0.001, 0.4),
    shift=st.floats(-0.3, 0.3),
    use_circle=st.booleans(),
)
def test_distance_matches_the_geodesic_across_the_36e_zone_edge(
    lon: float, lat: float, size: float, gap: float, shift: float, use_circle: bool
) -> None:
    """A footprint west of another, often on both sides of 36 E (UTM 36/37): the local plane
    agrees with sampled geodesic distances to well under 1%."""
    west = Polygon([(lon - size, lat), (lon, lat + size / 3), (lon - size / 2, lat + size)])
    east_lon = lon + gap
    east: Footprint
    if use_circle:
        east = Circle(east_lon + 0.05, lat + shift, 5_000.0)
    else:
        east = Polygon(
            [
                (east_lon, lat + shift),
                (east_lon + size, lat + shift),
                (east_lon, lat + shift + size),
            ]
        )
    expected = sampled_distance(west, east)
    got = horizontal_distance_m(west, east)
    if expected > 0.0 and not shapely.intersects(west, outer_polygon(east)):
        # Plane error (rel) plus the split lon/lat edges, within 0.4 m * tan(lat) (abs).
        assert got == pytest.approx(expected, rel=2e-4, abs=0.5)
    assert got == horizontal_distance_m(east, west)


def test_touching_and_overlapping_polygons_are_zero() -> None:
    a = Polygon([(36.0, 33.0), (36.1, 33.0), (36.1, 33.1), (36.0, 33.1)])
    b = Polygon([(36.1, 33.0), (36.2, 33.0), (36.2, 33.1), (36.1, 33.1)])
    assert horizontal_distance_m(a, b) == 0.0
    assert horizontal_distance_m(a, a) == 0.0
    assert horizontal_distance_m(a, Circle(36.05, 33.05, 100.0)) == 0.0
    assert horizontal_distance_m(Point(0, 0).buffer(1.0), Point(0, 3).buffer(1.0)) > 100_000.0
