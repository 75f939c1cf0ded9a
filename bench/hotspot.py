"""A hotspot: every notification into the same 1 km square, each conflicting with the last ones.

Eight concurrent clients (threads of this process, one keep-alive connection each; clients
0, 2, 4, 6 act for TR and 1, 3, 5, 7 for IL) file one-volume activities on the same 1 km x 1 km
footprint (lon 36.000..36.011 E, lat 34.000..34.009 N, 3,000-4,000 m) for HOTSPOT_S seconds
(and at most MAX_PER_CLIENT each), against:

(a) one server on SQLite (the in-memory index, one writer);
(b) two servers sharing one PostgreSQL database (the SQL cell index and advisory locks; clients
    split evenly between the servers, both parties on both).

Client c's j-th notification takes slot ``s = 8 j + c`` and the window
``[T + s * 120 s, T + s * 120 s + 120 s]``. Under the 600 s time buffer a window conflicts with
the other party's windows less than 6 slots away, so each new notification conflicts with the
other party's few most recent ones (those already stored), and the number of conflicts per
notification stays bounded (at most 6 here, about 3 on average) however long the run: it does
not grow with the number of stored volumes, which is what a hot spot that lasts looks like.

Reports rate, p50/p95 latency, errors and conflicts per notification. Targets: >= 200/s on
SQLite, >= 100/s on two PostgreSQL servers, p95 <= 100 ms, no errors.

Run: ``python -m bench.hotspot``. HOTSPOT_S sets the seconds per configuration.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import seed
from deconfliction.volumes import iso

CLIENTS = 8
HOTSPOT_S = float(os.environ.get("HOTSPOT_S", "30"))
MAX_PER_CLIENT = 5_000
SLOT_S = 120
WEST, SOUTH, EAST, NORTH = 36.0, 34.0, 36.0 + 1.0 / 91.9, 34.0 + 1.0 / 110.9  # ~1 km x 1 km


def body(slot: int) -> dict[str, Any]:
    start = seed.WEEK_START + timedelta(seconds=SLOT_S * slot)
    ring = [[WEST, SOUTH], [EAST, SOUTH], [EAST, NORTH], [WEST, NORTH], [WEST, SOUTH]]
    return {
        "kind": "uav",
        "title": f"hotspot {slot}",
        "volumes": [
            {
                "footprint": {"type": "Polygon", "coordinates": [ring]},
                "altitude": {"lower_m": 3000, "upper_m": 4000, "reference": "W84"},
                "time": {
                    "start": iso(start),
                    "end": iso(start + timedelta(seconds=SLOT_S)),
                },
            }
        ],
    }


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    conflicts: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    server_cpu_s: float = 0.0


def hammer(servers: list[seed.Server], tokens: dict[str, str]) -> Outcome:
    outcome = Outcome()
    bases = [s.base for s in servers]
    cpu_before = sum(seed.cpu_seconds(s.process.pid) for s in servers)
    lock = threading.Lock()
    deadline = time.monotonic() + HOTSPOT_S

    def client(c: int) -> None:
        token = tokens["tr-duty" if c % 2 == 0 else "il-duty"]
        base = bases[(c // 2) % len(bases)]
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
        ) as http:
            for j in range(MAX_PER_CLIENT):
                if time.monotonic() >= deadline:
                    return
                sent = time.perf_counter()
                try:
                    response = http.post(
                        "/v1/activities",
                        json=body(CLIENTS * j + c),
                        headers={"Idempotency-Key": uuid.uuid4().hex},
                    )
                except httpx.HTTPError as exc:
                    with lock:
                        outcome.errors.append(repr(exc))
                    continue
                took = time.perf_counter() - sent
                with lock:
                    if response.status_code == 201:
                        outcome.latencies.append(took)
                        outcome.conflicts.append(len(response.json()["conflicts"]))
                    else:
                        outcome.errors.append(f"{response.status_code} {response.text[:300]}")

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcome.seconds = time.perf_counter() - began
    outcome.server_cpu_s = sum(seed.cpu_seconds(s.process.pid) for s in servers) - cpu_before
    return outcome


def run_sqlite(workdir: Path) -> Outcome:
    url = seed.sqlite_url(workdir / "hotspot.db")
    tokens = seed.init_database(url)
    server = seed.start_server(url, workdir / "sqlite-server.log", timeout_s=120)
    try:
        return hammer([server], tokens)
    finally:
        seed.stop_server(server)


def run_postgres(workdir: Path) -> Outcome:
    url, schema = seed.pg_schema_url("dcf_hotspot")
    servers: list[seed.Server] = []
    try:
        tokens = seed.init_database(url)
        for k in (1, 2):
            servers.append(seed.start_server(url, workdir / f"pg-server{k}.log", timeout_s=120))
        return hammer(servers, tokens)
    finally:
        for server in servers:
            seed.stop_server(server)
        seed.drop_pg_schema(schema)


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="dcf-hotspot-"))
    # Figures taken on a loaded machine measure the load: say how loaded it was.
    print(f"(load average at the start: {' / '.join(f'{x:.1f}' for x in os.getloadavg())})")
    results = {
        "(a) 1 server, SQLite": (run_sqlite(workdir), 200.0),
        "(b) 2 servers, one PostgreSQL": (run_postgres(workdir), 100.0),
    }
    print("| configuration | notifications/s | p50 | p95 | errors | conflicts per notification "
          "(mean / max) | server CPU per notification | targets |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name, (outcome, target) in results.items():
        rate = len(outcome.latencies) / outcome.seconds
        p95 = seed.quantile_ms(outcome.latencies, 0.95)
        verdicts = [
            f">= {target:.0f}/s {'met' if rate >= target else 'MISSED'}",
            f"p95 <= 100 ms {'met' if p95 <= 100 else 'MISSED'}",
            f"no errors {'met' if not outcome.errors else 'MISSED'}",
        ]
        mean = statistics.mean(outcome.conflicts) if outcome.conflicts else 0.0
        print(
            f"| {name} | {rate:.0f} ({len(outcome.latencies):,} in {outcome.seconds:.0f} s) | "
            f"{seed.quantile_ms(outcome.latencies, 0.5):.0f} ms | {p95:.0f} ms | "
            f"{len(outcome.errors)} | {mean:.1f} / {max(outcome.conflicts, default=0)} | "
            f"{1e3 * outcome.server_cpu_s / max(1, len(outcome.latencies)):.0f} ms | "
            f"{'; '.join(verdicts)} |"
        )
    print(f"\n(load average at the end: {' / '.join(f'{x:.1f}' for x in os.getloadavg())})")
    for name, (outcome, _) in results.items():
        if outcome.errors:
            print(f"\n{name}: first error: {outcome.errors[0]}")
    print(f"\n(server logs in {workdir})")


if __name__ == "__main__":
    main()
