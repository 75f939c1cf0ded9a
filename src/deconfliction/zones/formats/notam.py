"""ICAO NOTAM text (Annex 15 / Doc 8126 format) to zone records.

One NOTAM per record: the header ``A1234/30 NOTAMN`` (``NOTAMR A1233/30`` replaces,
``NOTAMC A1233/30`` cancels), the Q-line ``FIR/QCODE/TRAFFIC/PURPOSE/SCOPE/LOWER/UPPER/CENTRE
RADIUS``, items A) to G). The area is the polygon of the coordinates in E) when it lists three
or more, a circle when E) says ``<r> NM RADIUS OF <point>``, else the Q-line's circle; the band
is F)/G) when given, else the Q-line's flight levels; C) may be ``PERM`` or carry ``EST``; D) is
a weekly schedule (``DAILY 0600-1800``, ``MON-FRI 0700-1500``, ``MON WED 0800-1200 1400-1600``).
The rule follows the Q-code: prohibited, restricted and temporary restricted areas are
``no_entry``; danger areas, warnings and reservations are ``caution``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from deconfliction.geo.model import flight_level_m
from deconfliction.geo.schedule import DAYS, parse_time_of_day
from deconfliction.zones.formats.common import (
    NM_M,
    Cancellation,
    FormatError,
    Limit,
    Parsed,
    RecordError,
    ZoneRecord,
    altitude_json,
    check_size,
    circle_json,
    dms,
    parse_limit,
    polygon_json,
    shown,
)

_HEADER = re.compile(
    r"^[ \t]*\(?[ \t]*(?P<id>[A-Z]\d{4}/\d{2})[ \t]+NOTAM(?P<kind>[NRC])"
    r"(?:[ \t]+(?P<ref>[A-Z]\d{4}/\d{2}))?",
    re.MULTILINE,
)
_Q = re.compile(
    r"^(?P<fir>[A-Z]{4})/(?P<code>Q[A-Z]{4})/(?P<traffic>[A-Z]*)/(?P<purpose>[A-Z]*)/"
    r"(?P<scope>[A-Z]*)/(?P<lower>\d{3})/(?P<upper>\d{3})/"
    r"(?P<lat>\d{4}[NS])(?P<lon>\d{5}[EW])(?P<radius>\d{3})?$"
)
_COORD = re.compile(
    r"(?<!\d)(?P<lat_d>\d{2})(?P<lat_m>\d{2})(?P<lat_s>\d{2}(?:\.\d+)?)?(?P<ns>[NS])\s?"
    r"(?P<lon_d>\d{3})(?P<lon_m>\d{2})(?P<lon_s>\d{2}(?:\.\d+)?)?(?P<ew>[EW])(?![A-Z])"
)
_RADIUS = re.compile(
    r"(?P<r>\d+(?:\.\d+)?)\s*(?P<unit>NM|KM|M)\s+RADIUS\s+(?:OF|CENTRED ON|CENTERED ON|AROUND)\s+"
)
_PERIOD = re.compile(r"^(?P<start>\d{4})-(?P<end>\d{4})$")
# Subjects (2nd and 3rd letters of the Q-code) that describe airspace, and the rule each gets.
_RULES = {
    "RP": "no_entry",  # prohibited area
    "RR": "no_entry",  # restricted area
    "RT": "no_entry",  # temporary restricted area
    "RD": "caution",  # danger area
    "RA": "caution",  # airspace reservation
    "RM": "caution",  # military operating area
}
ITEMS = "QABCDEFG"


def parse(text: str) -> Parsed:
    check_size(text)
    headers = list(_HEADER.finditer(text))
    if not headers:
        raise FormatError("no NOTAM found: expected a line such as 'A1234/30 NOTAMN'")
    parsed = Parsed()
    for i, header in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        line = text.count("\n", 0, header.start()) + 1
        where = f"line {line} ({header['id']})"
        try:
            parsed.records.append(_notam(header, text[header.end() : end], where))
        except (ValueError, ArithmeticError) as exc:
            parsed.errors.append(RecordError(where, str(exc)))
    return parsed


def _items(body: str) -> dict[str, str]:
    """Items Q) to G) in their order; a later letter is looked for after the one before."""
    found: list[tuple[str, int, int]] = []
    position = 0
    for letter in ITEMS:
        match = re.compile(rf"(?:^|(?<=\s)){letter}\)\s*").search(body, position)
        if match is not None:
            found.append((letter, match.start(), match.end()))
            position = match.end()
    items: dict[str, str] = {}
    for k, (letter, _, content_start) in enumerate(found):
        content_end = found[k + 1][1] if k + 1 < len(found) else len(body)
        items[letter] = " ".join(body[content_start:content_end].split()).rstrip(")").strip()
    return items


def _time(raw: str, what: str) -> datetime:
    digits = raw.strip()[:10]
    if not re.fullmatch(r"\d{10}", digits):
        raise ValueError(f"item {what} {shown(raw)} is not a time YYMMDDHHMM")
    try:
        return datetime.strptime(digits, "%y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"item {what} {shown(raw)} is not a valid time") from exc


def _point(match: re.Match[str]) -> tuple[float, float]:
    lat = dms(match["lat_d"], match["lat_m"], match["lat_s"], match["ns"])
    lon = dms(match["lon_d"], match["lon_m"], match["lon_s"], match["ew"])
    return lon, lat


def schedule(raw: str) -> list[dict[str, Any]]:
    """Item D) as daily periods: groups split by commas, each days then times."""
    periods: list[dict[str, Any]] = []
    for group in raw.replace(";", ",").split(","):
        words = group.split()
        if not words:
            continue
        days: list[str] = []
        times: list[str] = []
        for word in words:
            if _PERIOD.match(word):
                times.append(word)
            elif times:
                raise ValueError(f"item D) {shown(group)}: days after the times")
            elif word == "DAILY":
                days.extend(DAYS)
            elif re.fullmatch(r"[A-Z]{3}-[A-Z]{3}", word) and all(
                d in DAYS for d in word.split("-")
            ):
                first, last = (DAYS.index(d) for d in word.split("-"))
                span = (
                    range(first, last + 1)
                    if first <= last
                    else [*range(first, 7), *range(last + 1)]
                )
                days.extend(DAYS[d] for d in span)
            elif word in DAYS:
                days.append(word)
            else:
                raise ValueError(
                    f"item D) {shown(group)} is not a weekly schedule such as "
                    "'DAILY 0600-1800' or 'MON-FRI 0700-1500'"
                )
        if not days or not times:
            raise ValueError(f"item D) {shown(group)} needs days and times HHMM-HHMM")
        for period in times:
            start, end = period.split("-")
            parse_time_of_day(start, "item D) start")
            parse_time_of_day(end, "item D) end")
            periods.append(
                {
                    "days": sorted(set(days), key=DAYS.index),
                    "start": f"{start[:2]}:{start[2:]}",
                    "end": f"{end[:2]}:{end[2:]}",
                }
            )
    return periods


def _notam(header: re.Match[str], body: str, where: str) -> ZoneRecord | Cancellation:
    items = _items(body)
    q = _Q.match(items.get("Q", "").replace(" ", ""))
    if "Q" in items and q is None:
        raise ValueError(
            f"Q-line {shown(items['Q'])} is not FIR/QCODE/TRAFFIC/PURPOSE/SCOPE/LOWER/UPPER/COORD"
        )
    fir = q["fir"] if q else (items.get("A", "").split() or [""])[0]
    if not re.fullmatch(r"[A-Z]{4}", fir):
        raise ValueError("no FIR: neither a Q-line nor item A) names one")
    kind, ref = header["kind"], header["ref"]
    source_id = f"notam:{fir}:{header['id']}"
    if kind in ("R", "C") and ref is None:
        raise ValueError(
            f"NOTAM{kind} does not name the NOTAM it {'replaces' if kind == 'R' else 'cancels'}"
        )
    if kind == "C":
        return Cancellation(where, source_id, f"notam:{fir}:{ref}")
    if q is None:
        raise ValueError("no Q-line: the NOTAM does not say what or where")
    rule = _RULES.get(q["code"][1:3])
    if rule is None and q["code"][1] != "W":
        raise ValueError(f"Q-code {q['code']} does not describe an airspace restriction")
    text = items.get("E", "")
    if not text:
        raise ValueError("no item E): the NOTAM says nothing")
    zone: dict[str, Any] = {
        "name": f"{header['id']} {_headline(text)}",
        "rule": rule or "caution",  # warnings (QW..): activities to keep clear of
        "altitude": _band(items, q),
    }
    radius = _RADIUS.search(text)
    centre = _COORD.match(text, radius.end()) if radius else None
    points = [_point(m) for m in _COORD.finditer(text)]
    if radius is not None and centre is not None:
        metres = float(radius["r"]) * {"NM": NM_M, "KM": 1000.0, "M": 1.0}[radius["unit"]]
        zone["circle"] = circle_json(*_point(centre), metres)
    elif len(points) >= 3:
        zone["footprint"] = polygon_json(points, "the area in item E)")
    else:
        if q["radius"] is None or q["radius"] == "999":
            raise ValueError("no area: no coordinates in E) and no Q-line radius")
        lat = dms(q["lat"][:2], q["lat"][2:4], None, q["lat"][4])
        lon = dms(q["lon"][:3], q["lon"][3:5], None, q["lon"][5])
        zone["circle"] = circle_json(lon, lat, int(q["radius"]) * NM_M)
    if "B" not in items:
        raise ValueError("no item B): the NOTAM has no start")
    zone["valid_from"] = _time(items["B"], "B)").isoformat()
    c_item = items.get("C", "PERM")
    if c_item.strip() != "PERM":
        zone["valid_to"] = _time(c_item, "C)").isoformat()
    if items.get("D"):
        zone["schedule"] = schedule(items["D"])
    replaces = f"notam:{fir}:{ref}" if kind == "R" else None
    return ZoneRecord(where, source_id, zone, replaces)


def _headline(text: str, limit: int = 60) -> str:
    """The start of item E), cut at a word, as a name a map can show."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "..."


def _band(items: dict[str, str], q: re.Match[str]) -> dict[str, Any]:
    if "F" in items or "G" in items:
        lower = parse_limit(items.get("F", "SFC"), "item F)")
        upper = parse_limit(items["G"], "item G)") if "G" in items else None
        if upper is None:
            raise ValueError("item F) without item G): the upper limit is missing")
        return altitude_json(lower, upper)
    return altitude_json(
        Limit(flight_level_m(int(q["lower"])), "STD", "FL"),
        Limit(flight_level_m(int(q["upper"])), "STD", "FL"),
    )
