"""Zones as KML for Google Earth: one Placemark per zone, named, coloured by rule, with its
altitude band drawn in 3D: a surface-based band extruded from the ground to its top, a raised
band as a closed box (floor, ceiling and walls). AGL bands follow the terrain
(``relativeToGround``), the others are absolute (flight levels at their standard height)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from itertools import pairwise

from shapely import Polygon

from deconfliction.zones.formats.style import RULE_RGB, polygons, summary
from deconfliction.zones.models import ZoneOut

KML_NS = "http://www.opengis.net/kml/2.2"
FILL_ALPHA = 0x66


def _abgr(rgb: tuple[int, int, int], alpha: int) -> str:
    red, green, blue = rgb
    return f"{alpha:02x}{blue:02x}{green:02x}{red:02x}"


def _ring(coords: Sequence[tuple[float, ...]], altitude_m: float) -> str:
    return " ".join(f"{c[0]:.7f},{c[1]:.7f},{altitude_m:.1f}" for c in coords)


def _polygon(
    parent: ET.Element,
    coords: Sequence[tuple[float, ...]],
    altitude_m: float,
    mode: str,
    extrude: bool,
    holes: Sequence[Sequence[tuple[float, ...]]] = (),
) -> None:
    polygon = ET.SubElement(parent, "Polygon")
    ET.SubElement(polygon, "extrude").text = "1" if extrude else "0"
    ET.SubElement(polygon, "altitudeMode").text = mode
    outer = ET.SubElement(ET.SubElement(polygon, "outerBoundaryIs"), "LinearRing")
    ET.SubElement(outer, "coordinates").text = _ring(coords, altitude_m)
    for hole in holes:
        inner = ET.SubElement(ET.SubElement(polygon, "innerBoundaryIs"), "LinearRing")
        ET.SubElement(inner, "coordinates").text = _ring(hole, altitude_m)


def _band(parent: ET.Element, part: Polygon, lower_m: float, upper_m: float, mode: str) -> None:
    outer = list(part.exterior.coords)
    holes = [list(h.coords) for h in part.interiors]
    if lower_m <= 0.0:
        _polygon(parent, outer, upper_m, mode, extrude=True, holes=holes)
        return
    _polygon(parent, outer, upper_m, mode, extrude=False, holes=holes)
    _polygon(parent, outer, lower_m, mode, extrude=False, holes=holes)
    for ring in [outer, *holes]:
        for a, b in pairwise(ring):
            wall = ET.SubElement(parent, "Polygon")
            ET.SubElement(wall, "altitudeMode").text = mode
            boundary = ET.SubElement(ET.SubElement(wall, "outerBoundaryIs"), "LinearRing")
            ET.SubElement(boundary, "coordinates").text = " ".join(
                f"{lon:.7f},{lat:.7f},{alt:.1f}"
                for lon, lat, alt in (
                    (a[0], a[1], lower_m),
                    (b[0], b[1], lower_m),
                    (b[0], b[1], upper_m),
                    (a[0], a[1], upper_m),
                    (a[0], a[1], lower_m),
                )
            )


def write(zones: Sequence[ZoneOut], title: str = "deconfliction zones") -> str:
    ET.register_namespace("", KML_NS)
    root = ET.Element("kml", {"xmlns": KML_NS})
    document = ET.SubElement(root, "Document")
    ET.SubElement(document, "name").text = title
    for rule, rgb in RULE_RGB.items():
        style = ET.SubElement(document, "Style", {"id": rule})
        line = ET.SubElement(style, "LineStyle")
        ET.SubElement(line, "color").text = _abgr(rgb, 0xFF)
        ET.SubElement(line, "width").text = "2"
        ET.SubElement(ET.SubElement(style, "PolyStyle"), "color").text = _abgr(rgb, FILL_ALPHA)
    for zone in zones:
        placemark = ET.SubElement(document, "Placemark", {"id": f"zone-{zone.id}"})
        ET.SubElement(placemark, "name").text = zone.name
        ET.SubElement(placemark, "description").text = summary(zone)
        ET.SubElement(placemark, "styleUrl").text = f"#{zone.rule}"
        data = ET.SubElement(placemark, "ExtendedData")
        for key, value in (
            ("zone", str(zone.id)),
            ("owner", zone.owner),
            ("rule", zone.rule),
            ("lower_m", f"{zone.altitude['lower_m']:.1f}"),
            ("upper_m", f"{zone.altitude['upper_m']:.1f}"),
            ("reference", zone.altitude["reference"]),
        ):
            ET.SubElement(ET.SubElement(data, "Data", {"name": key}), "value").text = value
        mode = "relativeToGround" if zone.altitude["reference"] == "AGL" else "absolute"
        shapes = ET.SubElement(placemark, "MultiGeometry")
        for part in polygons(zone):
            _band(shapes, part, zone.altitude["lower_m"], zone.altitude["upper_m"], mode)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
