"""Conservative lon/lat boxes: metres turned into degrees without ever under-covering."""

from __future__ import annotations

import math

Box = tuple[float, float, float, float]
"""(west, south, east, north) in degrees."""

# Lower bounds of metres per degree on WGS-84, so that metres -> degrees over-covers: the meridian
# arc per degree is shortest at the equator (a(1-e^2) per radian), and a parallel degree at
# latitude phi is a*cos(phi)/sqrt(1-e^2 sin^2 phi) >= a*cos(phi).
M_PER_DEG_LAT_MIN = 110_574.27
M_PER_DEG_LON_EQUATOR = 111_319.49


def grow_box(box: Box, margin_m: float) -> Box:
    """A lon/lat box containing every point within ``margin_m`` geodesic metres of ``box``.

    A path of length d changes latitude by at most d / M_PER_DEG_LAT_MIN degrees and, while it
    stays poleward-bounded by phi_max, longitude by at most d / (M_PER_DEG_LON_EQUATOR *
    cos(phi_max)); boxes that reach a pole get every longitude. Longitudes are clamped to
    -180..180 (no wrap: the engine is regional).
    """
    west, south, east, north = box
    if margin_m <= 0.0:
        return box
    dlat = margin_m / M_PER_DEG_LAT_MIN
    south, north = south - dlat, north + dlat
    if south <= -90.0 or north >= 90.0:
        return (-180.0, max(south, -90.0), 180.0, min(north, 90.0))
    cos_min = math.cos(math.radians(max(abs(south), abs(north))))
    dlon = margin_m / (M_PER_DEG_LON_EQUATOR * cos_min)
    return (max(west - dlon, -180.0), south, min(east + dlon, 180.0), north)
