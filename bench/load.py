"""Load test: mixed traffic from a bounded asyncio client against one and two replicas of
`deconfliction serve` on PostgreSQL (real processes on loopback).

The client runs WORKERS coroutines, each on one keep-alive connection, each picking an
operation at random: notify (POST /v1/activities, 30 %), check (POST /v1/activities/check,
30 %), message (POST /v1/hotline/messages, 20 %), read the inbox (20 %); STREAMERS WebSocket
clients (/v1/stream) count the events pushed to them. With two replicas the workers and the
streamers are split between them, so an event written through one reaches readers of the other
(LISTEN/NOTIFY). Each run lasts DURATION_S after a warm-up; the table gives the sustained rate,
p50/p99 per operation and the errors (any answer not 2xx, any connection failure).

Run: ``python -m bench load`` (BENCH_LOAD_S, BENCH_LOAD_WORKERS, DECONFLICTION_BENCH_PG).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import create_engine, text
from websockets.asyncio.client import connect

from bench import seed
from bench.serving import Server, start_server

PG_URL = os.environ.get(
    "DECONFLICTION_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DURATION_S = float(os.environ.get("BENCH_LOAD_S", "20"))
WARM_UP_S = 3.0
WORKERS = int(os.environ.get("BENCH_LOAD_WORKERS", "16"))
STREAMERS = 4
MIX = {"notify": 0.3, "check": 0.3, "message": 0.2, "inbox": 0.2}
# The load is the point: the per-token rate limit would turn it into 429s.
UNLIMITED = {"DECONFLICTION_RATE_PER_S": "1000000", "DECONFLICTION_RATE_BURST": "1e6"}


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in MIX})
    errors: Counter[str] = field(default_factory=Counter)  # what failed: status code or error
    events: int = 0


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def activity(rng: random.Random, title: str) -> dict[str, Any]:
    lon, lat = rng.uniform(34, 47), rng.uniform(29, 39)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=rng.uniform(1, 160))
    ring = [[lon, lat], [lon + 0.2, lat], [lon + 0.2, lat + 0.2], [lon, lat + 0.2], [lon, lat]]
    return {
        "kind": "air_patrol",
        "title": title,
        "volumes": [
            {
                "footprint": {"type": "Polygon", "coordinates": [ring]},
                "altitude": {"lower_m": 3000, "upper_m": 6000, "reference": "W84"},
                "time": {"start": iso(start), "end": iso(start + timedelta(hours=2))},
            }
        ],
    }


async def worker(
    url: str, token: str, to: str, until: float, warm: float, tally: Tally, n: int
) -> None:
    rng = random.Random(n)
    kinds, weights = list(MIX), list(MIX.values())
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        while time.monotonic() < until:
            kind = rng.choices(kinds, weights)[0]
            started = time.monotonic()
            try:
                if kind == "notify":
                    answer = await client.post(
                        "/v1/activities",
                        json=activity(rng, f"load {n}"),
                        headers={"Idempotency-Key": str(uuid.uuid4())},
                    )
                elif kind == "check":
                    answer = await client.post("/v1/activities/check", json=activity(rng, "check"))
                elif kind == "message":
                    answer = await client.post(
                        "/v1/hotline/messages",
                        json={
                            "type": "notice",
                            "subject": "Load",
                            "to": [to],
                            "text": f"load {n}",
                            "language": "en",
                        },
                    )
                else:
                    answer = await client.get("/v1/hotline/inbox", params={"limit": 20})
                failure = None if answer.status_code < 300 else f"{kind} {answer.status_code}"
            except httpx.HTTPError as exc:
                failure = f"{kind} {type(exc).__name__}"
            if started < warm:
                continue
            if failure is None:
                tally.latencies[kind].append(time.monotonic() - started)
            else:
                tally.errors[failure] += 1


async def streamer(url: str, token: str, until: float, warm: float, tally: Tally) -> None:
    ws_url = url.replace("http://", "ws://") + f"/v1/stream?token={token}"
    async with connect(ws_url, max_size=2**22) as ws:
        while (left := until - time.monotonic()) > 0:
            try:
                async with asyncio.timeout(left):
                    frame = json.loads(await ws.recv())
            except TimeoutError:
                break
            if time.monotonic() >= warm:  # a frame holds one event or an array of them
                tally.events += len(frame) if isinstance(frame, list) else 1


async def drive(urls: list[str], tokens: dict[str, str]) -> tuple[Tally, float]:
    tally = Tally()
    warm = time.monotonic() + WARM_UP_S
    until = warm + DURATION_S
    officers = ["il-duty", "tr-duty"]  # the duty officers file and send; the mediator only reads
    jobs = [
        worker(
            urls[i % len(urls)],
            tokens[officers[i % 2]],
            "TR" if officers[i % 2].startswith("il") else "IL",
            until,
            warm,
            tally,
            i,
        )
        for i in range(WORKERS)
    ]
    jobs += [
        streamer(urls[i % len(urls)], tokens[officers[(i + 1) % 2]], until, warm, tally)
        for i in range(STREAMERS)
    ]
    await asyncio.gather(*jobs)
    return tally, DURATION_S


def run(replicas: int, workdir: Path) -> list[str]:
    admin = create_engine(PG_URL)
    schema = f"dcf_load_{os.getpid()}_{secrets.token_hex(3)}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = f"{PG_URL}?options=-csearch_path%3D{schema}"
    servers: list[Server] = []
    try:
        tokens = seed.init_database(db)  # the benchmark area: TR, IL and an AZ mediator
        for n in range(replicas):
            log = workdir / f"replica-{replicas}-{n}.log"
            servers.append(start_server(db, log, timeout_s=90, env=UNLIMITED))
        tally, seconds = asyncio.run(drive([s.base for s in servers], tokens))
    finally:
        for server in servers:
            server.stop()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    every = [latency for latencies in tally.latencies.values() for latency in latencies]
    rows = [
        f"| {replicas} | all | {len(every) / seconds:.0f} | {pct(every, 50)} | "
        f"{pct(every, 99)} | {_errors(tally.errors)} | {tally.events} |"
    ]
    for kind, latencies in tally.latencies.items():
        rows.append(
            f"| {replicas} | {kind} | {len(latencies) / seconds:.0f} | {pct(latencies, 50)} | "
            f"{pct(latencies, 99)} | | |"
        )
    return rows


def _errors(errors: Counter[str]) -> str:
    total = sum(errors.values())
    return f"{total} ({', '.join(f'{k}: {n}' for k, n in errors.most_common())})" if total else "0"


def pct(latencies: list[float], q: int) -> str:
    return f"{np.percentile(latencies, q) * 1000:.0f}" if latencies else "-"


def main() -> None:
    print(
        f"{WORKERS} workers, {STREAMERS} stream readers, {DURATION_S:g} s after a "
        f"{WARM_UP_S:g} s warm-up, PostgreSQL; mix {MIX}"
    )
    print("| replicas | operation | per s | p50 ms | p99 ms | errors | events streamed |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="dcf-load-") as tmp:
        for replicas in (1, 2):
            for row in run(replicas, Path(tmp)):
                print(row, flush=True)


if __name__ == "__main__":
    main()
