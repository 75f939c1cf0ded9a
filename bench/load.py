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
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import create_engine, text
from websockets.asyncio.client import connect

from deconfliction.parties.models import AreaConfig
from deconfliction.parties.service import init_area
from deconfliction.store.db import make_engine, migrate, transaction

PG_URL = os.environ.get(
    "DECONFLICTION_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DURATION_S = float(os.environ.get("BENCH_LOAD_S", "20"))
WARM_UP_S = 3.0
WORKERS = int(os.environ.get("BENCH_LOAD_WORKERS", "16"))
STREAMERS = 4
MIX = {"notify": 0.3, "check": 0.3, "message": 0.2, "inbox": 0.2}
CLI = str(Path(sys.executable).parent / "deconfliction")
AREA = """
area = "Load test area"
[[party]]
code = "TR"
name = "Türkiye"
language = "tr"
[[party.officer]]
id = "tr-duty"
name = "TR duty officer"
role = "officer"
[[party]]
code = "IL"
name = "Israel"
language = "he"
[[party.officer]]
id = "il-duty"
name = "IL duty officer"
role = "officer"
"""


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in MIX})
    errors: int = 0
    events: int = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_replica(db: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "DECONFLICTION_RATE_PER_S": "1000000", "DECONFLICTION_RATE_BURST": "1e6"}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [CLI, "serve", "--db", db, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/openapi.json", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"replica on {url} did not start; see {log}")


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
                ok = answer.status_code < 300
            except httpx.HTTPError:
                ok = False
            if started < warm:
                continue
            if ok:
                tally.latencies[kind].append(time.monotonic() - started)
            else:
                tally.errors += 1


async def streamer(url: str, token: str, until: float, warm: float, tally: Tally) -> None:
    ws_url = url.replace("http://", "ws://") + f"/v1/stream?token={token}"
    async with connect(ws_url, max_size=2**22) as ws:
        while (left := until - time.monotonic()) > 0:
            try:
                await asyncio.wait_for(ws.recv(), left)
            except TimeoutError:
                break
            if time.monotonic() >= warm:
                tally.events += 1


async def drive(urls: list[str], tokens: dict[str, str]) -> tuple[Tally, float]:
    tally = Tally()
    warm = time.monotonic() + WARM_UP_S
    until = warm + DURATION_S
    officers = sorted(tokens)
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
    processes: list[subprocess.Popen[bytes]] = []
    try:
        engine = make_engine(db)
        migrate(engine)
        with transaction(engine, write=True) as conn:
            area = AreaConfig.model_validate(tomllib.loads(AREA))
            tokens = init_area(conn, area, datetime.now(UTC), server_held_keys=True).tokens
        engine.dispose()
        urls = []
        for n in range(replicas):
            process, url = start_replica(db, workdir / f"replica-{replicas}-{n}.log")
            processes.append(process)
            urls.append(url)
        tally, seconds = asyncio.run(drive(urls, tokens))
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    every = [latency for latencies in tally.latencies.values() for latency in latencies]
    rows = [
        f"| {replicas} | all | {len(every) / seconds:.0f} | {pct(every, 50)} | "
        f"{pct(every, 99)} | {tally.errors} | {tally.events} |"
    ]
    for kind, latencies in tally.latencies.items():
        rows.append(
            f"| {replicas} | {kind} | {len(latencies) / seconds:.0f} | {pct(latencies, 50)} | "
            f"{pct(latencies, 99)} | | |"
        )
    return rows


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
