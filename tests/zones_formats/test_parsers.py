"""Each reader on the samples: the zones, rules, shapes, bands, validity and schedules it finds,
the records it refuses (with where and why), and fuzzing: no crash, a clear error."""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from shapely.geometry import shape

from deconfliction.geo.model import FOOT_M, flight_level_m
from deconfliction.zones.formats import READERS, Cancellation, FormatError, Parsed, ZoneRecord
from deconfliction.zones.formats.common import WGS84
from deconfliction.zones.models import ZoneIn
from tests.zones_formats.support import sample


def zones_of(parsed: Parsed) -> dict[str, ZoneRecord]:
    return {r.source_id: r for r in parsed.records if isinstance(r, ZoneRecord)}


def test_notam_polygon_flight_levels_schedule_and_estimated_end() -> None:
    parsed = READERS["notam"](sample("notam_first.txt"))
    assert parsed.errors == []
    zones = zones_of(parsed)
    assert list(zones) == [
        "notam:LLLL:A0101/30",
        "notam:LLLL:A0102/30",
        "notam:LLLL:A0103/30",
    ]
    first = zones["notam:LLLL:A0101/30"].zone
    assert first["rule"] == "no_entry"  # QRT..: temporary restricted area
    assert first["altitude"] == {
        "lower_m": 0.0,
        "upper_m": pytest.approx(flight_level_m(120)),
        "reference": "STD",
        "unit": "FL",
    }
    polygon = shape(first["footprint"])
    assert polygon.bounds == pytest.approx((35 + 40 / 60, 33.0, 35 + 55 / 60, 33 + 10 / 60))
    assert first["valid_from"] == "2030-01-01T06:00:00+00:00"
    assert first["valid_to"] == "2030-06-30T23:59:00+00:00"  # C) ... EST: the estimate
    assert first["schedule"] == [
        {"days": ["MON", "TUE", "WED", "THU", "FRI"], "start": "06:00", "end": "18:00"}
    ]
    ZoneIn.model_validate(first)  # what the parser yields is what a zone accepts


def test_notam_circle_from_item_e_agl_to_flight_level_and_perm() -> None:
    missile = zones_of(READERS["notam"](sample("notam_first.txt")))["notam:LLLL:A0102/30"].zone
    assert missile["rule"] == "caution"  # QW..: a warning
    assert missile["circle"]["center"] == pytest.approx([35 + 20 / 60, 32 + 40 / 60])
    assert missile["circle"]["radius_m"] == pytest.approx(5 * 1852)
    assert "valid_to" not in missile  # PERM
    # 1000 FT AGL to FL250: two references, so MSL from the lowest to the highest they may be.
    assert missile["altitude"]["reference"] == "MSL"
    assert missile["altitude"]["lower_m"] == pytest.approx(1000 * FOOT_M - 430)
    assert missile["altitude"]["upper_m"] == pytest.approx(flight_level_m(250) + 300)


def test_notam_q_line_circle_and_overnight_schedule() -> None:
    danger = zones_of(READERS["notam"](sample("notam_first.txt")))["notam:LLLL:A0103/30"].zone
    assert danger["circle"] == {"center": [36.0, pytest.approx(33 + 20 / 60)], "radius_m": 27780.0}
    assert danger["altitude"]["lower_m"] == pytest.approx(flight_level_m(50))
    assert danger["schedule"] == [
        {
            "days": ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"],
            "start": "22:00",
            "end": "04:00",
        }
    ]


def test_notam_replacement_and_cancellation() -> None:
    records = READERS["notam"](sample("notam_update.txt")).records
    replacement, cancellation = records
    assert isinstance(replacement, ZoneRecord)
    assert replacement.replaces == "notam:LLLL:A0101/30"
    assert replacement.zone["altitude"]["upper_m"] == pytest.approx(flight_level_m(150))
    assert cancellation == Cancellation(
        "line 9 (A0105/30)", "notam:LLLL:A0105/30", "notam:LLLL:A0103/30"
    )


def test_notam_bad_records_say_where_and_why() -> None:
    parsed = READERS["notam"](sample("notam_bad.txt"))
    assert [(e.where, e.reason) for e in parsed.errors] == [
        ("line 1 (A0201/30)", "Q-code QMRLC does not describe an airspace restriction"),
        ("line 6 (A0202/30)", "item B) '3013010600' is not a valid time"),
        (
            "line 11 (A0203/30)",
            "item D) 'SR-SS' is not a weekly schedule such as 'DAILY 0600-1800' or "
            "'MON-FRI 0700-1500'",
        ),
    ]
    (good,) = parsed.records
    assert isinstance(good, ZoneRecord)
    assert good.zone["altitude"] == {
        "lower_m": 0.0,
        "upper_m": pytest.approx(8000 * FOOT_M),
        "reference": "MSL",
        "unit": "ft",
    }


def test_openair_arcs_sector_and_circle() -> None:
    parsed = READERS["openair"](sample("openair.txt"))
    assert parsed.errors == []
    zones = zones_of(parsed)
    box = zones["openair:LLR-QUNEITRA TEST"].zone
    assert box["rule"] == "no_entry"
    ring = box["footprint"]["coordinates"][0]
    # The DB arc bulges east of 35:55 E around the centre 33:05 N, 35:55 E at 5' of latitude.
    east = max(lon for lon, _ in ring)
    _, _, radius = WGS84.inv(35 + 55 / 60, 33 + 5 / 60, 35 + 55 / 60, 33 + 10 / 60)
    lon_east, _, _ = WGS84.fwd(35 + 55 / 60, 33 + 5 / 60, 90.0, radius)
    assert east == pytest.approx(lon_east, abs=1e-6)
    assert box["altitude"]["reference"] == "STD"
    sector = zones["openair:LLD-SECTOR"].zone
    polygon = shape(sector["footprint"])
    # A quarter disc of 10 NM: its area is a quarter of the circle's (within the chords).
    local_area = abs(WGS84.geometry_area_perimeter(polygon)[0])
    assert local_area == pytest.approx(math.pi * (10 * 1852) ** 2 / 4, rel=0.01)
    assert sector["altitude"] == {
        "lower_m": pytest.approx(762.0),
        "upper_m": pytest.approx(2895.6),
        "reference": "MSL",
        "unit": "ft",
    }
    circle = zones["openair:T4 CIRCLE"].zone
    assert circle["circle"]["radius_m"] == pytest.approx(15 * 1852)
    assert circle["rule"] == "no_entry"


def test_openair_bad_records() -> None:
    parsed = READERS["openair"](sample("openair_bad.txt"))
    assert [(e.where, e.reason) for e in parsed.errors] == [
        ("line 1 (NO LIMITS)", "AL and AH (lower and upper limits) are both needed"),
        ("line 7 (BAD COORDINATE)", "line 11: minutes or seconds of 33 70 00 are 60 or more"),
    ]
    assert list(zones_of(parsed)) == ["openair:GOOD ONE"]


def test_ed269_schedules_references_circles_and_several_geometries() -> None:
    parsed = READERS["ed269"](sample("ed269.json"))
    zones = zones_of(parsed)
    assert list(zones) == ["ed269:ILU001", "ed269:ILU002", "ed269:ILU003#0", "ed269:ILU003#1"]
    golan = zones["ed269:ILU001"].zone
    assert golan["rule"] == "no_entry"
    assert golan["altitude"] == {"lower_m": 0.0, "upper_m": 120.0, "reference": "AGL", "unit": "m"}
    assert golan["schedule"][1] == {"days": ["SAT"], "start": "08:00:00", "end": "12:00:00"}
    tiberias = zones["ed269:ILU002"].zone
    assert (tiberias["rule"], tiberias["lead_time_s"]) == ("notify", 3600)
    assert tiberias["altitude"]["upper_m"] == pytest.approx(400 * FOOT_M)
    assert "valid_to" not in tiberias  # permanent
    assert zones["ed269:ILU003#1"].zone["circle"]["radius_m"] == 8000.0
    assert [(e.where, e.reason) for e in parsed.errors] == [
        (
            "features[3] (ILU004)",
            "geometry[0]: altitude band upside down: lower 500 m >= upper 100 m",
        )
    ]
    for record in zones.values():
        ZoneIn.model_validate(record.zone)


def test_geojson_features_with_our_properties() -> None:
    parsed = READERS["geojson"](sample("zones.geojson"))
    zones = zones_of(parsed)
    assert list(zones) == ["geojson:tr-exercise-1", "tr-aip:palmyra"]
    assert zones["tr-aip:palmyra"].zone["circle"] == {"center": [38.27, 34.55], "radius_m": 20000}
    assert zones["geojson:tr-exercise-1"].zone["schedule"][0]["days"] == ["TUE", "THU"]
    assert [(e.where, e.reason) for e in parsed.errors] == [
        ("features[2]", "footprint type 'Point' is not 'Polygon' or 'MultiPolygon'")
    ]


@pytest.mark.parametrize(
    ("fmt", "text", "message"),
    [
        ("notam", "nothing here", "no NOTAM found"),
        ("openair", "* only a comment\n", "no OpenAir record found"),
        ("openair", "AN NAME FIRST\n", "line 1: AN before the first AC record"),
        ("ed269", "{", "not JSON"),
        ("ed269", '{"features": 3}', "'features' list"),
        ("geojson", '{"type": "Feature"}', "not a GeoJSON FeatureCollection"),
    ],
)
def test_unreadable_files(fmt: str, text: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        READERS[fmt](text)


def check_reader(fmt: str, text: str) -> None:
    """No crash: a parse result whose errors say where and why, or one FormatError line."""
    try:
        parsed = READERS[fmt](text)
    except FormatError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    for error in parsed.errors:
        assert error.where and error.reason
    for record in parsed.records:
        assert record.source_id
        if isinstance(record, ZoneRecord):
            # What the import does next: a zone, or a ValidationError that says why.
            try:
                ZoneIn.model_validate({"valid_from": "2030-01-01T00:00:00Z", **record.zone})
            except ValidationError as exc:
                assert exc.errors()[0]["msg"]


NOTAM_WORDS = [
    "A0101/30 NOTAMN",
    "A0102/30 NOTAMR A0101/30",
    "A0103/30 NOTAMC A0102/30",
    "Q)",
    "LLLL/QRTCA/IV/BO/W/000/120/3305N03548E010",
    "LLLL/QWMLW/IV/BO/W/000/999/3305N03548E999",
    "A) LLLL",
    "B)",
    "C)",
    "D)",
    "E)",
    "F)",
    "G)",
    "3001010600",
    "3013450600",
    "PERM",
    "EST",
    "DAILY",
    "MON-FRI",
    "SUN-TUE",
    "0600-1800",
    "2500-0100",
    "SFC",
    "FL120",
    "FL",
    "5000FT AMSL",
    "1000FT AGL",
    "UNL",
    "331000N 0354000E",
    "-",
    "999999N 9999999E",
    "5NM RADIUS OF",
    "\n",
    "(",
    ")",
    "AREA",
    "00N000E",
]
OPENAIR_WORDS = [
    "AC R\n",
    "AC Q\n",
    "AN X\n",
    "AL SFC\n",
    "AH FL95\n",
    "AH 5000ft\n",
    "AL 1000 ft AGL\n",
    "DP 33:10:00 N 035:45:00 E\n",
    "DP 33:00:00 N 035:55:00 E\n",
    "DP 99:99:99 N 999:00:00 E\n",
    "V X=33:05:00 N 035:55:00 E\n",
    "V D=-\n",
    "V D=*\n",
    "DA 10,0,90\n",
    "DA 0,0,0\n",
    "DA 1e9,nan,inf\n",
    "DB 33:10:00 N 035:55:00 E, 33:00:00 N 035:55:00 E\n",
    "DC 15\n",
    "DC -1\n",
    "* comment\n",
    "ZZ what\n",
    "\n",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(NOTAM_WORDS), max_size=40).map(" ".join))
def test_fuzz_notam_tokens(text: str) -> None:
    check_reader("notam", text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(OPENAIR_WORDS), max_size=30).map("".join))
def test_fuzz_openair_lines(text: str) -> None:
    check_reader("openair", text)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["notam", "openair", "ed269", "geojson"]), st.text(max_size=300))
def test_fuzz_any_text(fmt: str, text: str) -> None:
    check_reader(fmt, text)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)  # beyond a float
    | st.floats()
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


def mutate(document: Any, path: list[str | int], value: Any) -> Any:
    """The document with the value at ``path`` replaced (as far as the path exists)."""
    node = document
    for step in path[:-1]:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return document
    with contextlib.suppress(KeyError, IndexError, TypeError):
        node[path[-1]] = value
    return document


ED269_PATHS: list[list[str | int]] = [
    ["features", 0, "identifier"],
    ["features", 0, "restriction"],
    ["features", 0, "applicability"],
    ["features", 0, "applicability", 0, "schedule"],
    ["features", 0, "applicability", 0, "schedule", 0, "day"],
    ["features", 0, "applicability", 0, "startDateTime"],
    ["features", 0, "geometry"],
    ["features", 0, "geometry", 0, "lowerLimit"],
    ["features", 0, "geometry", 0, "upperVerticalReference"],
    ["features", 0, "geometry", 0, "horizontalProjection"],
    ["features", 0, "geometry", 0, "horizontalProjection", "coordinates"],
    ["features", 1, "geometry", 0, "horizontalProjection", "radius"],
    ["features", 1, "extendedProperties"],
]
GEOJSON_PATHS: list[list[str | int]] = [
    ["features", 0, "geometry"],
    ["features", 0, "properties"],
    ["features", 0, "properties", "altitude"],
    ["features", 0, "properties", "schedule"],
    ["features", 0, "properties", "valid_from"],
    ["features", 1, "properties", "circle"],
    ["features", 1, "properties", "source"],
    ["features", 0, "geometry", "coordinates", 0, 1],
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ED269_PATHS), json_values)
def test_fuzz_ed269_fields(path: list[str | int], value: Any) -> None:
    document = mutate(json.loads(sample("ed269.json")), path, value)
    check_reader("ed269", json.dumps(document))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(GEOJSON_PATHS), json_values)
def test_fuzz_geojson_fields(path: list[str | int], value: Any) -> None:
    document = mutate(json.loads(sample("zones.geojson")), path, value)
    check_reader("geojson", json.dumps(document))
