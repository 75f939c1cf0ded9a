"""The live picture: the latest state of every track, in memory, shared by the feeds, the API
and the detection loop (no I/O here; persistence is in ``service``).

A track is named by its party and the id its source gave it (a CoT uid, an ICAO address, an id
posted by an officer); its key is ``PARTY/id``, so two parties may use the same id. The party is
never read from the data: it comes from the feed's configuration or from the caller's token.

Every state carries its own time and the time it goes stale (CoT ``stale``, else ``time`` plus a
default of 30 s). :class:`IntakeRules` says what a state must satisfy to enter the picture; a
state that fails is dropped with a short reason that the caller counts.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray
from pyproj import Geod

from deconfliction.detect.tactical import TrackBatch

_GEOD = Geod(ellps="WGS84")
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # the rows' times count seconds from here
_MEAN_RADIUS_M = 6_371_008.8  # the WGS-84 mean radius (IUGG R1)

# The middle of Syria (lat, lon): the fixed tangent point of the detection plane, so that reported
# figures do not move with the traffic.
SYRIA_CENTRE = (34.8, 38.9)

# Drop reasons, shared by every feed and the API (the counters at GET /v1/tracks/feeds).
MALFORMED = "malformed"  # not well-formed XML / not a CSV line of the expected shape
TRUNCATED = "truncated"  # the connection closed in the middle of an event
OVERSIZED = "oversized"  # an event or a line over the cap
FORBIDDEN_XML = "forbidden_xml"  # a DTD, entity declaration or external reference (XML bombs)
NOT_A_TRACK = "not_a_track"  # a CoT event that is not an atom (a-...): drawings, chat, pings
MISSING_FIELD = "missing_field"
BAD_VALUE = "bad_value"  # a field that is not a number or a time
OUT_OF_RANGE = "out_of_range"  # lat/lon/altitude/speed/course outside what is possible
NO_ALTITUDE = "no_altitude"  # CoT hae 9999999 (unknown): cannot be deconflicted vertically
STALE = "stale"  # already stale when it arrived
IN_FUTURE = "time_in_future"
OUTSIDE_AREA = "outside_area"
OLDER = "older_than_current"  # the picture holds a newer state of that track
TOO_MANY = "too_many_tracks"
# A feed's state replaced by a newer one of the same track before the server took it (the
# server was busy): the picture keeps only the latest state of a track anyway.
SUPERSEDED = "superseded"


@dataclass(frozen=True, slots=True)
class TrackState:
    """One report of a track: WGS-84 degrees, metres, m/s, course in degrees true, ``vs_mps``
    positive when climbing. ``alt_m`` is in the feed's reference (CoT: height above the
    ellipsoid; SBS-1: pressure altitude)."""

    party: str
    id: str
    lat: float
    lon: float
    alt_m: float
    gs_mps: float
    course_deg: float
    vs_mps: float
    time: datetime
    stale_at: datetime
    source: str  # cot | sbs1 | api | sim
    callsign: str | None = None
    type: str | None = None

    @property
    def key(self) -> str:
        return f"{self.party}/{self.id}"


@dataclass(frozen=True, slots=True)
class IntakeRules:
    """What a state must satisfy to enter the picture."""

    origin: tuple[float, float] = SYRIA_CENTRE  # (lat, lon)
    area_radius_m: float = 1_500_000.0  # tracks farther from the origin are not ours
    default_stale_s: float = 30.0
    max_stale_s: float = 600.0  # a stale time further out is cut to this
    future_tolerance_s: float = 60.0  # clock skew accepted on a state's time
    max_tracks: int = 50_000

    def stale_at(self, time: datetime, stale: datetime | None) -> datetime:
        limit = time + timedelta(seconds=self.max_stale_s)
        if stale is None:
            return time + timedelta(seconds=self.default_stale_s)
        return min(stale, limit)

    def check(self, state: TrackState, now: datetime) -> str | None:
        """The drop reason for ``state`` at ``now``, or None when it may enter."""
        values = (state.lat, state.lon, state.alt_m, state.gs_mps, state.course_deg, state.vs_mps)
        if not all(math.isfinite(v) for v in values):
            return BAD_VALUE
        if not (-90.0 <= state.lat <= 90.0 and -180.0 <= state.lon <= 180.0):
            return OUT_OF_RANGE
        if not (-1_000.0 <= state.alt_m <= 40_000.0):
            return OUT_OF_RANGE
        if not (0.0 <= state.gs_mps <= 1_500.0 and -500.0 <= state.vs_mps <= 500.0):
            return OUT_OF_RANGE
        if not (0.0 <= state.course_deg <= 360.0):
            return OUT_OF_RANGE
        if state.stale_at <= now or state.stale_at <= state.time:
            return STALE
        if state.time > now + timedelta(seconds=self.future_tolerance_s):
            return IN_FUTURE
        if self.outside_area(state.lat, state.lon):
            return OUTSIDE_AREA
        return None

    def outside_area(self, lat: float, lon: float) -> bool:
        """Whether (lat, lon) is more than ``area_radius_m`` from the origin on the WGS-84
        geodesic. The great circle of the mean sphere is within 0.6 % of the geodesic, so only
        points within 1 % of the radius need the geodesic itself (the intake's hot path: most
        points are settled by the sphere at a fifth of the cost)."""
        lat0, lon0 = self.origin
        p0, p1 = math.radians(lat0), math.radians(lat)
        h = math.sin((p1 - p0) / 2.0) ** 2 + math.cos(p0) * math.cos(p1) * (
            math.sin(math.radians(lon - lon0) / 2.0) ** 2
        )
        sphere = 2.0 * _MEAN_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))
        if sphere < 0.99 * self.area_radius_m:
            return False
        if sphere > 1.01 * self.area_radius_m:
            return True
        _, _, dist = _GEOD.inv(lon0, lat0, lon, lat)
        return bool(dist > self.area_radius_m)


class _Rows:
    """The picture's states as rows of one float array (lat, lon, alt_m, gs_mps, course_deg,
    vs_mps, then time and stale_at in seconds since ``_EPOCH``), kept as states arrive: the loop
    reads the whole picture many times a second, and then does no per-state Python work."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.parties: list[str] = []
        self.row: dict[str, int] = {}
        self.values = np.empty((1024, 8), dtype=np.float64)

    def put(self, key: str, state: TrackState) -> None:
        row = self.row.get(key)
        if row is None:
            row = self.row[key] = len(self.keys)
            if row == self.values.shape[0]:
                self.values = np.concatenate([self.values, np.empty_like(self.values)])
            self.keys.append(key)
            self.parties.append(state.party)
        self.values[row] = (
            state.lat,
            state.lon,
            state.alt_m,
            state.gs_mps,
            state.course_deg,
            state.vs_mps,
            (state.time - _EPOCH).total_seconds(),
            (state.stale_at - _EPOCH).total_seconds(),
        )

    def remove(self, key: str) -> None:
        """Drop ``key``'s row; the last row takes its place."""
        row = self.row.pop(key)
        last = len(self.keys) - 1
        if row != last:
            moved = self.keys[last]
            self.keys[row] = moved
            self.parties[row] = self.parties[last]
            self.values[row] = self.values[last]
            self.row[moved] = row
        self.keys.pop()
        self.parties.pop()


@dataclass
class _Changes:
    upserts: dict[str, TrackState] = field(default_factory=dict)
    deletes: set[str] = field(default_factory=set)


class TrackPicture:
    """Latest state per track, behind a lock (feeds write from the event loop, the API from its
    worker threads, the loop reads from its own thread). Also remembers what changed since the
    last :meth:`take_changes`, for the batch writes to ``track_states``, and which tracks
    reported since the last :meth:`take_reported`, for the loop's early cycles."""

    def __init__(self, max_tracks: int = 50_000) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, TrackState] = {}
        self._rows = _Rows()
        self._changes = _Changes()
        self._reported: set[str] = set()
        self.max_tracks = max_tracks
        self.version = 0  # counts the states kept: the loop reacts when it moves

    def __len__(self) -> int:
        with self._lock:
            return len(self._states)

    def update(self, state: TrackState) -> str | None:
        """Keep ``state`` unless the picture holds a newer one; returns the drop reason or None."""
        key = state.key
        with self._lock:
            current = self._states.get(key)
            if current is not None and current.time > state.time:
                return OLDER
            if current is None and len(self._states) >= self.max_tracks:
                return TOO_MANY
            self._states[key] = state
            self._rows.put(key, state)
            self._changes.upserts[key] = state
            self._changes.deletes.discard(key)
            self._reported.add(key)
            self.version += 1
        return None

    def load(self, states: Iterable[TrackState]) -> int:
        """Put back states read from storage (not marked as changed). Returns how many."""
        n = 0
        with self._lock:
            for state in states:
                current = self._states.get(state.key)
                if current is None or current.time < state.time:
                    self._states[state.key] = state
                    self._rows.put(state.key, state)
                    n += 1
        return n

    def expire(self, now: datetime) -> list[str]:
        """Remove the states stale at ``now``; returns their keys."""
        with self._lock:
            gone = [k for k, s in self._states.items() if s.stale_at <= now]
            for key in gone:
                del self._states[key]
                self._rows.remove(key)
                self._changes.upserts.pop(key, None)
                self._changes.deletes.add(key)
        return gone

    def snapshot(self, now: datetime | None = None) -> list[TrackState]:
        """The current states (without those stale at ``now`` when given), sorted by key."""
        with self._lock:
            states = list(self._states.values())
        if now is not None:
            states = [s for s in states if s.stale_at > now]
        states.sort(key=lambda s: s.key)
        return states

    def batch(self, now: datetime) -> TrackBatch:
        """The states not stale at ``now``, dead-reckoned to ``now``: what
        ``batch_at(self.snapshot(now), now)`` gives (to within float rounding of the times: under a
        millimetre), in the picture's row order rather than by key, from the rows kept as the
        states arrived."""
        with self._lock:
            n = len(self._rows.keys)
            values = self._rows.values[:n].copy()
            ids = list(self._rows.keys)
            parties = list(self._rows.parties)
        at = (now - _EPOCH).total_seconds()
        live = values[:, 7] > at
        if not live.all():
            rows = np.flatnonzero(live)
            values = values[rows]
            ids = [ids[k] for k in rows.tolist()]
            parties = [parties[k] for k in rows.tolist()]
        v = values
        return _reckoned(
            ids, parties, v[:, 0], v[:, 1], v[:, 2], v[:, 3], v[:, 4], v[:, 5], at - v[:, 6]
        )

    def get(self, key: str) -> TrackState | None:
        with self._lock:
            return self._states.get(key)

    def take_reported(self) -> set[str]:
        """The keys of the tracks that reported since the last call."""
        with self._lock:
            reported, self._reported = self._reported, set()
        return reported

    def take_changes(self) -> tuple[list[TrackState], list[str]]:
        """What changed since the last call: states to upsert, keys to delete."""
        with self._lock:
            changes, self._changes = self._changes, _Changes()
        return list(changes.upserts.values()), sorted(changes.deletes)

    def give_back(self, upserts: list[TrackState], deletes: list[str]) -> None:
        """Return changes whose write failed, so the next flush retries them (newer ones win)."""
        with self._lock:
            for state in upserts:
                key = state.key
                if key in self._states and key not in self._changes.upserts:
                    self._changes.upserts[key] = self._states[key]
            for key in deletes:
                if key not in self._states:
                    self._changes.deletes.add(key)


def batch_at(states: list[TrackState], now: datetime) -> TrackBatch:
    """The states dead-reckoned to ``now`` (straight on along the geodesic of their course, at
    their ground and vertical speed) as one engine batch with ids ``PARTY/id``."""
    n = len(states)
    return _reckoned(
        [s.key for s in states],
        [s.party for s in states],
        np.fromiter((s.lat for s in states), dtype=np.float64, count=n),
        np.fromiter((s.lon for s in states), dtype=np.float64, count=n),
        np.fromiter((s.alt_m for s in states), dtype=np.float64, count=n),
        np.fromiter((s.gs_mps for s in states), dtype=np.float64, count=n),
        np.fromiter((s.course_deg for s in states), dtype=np.float64, count=n),
        np.fromiter((s.vs_mps for s in states), dtype=np.float64, count=n),
        np.fromiter(((now - s.time).total_seconds() for s in states), dtype=np.float64, count=n),
    )


def _reckoned(
    ids: list[str],
    party: list[str],
    lat: NDArray[np.float64],
    lon: NDArray[np.float64],
    alt: NDArray[np.float64],
    gs: NDArray[np.float64],
    course: NDArray[np.float64],
    vs: NDArray[np.float64],
    age: NDArray[np.float64],
) -> TrackBatch:
    """Tracks flown ``age`` seconds on from where they reported, as a batch."""
    lat, lon, course = lat.copy(), lon.copy(), course.copy()
    if len(ids):
        moving = (gs > 0.0) & (age != 0.0)
        if moving.any():
            lon2, lat2, back = _GEOD.fwd(
                lon[moving], lat[moving], course[moving], gs[moving] * age[moving]
            )
            lon[moving] = np.asarray(lon2)
            lat[moving] = np.asarray(lat2)
            # The course flown on at the new point: the geodesic's forward azimuth there.
            course[moving] = np.mod(np.asarray(back) + 180.0, 360.0)
        alt = alt + vs * age
        lon = np.where(lon > 180.0, lon - 360.0, np.where(lon < -180.0, lon + 360.0, lon))
    return TrackBatch(
        ids, party, lat=lat, lon=lon, alt_m=alt, gs_mps=gs, course_deg=course, vs_mps=vs
    )


def moved(state: TrackState, seconds: float) -> tuple[float, float, float]:
    """Where ``state`` is ``seconds`` after its time, flying straight on: (lon, lat, alt_m)."""
    if state.gs_mps > 0.0 and seconds != 0.0:
        lon, lat, _ = _GEOD.fwd(state.lon, state.lat, state.course_deg, state.gs_mps * seconds)
    else:
        lon, lat = state.lon, state.lat
    return float(lon), float(lat), state.alt_m + state.vs_mps * seconds


def reckoned(state: TrackState, now: datetime) -> TrackState:
    """``state`` dead-reckoned to ``now`` (same time stamps)."""
    lon, lat, alt = moved(state, (now - state.time).total_seconds())
    return replace(state, lon=lon, lat=lat, alt_m=alt)
