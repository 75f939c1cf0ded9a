"""POST /v1/activities end to end, against a real server holding a million stored volumes.

Seeds 1,000,000 volumes into a fresh SQLite file (`bench.seed`: lon 34..48 E, lat 28..40 N, one
week), starts `deconfliction serve` on it as a real process (uvicorn; the in-memory index is
built from the database at start-up) and files notifications from a load client on this
machine (httpx, CONNECTIONS keep-alive connections, one thread each):

- latency: 2,000 notifications, p50 and p99 end to end as the client sees them;
- throughput: as many as the connections file in 30 s, notifications/s;
- a quiet baseline: 500 notifications in a week no stored volume touches (no candidates, no
  conflicts), to separate the service's fixed cost from the conflicts a notification creates.

A notification is one activity with one volume drawn like the stored ones (a random place in the
area, a random time in the week), so it meets the stored traffic's density: it creates the
conflicts it really has (their number is reported). Targets: p50 <= 20 ms, p99 <= 80 ms,
>= 200 notifications/s.

Run: ``python -m bench.notify_api``; BENCH_NOTIFY_N shrinks the stored set.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench import seed
from bench.strategic import make_volumes
from deconfliction.volumes import volume_json

CONNECTIONS = 4
LATENCY_COUNT = int(os.environ.get("BENCH_NOTIFY_COUNT", "2000"))
SUSTAIN_S = float(os.environ.get("BENCH_NOTIFY_SUSTAIN_S", "30"))
QUIET_COUNT = 500
WARM_UP = 50


def bodies(rng: np.random.Generator, count: int, first_h: float = 0.0) -> list[dict[str, Any]]:
    """One-volume activities drawn like the stored volumes (from `first_h` into the week)."""
    lon = rng.uniform(seed.WEST, seed.EAST, count)
    lat = rng.uniform(seed.SOUTH, seed.NORTH, count)
    volumes = make_volumes(
        rng, count, lon, lat, seed.WEEK_START + timedelta(hours=first_h), seed.WEEK_H - 6.0
    )
    return [
        {"kind": "air_patrol", "title": f"load {i}", "volumes": [volume_json(v)]}
        for i, v in enumerate(volumes)
    ]


class Load:
    """CONNECTIONS threads, each with its own keep-alive connection, filing from one queue."""

    def __init__(self, base: str, tokens: list[str]) -> None:
        self.base = base
        self.tokens = tokens
        self.latencies: list[float] = []
        self.conflicts: list[int] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def run(self, items: list[dict[str, Any]], until: float | None = None) -> float:
        """File `items` (all of them, or until the monotonic deadline); seconds taken."""
        cursor = iter(range(len(items)))
        began = time.perf_counter()

        def worker(slot: int) -> None:
            token = self.tokens[slot % len(self.tokens)]
            with httpx.Client(
                base_url=self.base, headers={"Authorization": f"Bearer {token}"}, timeout=60.0
            ) as http:
                while until is None or time.monotonic() < until:
                    with self.lock:
                        i = next(cursor, None)
                    if i is None:
                        return
                    sent = time.perf_counter()
                    try:
                        response = http.post(
                            "/v1/activities",
                            json=items[i],
                            headers={"Idempotency-Key": uuid.uuid4().hex},
                        )
                    except httpx.HTTPError as exc:
                        with self.lock:
                            self.errors.append(repr(exc))
                        continue
                    took = time.perf_counter() - sent
                    with self.lock:
                        if response.status_code == 201:
                            self.latencies.append(took)
                            self.conflicts.append(len(response.json()["conflicts"]))
                        else:
                            self.errors.append(f"{response.status_code} {response.text[:200]}")

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(CONNECTIONS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - began


def measured(base: str, tokens: list[str], run: Callable[[Load], float]) -> tuple[Load, float]:
    load = Load(base, tokens)
    return load, run(load)


def main() -> None:
    count = int(os.environ.get("BENCH_NOTIFY_N", "1000000"))
    rng = np.random.default_rng(20301123)
    workdir = Path(tempfile.mkdtemp(prefix="dcf-notify-"))
    # Figures taken on a loaded machine measure the load: say how loaded it was.
    print(f"(load average at the start: {' / '.join(f'{x:.1f}' for x in os.getloadavg())})")
    url = seed.sqlite_url(workdir / "notify.db")
    tokens = seed.init_database(url)
    seeded_s = seed.seed_volumes(url, count)
    db_mib = (workdir / "notify.db").stat().st_size / 2**20
    print(f"seeded {count:,} volumes in {seeded_s:.0f} s ({db_mib:,.0f} MiB)", flush=True)

    server = seed.start_server(url, workdir / "server.log")
    try:
        rss_start, _ = seed.rss_mib(server.process.pid)
        print(f"server ready in {server.ready_s:.1f} s, RSS {rss_start:,.0f} MiB", flush=True)
        officers = [tokens["tr-duty"], tokens["il-duty"]]
        warm = bodies(rng, WARM_UP)
        Load(server.base, officers).run(warm)

        latency, latency_s = measured(
            server.base, officers, lambda load: load.run(bodies(rng, LATENCY_COUNT))
        )
        cpu_before = seed.cpu_seconds(server.process.pid)
        sustained, sustained_s = measured(
            server.base,
            officers,
            lambda load: load.run(bodies(rng, 20_000), until=time.monotonic() + SUSTAIN_S),
        )
        sustained_cpu = seed.cpu_seconds(server.process.pid) - cpu_before
        # A week after the stored one: the index answers no candidates, nothing conflicts.
        quiet, quiet_s = measured(
            server.base,
            officers,
            lambda load: load.run(bodies(rng, QUIET_COUNT, first_h=seed.WEEK_H + 24.0)),
        )
        rss_end, rss_peak = seed.rss_mib(server.process.pid)
    finally:
        seed.stop_server(server)

    p50 = seed.quantile_ms(latency.latencies, 0.5)
    p99 = seed.quantile_ms(latency.latencies, 0.99)
    rate = len(sustained.latencies) / sustained_s
    first_error = latency.errors + sustained.errors + quiet.errors
    errors = len(first_error)

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    rows = [
        ("stored volumes (SQLite)", f"{count:,}"),
        ("seeding (direct inserts, 2 worker processes)", f"{seeded_s:.0f} s, {db_mib:,.0f} MiB"),
        ("server start-up to first answer (index built from the DB)", f"{server.ready_s:.1f} s"),
        ("server RSS after start-up", f"{rss_start:,.0f} MiB"),
        ("server RSS at the end / peak", f"{rss_end:,.0f} / {rss_peak:,.0f} MiB"),
        ("load client", f"httpx, {CONNECTIONS} keep-alive connections"),
        (
            "conflicts created per notification (mean / max)",
            f"{statistics.mean(latency.conflicts):.1f} / {max(latency.conflicts)}",
        ),
        (
            f"POST /v1/activities p50 ({len(latency.latencies):,} notifications)",
            f"{p50:.1f} ms (target <= 20: {verdict(p50 <= 20)})",
        ),
        ("POST /v1/activities p99", f"{p99:.1f} ms (target <= 80: {verdict(p99 <= 80)})"),
        (
            f"same {len(latency.latencies):,}: throughput while measuring latency",
            f"{len(latency.latencies) / latency_s:.0f} /s",
        ),
        (
            f"sustained notifications/s over {SUSTAIN_S:.0f} s",
            f"{rate:.0f} /s (target >= 200: {verdict(rate >= 200)})",
        ),
        (
            "server CPU per notification (sustained phase)",
            f"{1e3 * sustained_cpu / max(1, len(sustained.latencies)):.0f} ms",
        ),
        (
            f"quiet baseline p50 / p99 ({QUIET_COUNT} notifications, 0 conflicts)",
            f"{seed.quantile_ms(quiet.latencies, 0.5):.1f} / "
            f"{seed.quantile_ms(quiet.latencies, 0.99):.1f} ms, "
            f"{len(quiet.latencies) / quiet_s:.0f} /s",
        ),
        ("errors", f"{errors}" + (f" (first: {first_error[:1]})" if errors else "")),
    ]
    seed.table(rows)
    print(f"\n(load average at the end: {' / '.join(f'{x:.1f}' for x in os.getloadavg())})")
    print(f"\n(server log: {server.log})")


if __name__ == "__main__":
    main()
