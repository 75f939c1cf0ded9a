"""The writers, pure: KML for Google Earth (names, colours by rule, bands in 3D) and CoT drawing
shapes for TAK (circles, closed polygons, colours, labels), read back with defusedxml."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import defusedxml.ElementTree as SafeET

from deconfliction.zones.formats import cot, geojson, kml
from deconfliction.zones.models import ZoneOut

NOW = datetime(2030, 1, 1, tzinfo=UTC)
NS = "{http://www.opengis.net/kml/2.2}"
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[36.0, 33.0], [36.2, 33.0], [36.2, 33.2], [36.0, 33.2], [36.0, 33.0]]],
}


def zone(zone_id: int, rule: str, lower: float, upper: float, **extra: Any) -> ZoneOut:
    fields: dict[str, Any] = {
        "id": zone_id,
        "owner": "IL",
        "name": f"zone {zone_id}",
        "rule": rule,
        "lead_time_s": 3600 if rule == "notify" else None,
        "footprint": SQUARE,
        "altitude": {"lower_m": lower, "upper_m": upper, "reference": "MSL", "unit": "m"},
        "valid_from": NOW,
        "valid_to": None,
        "minima": None,
        "status": "declared",
        "version": 1,
        "parties": [],
        "created_at": NOW,
        "withdrawn_at": None,
        **extra,
    }
    return ZoneOut.model_validate(fields)


def test_kml_styles_names_and_extruded_bands() -> None:
    surface = zone(1, "no_entry", 0, 3000)
    raised = zone(2, "caution", 1000, 4000)
    above_ground = zone(
        3,
        "notify",
        0,
        120,
        footprint=None,
        circle={"center": [35.5, 32.8], "radius_m": 5000},
        altitude={"lower_m": 0, "upper_m": 120, "reference": "AGL", "unit": "m"},
    )
    root = SafeET.fromstring(kml.write([surface, raised, above_ground]).encode())
    styles = {s.get("id"): s.findtext(f"{NS}PolyStyle/{NS}color") for s in root.iter(f"{NS}Style")}
    assert styles == {"no_entry": "660000ff", "notify": "6600a5ff", "caution": "6600ffff"}
    first, second, third = root.iter(f"{NS}Placemark")
    assert [p.findtext(f"{NS}name") for p in (first, second, third)] == [
        "zone 1",
        "zone 2",
        "zone 3",
    ]
    # From the surface: one polygon at the top, extruded to the ground.
    (top,) = first.iter(f"{NS}Polygon")
    assert top.findtext(f"{NS}extrude") == "1"
    assert top.findtext(f"{NS}altitudeMode") == "absolute"
    heights = {c.split(",")[2] for c in top.findtext(f".//{NS}coordinates", "").split()}
    assert heights == {"3000.0"}
    # Raised: a closed box, ceiling and floor and one wall per edge.
    polygons = list(second.iter(f"{NS}Polygon"))
    assert len(polygons) == 2 + 4
    wall = polygons[2].findtext(f".//{NS}coordinates", "").split()
    assert sorted({c.split(",")[2] for c in wall}) == ["1000.0", "4000.0"]
    assert "caution zone of IL, 1000-4000 m MSL" in second.findtext(f"{NS}description", "")
    # AGL follows the terrain.
    assert {p.findtext(f"{NS}altitudeMode") for p in third.iter(f"{NS}Polygon")} == {
        "relativeToGround"
    }


def test_cot_circle_and_polygon_drawings() -> None:
    circle = zone(
        7,
        "no_entry",
        0,
        6000,
        footprint=None,
        circle={"center": [37.63, 34.52], "radius_m": 27780},
        valid_to=NOW + timedelta(hours=2),
    )
    square = zone(8, "caution", 500, 2500)
    events = [SafeET.fromstring(e.encode()) for e in cot.write([circle, square], NOW).splitlines()]
    drawn_circle, drawn_square = events
    assert drawn_circle.get("type") == "u-d-c-c"
    assert drawn_circle.get("uid") == "deconfliction.zone.7"
    assert drawn_circle.get("stale") == "2030-01-01T02:00:00.000Z"  # the zone's end
    ellipse = drawn_circle.find("detail/shape/ellipse")
    assert ellipse is not None and ellipse.get("major") == "27780.0"
    point = drawn_circle.find("point")
    assert point is not None and (point.get("lat"), point.get("lon")) == (
        "34.5200000",
        "37.6300000",
    )
    stroke = drawn_circle.find("detail/strokeColor")
    assert stroke is not None and stroke.get("value") == str(-65536)  # opaque red
    assert drawn_square.get("type") == "u-d-f"
    assert drawn_square.get("stale") == "2030-01-02T00:00:00.000Z"  # a day: fetch again
    links = [link.get("point") for link in drawn_square.iter("link")]
    assert links[0] == links[-1] and len(links) == 5  # closed
    contact = drawn_square.find("detail/contact")
    assert contact is not None and contact.get("callsign") == "zone 8"
    fill = drawn_square.find("detail/fillColor")
    assert fill is not None and fill.get("value") == str(cot.argb((255, 255, 0), 0x60))
    marks = drawn_square.find("detail/__deconfliction")
    assert marks is not None and marks.get("lower_m") == "500.0"


def test_geojson_names_each_zone_by_its_source() -> None:
    ours = zone(4, "no_entry", 0, 100)
    imported = zone(5, "no_entry", 0, 100, source="notam:LLLL:A0101/30")
    features = geojson.write([ours, imported])["features"]
    assert [f["properties"]["source"] for f in features] == ["zone:IL/4", "notam:LLLL:A0101/30"]
    assert features[0]["geometry"] == SQUARE
