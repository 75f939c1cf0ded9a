"""Small builders of request bodies (docs/formats.md) for the tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.conftest import T0


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def square(lon: float, lat: float, size: float = 0.2) -> dict[str, Any]:
    return {
        "type": "Polygon",
        "coordinates": [
            [
                [lon, lat],
                [lon + size, lat],
                [lon + size, lat + size],
                [lon, lat + size],
                [lon, lat],
            ]
        ],
    }


def volume(
    lon: float = 36.0,
    lat: float = 34.0,
    *,
    start_h: float = 1,
    hours: float = 2,
    lower: float = 3000,
    upper: float = 6000,
    size: float = 0.2,
) -> dict[str, Any]:
    start = T0 + timedelta(hours=start_h)
    return {
        "footprint": square(lon, lat, size),
        "altitude": {"lower_m": lower, "upper_m": upper, "reference": "W84"},
        "time": {"start": iso(start), "end": iso(start + timedelta(hours=hours))},
    }


def activity(*volumes: dict[str, Any], title: str = "patrol", **extra: Any) -> dict[str, Any]:
    return {"kind": "air_patrol", "title": title, "volumes": list(volumes) or [volume()], **extra}


def zone(
    rule: str = "no_entry",
    *,
    lon: float = 36.0,
    lat: float = 33.0,
    size: float = 0.5,
    lead_time_s: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"{rule} zone",
        "rule": rule,
        "footprint": square(lon, lat, size),
        "altitude": {"lower_m": 0, "upper_m": 20000, "reference": "MSL"},
        "valid_from": iso(T0),
        **extra,
    }
    if lead_time_s is not None:
        body["lead_time_s"] = lead_time_s
    return body
