"""Tactical detection at scale over Syria, and against BlueSky's own state-based detectors.

Traffic: N tracks of three parties uniformly over 32-37.5 N, 35.5-42.5 E, 300-12,000 m,
60-280 m/s, any course; 30% climb or descend at 2.5-15 m/s. Minima 5 NM, 1,000 ft, 300 s.

1. Median time of one detection cycle (``detect_conflicts``: plane, broad phase, pair test and
   the sorted list of conflicts) at 5,000, 10,000 and 20,000 tracks, for pairs of different
   parties (the product's default) and for all pairs. Targets: 5,000 <= 30 ms; 10,000 <= 120 ms.
2. Peak memory of one cycle at 10,000 tracks, each size in a fresh subprocess: the tracemalloc
   peak of the cycle (numpy reports its buffers to tracemalloc) and the process's peak RSS,
   interpreter and libraries included. Target <= 256 MB.
3. BlueSky (PyPI ``bluesky-simulator``) at 4,000 tracks: its numpy ``StateBased.detect`` and its
   C++ ``cstatebased.detect`` on the same traffic, all pairs, in the Python that has BlueSky
   (``--bluesky-python PATH`` or ``BENCH_BLUESKY_PYTHON``; keep it out of the project's venv,
   e.g. ``python3.11 -m venv /tmp/bsvenv && /tmp/bsvenv/bin/pip install bluesky-simulator``).
   Reported: time ratios (targets >= 200x numpy, >= 20x C++) and whether the pair sets are the
   same. BlueSky measures relative positions flat-earth on a sphere of radius 6,371 km, the
   engine in a conformal plane of the WGS-84 ellipsoid, so pairs passing close to a minimum may
   differ: the bench says how many, and for each flies both tracks along their WGS-84 geodesics
   (pyproj, every 0.05 s) to say which side the truth is on.

Run: ``python -m bench tactical`` (``make bench``), or ``python bench/tactical.py --help``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from pyproj import Geod

from deconfliction.detect.tactical import TacticalMinima, TrackBatch, detect_conflicts

SOUTH, NORTH, WEST, EAST = 32.0, 37.5, 35.5, 42.5
PARTIES = ("TR", "IL", "SY")
MINIMA = TacticalMinima(horizontal_m=9260.0, vertical_m=304.8, lookahead_s=300.0)
SIZES = (5_000, 10_000, 20_000)
BLUESKY_N = 4_000
TARGET_MS = {5_000: 30.0, 10_000: 120.0}
TARGET_MB = 256.0
MEMORY_N = 10_000
GEOD = Geod(ellps="WGS84")

Pair = tuple[str, str]

# Runs in the Python that has BlueSky: times both detectors on the saved traffic and writes
# their pair sets and times as JSON. BlueSky prints banners on import, hence the file.
_BLUESKY_RUNNER = """
import json, resource, sys, time
import numpy as np
from bluesky.traffic.asas import cstatebased
from bluesky.traffic.asas.statebased import StateBased

data = np.load(sys.argv[1])
repeats = int(sys.argv[3])

class Traffic:
    pass

t = Traffic()
t.ntraf = len(data["lat"])
for name in ("lat", "lon", "alt", "gs", "trk", "vs"):
    setattr(t, name, np.ascontiguousarray(data[name], dtype=np.float64))
t.id = [str(i) for i in data["id"]]
n = t.ntraf
rpz, hpz, look = (np.full(n, float(data[k])) for k in ("rpz", "hpz", "look"))

def run(detect):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = detect()
        times.append(time.perf_counter() - start)
    return times, sorted({tuple(sorted(p)) for p in result[0]})

cpp_times, cpp_pairs = run(lambda: cstatebased.detect(t, t, rpz, hpz, look))
np_times, np_pairs = run(lambda: StateBased.detect(None, t, t, rpz, hpz, look))
with open(sys.argv[2], "w") as out:
    json.dump({"cpp_s": cpp_times, "numpy_s": np_times, "cpp_pairs": cpp_pairs,
               "numpy_pairs": np_pairs,
               "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, out)
"""


def traffic(n: int, seed: int) -> TrackBatch:
    rng = np.random.default_rng(seed)
    vs = np.zeros(n)
    moving = rng.random(n) < 0.3
    vs[moving] = rng.uniform(2.5, 15.0, moving.sum()) * rng.choice([-1.0, 1.0], moving.sum())
    return TrackBatch(
        [f"T{k:05d}" for k in range(n)],
        [PARTIES[k % len(PARTIES)] for k in range(n)],
        lat=rng.uniform(SOUTH, NORTH, n),
        lon=rng.uniform(WEST, EAST, n),
        alt_m=rng.uniform(300.0, 12_000.0, n),
        gs_mps=rng.uniform(60.0, 280.0, n),
        course_deg=rng.uniform(0.0, 360.0, n),
        vs_mps=vs,
    )


def cycle_ms(batch: TrackBatch, same_party: bool, repeats: int) -> tuple[float, int]:
    """Median milliseconds of one detection cycle, and the number of conflicts."""
    found = detect_conflicts(batch, MINIMA, same_party=same_party)  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        detect_conflicts(batch, MINIMA, same_party=same_party)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3, len(found)


def probe_memory(n: int, traced: bool) -> None:
    """Subprocess side of the memory figures: prints one JSON number, the tracemalloc peak of
    one cycle or (tracemalloc off: it costs memory of its own) the process's peak RSS, in MB."""
    batch = traffic(n, seed=n)
    if traced:
        tracemalloc.start()
    detect_conflicts(batch, MINIMA, same_party=True)
    if traced:
        print(json.dumps(tracemalloc.get_traced_memory()[1] / 2**20))
        return
    print(json.dumps(peak_rss_mb()))


def peak_rss_mb() -> float:
    """Peak RSS of this process image. On Linux VmHWM, because ru_maxrss also counts the
    parent's memory copied by fork() before exec()."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measured_memory(n: int, traced: bool) -> float:
    flag = "--probe-traced" if traced else "--probe-rss"
    out = subprocess.run(
        [sys.executable, __file__, flag, str(n)], check=True, capture_output=True, text=True
    )
    result: float = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def geodesic_truth(batch: TrackBatch, pair: Pair, step_s: float = 0.05) -> tuple[bool, float]:
    """Both tracks flown along their geodesics, sampled every ``step_s`` inside (0, look-ahead):
    whether they are ever strictly inside both minima at once, and the closest horizontal
    distance while vertically inside, minus the horizontal minimum (metres)."""
    index = {track: k for k, track in enumerate(batch.ids)}
    i, j = index[pair[0]], index[pair[1]]
    t = np.arange(step_s, MINIMA.lookahead_s, step_s)
    ends = []
    for k in (i, j):
        lon, lat, _ = GEOD.fwd(
            np.full_like(t, batch.lon[k]),
            np.full_like(t, batch.lat[k]),
            np.full_like(t, batch.course_deg[k]),
            batch.gs_mps[k] * t,
        )
        ends.append((lon, lat))
    _, _, dist = GEOD.inv(ends[0][0], ends[0][1], ends[1][0], ends[1][1])
    dz = np.abs(batch.alt_m[j] - batch.alt_m[i] + (batch.vs_mps[j] - batch.vs_mps[i]) * t)
    vertical = dz < MINIMA.vertical_m
    conflict = bool((vertical & (dist < MINIMA.horizontal_m)).any())
    closest = float(dist[vertical].min()) if vertical.any() else float("inf")
    return conflict, closest - MINIMA.horizontal_m


def compare_bluesky(python: str, repeats: int) -> None:
    batch = traffic(BLUESKY_N, seed=BLUESKY_N)
    ours_ms, _ = cycle_ms(batch, same_party=True, repeats=21)
    ours = {(c.a, c.b) for c in detect_conflicts(batch, MINIMA, same_party=True)}
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "traffic.npz"
        out = Path(tmp) / "bluesky.json"
        np.savez(
            npz,
            id=np.array(batch.ids),
            lat=batch.lat,
            lon=batch.lon,
            alt=batch.alt_m,
            gs=batch.gs_mps,
            trk=batch.course_deg,
            vs=batch.vs_mps,
            rpz=MINIMA.horizontal_m,
            hpz=MINIMA.vertical_m,
            look=MINIMA.lookahead_s,
        )
        script = Path(tmp) / "run_bluesky.py"
        script.write_text(_BLUESKY_RUNNER)
        try:
            subprocess.run(
                [python, str(script), str(npz), str(out), str(repeats)],
                check=True,
                capture_output=True,
                text=True,
            )
        except OSError as exc:
            print(f"BlueSky comparison skipped: cannot run {python} ({exc})")
            return
        except subprocess.CalledProcessError as exc:
            why = (exc.stderr or "").strip().splitlines()[-1:] or [f"exit {exc.returncode}"]
            print(f"BlueSky comparison skipped: {python} could not run BlueSky ({why[0]})")
            return
        blue = json.loads(out.read_text())
    print(
        f"BlueSky at {BLUESKY_N} tracks, all pairs (same_party=True); BlueSky's process peak RSS"
        f" {blue['max_rss_mb']:.0f} MB"
    )
    print(f"  engine  {ours_ms:9.1f} ms  {len(ours)} pairs")
    for name in ("cpp", "numpy"):
        ms = statistics.median(blue[f"{name}_s"]) * 1e3
        theirs = {(a, b) for a, b in blue[f"{name}_pairs"]}
        print(
            f"  {name:<7} {ms:9.1f} ms  {len(theirs)} pairs  engine {ms / ours_ms:.0f}x faster;"
            f" same pair set: {'yes' if ours == theirs else 'no'}"
        )
        differ = sorted(ours ^ theirs)
        if differ:
            truths = [geodesic_truth(batch, p) for p in differ]
            engine_right = sum(c == (p in ours) for p, (c, _) in zip(differ, truths, strict=True))
            worst = max(abs(m) for _, m in truths)
            print(
                f"          {len(ours - theirs)} only in the engine, {len(theirs - ours)} only in"
                f" BlueSky; the WGS-84 geodesic flight (sampled every 0.05 s) sides with the"
                f" engine on {engine_right} of {len(differ)}; all {len(differ)} pass within"
                f" {worst:.0f} m of the horizontal minimum"
            )


def bluesky_python(option: str | None) -> str | None:
    if option:
        return option
    if os.environ.get("BENCH_BLUESKY_PYTHON"):
        return os.environ["BENCH_BLUESKY_PYTHON"]
    return sys.executable if importlib.util.find_spec("bluesky") else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--bluesky-python", default=None, help="a Python with bluesky-simulator")
    parser.add_argument("--bluesky-repeats", type=int, default=1)
    parser.add_argument("--probe-traced", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--probe-rss", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv or [])
    if args.probe_traced is not None:
        probe_memory(args.probe_traced, traced=True)
        return
    if args.probe_rss is not None:
        probe_memory(args.probe_rss, traced=False)
        return

    print(
        f"Minima {MINIMA.horizontal_m:g} m / {MINIMA.vertical_m:g} m / {MINIMA.lookahead_s:g} s;"
        f" median of {args.repeats} cycles"
    )
    for n in (int(s) for s in args.sizes.split(",")):
        batch = traffic(n, seed=n)
        parties_ms, parties_found = cycle_ms(batch, same_party=False, repeats=args.repeats)
        all_ms, all_found = cycle_ms(batch, same_party=True, repeats=args.repeats)
        target = f" (target <= {TARGET_MS[n]:g} ms)" if n in TARGET_MS else ""
        print(
            f"  {n:6d} tracks: {parties_ms:7.1f} ms, {parties_found} conflicts of different"
            f" parties; {all_ms:7.1f} ms, {all_found} with same-party pairs{target}"
        )
    traced_mb = measured_memory(MEMORY_N, traced=True)
    rss_mb = measured_memory(MEMORY_N, traced=False)
    print(
        f"  memory at {MEMORY_N} tracks, all pairs, fresh process: cycle peak {traced_mb:.1f} MB"
        f" (tracemalloc), process peak RSS {rss_mb:.0f} MB with interpreter, numpy, shapely,"
        f" pyproj and the traffic (target <= {TARGET_MB:g} MB)"
    )
    python = bluesky_python(args.bluesky_python)
    if python is None:
        print(
            "BlueSky comparison skipped: bluesky-simulator is not importable here; pass "
            "--bluesky-python PATH or set BENCH_BLUESKY_PYTHON to a Python that has it."
        )
        return
    compare_bluesky(python, args.bluesky_repeats)


if __name__ == "__main__":
    main(sys.argv[1:])
