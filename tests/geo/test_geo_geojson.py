"""GeoJSON in and out: strict checks with messages that name the ring and the place."""

from __future__ import annotations

import math
from typing import Any

import pytest
import shapely
from shapely import MultiPolygon, Polygon

from deconfliction.geo import (
    Circle,
    GeoError,
    circle_from_json,
    footprint_from_geojson,
    footprint_to_geojson,
)

TRIANGLE = {
    "type": "Polygon",
    "coordinates": [[[36.0, 33.0], [36.2, 33.0], [36.2, 33.2], [36.0, 33.0]]],
}


def polygon(*rings: Any) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": list(rings)}


def test_polygon_with_hole_and_altitude_positions() -> None:
    shell = [[36.0, 33.0, 10.0], [37.0, 33.0, 10.0], [37.0, 34.0], [36.0, 34.0], [36.0, 33.0]]
    hole = [[36.4, 33.4], [36.6, 33.4], [36.6, 33.6], [36.4, 33.6], [36.4, 33.4]]
    footprint = footprint_from_geojson(polygon(shell, hole))
    assert isinstance(footprint, Polygon)
    assert len(footprint.interiors) == 1
    assert footprint.area == pytest.approx(1.0 - 0.04)


def test_multipolygon_round_trip_with_rfc7946_winding() -> None:
    clockwise = [[36.0, 33.0], [36.0, 33.2], [36.2, 33.2], [36.2, 33.0], [36.0, 33.0]]
    other = [[37.0, 33.0], [37.2, 33.0], [37.2, 33.2], [37.0, 33.0]]
    footprint = footprint_from_geojson(
        {"type": "MultiPolygon", "coordinates": [[clockwise], [other]]}
    )
    assert isinstance(footprint, MultiPolygon)
    out = footprint_to_geojson(footprint)
    assert out["type"] == "MultiPolygon"
    again = footprint_from_geojson(out)
    assert again.equals(footprint)
    for part in out["coordinates"]:
        assert shapely.LinearRing(part[0]).is_ccw


def test_polygon_round_trip_is_plain_json() -> None:
    out = footprint_to_geojson(footprint_from_geojson(TRIANGLE))
    assert out == TRIANGLE


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([1, 2], "not a GeoJSON object"),
        ({"type": "Point", "coordinates": [0, 0]}, "type 'Point' is not"),
        ({"type": "Polygon"}, "has no coordinates list"),
        (polygon(), "not a non-empty list of rings"),
        ({"type": "MultiPolygon", "coordinates": []}, "has no polygons"),
        (polygon("ring"), "ring 0 is not a list of positions"),
        (polygon([[0, 0], [1], [1, 1], [0, 0]]), "ring 0 position 1 is not a \\[lon, lat\\] pair"),
        (polygon([[0, 0], [1, "x"], [1, 1], [0, 0]]), "position 1 latitude is not a number"),
        (polygon([[0, 0], [1, True], [1, 1], [0, 0]]), "position 1 latitude is not a number"),
        (polygon([[0, 0], [math.nan, 1], [1, 0], [0, 0]]), "not a finite number"),
        (polygon([[0, 0], [math.inf, 1], [1, 0], [0, 0]]), "not a finite number"),
        (polygon([[0, 0], [200, 1], [1, 0], [0, 0]]), "position 1 longitude 200 is outside"),
        (polygon([[0, 0], [1, 95], [1, 0], [0, 0]]), "position 1 latitude 95 is outside"),
        (polygon([[0, 0], [1, 1], [0, 0]]), "has 3 positions; a closed ring needs at least 4"),
        (polygon([[0, 0], [1, 1], [1, 0], [0, 1]]), "ring 0 is not closed: first position"),
        (
            polygon([[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]),
            "^footprint polygon ring 0 self-intersects near \\(0.5, 0.5\\)$",
        ),
        (
            polygon(
                [[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]],
                [[1, 1], [3, 1], [3, 3], [1, 3], [1, 1]],
            ),
            "rings cross each other near",
        ),
        (
            polygon([[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]], [[3, 3], [4, 3], [4, 4], [3, 3]]),
            "hole that lies outside its outer ring near \\(3, 3\\)",
        ),
        (
            polygon(
                [[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]],
                [[1, 1], [3, 1], [3, 3], [1, 3], [1, 1]],
                [[1.5, 1.5], [2, 1.5], [2, 2], [1.5, 1.5]],
            ),
            "hole inside another hole",
        ),
        (
            polygon(
                [[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]], [[0, 2], [2, 0], [4, 2], [2, 4], [0, 2]]
            ),
            "cut in two by its holes",
        ),
        (polygon([[0, 0], [1, 0], [2, 0], [0, 0]]), "self-intersects"),
        (
            {
                "type": "MultiPolygon",
                "coordinates": [
                    [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]],
                    [[[2, 0], [3, 0], [3, 2], [2, 2], [2, 0]]],
                ],
            },
            "footprint polygons 0 and 1 overlap or share an edge",
        ),
        (
            {
                "type": "MultiPolygon",
                "coordinates": [
                    [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]],
                    [[[1, 1], [1, 1], [1, 1], [1, 1]]],
                ],
            },
            "footprint polygon 1",
        ),
    ],
)
def test_rejects_with_a_clear_sentence(obj: Any, message: str) -> None:
    with pytest.raises(GeoError, match=message) as caught:
        footprint_from_geojson(obj)
    assert "\n" not in str(caught.value)


def test_too_many_vertices_is_refused_before_building() -> None:
    ring = [[36.0 + 0.0001 * i, 33.0 + 0.00005 * (i % 2)] for i in range(10_001)]
    ring.append(ring[0])
    with pytest.raises(GeoError, match="10002 vertices; at most 10000"):
        footprint_from_geojson(polygon(ring))


def test_circle_from_json() -> None:
    assert circle_from_json({"center": [36.5, 33.1], "radius_m": 5000}) == Circle(36.5, 33.1, 5000)
    for bad, message in [
        ({"center": [36.5], "radius_m": 5}, "center is not a \\[lon, lat\\] pair"),
        ({"center": [36.5, 33.1]}, "radius_m is not a number"),
        ({"center": [36.5, 33.1], "radius_m": math.nan}, "not a finite number"),
        ({"center": [36.5, "n"], "radius_m": 5}, "latitude is not a number"),
        ({"center": [36.5, 33.1], "radius_m": 0}, "radius"),
        ("circle", "not a JSON object"),
    ]:
        with pytest.raises(GeoError, match=message):
            circle_from_json(bad)  # type: ignore[arg-type]
