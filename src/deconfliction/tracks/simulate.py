"""Simulated tracks for the demo: where the notified activities' aircraft and convoys are at a
given instant (pure: no I/O, no clock read).

A route activity flies its route: along the geodesic of the leg it is on, at the leg's speed
(distance over the time between its waypoints). An area activity (a patrol box, a UAV orbit,
an exercise) orbits clockwise around the middle of the volume active at that instant, at half
its radius (a circle) or a quarter of its smaller side (a polygon), at a speed typical of its
kind, from a phase set by the activity's id; a ground movement in an area stands at its middle.
Each track flies at a level typical of its kind (6,000 m for UAVs and air patrols, 9,000 m for
transits, the middle of the band otherwise) kept inside the notified altitude band, so a track
never leaves its notification and two notified activities that overlap meet for real: in the
Syria demo the IL patrol east of Homs crosses the TR UAV transit near T4 within 5 NM and
1,000 ft, and the TR ANKA flight enters Israel's southern no-entry zone.

Track ids are ``sim-<activity id>``; the callsign is the activity's.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from pyproj import Geod
from shapely.geometry import shape

from deconfliction.activities.models import ActivityOut
from deconfliction.tracks.picture import TrackState

_GEOD = Geod(ellps="WGS84")
CRUISE_M = {"uav": 6_000.0, "air_patrol": 6_000.0, "transit": 9_000.0}
ORBIT_MPS = {"uav": 60.0, "air_patrol": 200.0, "exercise": 100.0, "transit": 220.0}
STALE_S = 30.0
_GOLDEN = math.pi * (3.0 - math.sqrt(5.0))  # radians: spreads the orbit phases


def _when(raw: str | datetime) -> datetime:
    return raw if isinstance(raw, datetime) else datetime.fromisoformat(raw)


def _level(kind: str, altitude: dict[str, Any]) -> float:
    lower, upper = float(altitude["lower_m"]), float(altitude["upper_m"])
    preferred = CRUISE_M.get(kind, (lower + upper) / 2.0)
    return min(max(preferred, lower), upper)


def _on_route(route: dict[str, Any], now: datetime) -> tuple[float, float, float, float] | None:
    """(lon, lat, course, ground speed) on the route at ``now``, or None off its times."""
    points = route["waypoints"]
    for first, second in itertools.pairwise(points):
        t0, t1 = _when(first["time"]), _when(second["time"])
        if t0 <= now < t1:
            az, _, dist = _GEOD.inv(first["lon"], first["lat"], second["lon"], second["lat"])
            duration = (t1 - t0).total_seconds()
            flown = dist * (now - t0).total_seconds() / duration
            lon, lat, back = _GEOD.fwd(first["lon"], first["lat"], az, flown)
            course = (back + 180.0) % 360.0 if flown > 0 else az % 360.0
            return float(lon), float(lat), float(course), dist / duration
    return None


def _orbit(
    volume: dict[str, Any], kind: str, seed: int, start: datetime, now: datetime
) -> tuple[float, float, float, float]:
    """(lon, lat, course, ground speed) orbiting the middle of ``volume`` at ``now``."""
    if "circle" in volume:
        lon0, lat0 = volume["circle"]["center"]
        radius = 0.5 * float(volume["circle"]["radius_m"])
    else:
        footprint = shape(volume["footprint"])
        middle = footprint.representative_point()
        lon0, lat0 = middle.x, middle.y
        west, south, east, north = footprint.bounds
        k = math.cos(math.radians(lat0))
        smaller = min((east - west) * k, north - south) * 111_320.0
        radius = 0.25 * smaller
    speed = ORBIT_MPS.get(kind, 0.0)
    if speed <= 0.0 or radius <= 0.0:
        return float(lon0), float(lat0), 0.0, 0.0
    turned = math.degrees(seed * _GOLDEN + speed / radius * (now - start).total_seconds())
    bearing = turned % 360.0
    lon, lat, _ = _GEOD.fwd(lon0, lat0, bearing, radius)
    return float(lon), float(lat), (bearing + 90.0) % 360.0, speed


def simulate_tracks(
    activities: Iterable[ActivityOut],
    start: datetime,
    now: datetime,
    *,
    stamp: datetime | None = None,
) -> list[TrackState]:
    """The states of the ``activities``' tracks at ``now`` (those flying then), time-stamped
    ``stamp`` (default ``now``: pass the real time to replay another hour of the day live).
    ``start`` is the instant the orbits' phases count from (the demo day's start)."""
    stamp = stamp or now
    out: list[TrackState] = []
    for activity in activities:
        if activity.state == "cancelled" or not activity.start <= now < activity.end:
            continue
        where: tuple[float, float, float, float] | None = None
        altitude: dict[str, Any] | None = None
        if activity.route is not None:
            where = _on_route(activity.route, now)
            altitude = activity.route["altitude"]
        else:
            for volume in activity.volumes:
                window = volume["time"]
                if _when(window["start"]) <= now < _when(window["end"]):
                    where = _orbit(volume, activity.kind, activity.id, start, now)
                    altitude = volume["altitude"]
                    break
        if where is None or altitude is None:
            continue
        lon, lat, course, speed = where
        out.append(
            TrackState(
                party=activity.party,
                id=f"sim-{activity.id}",
                lat=lat,
                lon=lon,
                alt_m=_level(activity.kind, altitude),
                gs_mps=speed,
                course_deg=course,
                vs_mps=0.0,
                time=stamp,
                stale_at=stamp + timedelta(seconds=STALE_S),
                source="sim",
                callsign=activity.callsign,
                type="a-f-G" if activity.kind == "ground_movement" else "a-f-A",
            )
        )
    return out
