"""An independent brute-force reference for strategic detection, and hypothesis strategies.

The reference shares no code with the engine's geometry: every pair is projected into its own
azimuthal equidistant CRS built by pyproj from a CRS definition, circles become 720-gons with
vertices on the geodesic circle, and distances and overlaps are shapely operations in metres.
Where it and the engine can legitimately differ (a distance within 0.1% + 1 m of the minimum,
or a circle grazing another footprint) the pair is "borderline" and not compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import shapely
from hypothesis import strategies as st
from pyproj import CRS, Geod, Transformer
from shapely import Polygon

from deconfliction.detect.strategic import GEOID_MARGIN_M, SeparationMinima
from deconfliction.geo import AltitudeBand, Circle, Footprint, Volume4D, route_to_volumes

GEOD = Geod(ellps="WGS84")
T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
# Near the UTM 36/37 zone edge, over southern Syria.
LON0, LAT0 = 36.0, 33.0
LATTICE_DEG = 0.02
BORDER_RATIO = 1e-3
BORDER_M = 1.0


@lru_cache(maxsize=256)
def _to_metres(lon0: float, lat0: float) -> Any:
    crs = CRS.from_proj4(f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +ellps=WGS84 +units=m")
    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


def _metric(fp: Footprint, transformer: Any) -> shapely.Geometry:
    if isinstance(fp, Circle):
        azimuths = np.linspace(0.0, 360.0, 720, endpoint=False)
        lons, lats, _ = GEOD.fwd(
            np.full(720, fp.lon), np.full(720, fp.lat), azimuths, np.full(720, fp.radius_m)
        )
        x, y = transformer.transform(lons, lats)
        return Polygon(np.column_stack([x, y]))
    dense = shapely.segmentize(fp, 0.005)
    return shapely.transform(
        dense, lambda c: np.column_stack(transformer.transform(c[:, 0], c[:, 1]))
    )


@dataclass(frozen=True)
class Verdict:
    conflict: bool
    borderline: bool


def reference(a: Volume4D, b: Volume4D, minima: SeparationMinima) -> Verdict:
    """Does the pair conflict, computed the slow, obvious way."""
    buffer = timedelta(seconds=minima.time_buffer_s)
    if max(a.start, b.start) - min(a.end, b.end) >= buffer:
        return Verdict(False, False)
    vertical = minima.vertical_m
    if a.altitude.reference != b.altitude.reference:
        vertical += GEOID_MARGIN_M
    low = max(a.altitude.lower_m, b.altitude.lower_m)
    if low - min(a.altitude.upper_m, b.altitude.upper_m) >= vertical:
        return Verdict(False, False)
    bounds = np.array(
        [shapely.bounds(outer(fp)) for fp in (a.footprint, b.footprint)], dtype=np.float64
    )
    lon0 = round(float(bounds[:, 0].min() + bounds[:, 2].max()) / 2.0, 2)
    lat0 = round(float(bounds[:, 1].min() + bounds[:, 3].max()) / 2.0, 2)
    transformer = _to_metres(lon0, lat0)
    shape_a, shape_b = _metric(a.footprint, transformer), _metric(b.footprint, transformer)
    horizontal = minima.horizontal_m
    has_circle = isinstance(a.footprint, Circle) or isinstance(b.footprint, Circle)
    if not has_circle:
        # Polygons: GeoJSON edges are straight in lon/lat, so overlap is decided there.
        if shapely.relate_pattern(a.footprint, b.footprint, "T********"):
            return Verdict(True, False)
        distance = float(shapely.distance(shape_a, shape_b))
        slack = BORDER_RATIO * horizontal + BORDER_M
        return Verdict(
            distance < horizontal, horizontal > 0.0 and abs(distance - horizontal) < slack
        )
    # Circles: a signed gap, negative inside.
    overlap = float(shapely.intersection(shape_a, shape_b).area)
    gap = -overlap if overlap > 0.0 else float(shapely.distance(shape_a, shape_b))
    slack = BORDER_RATIO * horizontal + BORDER_M
    return Verdict(gap < horizontal, abs(gap - horizontal) < slack)


def outer(fp: Footprint) -> shapely.Geometry:
    if isinstance(fp, Circle):
        return shapely.Point(fp.lon, fp.lat).buffer(fp.radius_m / 90_000.0)
    return fp


# -- strategies ------------------------------------------------------------------------------


@st.composite
def lattice_square(draw: st.DrawFn) -> Polygon:
    """Squares on a shared lattice: neighbours share edges and corners exactly."""
    i, j = draw(st.integers(-6, 6)), draw(st.integers(-4, 4))
    w, h = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    west, south = LON0 + i * LATTICE_DEG, LAT0 + j * LATTICE_DEG
    east, north = west + w * LATTICE_DEG, south + h * LATTICE_DEG
    return Polygon([(west, south), (east, south), (east, north), (west, north)])


@st.composite
def star(draw: st.DrawFn) -> Polygon:
    lon = draw(st.floats(LON0 - 0.15, LON0 + 0.15))
    lat = draw(st.floats(LAT0 - 0.1, LAT0 + 0.1))
    sides = draw(st.integers(3, 8))
    jitter = draw(st.lists(st.floats(0.0, 0.8), min_size=sides, max_size=sides))
    radii = draw(st.lists(st.floats(300.0, 8_000.0), min_size=sides, max_size=sides))
    angles = (np.arange(sides) + np.array(jitter)) * 2.0 * np.pi / sides
    lons, lats, _ = GEOD.fwd(
        np.full(sides, lon), np.full(sides, lat), np.degrees(angles), np.array(radii)
    )
    return Polygon(np.column_stack([lons, lats]))


@st.composite
def sliver(draw: st.DrawFn) -> Polygon:
    """A long, 1-20 m thin strip, sometimes along a lattice line."""
    west = LON0 + draw(st.integers(-6, 4)) * LATTICE_DEG
    south = LAT0 + draw(st.integers(-4, 4)) * LATTICE_DEG
    length = draw(st.floats(0.02, 0.2))
    thickness = draw(st.floats(1e-5, 2e-4))
    east, north = west + length, south + thickness
    return Polygon([(west, south), (east, south), (east, north), (west, north)])


@st.composite
def circle(draw: st.DrawFn) -> Circle:
    lon = draw(st.floats(LON0 - 0.15, LON0 + 0.15))
    lat = draw(st.floats(LAT0 - 0.1, LAT0 + 0.1))
    return Circle(lon, lat, draw(st.floats(200.0, 8_000.0)))


footprints = st.one_of(lattice_square(), star(), sliver(), circle())


@st.composite
def band(draw: st.DrawFn) -> AltitudeBand:
    """Bands on a 500 m lattice, so that some just touch."""
    lower = draw(st.integers(0, 6)) * 500.0
    thickness = draw(st.integers(1, 3)) * 500.0
    reference: Literal["W84", "MSL"] = draw(st.sampled_from(["W84", "W84", "W84", "MSL"]))
    return AltitudeBand(lower, lower + thickness, reference)


@st.composite
def window(draw: st.DrawFn) -> tuple[datetime, datetime]:
    """Windows on a 30 min lattice, so that some just touch."""
    start = T0 + timedelta(minutes=30 * draw(st.integers(0, 8)))
    return start, start + timedelta(minutes=30 * draw(st.integers(1, 4)))


@st.composite
def volumes(draw: st.DrawFn) -> list[Volume4D]:
    """An activity: a few volumes, or a route turned into leg volumes."""
    if draw(st.integers(0, 4)) == 0:
        count = draw(st.integers(2, 3))
        lons = draw(st.lists(st.floats(LON0 - 0.15, LON0 + 0.15), min_size=count, max_size=count))
        lats = draw(st.lists(st.floats(LAT0 - 0.1, LAT0 + 0.1), min_size=count, max_size=count))
        start, _ = draw(window())
        waypoints = [
            (lon, lat, start + timedelta(minutes=30 * k))
            for k, (lon, lat) in enumerate(zip(lons, lats, strict=True))
        ]
        return route_to_volumes(waypoints, draw(st.floats(200.0, 3_000.0)), draw(band()))
    result = []
    for _ in range(draw(st.integers(1, 4))):
        start, end = draw(window())
        result.append(Volume4D(draw(footprints), draw(band()), start, end))
    return result


minima_strategy = st.builds(
    SeparationMinima,
    horizontal_m=st.sampled_from([0.0, 0.0, 500.0, 2_000.0, 9_260.0]),
    vertical_m=st.sampled_from([0.0, 0.0, 300.0]),
    time_buffer_s=st.sampled_from([0.0, 0.0, 600.0]),
)
