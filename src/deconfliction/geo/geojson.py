"""GeoJSON footprints and JSON circles in and out, with strict checks on the way in.

Structure is checked before shapely sees the data, because shapely silently closes open rings and
accepts NaN, and the user deserves to hear about the exact ring that is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import shapely
from shapely import MultiPolygon, Polygon

from deconfliction.geo.model import (
    MAX_VERTICES,
    Circle,
    GeoError,
    check_lon_lat,
    fmt,
    footprint_problem,
)

Ring = list[tuple[float, float]]


def _number(value: object, what: str) -> float:
    # bool is an int subclass; true/false in a coordinate is a client bug, not 1/0.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GeoError(f"{what} is not a number")
    return float(value)


def _ring(raw: object, label: str) -> Ring:
    if not isinstance(raw, list | tuple):
        raise GeoError(f"{label} is not a list of positions")
    ring: Ring = []
    for index, position in enumerate(raw):
        what = f"{label} position {index}"
        if not isinstance(position, list | tuple) or not 2 <= len(position) <= 3:
            raise GeoError(f"{what} is not a [lon, lat] pair")
        lon = _number(position[0], f"{what} longitude")
        lat = _number(position[1], f"{what} latitude")
        check_lon_lat(lon, lat, what)
        ring.append((lon, lat))
    if len(ring) < 4:
        raise GeoError(f"{label} has {len(ring)} positions; a closed ring needs at least 4")
    if ring[0] != ring[-1]:
        first, last = ring[0], ring[-1]
        raise GeoError(
            f"{label} is not closed: first position ({fmt(first[0])}, {fmt(first[1])}) "
            f"differs from last ({fmt(last[0])}, {fmt(last[1])})"
        )
    return ring


def _polygon(raw: object, label: str) -> Polygon:
    if not isinstance(raw, list | tuple) or not raw:
        raise GeoError(f"{label} is not a non-empty list of rings")
    rings = [_ring(ring, f"{label} ring {index}") for index, ring in enumerate(raw)]
    return Polygon(rings[0], rings[1:])


def footprint_from_geojson(obj: Mapping[str, Any]) -> Polygon | MultiPolygon:
    """A GeoJSON Polygon or MultiPolygon geometry as a valid shapely footprint."""
    if not isinstance(obj, Mapping):
        raise GeoError("footprint is not a GeoJSON object")
    kind = obj.get("type")
    coordinates = obj.get("coordinates")
    if kind not in ("Polygon", "MultiPolygon"):
        raise GeoError(f"footprint type {kind!r} is not 'Polygon' or 'MultiPolygon'")
    if not isinstance(coordinates, list | tuple):
        raise GeoError(f"footprint {kind} has no coordinates list")
    # Count before building so that a huge payload is refused cheaply.
    count = sum(
        len(ring)
        for polygon in (coordinates if kind == "MultiPolygon" else [coordinates])
        if isinstance(polygon, list | tuple)
        for ring in polygon
        if isinstance(ring, list | tuple)
    )
    if count > MAX_VERTICES:
        raise GeoError(f"footprint has {count} vertices; at most {MAX_VERTICES} are allowed")
    footprint: Polygon | MultiPolygon
    if kind == "Polygon":
        footprint = _polygon(coordinates, "footprint polygon")
    else:
        if not coordinates:
            raise GeoError("footprint MultiPolygon has no polygons")
        footprint = MultiPolygon(
            [
                _polygon(polygon, f"footprint polygon {index}")
                for index, polygon in enumerate(coordinates)
            ]
        )
    problem = footprint_problem(footprint)
    if problem is not None:
        raise GeoError(problem)
    return footprint


def footprint_to_geojson(fp: Polygon | MultiPolygon) -> dict[str, Any]:
    """GeoJSON with RFC 7946 winding (outer rings counter-clockwise, holes clockwise)."""
    oriented = shapely.orient_polygons(fp)

    def rings(poly: Polygon) -> list[list[list[float]]]:
        return [shapely.get_coordinates(ring).tolist() for ring in [poly.exterior, *poly.interiors]]

    if isinstance(oriented, Polygon):
        return {"type": "Polygon", "coordinates": rings(oriented)}
    return {"type": "MultiPolygon", "coordinates": [rings(part) for part in oriented.geoms]}


def circle_from_json(obj: Mapping[str, Any]) -> Circle:
    """``{"center": [lon, lat], "radius_m": r}`` as a :class:`Circle`."""
    if not isinstance(obj, Mapping):
        raise GeoError("circle is not a JSON object")
    center = obj.get("center")
    if not isinstance(center, list | tuple) or len(center) != 2:
        raise GeoError("circle center is not a [lon, lat] pair")
    lon = _number(center[0], "circle centre longitude")
    lat = _number(center[1], "circle centre latitude")
    radius = _number(obj.get("radius_m"), "circle radius_m")
    if not math.isfinite(radius):
        raise GeoError("circle radius_m is not a finite number")
    return Circle(lon, lat, radius)
