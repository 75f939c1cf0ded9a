"""Seeding helpers shared by the service benchmarks (notify_api, postgis, hotspot).

`seed_volumes` bulk-loads M stored volumes over the Middle East (lon 34..48 E, lat 28..40 N):
the shapes of `bench.strategic.make_volumes` (half star polygons, half circles, 5-50 km across;
bands 300-3,000 m thick with the lower bound in 0..12,000 m, 10% MSL; windows of 1-6 h starting
anywhere in one week), one volume per activity, owned by TR or IL at random.

The rows go DIRECTLY into `activities`, `activity_versions`, `activity_recipients`, `volumes` and
`volume_cells`, bypassing the service and so the signed ledger: no `activity.notified` entry is
written for them. That is acceptable for seeding a benchmark (nothing here verifies the ledger
against the activities), and it is what makes a million volumes load in minutes instead of hours.
The cells come from `deconfliction.detect.cells.cells_covering` and the stored JSON from
`deconfliction.volumes.volume_json`, exactly what `index_volumes` writes.

The volumes are a pure function of (seed, count): chunk ``k`` draws from
``numpy.random.default_rng([seed, k])``, so `generated` rebuilds the very same Volume4D objects
in another process (the PostGIS benchmark compares engines on identical data). An activity and
its volume share one id (1..M), so a conflict with activity N is a conflict with volume N.

Rows are made in a pool of worker processes (cells_covering is ~0.25 ms a volume) and written
by the parent: SQLite with `executemany` in batches of one chunk, PostgreSQL with COPY (psycopg's
bulk path; executemany on a million rows is several times slower there).

The module also holds what the benchmarks measure of a server (its RSS and CPU); the launcher
is `bench.serving`, whose names the benchmarks also reach here (`seed.start_server`).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import secrets
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url

from bench.areas import area_toml
from bench.serving import Server as Server
from bench.serving import free_port as free_port
from bench.serving import start_server as start_server
from bench.serving import stop_server as stop_server
from bench.strategic import make_volumes
from deconfliction.detect.cells import cells_covering, time_slot
from deconfliction.geo import Volume4D
from deconfliction.parties.models import AreaConfig
from deconfliction.parties.service import init_area
from deconfliction.store import tables as t
from deconfliction.store.db import make_engine, migrate, transaction
from deconfliction.volumes import volume_json

WEST, EAST, SOUTH, NORTH = 34.0, 48.0, 28.0, 40.0
# A week in the future, so that every seeded volume is still "live" for the server's index
# (it loads volumes that end after now - 1 day) and notifications into it are accepted.
WEEK_START = datetime(2030, 1, 7, tzinfo=UTC)
WEEK_H = 7 * 24.0
SEED = 20301107
CHUNK = 10_000
PARTIES = ("TR", "IL")
PG_URL = os.environ.get(
    "DECONFLICTION_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

AREA_TOML = area_toml("Benchmark area", ("tr-duty", "il-duty", "az-med"))


# -- databases -------------------------------------------------------------------------------


def sqlite_url(path: Path) -> str:
    """A fresh SQLite database file (any earlier one at `path` is removed)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def pg_schema_url(prefix: str = "dcf_bench") -> tuple[str, str]:
    """A new empty schema on the PostgreSQL server: (url that uses it, schema name)."""
    schema = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return f"{PG_URL}?options=-csearch_path%3D{schema}", schema


def drop_pg_schema(schema: str) -> None:
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def init_database(url: str, area_toml: str = AREA_TOML) -> dict[str, str]:
    """Migrate and set up a benchmark area (this module's by default); the officers' tokens
    (server-held keys)."""
    engine = make_engine(url)
    try:
        migrate(engine)
        with transaction(engine, write=True) as conn:
            return init_area(
                conn,
                AreaConfig.model_validate(tomllib.loads(area_toml)),
                datetime.now(UTC),
                server_held_keys=True,
            ).tokens
    finally:
        engine.dispose()


# -- the volumes -----------------------------------------------------------------------------


def chunk_volumes(seed: int, chunk: int, size: int) -> tuple[list[str], list[Volume4D]]:
    """Owners and volumes of one chunk: a pure function of (seed, chunk, size)."""
    rng = np.random.default_rng([seed, chunk])
    lon = rng.uniform(WEST, EAST, size)
    lat = rng.uniform(SOUTH, NORTH, size)
    volumes = make_volumes(rng, size, lon, lat, WEEK_START, WEEK_H - 6.0)
    owners = [PARTIES[int(i)] for i in rng.integers(0, len(PARTIES), size)]
    return owners, volumes


def _chunks(count: int) -> list[tuple[int, int, int]]:
    """(chunk number, first id, size) of every chunk of `count` volumes."""
    return [
        (k, k * CHUNK + 1, min(CHUNK, count - k * CHUNK))
        for k in range((count + CHUNK - 1) // CHUNK)
    ]


def generated(count: int, seed: int = SEED) -> Iterator[tuple[int, str, Volume4D]]:
    """(id, owner, volume) of the seeded volumes, the same ones `seed_volumes` stores."""
    for k, first, size in _chunks(count):
        owners, volumes = chunk_volumes(seed, k, size)
        for j in range(size):
            yield first + j, owners[j], volumes[j]


@dataclass
class ChunkRows:
    activities: list[tuple[Any, ...]]
    versions: list[tuple[Any, ...]]
    recipients: list[tuple[Any, ...]]
    volumes: list[tuple[Any, ...]]
    cells: list[tuple[int, int, int]]


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _rows(job: tuple[int, int, int, int, datetime]) -> ChunkRows:
    """Rows of one chunk (run in a worker process). Datetimes naive UTC, JSON as text."""
    seed, k, first, size, now = job
    owners, volumes = chunk_volumes(seed, k, size)
    rows = ChunkRows([], [], [], [], [])
    created = _naive(now)
    for j, (owner, volume) in enumerate(zip(owners, volumes, strict=True)):
        vid = first + j
        start, end = _naive(volume.start), _naive(volume.end)
        shape = volume_json(volume)
        rows.activities.append(
            (vid, owner, "air_patrol", f"seeded {vid}", None, "notified", 1, 1, start, end,
             False, created, created)
        )  # fmt: skip
        rows.versions.append((vid, 1, json.dumps([shape]), None, "[]", "seed", created))
        other = PARTIES[1 - PARTIES.index(owner)]
        rows.recipients.append((vid, other))
        rows.volumes.append(
            (vid, vid, 1, 0, owner, True, volume.altitude.lower_m, volume.altitude.upper_m,
             start, end, json.dumps(shape))
        )  # fmt: skip
        slot = time_slot(volume.start, volume.end)
        rows.cells.extend((cell, slot, vid) for cell in cells_covering(volume.footprint))
    return rows


_COLUMNS = {
    "activities": "id, party, kind, title, callsign, state, version, plan_version, start, "
    '"end", late, created_at, updated_at',
    "activity_versions": "activity_id, version, volumes, route, late_zones, author, created_at",
    "activity_recipients": "activity_id, party",
    "volumes": 'id, activity_id, plan_version, idx, party, active, lower_m, upper_m, start, "end", '
    "geometry",
    "volume_cells": "cell, slot, volume_id",
}


def _sqlite_value(value: Any) -> Any:
    # SQLAlchemy's SQLite DateTime storage format (always with microseconds) and 0/1 booleans.
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


def _write_sqlite(cur: Any, table: str, rows: list[tuple[Any, ...]]) -> None:
    columns = _COLUMNS[table]
    marks = ", ".join("?" * (columns.count(",") + 1))
    cur.executemany(
        f"INSERT INTO {table} ({columns}) VALUES ({marks})",
        [tuple(_sqlite_value(v) for v in row) for row in rows],
    )


def _write_pg(cur: Any, table: str, rows: list[tuple[Any, ...]]) -> None:
    with cur.copy(f"COPY {table} ({_COLUMNS[table]}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def seed_volumes(url: str, count: int, seed: int = SEED, workers: int = 2) -> float:
    """Store `count` seeded volumes into an initialised, still empty area; seconds taken."""
    began = time.perf_counter()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if conn.execute(select(t.volumes.c.id).limit(1)).first() is not None:
                raise SystemExit(f"{url} already holds volumes: seed an empty area")
        postgres = engine.dialect.name == "postgresql"
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            if not postgres:
                cur.execute("BEGIN")
            now = datetime.now(UTC)
            jobs = [(seed, k, first, size, now) for k, first, size in _chunks(count)]
            write = _write_pg if postgres else _write_sqlite
            context = multiprocessing.get_context("spawn")
            with context.Pool(workers) as pool:
                for rows in pool.imap(_rows, jobs):
                    write(cur, "activities", rows.activities)
                    write(cur, "activity_versions", rows.versions)
                    write(cur, "activity_recipients", rows.recipients)
                    write(cur, "volumes", rows.volumes)
                    write(cur, "volume_cells", rows.cells)
            if postgres:
                # Explicit ids leave the sequences behind: move them past the seeded rows.
                for table in ("activities", "volumes"):
                    cur.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                raw.commit()
                cur.execute("ANALYZE")
            else:
                cur.execute("COMMIT")
                cur.execute("ANALYZE")
            cur.close()
        finally:
            raw.close()
    finally:
        engine.dispose()
    return time.perf_counter() - began


# -- servers ---------------------------------------------------------------------------------


def rss_mib(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process in MiB, from /proc."""
    fields: dict[str, float] = {}
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = float(value.split()[0]) / 1024
    return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def quantile_ms(seconds: list[float], q: float) -> float:
    return float(np.quantile(np.array(seconds), q)) * 1e3 if seconds else float("nan")


def in_week(hours: float) -> datetime:
    return WEEK_START + timedelta(hours=hours)


def url_backend(url: str) -> str:
    return make_url(url).get_backend_name()


def table(rows: list[tuple[str, str]]) -> None:
    print("| measure | value |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


def engine_of(url: str) -> Engine:
    return make_engine(url)
