"""Binding commitments against the live picture, as the 1 Hz tactical loop checks them.

Traffic: N tracks of one party uniformly over 32-35 N, 35-38 E at 5,000 m. Rules: the demo's
kinds over a 0.5 x 0.5 degree zone (zone, stand-off from a 70 km line, ceiling of 4 aircraft).
Measured: the median of 5 runs of ``check_tracks`` (all tracks projected at once) at 1,000 and
10,000 tracks, against the reference that projects one track at a time (``_point_gap_m`` /
``_line_gap_m``, measured on 1,000 tracks and scaled linearly), and whether both find the same
breaches. No anchor in issue 7: the budget is the loop's cycle, 1 s, of which the alerts take
their share. Bounded: well under a minute.

Run: ``python -m bench agreements``.
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, datetime

from shapely.geometry import Polygon

from deconfliction import geo
from deconfliction.agreements import rules
from deconfliction.agreements.rules import Area, Binding, Track, check_tracks, parse_rule

T0 = datetime(2030, 1, 1, tzinfo=UTC)
ZONE = Area(7, "zone", Polygon([(36, 33), (36.5, 33), (36.5, 33.5), (36, 33.5)]), 0, 10_000)
LINE = [(35.8, 32.7), (35.8, 33.4)]
BINDINGS = [
    Binding(1, ("IL", "TR"), parse_rule({"kind": "zone", "applies_to": ["TR"], "zone_id": 7})),
    Binding(
        2,
        ("IL", "TR"),
        parse_rule({"kind": "force_posture", "applies_to": ["TR"], "within_km": 20, "line": LINE}),
    ),
    Binding(
        3,
        ("IL", "TR"),
        parse_rule(
            {"kind": "force_posture", "applies_to": ["TR"], "zone_id": 7, "max_aircraft": 4}
        ),
    ),
]


def traffic(n: int) -> list[Track]:
    rng = random.Random(n)
    return [
        Track("TR", str(i), rng.uniform(35, 38), rng.uniform(32, 35), 5000, T0) for i in range(n)
    ]


def reference(tracks: list[Track]) -> tuple[set[str], set[str], int]:
    """One track at a time: inside the zone, within 20 km of the line, and the count inside."""
    inside = {t.track_id for t in tracks if rules._point_gap_m(ZONE.footprint, t.lon, t.lat) == 0}
    near = {
        t.track_id
        for t in tracks
        if rules._line_gap_m(geo.Circle(t.lon, t.lat, 1.0), LINE) + 1.0 < 20_000
    }
    return inside, near, len(inside)


def median_s(tracks: list[Track]) -> float:
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        check_tracks(BINDINGS, {7: ZONE}, tracks, [], T0)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> None:
    sample = traffic(1000)
    started = time.perf_counter()
    inside, near, count = reference(sample)
    per_track_s = (time.perf_counter() - started) / len(sample)
    found = check_tracks(BINDINGS, {7: ZONE}, sample, [], T0)
    same = (
        {b.tracks[0]["track"] for b in found if b.commitment_id == 1} == inside
        and {b.tracks[0]["track"] for b in found if b.commitment_id == 2} == near
        and any(b.commitment_id == 3 for b in found) == (count > 4)
    )
    print(f"breaches agree with the one-track-at-a-time reference on 1,000 tracks: {same}")
    print("| tracks | check_tracks (median of 5) | reference (scaled) | reference / vectorised |")
    print("|---|---|---|---|")
    for n in (1_000, 10_000):
        vectorised = median_s(traffic(n))
        scaled = per_track_s * n
        print(
            f"| {n:,} | {vectorised * 1000:.1f} ms | {scaled:.2f} s | {scaled / vectorised:.0f}x |"
        )


if __name__ == "__main__":
    main()
