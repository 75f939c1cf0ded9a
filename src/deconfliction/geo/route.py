"""4D routes into volumes: one corridor volume per leg."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from itertools import pairwise

import numpy as np
import shapely
from shapely import LineString, MultiPolygon, Polygon

from deconfliction.geo.model import (
    AltitudeBand,
    GeoError,
    Volume4D,
    check_lon_lat,
    check_utc,
    fmt,
    footprint_problem,
)
from deconfliction.geo.projection import GEOD, LocalProjection

MAX_HALF_WIDTH_M = 200_000.0
EARTH_RADIUS_M = 6_371_008.8
_QUAD_SEGS = 8
# Plane pieces of the corridor outline before going back to lon/lat: short enough that the
# lon/lat straight pieces hug the plane outline to centimetres.
_OUTLINE_STEP_M = 2_000.0


def _leg_footprint(
    start: tuple[float, float], end: tuple[float, float], half_width_m: float, leg: int
) -> Polygon | MultiPolygon:
    """The set of points within ``half_width_m`` of the geodesic leg, covered from outside.

    The plane is centred on the geodesic midpoint, where AEQD draws the whole leg as a straight
    line through the centre. Elsewhere AEQD stretches across-track distances by up to
    (rho/R)/sin(rho/R), so the buffer is widened by that factor at the farthest point, and by
    1/cos(pi/(4*quad_segs)) so that the polygonal round caps lie outside the true ones.
    """
    azimuth, _, length = GEOD.inv(start[0], start[1], end[0], end[1])
    mid_lon, mid_lat, _ = GEOD.fwd(start[0], start[1], azimuth, length / 2.0)
    proj = LocalProjection(float(mid_lon), float(mid_lat))
    reach = math.hypot(length / 2.0, half_width_m) / EARTH_RADIUS_M
    stretch = reach / math.sin(reach) if reach > 0.0 else 1.0
    width = half_width_m * stretch * 1.0001 / math.cos(math.pi / (4 * _QUAD_SEGS))
    line = LineString([proj.point_local(*start), proj.point_local(*end)])
    corridor = shapely.segmentize(line.buffer(width, quad_segs=_QUAD_SEGS), _OUTLINE_STEP_M)
    footprint = proj.to_lonlat(corridor)
    west, _, east, _ = footprint.bounds
    if east - west > 180.0 or not np.isfinite(shapely.get_coordinates(footprint)).all():
        raise GeoError(f"route leg {leg} crosses the antimeridian or a pole")
    problem = footprint_problem(footprint)
    if problem is not None:
        raise GeoError(f"route leg {leg} gives an unusable corridor: {problem}")
    result: Polygon | MultiPolygon = footprint
    return result


def route_to_volumes(
    waypoints: Sequence[tuple[float, float, datetime]],
    half_width_m: float,
    altitude: AltitudeBand,
) -> list[Volume4D]:
    """One volume per leg: the corridor of ``half_width_m`` around the geodesic from waypoint i
    to i+1, for the time window [t_i, t_{i+1}] and the route's altitude band."""
    if len(waypoints) < 2:
        raise GeoError(f"a route needs at least 2 waypoints, got {len(waypoints)}")
    if not math.isfinite(half_width_m) or not 0.0 < half_width_m <= MAX_HALF_WIDTH_M:
        raise GeoError(
            f"route half width {half_width_m} m is not in (0, {fmt(MAX_HALF_WIDTH_M)}] m"
        )
    for index, (lon, lat, moment) in enumerate(waypoints):
        check_lon_lat(lon, lat, f"route waypoint {index}")
        check_utc(moment, f"route waypoint {index}")
    volumes: list[Volume4D] = []
    for leg, (first, second) in enumerate(pairwise(waypoints)):
        if second[2] <= first[2]:
            raise GeoError(
                f"route waypoint {leg + 1} time {second[2].isoformat()} is not after waypoint "
                f"{leg} time {first[2].isoformat()}"
            )
        footprint = _leg_footprint(first[:2], second[:2], half_width_m, leg)
        volumes.append(Volume4D(footprint, altitude, first[2], second[2]))
    return volumes
