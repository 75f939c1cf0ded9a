"""Metric geometry: projections, outer polygons of circles, distances against the geodesic."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely import MultiPolygon, Point, Polygon

from deconfliction.geo import (
    Circle,
    Footprint,
    GeoError,
    LocalProjection,
    horizontal_distance_m,
    outer_polygon,
)
from deconfliction.geo.projection import (
    SEGMENT_DEG,
    _split_edges,
    plane_constants,
    plane_xy,
    separations,
    snapped_centre,
    snapped_centres,
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


@settings(max_examples=40, deadline=None)
@given(
    lon0=st.floats(-150.0, 150.0),
    lat0=st.floats(-75.0, 75.0),
    azimuths=st.lists(st.floats(0.0, 360.0), min_size=8, max_size=8),
    fractions=st.lists(st.floats(0.0, 1.0), min_size=8, max_size=8),
)
def test_closed_form_plane_agrees_with_proj(
    lon0: float, lat0: float, azimuths: list[float], fractions: list[float]
) -> None:
    """The plane separations() uses is PROJ's ellipsoidal AEQD to 2 cm within 300 km of the
    centre and to 3e-6 of the distance from it (plus 1 mm) within 1,000 km. The millimetre:
    a point a fraction of a millimetre from the centre can come out up to ~0.9 mm off (found
    by hypothesis: 0.25 mm from lon -71.3, lat 37.55), far below any separation minimum."""
    proj = LocalProjection(lon0, lat0)
    constants = np.array(plane_constants(lon0, lat0))
    for reach, tolerance in ((300_000.0, 0.02), (1_000_000.0, None)):
        distance = np.array(fractions) * reach
        lon, lat, _ = GEOD.fwd(np.full(8, lon0), np.full(8, lat0), np.array(azimuths), distance)
        x, y = plane_xy(np.asarray(lon), np.asarray(lat), constants)
        want_x, want_y = proj.transform_points(np.asarray(lon), np.asarray(lat))
        error = np.hypot(x - want_x, y - want_y)
        assert (error <= (tolerance if tolerance is not None else 3e-6 * distance + 1e-3)).all()


def test_the_closed_form_plane_keeps_its_centre_and_scale() -> None:
    constants = np.array(plane_constants(36.0, 33.0))
    x, y = plane_xy(np.array([36.0]), np.array([33.0]), constants)
    assert (x[0], y[0]) == pytest.approx((0.0, 0.0), abs=1e-6)
    lon, lat, _ = GEOD.fwd(36.0, 33.0, 30.0, 1_000.0)
    x, y = plane_xy(np.array([lon]), np.array([lat]), constants)
    assert math.hypot(x[0], y[0]) == pytest.approx(1_000.0, abs=1e-6)


@settings(max_examples=50, deadline=None)
@given(
    corners=st.lists(
        st.tuples(st.floats(35.0, 37.0), st.floats(32.0, 34.0)),
        min_size=3,
        max_size=12,
        unique=True,
    )
)
def test_split_edges_is_segmentize(corners: list[tuple[float, float]]) -> None:
    """Two rings one after the other, split as GEOS does (which also drops repeated points,
    hence distinct corners here)."""
    ring = np.array([*corners, corners[0]], dtype=np.float64)
    two = np.concatenate([ring, ring[::-1] + 0.5])
    owner = np.repeat(np.arange(2), len(ring))
    vertices, ring_of = _split_edges(two, owner)
    for number, part in enumerate((ring, ring[::-1] + 0.5)):
        want = shapely.get_coordinates(shapely.segmentize(shapely.LineString(part), SEGMENT_DEG))
        np.testing.assert_allclose(vertices[ring_of == number], want, rtol=0, atol=1e-12)


def _holed_and_multi() -> list[Footprint]:
    frame = Polygon(
        [(36.0, 33.0), (36.3, 33.0), (36.3, 33.3), (36.0, 33.3)],
        [[(36.1, 33.1), (36.2, 33.1), (36.2, 33.2), (36.1, 33.2)]],
    )
    pair = MultiPolygon(
        [
            Polygon([(36.5, 33.0), (36.6, 33.0), (36.6, 33.1)]),
            Polygon([(36.7, 33.2), (36.9, 33.2), (36.9, 33.4), (36.7, 33.4)]),
        ]
    )
    return [frame, pair]


def test_separations_of_holes_and_multipolygons_match_proj() -> None:
    """Footprints with holes or several parts take the rebuild path; a polygon in a hole is
    apart from the frame around it. Distances agree with PROJ's plane to a centimetre."""
    frame, pair = _holed_and_multi()
    in_hole = Polygon([(36.13, 33.13), (36.17, 33.13), (36.17, 33.17), (36.13, 33.17)])
    near_pair = Circle(36.62, 33.3, 2_000.0)
    square = Polygon([(36.0, 33.5), (36.1, 33.5), (36.1, 33.6), (36.0, 33.6)])
    first: list[Footprint] = [frame, frame, pair, pair, square, frame]
    second: list[Footprint] = [in_hole, pair, near_pair, square, in_hole, near_pair]
    centres = [snapped_centre(a) for a in first]
    overlapping, distance = separations(first, second, centres)
    assert not overlapping.any()
    for a, b, centre, got in zip(first, second, centres, distance.tolist(), strict=True):
        proj = LocalProjection(*centre)
        far = b if not isinstance(b, Circle) else Point(proj.point_local(b.lon, b.lat))
        radius = b.radius_m if isinstance(b, Circle) else 0.0
        want = (
            shapely.distance(
                proj.footprint_local(a), far if isinstance(b, Circle) else proj.footprint_local(b)
            )
            - radius
        )
        assert got == pytest.approx(want, abs=0.01)
        assert got > 0.0


def test_snapped_centres_round_halves_to_even_and_never_give_minus_zero() -> None:
    boxes = np.array([[-1.2, -0.9, -0.8, -0.7], [2.0, 4.0, 4.0, 6.0], [34.9, 32.9, 35.1, 33.1]])
    centres = snapped_centres(boxes)
    # 1.5 -> 2, 2.5 -> 2, 17.5 -> 18, 16.5 -> 16 (as round() does), times two degrees.
    assert centres == [(0.0, 0.0), (4.0, 4.0), (36.0, 32.0)]
    assert all(math.copysign(1.0, value) == 1.0 for value in centres[0])
    assert snapped_centre(Polygon([(-1.2, -0.9), (-0.8, -0.9), (-0.8, -0.7)])) == (0.0, 0.0)
