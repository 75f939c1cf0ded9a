"""Zones in and out in the formats airspace people use: NOTAM, OpenAir, ED-269 and GeoJSON in;
GeoJSON, KML and Cursor-on-Target drawings out.

Pure parsers and writers: text in, records out (and back), no I/O and no clock. Each reader
returns the records it understood and, for each one it could not, where it is and why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from deconfliction.zones.formats import cot, ed269, geojson, kml, notam, openair
from deconfliction.zones.formats.common import (
    Cancellation,
    FormatError,
    Parsed,
    RecordError,
    ZoneRecord,
)

ImportFormat = Literal["notam", "openair", "ed269", "geojson"]
ExportFormat = Literal["geojson", "kml", "cot"]

READERS: dict[str, Callable[[str], Parsed]] = {
    "notam": notam.parse,
    "openair": openair.parse,
    "ed269": ed269.parse,
    "geojson": geojson.parse,
}

__all__ = [
    "READERS",
    "Cancellation",
    "ExportFormat",
    "FormatError",
    "ImportFormat",
    "Parsed",
    "RecordError",
    "ZoneRecord",
    "cot",
    "ed269",
    "geojson",
    "kml",
    "notam",
    "openair",
]
