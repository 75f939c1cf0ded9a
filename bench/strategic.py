"""Strategic detection at scale: a million stored volumes over the Middle East.

Stored: 1,000,000 volumes of 4 parties, uniformly over lon 26..62 E, lat 12..42 N; half random
star polygons (5-12 vertices, 5-50 km across), half circles (5-50 km across); bands 300-3000 m
thick with the lower bound in 0..12,000 m (10% MSL, the rest W84); windows of 1-6 h starting
anywhere in one week. Minima 5 NM, 1,000 ft, 10 min.

A check is one new 10-volume activity (volumes within 1 degree of a random centre, over 12 h) of
one of the parties: candidates from the index, exact geometry on each, own volumes skipped.
The brute-force reference runs the same exact engine on every stored volume, without the index,
on a 10,000-volume subset; its time is scaled linearly to the full set for the ratio.

Times are wall-clock; the CPU time of the process is shown too, as it does not count the time
other processes take the core away on a shared machine.

Run: ``python -m bench strategic`` (``make bench``). ``BENCH_STRATEGIC_N`` shrinks the set.
"""

from __future__ import annotations

import gc
import os
import resource
import statistics
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import shapely
from numpy.typing import NDArray

from deconfliction.detect.index import VolumeIndex, check
from deconfliction.detect.strategic import SeparationMinima, pairwise_conflicts
from deconfliction.geo import AltitudeBand, Circle, Volume4D

WEST, EAST, SOUTH, NORTH = 26.0, 62.0, 12.0, 42.0
WEEK_START = datetime(2026, 11, 23, tzinfo=UTC)
PARTIES = ("TR", "IL", "SY", "UN")
MINIMA = SeparationMinima(horizontal_m=9_260.0, vertical_m=304.8, time_buffer_s=600.0)
CHECKS = 1_000
VOLUMES_PER_CHECK = 10
SUBSET = 10_000


def _polygons(
    rng: np.random.Generator, lon: NDArray[np.float64], lat: NDArray[np.float64]
) -> list[shapely.Polygon]:
    """Star polygons around the given centres: jittered angles keep them simple."""
    count = len(lon)
    sides = rng.integers(5, 13, count)
    across_km = rng.uniform(5.0, 50.0, count)
    result: list[shapely.Polygon] = [shapely.Polygon()] * count
    for n in range(5, 13):
        chosen = np.flatnonzero(sides == n)
        angles = (np.arange(n) + rng.uniform(0.0, 0.9, (len(chosen), n))) * 2.0 * np.pi / n
        radius_km = rng.uniform(0.5, 1.0, (len(chosen), n)) * across_km[chosen, None] / 2.0
        x = lon[chosen, None] + radius_km * np.cos(angles) / (
            111.32 * np.cos(np.radians(lat[chosen, None]))
        )
        y = lat[chosen, None] + radius_km * np.sin(angles) / 110.57
        ring = np.stack([x, y], axis=-1)
        closed = np.concatenate([ring, ring[:, :1]], axis=1)
        for slot, polygon in zip(chosen.tolist(), shapely.polygons(closed), strict=True):
            result[slot] = polygon
    return result


def make_volumes(
    rng: np.random.Generator,
    count: int,
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
    first: datetime,
    span_h: float,
) -> list[Volume4D]:
    is_circle = rng.random(count) < 0.5
    polygons = _polygons(rng, lon, lat)
    radius = rng.uniform(2_500.0, 25_000.0, count)
    lower = rng.uniform(0.0, 12_000.0, count)
    thick = rng.uniform(300.0, 3_000.0, count)
    msl = rng.random(count) < 0.1
    start_h = rng.uniform(0.0, span_h, count)
    hours = rng.uniform(1.0, 6.0, count)
    volumes = []
    for i in range(count):
        footprint = (
            Circle(float(lon[i]), float(lat[i]), float(radius[i])) if is_circle[i] else polygons[i]
        )
        band = AltitudeBand(float(lower[i]), float(lower[i] + thick[i]), "MSL" if msl[i] else "W84")
        start = first + timedelta(hours=float(start_h[i]))
        volumes.append(Volume4D(footprint, band, start, start + timedelta(hours=float(hours[i]))))
    return volumes


def stored_volumes(rng: np.random.Generator, count: int) -> list[Volume4D]:
    lon = rng.uniform(WEST, EAST, count)
    lat = rng.uniform(SOUTH, NORTH, count)
    return make_volumes(rng, count, lon, lat, WEEK_START, 7 * 24.0 - 6.0)


def activity(rng: np.random.Generator) -> list[Volume4D]:
    centre_lon = rng.uniform(WEST + 1.0, EAST - 1.0)
    centre_lat = rng.uniform(SOUTH + 1.0, NORTH - 1.0)
    lon = centre_lon + rng.uniform(-1.0, 1.0, VOLUMES_PER_CHECK)
    lat = centre_lat + rng.uniform(-1.0, 1.0, VOLUMES_PER_CHECK)
    first = WEEK_START + timedelta(hours=float(rng.uniform(0.0, 7 * 24.0 - 18.0)))
    return make_volumes(rng, VOLUMES_PER_CHECK, lon, lat, first, 12.0)


def _ms(seconds: list[float], q: float) -> str:
    return f"{float(np.quantile(np.array(seconds), q)) * 1e3:.2f} ms"


def main() -> None:
    count = int(os.environ.get("BENCH_STRATEGIC_N", "1000000"))
    rng = np.random.default_rng(20261123)
    clock = time.perf_counter
    began = clock()
    volumes = stored_volumes(rng, count)
    made = clock() - began
    owners = [PARTIES[i] for i in rng.integers(0, len(PARTIES), count)]

    def lookup(key: int) -> tuple[str, Volume4D]:
        return owners[key], volumes[key]

    index = VolumeIndex()
    began = clock()
    index.add_many((key, owners[key], volume) for key, volume in enumerate(volumes))
    built = clock() - began
    checks = [(activity(rng), PARTIES[int(rng.integers(0, len(PARTIES)))]) for _ in range(CHECKS)]
    # A long-running server has loaded its volumes once: move them out of the garbage
    # collector's way (a full collection walks every object), as the service should too.
    gc.collect()
    gc.freeze()
    for new, owner in checks[:50]:  # warm the transformer cache and the allocator
        check(index, new, owner, MINIMA, lookup)
    check_times: list[float] = []
    region_times: list[float] = []
    found: list[int] = []
    candidates: list[int] = []
    cpu_times: list[float] = []
    for new, owner in checks:
        began, began_cpu = clock(), time.process_time()
        result = check(index, new, owner, MINIMA, lookup)
        check_times.append(clock() - began)
        cpu_times.append(time.process_time() - began_cpu)
        for _, _, overlap in result:
            assert not overlap.region.is_empty
        region_times.append(clock() - began)
        found.append(len(result))
        candidates.append(sum(map(len, index.candidates_many(new, MINIMA, owner))))

    # Inserts and removals on the full index: the 10,000 volumes just checked, then removed.
    extra = [volume for new, _ in checks for volume in new]
    began = clock()
    for i, volume in enumerate(extra):
        index.add(count + i, "TR", volume)
    added = clock() - began
    began = clock()
    for i in range(len(extra)):
        index.remove(count + i)
    removed = clock() - began

    # Brute force on a subset: the same exact engine on every pair, no index.
    subset = min(SUBSET, count)
    small = VolumeIndex()
    small.add_many((key, owners[key], volumes[key]) for key in range(subset))
    brute_times: list[float] = []
    indexed_times: list[float] = []
    for new, owner in checks[:50]:
        began = clock()
        labels = [(i, k) for i in range(len(new)) for k in range(subset) if owners[k] != owner]
        verdicts = pairwise_conflicts([(new[i], volumes[k]) for i, k in labels], MINIMA)
        reference = [label for label, overlap in zip(labels, verdicts, strict=True) if overlap]
        brute_times.append(clock() - began)
        began = clock()
        via_index = check(small, new, owner, MINIMA, lookup)
        indexed_times.append(clock() - began)
        if reference != [(i, k) for i, k, _ in via_index]:
            raise SystemExit("index and brute force disagree: this is a bug")
    brute_full = statistics.median(brute_times) * count / subset
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    rows = [
        ("stored volumes", f"{count:,}"),
        ("make the Volume4D objects (validation included)", f"{made:.1f} s"),
        ("build the index (add_many)", f"{built:.1f} s"),
        (
            "index memory per million volumes",
            f"{index.memory_bytes() / count * 1e6 / 2**20:.0f} MiB",
        ),
        ("process peak RSS (volumes as Python objects + index)", f"{peak_mib:,.0f} MiB"),
        ("candidates per 10-volume check (mean)", f"{statistics.mean(candidates):.1f}"),
        ("conflicts found per 10-volume check (mean)", f"{statistics.mean(found):.1f}"),
        (f"10-volume check, median ({CHECKS:,} checks)", _ms(check_times, 0.5)),
        ("10-volume check, p99", _ms(check_times, 0.99)),
        ("10-volume check, CPU time of this process, median", _ms(cpu_times, 0.5)),
        ("10-volume check, CPU time of this process, p99", _ms(cpu_times, 0.99)),
        ("check + drawing every overlap region, median", _ms(region_times, 0.5)),
        ("check + drawing every overlap region, p99", _ms(region_times, 0.99)),
        ("add one volume to the full index (mean of 10,000)", f"{added / len(extra) * 1e6:.0f} us"),
        ("remove one volume (mean of 10,000)", f"{removed / len(extra) * 1e6:.0f} us"),
        (f"brute force, 10-volume check on {subset:,} volumes, median", _ms(brute_times, 0.5)),
        (f"index, same checks on {subset:,} volumes, median", _ms(indexed_times, 0.5)),
        (f"brute force scaled to {count:,} volumes (linear)", f"{brute_full * 1e3:,.0f} ms"),
        (
            "brute force / index at full size (median)",
            f"{brute_full / statistics.median(check_times):,.0f} x",
        ),
    ]
    print("| measure | value |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
