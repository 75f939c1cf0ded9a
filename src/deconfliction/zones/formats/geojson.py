"""Zones as a GeoJSON FeatureCollection, in and out, with our properties.

Out: one Feature per zone, the footprint as geometry (a circle drawn by its outer polygon and
given exactly in ``properties.circle``), and the zone's fields as properties, ``source`` naming
where it came from. In: the same; ``name``, ``rule`` and ``altitude`` are needed, a feature's
``source`` (else its ``id``, else a hash of its content) names it across imports.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from deconfliction import geo
from deconfliction.volumes import display_geometry, footprint_from_json
from deconfliction.zones.formats.common import (
    FormatError,
    Parsed,
    RecordError,
    ZoneRecord,
    check_size,
)
from deconfliction.zones.models import ZoneOut

# The properties a zone is made of; the others (id, owner, status...) describe where it was.
ZONE_KEYS = ("name", "rule", "lead_time_s", "valid_from", "valid_to", "schedule", "minima")
ALTITUDE_KEYS = ("lower_m", "upper_m", "reference", "unit")


def parse(text: str) -> Parsed:
    check_size(text)
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise FormatError("not a GeoJSON FeatureCollection")
    features = document.get("features")
    if not isinstance(features, list):
        raise FormatError("the FeatureCollection has no 'features' list")
    parsed = Parsed()
    for index, feature in enumerate(features):
        where = f"features[{index}]"
        try:
            parsed.records.append(_record(feature, where))
        except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
            reason = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            parsed.errors.append(RecordError(where, reason))
    return parsed


def _record(feature: Any, where: str) -> ZoneRecord:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise ValueError("not a GeoJSON Feature")
    props = feature.get("properties")
    if not isinstance(props, dict):
        raise ValueError("a zone feature needs properties (name, rule, altitude)")
    zone = {key: props[key] for key in ZONE_KEYS if props.get(key) is not None}
    for key in ("name", "rule", "altitude"):
        if props.get(key) is None:
            raise ValueError(f"properties.{key} is missing")
    altitude = props["altitude"]
    if not isinstance(altitude, dict):
        raise ValueError("properties.altitude is not an object with lower_m and upper_m")
    zone["altitude"] = {k: altitude[k] for k in ALTITUDE_KEYS if k in altitude}
    if isinstance(props.get("circle"), dict):
        zone["circle"] = props["circle"]
    else:
        geometry = feature.get("geometry")
        if not isinstance(geometry, dict):
            raise ValueError("the feature has no geometry and no properties.circle")
        zone["footprint"] = geo.footprint_to_geojson(geo.footprint_from_geojson(geometry))
    source = props.get("source")
    if not isinstance(source, str) or not source:
        ident = feature.get("id")
        if isinstance(ident, str | int) and not isinstance(ident, bool):
            source = f"geojson:{ident}"
        else:
            digest = hashlib.sha256(
                json.dumps(zone, sort_keys=True, default=str).encode()
            ).hexdigest()
            source = f"geojson:{digest[:32]}"
    return ZoneRecord(where, source[:200], zone)


def zone_source(zone: ZoneOut) -> str:
    """Where a zone came from, or where it is: the name another system imports it by."""
    return zone.source or f"zone:{zone.owner}/{zone.id}"


def zone_feature(zone: ZoneOut) -> dict[str, Any]:
    shape = {"footprint": zone.footprint} if zone.footprint else {"circle": zone.circle}
    props = zone.model_dump(mode="json", exclude={"footprint", "circle"})
    props["source"] = zone_source(zone)
    if zone.circle is not None:
        props["circle"] = zone.circle
    geometry = display_geometry(footprint_from_json(shape))
    return {"type": "Feature", "id": zone.id, "geometry": geometry, "properties": props}


def write(zones: Sequence[ZoneOut]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [zone_feature(z) for z in zones]}
