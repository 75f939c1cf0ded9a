"""EUROCAE ED-269 UAS geographical zones (JSON) to zone records.

The file is ``{"features": [UASZoneVersion, ...]}`` (or the bare list). Each UASZoneVersion has
an ``identifier``, ``name``, ``restriction`` (``PROHIBITED`` -> ``no_entry``,
``REQ_AUTHORISATION`` -> ``notify`` with a lead time of ``extendedProperties.lead_time_s`` or
24 h, ``CONDITIONAL``/``NO_RESTRICTION`` -> ``caution``), one ``applicability`` (``permanent``,
``startDateTime``, ``endDateTime``, ``schedule`` of ``{"day": [...], "startTime", "endTime"}``)
and ``geometry`` items, each a zone: ``uomDimensions`` (M or FT), ``lowerLimit`` /
``upperLimit`` with ``lowerVerticalReference`` / ``upperVerticalReference`` (AGL, AMSL, WGS84,
STD) and a ``horizontalProjection``: a GeoJSON Polygon or ``{"type": "Circle", "center": [lon,
lat], "radius": metres}``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from deconfliction import geo
from deconfliction.geo.model import FOOT_M, as_float
from deconfliction.geo.schedule import schedule_from_json
from deconfliction.zones.formats.common import (
    FormatError,
    Limit,
    Parsed,
    RecordError,
    ZoneRecord,
    altitude_json,
    check_size,
    circle_json,
    shown,
)

DEFAULT_LEAD_TIME_S = 86_400
_RULES = {
    "PROHIBITED": "no_entry",
    "REQ_AUTHORISATION": "notify",
    "CONDITIONAL": "caution",
    "NO_RESTRICTION": "caution",
}
_REFERENCES: dict[str, geo.AltitudeReference] = {
    "AGL": "AGL",
    "AMSL": "MSL",
    "WGS84": "W84",
    "STD": "STD",
}


def parse(text: str) -> Parsed:
    check_size(text)
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"not JSON: {exc}") from None
    features = document.get("features") if isinstance(document, dict) else document
    if not isinstance(features, list):
        raise FormatError("an ED-269 file is an object with a 'features' list of UASZoneVersion")
    parsed = Parsed()
    for index, feature in enumerate(features):
        where = f"features[{index}]"
        if isinstance(feature, dict) and isinstance(feature.get("identifier"), str):
            where += f" ({feature['identifier'][:40]})"
        try:
            parsed.records.extend(_zones(feature, where))
        except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
            parsed.errors.append(RecordError(where, _reason(exc)))
    return parsed


def _reason(exc: Exception) -> str:
    return f"missing {exc}" if isinstance(exc, KeyError) else str(exc)


def _text(value: Any, what: str, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} is not a non-empty string")
    return value.strip()


def _zones(feature: Any, where: str) -> list[ZoneRecord]:
    if not isinstance(feature, dict):
        raise ValueError("a UASZoneVersion is an object")
    identifier = _text(feature.get("identifier"), "identifier")
    assert identifier is not None
    restriction = feature.get("restriction")
    if restriction not in _RULES:
        raise ValueError(f"restriction {shown(str(restriction))} is not one of {', '.join(_RULES)}")
    name = _text(feature.get("name"), "name", required=False) or identifier
    zone: dict[str, Any] = {"name": name[:200], "rule": _RULES[restriction]}
    if zone["rule"] == "notify":
        extended = feature.get("extendedProperties") or {}
        lead = (
            extended.get("lead_time_s", DEFAULT_LEAD_TIME_S)
            if isinstance(extended, dict)
            else DEFAULT_LEAD_TIME_S
        )
        if isinstance(lead, bool) or not isinstance(lead, int):
            raise ValueError("extendedProperties.lead_time_s is not a whole number of seconds")
        zone["lead_time_s"] = lead
    zone.update(_applicability(feature.get("applicability")))
    geometry = feature.get("geometry")
    if not isinstance(geometry, list) or not geometry:
        raise ValueError("geometry is not a non-empty list")
    records = []
    for k, part in enumerate(geometry):
        what = f"geometry[{k}]"
        try:
            shaped = {**zone, **_geometry(part)}
        except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
            raise ValueError(f"{what}: {_reason(exc)}") from None
        source = f"ed269:{identifier}" + (f"#{k}" if len(geometry) > 1 else "")
        records.append(ZoneRecord(f"{where} {what}", source, shaped))
    return records


def _time(value: Any, what: str) -> str:
    raw = _text(value, what)
    assert raw is not None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what} {shown(raw)} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ValueError(f"{what} {shown(raw)} has no time zone")
    return moment.isoformat()


def _applicability(value: Any) -> dict[str, Any]:
    if value is None or value == []:
        return {}
    if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], dict):
        raise ValueError("applicability must be a list of one period (several are not supported)")
    period = value[0]
    out: dict[str, Any] = {}
    if period.get("startDateTime") is not None:
        out["valid_from"] = _time(period["startDateTime"], "applicability startDateTime")
    if period.get("permanent") != "YES" and period.get("endDateTime") is not None:
        out["valid_to"] = _time(period["endDateTime"], "applicability endDateTime")
    schedule = period.get("schedule")
    if schedule:
        if not isinstance(schedule, list):
            raise ValueError("applicability schedule is not a list")
        days_periods = []
        for i, daily in enumerate(schedule):
            if not isinstance(daily, dict):
                raise ValueError(f"schedule[{i}] is not an object")
            days = daily.get("day")
            days = [days] if isinstance(days, str) else days
            days_periods.append(
                {"days": days, "start": daily.get("startTime"), "end": daily.get("endTime")}
            )
        schedule_from_json(days_periods)  # raises with the reason
        out["schedule"] = [
            {
                "days": p["days"],
                "start": str(p["start"]).removesuffix("Z"),
                "end": str(p["end"]).removesuffix("Z"),
            }
            for p in days_periods
        ]
    return out


def _limit(part: dict[str, Any], which: str, scale: float, unit: str) -> Limit:
    value = part.get(f"{which}Limit")
    if value is None and which == "lower":
        return Limit(0.0, None, unit)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{which}Limit is not a number")
    ref = part.get(f"{which}VerticalReference")
    if ref not in _REFERENCES:
        raise ValueError(
            f"{which}VerticalReference {shown(str(ref))} is not one of {', '.join(_REFERENCES)}"
        )
    return Limit(float(value) * scale, _REFERENCES[ref], unit)


def _geometry(part: Any) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise ValueError("not an object")
    uom = part.get("uomDimensions", "M")
    if uom not in ("M", "FT"):
        raise ValueError(f"uomDimensions {shown(str(uom))} is neither M nor FT")
    scale, unit = (1.0, "m") if uom == "M" else (FOOT_M, "ft")
    out: dict[str, Any] = {
        "altitude": altitude_json(
            _limit(part, "lower", scale, unit), _limit(part, "upper", scale, unit)
        )
    }
    projection = part.get("horizontalProjection")
    if not isinstance(projection, dict):
        raise ValueError("horizontalProjection is not an object")
    if projection.get("type") == "Circle":
        centre, radius = projection.get("center"), projection.get("radius")
        if (
            not isinstance(centre, list)
            or len(centre) != 2
            or isinstance(radius, bool)
            or not isinstance(radius, int | float)
        ):
            raise ValueError("a Circle needs center [lon, lat] and radius in metres")
        lon, lat = (as_float(c, "circle centre") for c in centre)
        out["circle"] = circle_json(lon, lat, float(radius))
    else:
        out["footprint"] = geo.footprint_to_geojson(geo.footprint_from_geojson(projection))
    return out
