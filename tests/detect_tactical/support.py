"""Traffic builders shared by the tactical tests."""

from __future__ import annotations

import numpy as np
from pyproj import Geod

from deconfliction.detect.tactical import TrackBatch

GEOD = Geod(ellps="WGS84")
# Middle of the Syria box (32-37.5 N, 35.5-42.5 E) and its corners.
CENTRE = (34.75, 39.0)
SOUTH, NORTH, WEST, EAST = 32.0, 37.5, 35.5, 42.5


def batch(rows: list[tuple[str, str, float, float, float, float, float, float]]) -> TrackBatch:
    """A batch from (id, party, lat, lon, alt_m, gs_mps, course_deg, vs_mps) rows."""
    cols = list(zip(*rows, strict=True)) if rows else [()] * 8
    return TrackBatch(
        [str(c) for c in cols[0]],
        [str(c) for c in cols[1]],
        *(np.array(c, dtype=np.float64) for c in cols[2:]),
    )


def offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    """(lat, lon) reached from (lat, lon) by a geodesic of the given east/north components."""
    az = float(np.degrees(np.arctan2(east_m, north_m)))
    lon2, lat2, _ = GEOD.fwd(lon, lat, az, float(np.hypot(east_m, north_m)))
    return float(lat2), float(lon2)


def syria_traffic(n: int, seed: int, parties: tuple[str, ...] = ("TR", "IL", "SY")) -> TrackBatch:
    """The benchmark's traffic: uniform over Syria, 300-12,000 m, 60-280 m/s, 30% climbing or
    descending at 2.5-15 m/s."""
    rng = np.random.default_rng(seed)
    vs = np.zeros(n)
    moving = rng.random(n) < 0.3
    vs[moving] = rng.uniform(2.5, 15.0, moving.sum()) * rng.choice([-1.0, 1.0], moving.sum())
    return TrackBatch(
        [f"T{k:05d}" for k in range(n)],
        [parties[k % len(parties)] for k in range(n)],
        rng.uniform(SOUTH, NORTH, n),
        rng.uniform(WEST, EAST, n),
        rng.uniform(300.0, 12_000.0, n),
        rng.uniform(60.0, 280.0, n),
        rng.uniform(0.0, 360.0, n),
        vs,
    )
