"""OpenAir airspace files (the glider pilots' format, as in the Winpilot specification) to zone
records.

A record starts at ``AC <class>``; ``AN`` names it, ``AL``/``AH`` give its limits; ``DP``
points, ``V X=<centre>`` and ``V D=+|-`` set the centre and direction of the arcs ``DA
<radius NM>, <from deg>, <to deg>`` and ``DB <from point>, <to point>``; ``DC <radius NM>``
alone is a circle (kept exact). ``*`` starts a comment. Classes P, R and GP (prohibited,
restricted, gliders prohibited) are ``no_entry``; every other class is ``caution``. OpenAir
carries no time: an imported zone is valid from the import on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from deconfliction.geo.model import GeoError
from deconfliction.zones.formats.common import (
    NM_M,
    FormatError,
    Parsed,
    RecordError,
    ZoneRecord,
    altitude_json,
    arc_points,
    bearing_and_distance,
    check_size,
    circle_json,
    dms,
    parse_limit,
    polygon_json,
    shown,
)

_COORD = re.compile(
    r"^\s*(?P<lat_d>\d{1,2}):(?P<lat_m>\d{1,2}(?:\.\d+)?)(?::(?P<lat_s>\d{1,2}(?:\.\d+)?))?\s*"
    r"(?P<ns>[NS])\s*,?\s*(?P<lon_d>\d{1,3}):(?P<lon_m>\d{1,2}(?:\.\d+)?)"
    r"(?::(?P<lon_s>\d{1,2}(?:\.\d+)?))?\s*(?P<ew>[EW])\s*$",
    re.IGNORECASE,
)
NO_ENTRY_CLASSES = {"P", "R", "GP"}
# Commands that only style or label a drawing, or give frequencies: nothing for a zone.
_IGNORED = {"AT", "AY", "AF", "AG", "SP", "SB", "AR", "AX"}


def coordinate(raw: str) -> tuple[float, float]:
    """'33:12:30 N 035:48:00 E' or '33:12.5N 035:48.0E' to (lon, lat)."""
    found = _COORD.match(raw)
    if found is None:
        raise GeoError(f"{shown(raw)} is not a coordinate such as 33:12:30 N 035:48:00 E")
    lat = dms(found["lat_d"], found["lat_m"], found["lat_s"], found["ns"].upper())
    lon = dms(found["lon_d"], found["lon_m"], found["lon_s"], found["ew"].upper())
    return lon, lat


@dataclass
class _Draft:
    line: int
    airspace_class: str
    name: str | None = None
    lower: str | None = None
    upper: str | None = None
    points: list[tuple[float, float]] = field(default_factory=list)
    circle: tuple[tuple[float, float], float] | None = None
    centre: tuple[float, float] | None = None
    clockwise: bool = True
    error: str | None = None


def parse(text: str) -> Parsed:
    check_size(text)
    drafts: list[_Draft] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("*", 1)[0].strip()
        if not line:
            continue
        command, _, argument = line.partition(" ")
        command = command.upper()
        argument = argument.strip()
        if command == "AC":
            drafts.append(_Draft(number, argument.upper()))
            continue
        if not drafts:
            raise FormatError(f"line {number}: {command} before the first AC record")
        draft = drafts[-1]
        if draft.error is not None:
            continue
        try:
            _command(draft, command, argument)
        except (ValueError, ArithmeticError) as exc:
            draft.error = f"line {number}: {exc}"
    if not drafts:
        raise FormatError("no OpenAir record found: expected a line such as 'AC R'")
    parsed = Parsed()
    seen: dict[str, int] = {}
    for draft in drafts:
        where = f"line {draft.line} ({draft.name or 'unnamed'})"
        try:
            zone = _zone(draft)
        except (ValueError, ArithmeticError) as exc:
            parsed.errors.append(RecordError(where, str(exc)))
            continue
        seen[zone["name"]] = seen.get(zone["name"], 0) + 1
        count = seen[zone["name"]]
        source = f"openair:{zone['name']}" + (f"#{count}" if count > 1 else "")
        parsed.records.append(ZoneRecord(where, source, zone))
    return parsed


def _number(raw: str, what: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise GeoError(f"{what} {shown(raw)} is not a number") from None


def _command(draft: _Draft, command: str, argument: str) -> None:
    if command == "AN":
        draft.name = argument[:200]
    elif command == "AL":
        draft.lower = argument
    elif command == "AH":
        draft.upper = argument
    elif command == "DP":
        draft.points.append(coordinate(argument))
    elif command == "V":
        key, _, value = argument.partition("=")
        key = key.strip().upper()
        if key == "X":
            draft.centre = coordinate(value)
        elif key == "D":
            if value.strip() not in ("+", "-"):
                raise GeoError(f"V D={shown(value)} is neither + nor -")
            draft.clockwise = value.strip() == "+"
        elif key not in ("W", "Z"):
            raise GeoError(f"V {shown(key)}= is not a variable this reader knows (X, D)")
    elif command == "DA":
        parts = argument.split(",")
        if len(parts) != 3:
            raise GeoError("DA needs radius, start angle, end angle")
        radius, start, end = (_number(p, "DA value") for p in parts)
        draft.points.extend(
            arc_points(_centre(draft, "DA"), radius * NM_M, start, end, draft.clockwise)
        )
    elif command == "DB":
        parts = argument.split(",")
        if len(parts) != 2:
            raise GeoError("DB needs two coordinates separated by a comma")
        first, last = coordinate(parts[0]), coordinate(parts[1])
        centre = _centre(draft, "DB")
        start, radius = bearing_and_distance(centre, first)
        end, _ = bearing_and_distance(centre, last)
        arc = arc_points(centre, radius, start, end, draft.clockwise)
        draft.points.extend([first, *arc[1:-1], last])
    elif command == "DC":
        draft.circle = (_centre(draft, "DC"), _number(argument, "DC radius") * NM_M)
    elif command not in _IGNORED:
        raise GeoError(f"{command} is not an OpenAir command")


def _centre(draft: _Draft, command: str) -> tuple[float, float]:
    if draft.centre is None:
        raise GeoError(f"{command} before any V X=<centre>")
    return draft.centre


def _zone(draft: _Draft) -> dict[str, Any]:
    if draft.error is not None:
        raise GeoError(draft.error)
    if not draft.name:
        raise GeoError("no AN name")
    if draft.lower is None or draft.upper is None:
        raise GeoError("AL and AH (lower and upper limits) are both needed")
    zone: dict[str, Any] = {
        "name": draft.name,
        "rule": "no_entry" if draft.airspace_class in NO_ENTRY_CLASSES else "caution",
        "altitude": altitude_json(parse_limit(draft.lower, "AL"), parse_limit(draft.upper, "AH")),
    }
    if draft.circle is not None:
        if draft.points:
            raise GeoError("the record mixes a DC circle with points and arcs")
        (lon, lat), radius = draft.circle
        zone["circle"] = circle_json(lon, lat, radius)
    else:
        zone["footprint"] = polygon_json(draft.points, "the area")
    return zone
