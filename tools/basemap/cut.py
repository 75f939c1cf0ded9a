"""Cut the region's country borders out of Natural Earth (via the npm package world-atlas) once,
and write the basemap the web UI ships: src/deconfliction/web/static/basemap.geojson.

    cd tools/basemap && npm ci && ../../.venv/bin/python cut.py

Natural Earth is public domain. The places (cities and the demo scenario's bases) are written
here with their names in the UI's languages, so the map labels follow the officer's language.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shapely.geometry import box, mapping, shape

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "node_modules" / "world-atlas" / "countries-50m.json"
TARGET = HERE.parents[1] / "src" / "deconfliction" / "web" / "static" / "basemap.geojson"
REGION = (25.0, 25.0, 50.0, 42.0)  # west, south, east, north (degrees)
DECIMALS = 3  # about 100 m: finer than a border drawn at this scale needs

# name per language: en, tr, he, ar, az; kind: city or base (bases from sim/syria.py)
PLACES: list[tuple[str, float, float, dict[str, str]]] = [
    (
        "city",
        36.2913,
        33.5138,
        {"en": "Damascus", "tr": "Şam", "he": "דמשק", "ar": "دمشق", "az": "Dəməşq"},
    ),
    (
        "city",
        37.1612,
        36.2021,
        {"en": "Aleppo", "tr": "Halep", "he": "חלב", "ar": "حلب", "az": "Hələb"},
    ),
    (
        "city",
        36.7233,
        34.7324,
        {"en": "Homs", "tr": "Humus", "he": "חומס", "ar": "حمص", "az": "Homs"},
    ),
    (
        "city",
        36.7578,
        35.1318,
        {"en": "Hama", "tr": "Hama", "he": "חמה", "ar": "حماة", "az": "Həma"},
    ),
    (
        "city",
        38.2684,
        34.5600,
        {"en": "Palmyra", "tr": "Palmira", "he": "תדמור", "ar": "تدمر", "az": "Palmira"},
    ),
    (
        "city",
        35.8244,
        33.1259,
        {"en": "Quneitra", "tr": "Kuneytra", "he": "קוניטרה", "ar": "القنيطرة", "az": "Quneytra"},
    ),
    (
        "city",
        36.1018,
        32.6189,
        {"en": "Daraa", "tr": "Dera", "he": "דרעא", "ar": "درعا", "az": "Dəra"},
    ),
    (
        "city",
        40.1408,
        35.3359,
        {
            "en": "Deir ez-Zor",
            "tr": "Deyrizor",
            "he": "דיר א-זור",
            "ar": "دير الزور",
            "az": "Deyr-ez-Zor",
        },
    ),
    (
        "base",
        37.63,
        34.52,
        {
            "en": "T4 (Tiyas)",
            "tr": "T4 (Tiyas)",
            "he": "T4 (תיאס)",
            "ar": "التيفور (T4)",
            "az": "T4 (Tiyas)",
        },
    ),
    (
        "base",
        38.32,
        34.56,
        {
            "en": "Palmyra air base",
            "tr": "Palmira hava üssü",
            "he": "בסיס תדמור",
            "ar": "قاعدة تدمر الجوية",
            "az": "Palmira hava bazası",
        },
    ),
    (
        "base",
        36.71,
        35.12,
        {
            "en": "Hama air base",
            "tr": "Hama hava üssü",
            "he": "בסיס חמה",
            "ar": "قاعدة حماة الجوية",
            "az": "Həma hava bazası",
        },
    ),
    (
        "base",
        35.43,
        37.00,
        {"en": "İncirlik", "tr": "İncirlik", "he": "אינג'רליק", "ar": "إنجرليك", "az": "İncirlik"},
    ),
    (
        "base",
        35.18,
        32.67,
        {
            "en": "Ramat David",
            "tr": "Ramat David",
            "he": "רמת דוד",
            "ar": "رمات دافيد",
            "az": "Ramat David",
        },
    ),
]


def decode_arcs(topology: dict[str, Any]) -> list[list[tuple[float, float]]]:
    """TopoJSON arcs: quantized, delta-encoded positions back to degrees."""
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def ring(arcs: list[list[tuple[float, float]]], indexes: list[int]) -> list[tuple[float, float]]:
    points: list[tuple[float, float]] = []
    for i in indexes:
        arc = arcs[i] if i >= 0 else arcs[~i][::-1]
        points.extend(arc[1:] if points else arc)  # arcs share their end points
    return points


def geometry(arcs: list[list[tuple[float, float]]], g: dict[str, Any]) -> dict[str, Any]:
    if g["type"] == "Polygon":
        return {"type": "Polygon", "coordinates": [ring(arcs, r) for r in g["arcs"]]}
    return {
        "type": "MultiPolygon",
        "coordinates": [[ring(arcs, r) for r in poly] for poly in g["arcs"]],
    }


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, DECIMALS)
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    return value


def main() -> None:
    topology = json.loads(SOURCE.read_text())
    arcs = decode_arcs(topology)
    region = box(*REGION)
    features: list[dict[str, Any]] = []
    for g in topology["objects"]["countries"]["geometries"]:
        if g["type"] not in ("Polygon", "MultiPolygon"):
            continue
        cut = shape(geometry(arcs, g)).buffer(0).intersection(region)
        if cut.is_empty:
            continue
        features.append(
            {
                "type": "Feature",
                "properties": {"kind": "country", "name": g["properties"]["name"]},
                "geometry": rounded(mapping(cut.simplify(0.005))),
            }
        )
    for kind, lon, lat, names in PLACES:
        features.append(
            {
                "type": "Feature",
                "properties": {"kind": kind, "names": names},
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
            }
        )
    collection = {
        "type": "FeatureCollection",
        "source": "Natural Earth 1:50m countries (public domain), via world-atlas 2.0.2",
        "bbox": list(REGION),
        "features": features,
    }
    TARGET.write_text(json.dumps(collection, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"{TARGET}: {len(features)} features, {TARGET.stat().st_size} bytes")


if __name__ == "__main__":
    main()
