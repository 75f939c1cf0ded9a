"""Validation of the value types: every bad input is a GeoError with a readable sentence."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from shapely import LineString, Polygon

from deconfliction.geo import AltitudeBand, Circle, GeoError, Volume4D

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
SQUARE = Polygon([(36.0, 33.0), (36.2, 33.0), (36.2, 33.2), (36.0, 33.2)])


def test_altitude_band_upside_down_says_both_bounds() -> None:
    with pytest.raises(
        GeoError, match=r"^altitude band upside down: lower 3000 m >= upper 1000 m$"
    ):
        AltitudeBand(3000, 1000)


@pytest.mark.parametrize(
    ("lower", "upper", "message"),
    [
        (math.nan, 1000.0, "not a finite number"),
        (0.0, math.inf, "not a finite number"),
        (500.0, 500.0, "upside down"),
        (-1500.0, 0.0, "outside -1000..100000 m"),
        (0.0, 100_001.0, "outside -1000..100000 m"),
    ],
)
def test_altitude_band_rejects(lower: float, upper: float, message: str) -> None:
    with pytest.raises(GeoError, match=message):
        AltitudeBand(lower, upper)


def test_altitude_band_reference() -> None:
    assert AltitudeBand(0, 1).reference == "W84"
    assert AltitudeBand(0, 1, "MSL").reference == "MSL"
    assert AltitudeBand(0, 1, "AGL").reference == "AGL"
    with pytest.raises(GeoError, match="'AMSL' is not one of 'W84', 'MSL', 'STD', 'AGL'"):
        AltitudeBand(0, 1, "AMSL")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("lon", "lat", "radius", "message"),
    [
        (181.0, 0.0, 10.0, "longitude 181 is outside"),
        (0.0, -91.0, 10.0, "latitude -91 is outside"),
        (math.nan, 0.0, 10.0, "not a finite number"),
        (0.0, 0.0, 0.0, "radius"),
        (0.0, 0.0, -5.0, "radius"),
        (0.0, 0.0, 2_000_001.0, "radius"),
        (0.0, 0.0, math.inf, "radius"),
        (179.99, 10.0, 5_000.0, "antimeridian or a pole"),
        (10.0, 89.99, 5_000.0, "antimeridian or a pole"),
    ],
)
def test_circle_rejects(lon: float, lat: float, radius: float, message: str) -> None:
    with pytest.raises(GeoError, match=message):
        Circle(lon, lat, radius)


def test_volume_converts_aware_times_to_utc() -> None:
    plus3 = timezone(timedelta(hours=3))
    volume = Volume4D(SQUARE, AltitudeBand(0, 1000), T0.astimezone(plus3), T0 + timedelta(hours=1))
    assert volume.start == T0
    assert volume.start.tzinfo is UTC


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (T0.replace(tzinfo=None), T0 + timedelta(hours=1), "has no time zone"),
        (T0, (T0 + timedelta(hours=1)).replace(tzinfo=None), "has no time zone"),
        (T0, T0, "time window inverted or empty"),
        (T0, T0 - timedelta(seconds=1), "time window inverted or empty"),
    ],
)
def test_volume_rejects_times(start: datetime, end: datetime, message: str) -> None:
    with pytest.raises(GeoError, match=message):
        Volume4D(SQUARE, AltitudeBand(0, 1000), start, end)


def test_volume_rejects_bad_footprints() -> None:
    band, end = AltitudeBand(0, 1000), T0 + timedelta(hours=1)
    bowtie = Polygon([(36.0, 33.0), (36.2, 33.2), (36.2, 33.0), (36.0, 33.2)])
    with pytest.raises(GeoError, match="self-intersects near"):
        Volume4D(bowtie, band, T0, end)
    with pytest.raises(GeoError, match="not a Polygon, MultiPolygon or Circle"):
        Volume4D(LineString([(0, 0), (1, 1)]), band, T0, end)
    with pytest.raises(GeoError, match="empty"):
        Volume4D(Polygon(), band, T0, end)
    with pytest.raises(GeoError, match="longitude 190 is outside"):
        Volume4D(Polygon([(189.0, 0.0), (190.0, 0.0), (190.0, 1.0)]), band, T0, end)


def test_volume_accepts_circle() -> None:
    volume = Volume4D(Circle(36.0, 33.0, 5000.0), AltitudeBand(0, 1000), T0, T0 + timedelta(1))
    assert isinstance(volume.footprint, Circle)


def test_numpy_scalars_become_plain_floats() -> None:
    circle = Circle(np.float64(36.5), np.float64(33.1), np.int64(5000))  # type: ignore[arg-type]
    band = AltitudeBand(np.float32(0.0), np.float64(1000.0))  # type: ignore[arg-type]
    assert type(circle.lon) is float and type(circle.radius_m) is float
    assert type(band.lower_m) is float
    with pytest.raises(GeoError, match="circle lat is not a number"):
        Circle(36.0, "33", 5.0)  # type: ignore[arg-type]
    with pytest.raises(GeoError, match="altitude lower_m is not a number"):
        AltitudeBand(True, 5.0)
