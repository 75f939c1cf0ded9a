"""Routes into corridor volumes, one per leg, covering the corridor from outside."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import shapely
from pyproj import Geod

from deconfliction.geo import AltitudeBand, GeoError, route_to_volumes

GEOD = Geod(ellps="WGS84")
T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
BAND = AltitudeBand(3000, 6000)


def hour(n: float) -> datetime:
    return T0 + timedelta(hours=n)


def test_one_volume_per_leg_with_leg_times() -> None:
    waypoints = [(37.6, 34.5, hour(0)), (37.9, 34.6, hour(1)), (38.5, 35.2, hour(3))]
    volumes = route_to_volumes(waypoints, 5_000.0, BAND)
    assert [(v.start, v.end) for v in volumes] == [(hour(0), hour(1)), (hour(1), hour(3))]
    assert all(v.altitude == BAND for v in volumes)


@pytest.mark.parametrize("half_width", [500.0, 5_000.0, 50_000.0])
def test_corridor_contains_every_point_within_the_half_width(half_width: float) -> None:
    start, end = (35.5, 33.0), (37.5, 34.5)  # ~250 km across the 36 E zone edge
    (volume,) = route_to_volumes([(*start, hour(0)), (*end, hour(2))], half_width, BAND)
    inner = np.array(GEOD.npts(*start, *end, 200))
    lons = np.concatenate([[start[0]], inner[:, 0], [end[0]]])
    lats = np.concatenate([[start[1]], inner[:, 1], [end[1]]])
    heading, _, _ = GEOD.inv(lons[:-1], lats[:-1], lons[1:], lats[1:])
    heading = np.append(heading, heading[-1])
    count = len(lons)
    for side in (-90.0, 90.0):
        x, y, _ = GEOD.fwd(lons, lats, heading + side, np.full(count, half_width * 0.999))
        assert shapely.contains_xy(volume.footprint, x, y).all()
        x, y, _ = GEOD.fwd(lons, lats, heading + side, np.full(count, half_width * 1.02))
        assert not shapely.contains_xy(volume.footprint, x, y).any()
    # Round caps: beyond the end waypoint, along the leg, within the half width.
    x, y, _ = GEOD.fwd(end[0], end[1], heading[-1], half_width * 0.999)
    assert shapely.contains_xy(volume.footprint, x, y)


def test_hovering_leg_is_a_disc() -> None:
    (volume,) = route_to_volumes([(36.0, 33.0, hour(0)), (36.0, 33.0, hour(1))], 2_000.0, BAND)
    azimuths = np.arange(0.0, 360.0, 10.0)
    count = len(azimuths)
    x, y, _ = GEOD.fwd(np.full(count, 36.0), np.full(count, 33.0), azimuths, np.full(count, 1999.0))
    assert shapely.contains_xy(volume.footprint, x, y).all()


@pytest.mark.parametrize(
    ("waypoints", "half_width", "message"),
    [
        ([(36.0, 33.0, hour(0))], 1_000.0, "at least 2 waypoints, got 1"),
        ([(36.0, 33.0, hour(0)), (36.1, 33.0, hour(0))], 1_000.0, "waypoint 1 time"),
        ([(36.0, 33.0, hour(1)), (36.1, 33.0, hour(0))], 1_000.0, "is not after waypoint 0"),
        ([(36.0, 33.0, hour(0)), (36.1, 33.0, hour(1))], 0.0, "half width"),
        ([(36.0, 33.0, hour(0)), (36.1, 33.0, hour(1))], float("nan"), "half width"),
        ([(36.0, 33.0, hour(0)), (36.1, 33.0, hour(1))], 300_000.0, "half width"),
        ([(36.0, 95.0, hour(0)), (36.1, 33.0, hour(1))], 1_000.0, "waypoint 0 latitude 95"),
        (
            [(36.0, 33.0, hour(0).replace(tzinfo=None)), (36.1, 33.0, hour(1))],
            1_000.0,
            "no time zone",
        ),
        ([(179.9, 10.0, hour(0)), (-179.9, 10.0, hour(1))], 5_000.0, "antimeridian"),
    ],
)
def test_bad_routes(
    waypoints: list[tuple[float, float, datetime]], half_width: float, message: str
) -> None:
    with pytest.raises(GeoError, match=message):
        route_to_volumes(waypoints, half_width, BAND)
