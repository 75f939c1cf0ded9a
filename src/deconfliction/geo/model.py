"""Value types of the geometry core: altitude bands, circles, footprints and Volume4D.

Every constructor validates its input and raises :class:`GeoError` with a one-line sentence a duty
officer can act on, so that nothing malformed ever reaches the detection engines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TypeAlias

import numpy as np
import shapely
from shapely import MultiPolygon, Polygon

from deconfliction.geo.boxes import grow_box

MIN_ALTITUDE_M = -1000.0
MAX_ALTITUDE_M = 100_000.0
MAX_CIRCLE_RADIUS_M = 2_000_000.0
MAX_VERTICES = 10_000


class GeoError(ValueError):
    """Bad geometric input; the message is a clear one-line sentence."""


AltitudeReference: TypeAlias = Literal["W84", "MSL", "STD", "AGL"]
ALTITUDE_REFERENCES: tuple[AltitudeReference, ...] = ("W84", "MSL", "STD", "AGL")


def fmt(value: float) -> str:
    """A number as people write it in messages: 36.1, 3000, not 36.100000000000001."""
    rounded = round(value, 6)
    return str(int(rounded)) if rounded == int(rounded) else repr(rounded)


def as_float(value: object, what: str) -> float:
    """A plain float (numpy scalars included); bool and non-numbers are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise GeoError(f"{what} is not a number")
    return float(value)


def check_lon_lat(lon: float, lat: float, what: str) -> None:
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise GeoError(f"{what} has a coordinate that is not a finite number")
    if not -180.0 <= lon <= 180.0:
        raise GeoError(f"{what} longitude {fmt(lon)} is outside -180..180")
    if not -90.0 <= lat <= 90.0:
        raise GeoError(f"{what} latitude {fmt(lat)} is outside -90..90")


@dataclass(frozen=True, slots=True)
class AltitudeBand:
    """A vertical slab in metres; ``reference`` says whether heights are above the WGS-84
    ellipsoid (``W84``), mean sea level (``MSL``), the ISA standard pressure datum (``STD``:
    flight levels, FL100 = 3048 m) or the ground below (``AGL``). Detection compares bands
    after :func:`comparable_band`."""

    lower_m: float
    upper_m: float
    reference: AltitudeReference = "W84"

    def __post_init__(self) -> None:
        # Plain floats, so that numpy scalars never leak into messages, JSON or PROJ strings.
        object.__setattr__(self, "lower_m", as_float(self.lower_m, "altitude lower_m"))
        object.__setattr__(self, "upper_m", as_float(self.upper_m, "altitude upper_m"))
        if not (math.isfinite(self.lower_m) and math.isfinite(self.upper_m)):
            raise GeoError("altitude band has a bound that is not a finite number")
        if self.lower_m >= self.upper_m:
            raise GeoError(
                f"altitude band upside down: lower {fmt(self.lower_m)} m >= "
                f"upper {fmt(self.upper_m)} m"
            )
        for bound in (self.lower_m, self.upper_m):
            if not MIN_ALTITUDE_M <= bound <= MAX_ALTITUDE_M:
                raise GeoError(
                    f"altitude {fmt(bound)} m is outside {fmt(MIN_ALTITUDE_M)}.."
                    f"{fmt(MAX_ALTITUDE_M)} m"
                )
        if self.reference not in ALTITUDE_REFERENCES:
            raise GeoError(
                f"altitude reference {self.reference!r} is not one of "
                + ", ".join(repr(r) for r in ALTITUDE_REFERENCES)
            )


@dataclass(frozen=True, slots=True)
class Circle:
    """A geodesic disc: every point within ``radius_m`` metres (on the WGS-84 ellipsoid) of the
    centre."""

    lon: float
    lat: float
    radius_m: float

    def __post_init__(self) -> None:
        for name in ("lon", "lat", "radius_m"):
            object.__setattr__(self, name, as_float(getattr(self, name), f"circle {name}"))
        check_lon_lat(self.lon, self.lat, "circle centre")
        if not math.isfinite(self.radius_m) or not 0.0 < self.radius_m <= MAX_CIRCLE_RADIUS_M:
            raise GeoError(
                f"circle radius {self.radius_m} m is not in (0, {fmt(MAX_CIRCLE_RADIUS_M)}] m"
            )
        # Circles are drawn in lon/lat for storage and cells; one that wraps cannot be.
        west, south, east, north = grow_box((self.lon, self.lat, self.lon, self.lat), self.radius_m)
        if west <= -180.0 or east >= 180.0 or south <= -90.0 or north >= 90.0:
            raise GeoError(
                f"circle around ({fmt(self.lon)}, {fmt(self.lat)}) with radius "
                f"{fmt(self.radius_m)} m reaches the antimeridian or a pole; split the area"
            )


Footprint: TypeAlias = Polygon | MultiPolygon | Circle
"""Horizontal extent of a volume; shapely geometries are in lon/lat degrees, edges straight in
lon/lat as GeoJSON (RFC 7946) defines them."""


def _coord(x: float, y: float) -> str:
    return f"({fmt(x)}, {fmt(y)})"


def _reason_location(reason: str) -> tuple[str, str]:
    """Split shapely's "Self-intersection[36.1 33.2]" into the name and "(36.1, 33.2)"."""
    name, _, rest = reason.partition("[")
    parts = rest.rstrip("]").split()
    if len(parts) >= 2:
        return name, " near " + _coord(float(parts[0]), float(parts[1]))
    return name, ""


def _polygon_problem(poly: Polygon, label: str) -> str | None:
    """Why one polygon is unusable, as a sentence; None when it is fine."""
    reason = shapely.is_valid_reason(poly)
    if reason != "Valid Geometry":
        name, near = _reason_location(reason)
        rings = [poly.exterior, *poly.interiors]
        if "Self-intersection" in name:
            for index, ring in enumerate(rings):
                if not ring.is_simple:
                    return f"{label} ring {index} self-intersects{near}"
            return f"{label} rings cross each other{near}"
        if name == "Hole lies outside shell":
            return f"{label} has a hole that lies outside its outer ring{near}"
        if name == "Holes are nested":
            return f"{label} has a hole inside another hole{near}"
        if name == "Interior is disconnected":
            return f"{label} is cut in two by its holes{near}"
        if name == "Too few points":
            return f"{label} has a ring with fewer than 3 distinct positions{near}"
        return f"{label} is invalid: {reason}"
    if poly.area <= 0.0:
        return f"{label} has zero area"
    return None


def footprint_problem(fp: Polygon | MultiPolygon) -> str | None:
    """Why a shapely footprint is unusable, as a one-line sentence; None when it is fine."""
    if not isinstance(fp, Polygon | MultiPolygon):
        return f"footprint is a {type(fp).__name__}, not a Polygon, MultiPolygon or Circle"
    if fp.is_empty:
        return "footprint is empty"
    coords = shapely.get_coordinates(fp)
    if len(coords) > MAX_VERTICES:
        return f"footprint has {len(coords)} vertices; at most {MAX_VERTICES} are allowed"
    if not np.isfinite(coords).all():
        return "footprint has a coordinate that is not a finite number"
    west, south, east, north = fp.bounds
    if west < -180.0 or east > 180.0:
        return f"footprint longitude {fmt(west if west < -180.0 else east)} is outside -180..180"
    if south < -90.0 or north > 90.0:
        return f"footprint latitude {fmt(south if south < -90.0 else north)} is outside -90..90"
    if isinstance(fp, Polygon):
        return _polygon_problem(fp, "footprint polygon")
    parts = list(fp.geoms)
    for index, part in enumerate(parts):
        problem = _polygon_problem(part, f"footprint polygon {index}")
        if problem is not None:
            return problem
    reason = shapely.is_valid_reason(fp)
    if reason != "Valid Geometry":
        _, near = _reason_location(reason)
        for i, first in enumerate(parts):
            for j in range(i + 1, len(parts)):
                if shapely.relate_pattern(first, parts[j], "T********") or shapely.relate_pattern(
                    first, parts[j], "****1****"
                ):
                    return f"footprint polygons {i} and {j} overlap or share an edge{near}"
        return f"footprint multipolygon is invalid: {reason}"
    return None


def check_utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise GeoError(f"{what} time {moment.isoformat()} has no time zone; give it in UTC")
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Volume4D:
    """Footprint x altitude band x time window [start, end] (UTC; aware times are converted)."""

    footprint: Footprint
    altitude: AltitudeBand
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.footprint, Circle):
            problem = footprint_problem(self.footprint)
            if problem is not None:
                raise GeoError(problem)
        if not isinstance(self.altitude, AltitudeBand):
            raise GeoError("volume altitude is not an AltitudeBand")
        # Frozen dataclass: normalising to UTC needs the object-level setter.
        object.__setattr__(self, "start", check_utc(self.start, "start"))
        object.__setattr__(self, "end", check_utc(self.end, "end"))
        if self.end <= self.start:
            raise GeoError(
                f"time window inverted or empty: end {self.end.isoformat()} <= "
                f"start {self.start.isoformat()}"
            )


FOOT_M = 0.3048
# A flight level is a pressure altitude: it sits above or below its MSL height by about 8.3 m per
# hPa of QNH away from 1013.25. QNH between 977 and 1049 hPa (beyond the area's records) keeps
# that within 300 m, so a flight-level band is compared as MSL widened by this margin.
STD_MARGIN_M = 300.0
# Without a terrain model, ground under an AGL band is taken anywhere between the lowest land
# (Dead Sea shore, -430 m) and this height (Mount Hermon is 2,814 m); the band is widened to
# cover both, and conflicts against it say so.
AGL_TERRAIN_LOW_M = -430.0
AGL_TERRAIN_HIGH_M = 3000.0


def flight_level_m(level: float) -> float:
    """FL95 -> 2895.6 m of standard pressure altitude."""
    return level * 100.0 * FOOT_M


@dataclass(frozen=True, slots=True)
class ComparableBand:
    """A band as detection compares it (W84 or MSL), with the margin it was widened by."""

    band: AltitudeBand
    margin_note: str | None


def comparable_band(band: AltitudeBand) -> ComparableBand:
    """The explicit conversion of any band to one detection can compare with W84/MSL bands.

    W84 and MSL stay as they are (their difference, the geoid, is the strategic engine's own
    margin). STD becomes MSL widened by ``STD_MARGIN_M`` both ways; AGL becomes MSL from the
    lowest to the highest terrain assumed (``AGL_TERRAIN_*``), because the terrain is unknown.
    """
    if band.reference in ("W84", "MSL"):
        return ComparableBand(band, None)
    if band.reference == "STD":
        widened = AltitudeBand(
            max(MIN_ALTITUDE_M, band.lower_m - STD_MARGIN_M),
            min(MAX_ALTITUDE_M, band.upper_m + STD_MARGIN_M),
            "MSL",
        )
        note = f"flight levels compared as MSL widened by {fmt(STD_MARGIN_M)} m (QNH unknown)"
        return ComparableBand(widened, note)
    widened = AltitudeBand(
        max(MIN_ALTITUDE_M, band.lower_m + AGL_TERRAIN_LOW_M),
        min(MAX_ALTITUDE_M, band.upper_m + AGL_TERRAIN_HIGH_M),
        "MSL",
    )
    note = (
        f"AGL band compared as MSL over terrain from {fmt(AGL_TERRAIN_LOW_M)} m to "
        f"{fmt(AGL_TERRAIN_HIGH_M)} m (terrain unknown)"
    )
    return ComparableBand(widened, note)
