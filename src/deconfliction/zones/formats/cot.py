"""Zones as Cursor-on-Target drawing shapes that TAK clients (ATAK, WinTAK, iTAK) show: a
circle as ``u-d-c-c`` (``<shape><ellipse>``), a polygon as a closed ``u-d-f`` freehand shape
(``<link point="lat,lon"/>`` per vertex), stroke and fill coloured by rule, the name as the
label, the band as the shape's ``height`` and in ``remarks``. One event per line; a
multipolygon is one event per part. TAK drops a drawing at its ``stale`` time, so the export is
meant to be fetched again (every day by default)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from deconfliction.zones.formats.style import RULE_RGB, polygons, summary
from deconfliction.zones.models import ZoneOut

UID_PREFIX = "deconfliction.zone."
FILL_ALPHA = 0x60
DEFAULT_STALE = timedelta(days=1)


def argb(rgb: tuple[int, int, int], alpha: int) -> int:
    """A colour as TAK writes it: a signed 32-bit ARGB integer."""
    red, green, blue = rgb
    value = (alpha << 24) | (red << 16) | (green << 8) | blue
    return value - (1 << 32) if value >= 1 << 31 else value


def cot_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _event(
    zone: ZoneOut, uid: str, kind: str, lat: float, lon: float, now: datetime, stale: timedelta
) -> ET.Element:
    end = now + stale
    if zone.valid_to is not None:
        end = max(now + timedelta(seconds=1), min(end, zone.valid_to))
    root = ET.Element(
        "event",
        {
            "version": "2.0",
            "uid": uid,
            "type": kind,
            "how": "h-e",
            "time": cot_time(now),
            "start": cot_time(now),
            "stale": cot_time(end),
        },
    )
    ET.SubElement(
        root,
        "point",
        {
            "lat": f"{lat:.7f}",
            "lon": f"{lon:.7f}",
            "hae": "9999999.0",
            "ce": "9999999.0",
            "le": "9999999.0",
        },
    )
    return root


def _style(detail: ET.Element, zone: ZoneOut) -> None:
    rgb = RULE_RGB[zone.rule]
    ET.SubElement(detail, "strokeColor", {"value": str(argb(rgb, 0xFF))})
    ET.SubElement(detail, "strokeWeight", {"value": "3.0"})
    ET.SubElement(detail, "fillColor", {"value": str(argb(rgb, FILL_ALPHA))})
    ET.SubElement(detail, "contact", {"callsign": zone.name})
    ET.SubElement(detail, "remarks").text = summary(zone)
    ET.SubElement(detail, "labels_on", {"value": "true"})
    ET.SubElement(
        detail, "height", {"value": f"{zone.altitude['upper_m'] - zone.altitude['lower_m']:.1f}"}
    )
    ET.SubElement(detail, "height_unit", {"value": "1"})  # metres
    ET.SubElement(
        detail,
        "__deconfliction",
        {
            "zone": str(zone.id),
            "owner": zone.owner,
            "rule": zone.rule,
            "lower_m": f"{zone.altitude['lower_m']:.1f}",
            "upper_m": f"{zone.altitude['upper_m']:.1f}",
            "reference": zone.altitude["reference"],
        },
    )


def zone_events(zone: ZoneOut, now: datetime, stale: timedelta = DEFAULT_STALE) -> list[str]:
    uid = f"{UID_PREFIX}{zone.id}"
    if zone.circle is not None:
        lon, lat = zone.circle["center"]
        radius = float(zone.circle["radius_m"])
        root = _event(zone, uid, "u-d-c-c", lat, lon, now, stale)
        detail = ET.SubElement(root, "detail")
        shape = ET.SubElement(detail, "shape")
        ET.SubElement(
            shape, "ellipse", {"major": f"{radius:.1f}", "minor": f"{radius:.1f}", "angle": "360"}
        )
        _style(detail, zone)
        return [_document(root)]
    events = []
    parts = polygons(zone)
    for k, part in enumerate(parts):
        centre = part.representative_point()
        part_uid = uid if len(parts) == 1 else f"{uid}.{k}"
        root = _event(zone, part_uid, "u-d-f", centre.y, centre.x, now, stale)
        detail = ET.SubElement(root, "detail")
        for lon, lat in part.exterior.coords:  # closed: the first vertex again at the end
            ET.SubElement(detail, "link", {"point": f"{lat:.7f},{lon:.7f}"})
        ET.SubElement(detail, "closed", {"value": "true"})
        _style(detail, zone)
        events.append(_document(root))
    return events


def write(zones: Sequence[ZoneOut], now: datetime, stale: timedelta = DEFAULT_STALE) -> str:
    return "\n".join(event for zone in zones for event in zone_events(zone, now, stale))


def _document(root: ET.Element) -> str:
    return '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + ET.tostring(
        root, encoding="unicode"
    )
