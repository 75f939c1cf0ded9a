"""What every reader shares: the records it yields, altitude limits, coordinates and arcs."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from pyproj import Geod
from shapely import Polygon
from shapely.geometry.polygon import orient

from deconfliction import geo
from deconfliction.geo.model import (
    AGL_TERRAIN_HIGH_M,
    AGL_TERRAIN_LOW_M,
    FOOT_M,
    STD_MARGIN_M,
    GeoError,
    flight_level_m,
    fmt,
    footprint_problem,
)

NM_M = 1852.0
MAX_TEXT_BYTES = 1024 * 1024
# An arc is drawn as chords at most this many degrees apart (a 0.1% radial error at 5 degrees).
ARC_STEP_DEG = 5.0
# "Unlimited" tops out at FL999, as in the NOTAM Q-line.
UNLIMITED_M = flight_level_m(999)
WGS84 = Geod(ellps="WGS84")


class FormatError(ValueError):
    """The whole text cannot be read in this format; the message says why, in one line."""


@dataclass(frozen=True)
class ZoneRecord:
    """One zone a file declares: ``zone`` is the JSON form `ZoneIn` reads (``valid_from`` may be
    missing: the import's time then), ``source_id`` names it across imports."""

    where: str
    source_id: str
    zone: dict[str, Any]
    replaces: str | None = None

    @property
    def content_hash(self) -> str:
        """Same record, same hash: a re-import of an unchanged record changes nothing."""
        canonical = json.dumps(
            [self.zone, self.replaces], sort_keys=True, separators=(",", ":"), default=str
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Cancellation:
    """A record that cancels a zone imported earlier (a NOTAMC)."""

    where: str
    source_id: str
    cancels: str


@dataclass(frozen=True)
class RecordError:
    where: str
    reason: str


@dataclass
class Parsed:
    records: list[ZoneRecord | Cancellation] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)


def shown(raw: str, limit: int = 40) -> str:
    """Input quoted in a message, cut so that a huge token cannot flood the answer."""
    text = raw.strip()
    return repr(text if len(text) <= limit else text[:limit] + "...")


def check_size(text: str) -> None:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        raise FormatError(f"the file is larger than {MAX_TEXT_BYTES} bytes")


@dataclass(frozen=True)
class Limit:
    """One altitude limit: metres in ``reference``; a reference of None (surface, unlimited)
    takes the other limit's."""

    metres: float
    reference: geo.AltitudeReference | None
    unit: str


_LIMIT = re.compile(
    r"^(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>FT|F|M)?\s*(?P<ref>AMSL|MSL|ALT|AGL|AGND|ASFC|SFC|GND|STD)?$"
)
_FL = re.compile(r"^FL\s*(?P<level>\d{1,3})$")


def parse_limit(raw: str, what: str) -> Limit:
    """'SFC', 'GND', 'UNL', 'FL95', '2500FT AMSL', '1500 ft AGL', '300m', '3500F' (feet MSL
    unless said)."""
    text = " ".join(raw.upper().split())
    if text in ("SFC", "GND", "0"):
        return Limit(0.0, None, "ft")
    if text in ("UNL", "UNLTD", "UNLIM"):
        return Limit(UNLIMITED_M, None, "FL")
    found = _FL.match(text)
    if found:
        return Limit(flight_level_m(int(found["level"])), "STD", "FL")
    found = _LIMIT.match(text)
    if found is None:
        raise GeoError(f"{what} {shown(raw)} is not an altitude such as SFC, FL95 or 2500FT AMSL")
    value = float(found["value"])
    metres = value if found["unit"] == "M" else value * FOOT_M
    unit = "m" if found["unit"] == "M" else "ft"
    ref = found["ref"]
    reference: geo.AltitudeReference = (
        "AGL" if ref in ("AGL", "AGND", "ASFC", "SFC", "GND") else "STD" if ref == "STD" else "MSL"
    )
    return Limit(metres, reference, unit)


def _msl_span(limit: Limit, reference: geo.AltitudeReference) -> tuple[float, float]:
    """The MSL heights a limit may stand for (STD and AGL widen as `geo.comparable_band`)."""
    if reference == "STD":
        return limit.metres - STD_MARGIN_M, limit.metres + STD_MARGIN_M
    if reference == "AGL":
        return limit.metres + AGL_TERRAIN_LOW_M, limit.metres + AGL_TERRAIN_HIGH_M
    return limit.metres, limit.metres


def altitude_json(lower: Limit, upper: Limit) -> dict[str, Any]:
    """The band of two limits: in their common reference, or, when they differ (1000FT AGL to
    FL95), in MSL from the lowest the lower may be to the highest the upper may be."""
    ref_low = lower.reference or upper.reference or "AGL"
    ref_high = upper.reference or lower.reference or "AGL"
    if ref_low == ref_high:
        unit = upper.unit if upper.reference is not None or lower.reference is None else lower.unit
        band = geo.AltitudeBand(lower.metres, upper.metres, ref_low)
        return {
            "lower_m": round(band.lower_m, 3),
            "upper_m": round(band.upper_m, 3),
            "reference": ref_low,
            "unit": unit,
        }
    low = _msl_span(lower, ref_low)[0]
    high = _msl_span(upper, ref_high)[1]
    band = geo.AltitudeBand(low, high, "MSL")
    return {
        "lower_m": round(band.lower_m, 3),
        "upper_m": round(band.upper_m, 3),
        "reference": "MSL",
        "unit": "m",
    }


def polygon_json(points: list[tuple[float, float]], what: str) -> dict[str, Any]:
    """A GeoJSON polygon from (lon, lat) points, closed and wound as RFC 7946 asks."""
    ring = list(points)
    if len(ring) >= 2 and ring[0] == ring[-1]:
        ring.pop()
    if len(ring) < 3:
        raise GeoError(f"{what} has {len(ring)} distinct points; a polygon needs at least 3")
    for lon, lat in ring:
        geo.model.check_lon_lat(lon, lat, what)
    polygon = orient(Polygon(ring), sign=1.0)
    problem = footprint_problem(polygon)
    if problem is not None:
        raise GeoError(f"{what}: {problem}")
    return geo.footprint_to_geojson(polygon)


def circle_json(lon: float, lat: float, radius_m: float) -> dict[str, Any]:
    circle = geo.Circle(lon, lat, radius_m)  # raises with the reason
    return {"center": [circle.lon, circle.lat], "radius_m": round(circle.radius_m, 3)}


def arc_points(
    centre: tuple[float, float],
    radius_m: float,
    start_deg: float,
    end_deg: float,
    clockwise: bool,
) -> list[tuple[float, float]]:
    """Points on the geodesic circle around ``centre`` (lon, lat) from bearing ``start_deg`` to
    ``end_deg`` (degrees from true north), both included."""
    if not (math.isfinite(radius_m) and 0.0 < radius_m <= geo.model.MAX_CIRCLE_RADIUS_M):
        raise GeoError(f"arc radius {fmt(radius_m)} m is not in (0, 2000000] m")
    if not (math.isfinite(start_deg) and math.isfinite(end_deg)):
        raise GeoError("arc angle is not a finite number")
    start, end = start_deg % 360.0, end_deg % 360.0
    sweep = (end - start) % 360.0 if clockwise else -((start - end) % 360.0)
    if sweep == 0.0:
        sweep = 360.0 if clockwise else -360.0
    steps = max(1, math.ceil(abs(sweep) / ARC_STEP_DEG))
    points: list[tuple[float, float]] = []
    for i in range(steps + 1):
        lon, lat, _ = WGS84.fwd(centre[0], centre[1], start + sweep * i / steps, radius_m)
        points.append((float(lon), float(lat)))
    return points


def bearing_and_distance(
    centre: tuple[float, float], point: tuple[float, float]
) -> tuple[float, float]:
    azimuth, _, distance = WGS84.inv(centre[0], centre[1], point[0], point[1])
    return float(azimuth) % 360.0, float(distance)


def dms(degrees: str, minutes: str | None, seconds: str | None, hemisphere: str) -> float:
    """Degrees, minutes and seconds (any with decimals) and N/S/E/W to signed degrees."""
    value = float(degrees) + float(minutes or 0) / 60.0 + float(seconds or 0) / 3600.0
    if float(minutes or 0) >= 60.0 or float(seconds or 0) >= 60.0:
        raise GeoError(f"minutes or seconds of {degrees} {minutes} {seconds} are 60 or more")
    return -value if hemisphere in ("S", "W") else value
