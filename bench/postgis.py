"""Our strategic detection against the query a PostGIS user would write, on the same volumes.

The SAME stored volumes as `bench.notify_api` (`bench.seed`, same seed: 1,000,000 over lon 34..48
E, lat 28..40 N, one week) are loaded three ways, and the same 1,000 random 10-volume checks (a
new activity of TR or IL: volumes within 1 degree of a random centre, over 12 h) run against each:

1. in process: `deconfliction.detect.index.VolumeIndex` + `check`, as `bench.strategic` does;
2. our stored path on PostgreSQL: `conflicts.detection.find_conflicts` with the SQL `CellIndex`
   (candidates from `volume_cells` by cell and time slot, filtered per volume in time and
   altitude in the same query, decided exactly in one batch), inside a read transaction;
3. PostGIS: a table with a `geography` column (GiST index), time and altitude columns, and one
   query per check (a LATERAL join over the 10 volumes, one round trip):
   ``ST_DWithin(geog, query geog, 9260 + radii) AND time overlap widened by 600 s AND altitude
   overlap widened by 300 m`` (410 m when one band is MSL and the other W84, our rule), other
   party only. Circles are stored as their centre point with `radius_m` (0 for polygons), so the
   distance test is exact for circles too: the index probe reaches 9,260 m + the query's radius
   + 25 km (the largest stored radius), the recheck 9,260 m + both radii.

Before the checks, a server's start-up is timed: `MemoryIndex.build` streaming the seeded rows
(time, index memory and the growth of the process's peak RSS).

All three must name the same conflicting stored volumes for every check (the stored path
reports activities; seeded activity N holds exactly volume N). Any difference is printed with
its PostGIS distance: the two can only disagree at the 9,260 m boundary (our local-plane polygon
edges versus PostGIS's geodesic ones, metres apart at most).

PostGIS: ``CREATE EXTENSION postgis`` needs Debian's `postgresql-15-postgis-3`; when the
extension is missing the benchmark installs it with ``apt-get install -y
postgresql-15-postgis-3`` (root, Debian's registry) and tries again.

Run: ``python -m bench.postgis``. BENCH_POSTGIS_N shrinks the stored set, BENCH_POSTGIS_CHECKS
the number of checks.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Connection, create_engine, text

from bench import seed
from bench.strategic import make_volumes
from deconfliction.conflicts.detection import (
    CellIndex,
    MemoryIndex,
    MinimaPolicy,
    find_conflicts,
)
from deconfliction.detect.index import VolumeIndex, check
from deconfliction.detect.strategic import GEOID_MARGIN_M, SeparationMinima
from deconfliction.geo import Circle, Volume4D
from deconfliction.store.db import make_engine

MINIMA = SeparationMinima(horizontal_m=9_260.0, vertical_m=300.0, time_buffer_s=600.0)
CHECKS = int(os.environ.get("BENCH_POSTGIS_CHECKS", "1000"))
VOLUMES_PER_CHECK = 10
MAX_STORED_RADIUS_M = 25_000.0
BATCH = 20_000

QUERIES = """
    FROM unnest(
        CAST(:geog AS text[]), CAST(:radius AS float8[]), CAST(:lower AS float8[]),
        CAST(:upper AS float8[]), CAST(:ref AS text[]), CAST(:start AS timestamptz[]),
        CAST(:end AS timestamptz[])
    ) WITH ORDINALITY AS q(geog, radius_m, lower_m, upper_m, ref, start_at, end_at, i)
"""
# Time and altitude: the gap must be strictly less than the minimum (ours), widened by 110 m
# between an MSL and a W84 band.
NEAR_IN_TIME_AND_ALTITUDE = """
          s.start_at < q.end_at + interval '600 seconds'
          AND s.end_at > q.start_at - interval '600 seconds'
          AND s.lower_m < q.upper_m + CASE WHEN s.ref = q.ref THEN 300 ELSE 410 END
          AND s.upper_m > q.lower_m - CASE WHEN s.ref = q.ref THEN 300 ELSE 410 END
"""
QUERY = text(
    f"""
    SELECT q.i, s.id
    {QUERIES}
    CROSS JOIN LATERAL (
        SELECT s.id FROM pg_volumes s
        WHERE ST_DWithin(s.geog, CAST(q.geog AS geography), 9260 + 25000 + q.radius_m)
          AND ST_DWithin(s.geog, CAST(q.geog AS geography), 9260 + s.radius_m + q.radius_m)
          AND {NEAR_IN_TIME_AND_ALTITUDE}
          AND s.party <> :party
    ) s
    """
)
# For a difference: PostGIS's horizontal gap (metres, negative inside) from the stored volume to
# the nearest query volume that is near it in time and altitude.
GAP = text(
    f"""
    SELECT min(ST_Distance(s.geog, CAST(q.geog AS geography)) - s.radius_m - q.radius_m)
    {QUERIES}
    JOIN pg_volumes s ON s.id = :id AND {NEAR_IN_TIME_AND_ALTITUDE}
    """
)


def ensure_postgis() -> str:
    """Create the extension (installing Debian's package first if need be); its version."""
    admin = create_engine(seed.PG_URL)
    try:
        for attempt in (1, 2):
            try:
                with admin.begin() as conn:
                    conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
                    return str(conn.execute(text("SELECT postgis_lib_version()")).scalar())
            except Exception as exc:
                if attempt == 2:
                    raise
                print(f"CREATE EXTENSION postgis failed ({type(exc).__name__}); installing "
                      "postgresql-15-postgis-3", flush=True)  # fmt: skip
                subprocess.run(
                    ["apt-get", "install", "-y", "-q", "postgresql-15-postgis-3"],
                    check=True,
                    env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                    timeout=900,
                )
        raise AssertionError("unreachable")
    finally:
        admin.dispose()


def core_and_radius(volume: Volume4D) -> tuple[Any, float]:
    """The shape PostGIS measures from (a circle's centre, a polygon itself) and the radius."""
    fp = volume.footprint
    if isinstance(fp, Circle):
        return shapely.Point(fp.lon, fp.lat), fp.radius_m
    return fp, 0.0


def load_postgis(conn: Connection, count: int) -> None:
    conn.execute(text("DROP TABLE IF EXISTS pg_volumes"))
    conn.execute(
        text(
            """
            CREATE TABLE pg_volumes (
                id integer PRIMARY KEY, party text NOT NULL, geog geography NOT NULL,
                radius_m float8 NOT NULL, lower_m float8 NOT NULL, upper_m float8 NOT NULL,
                ref text NOT NULL, start_at timestamptz NOT NULL, end_at timestamptz NOT NULL
            )
            """
        )
    )
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    rows: list[tuple[Any, ...]] = []

    def flush() -> None:
        cores = shapely.to_wkb([r[2] for r in rows], hex=True)
        with cursor.copy(
            "COPY pg_volumes (id, party, geog, radius_m, lower_m, upper_m, ref, start_at, end_at)"
            " FROM STDIN"
        ) as copy:
            for row, core in zip(rows, cores, strict=True):
                copy.write_row((row[0], row[1], core, *row[3:]))
        rows.clear()

    for key, owner, volume in seed.generated(count):
        core, radius = core_and_radius(volume)
        band = volume.altitude
        rows.append(
            (key, owner, core, radius, band.lower_m, band.upper_m, band.reference, volume.start,
             volume.end)
        )  # fmt: skip
        if len(rows) >= BATCH:
            flush()
    if rows:
        flush()
    conn.execute(text("CREATE INDEX pg_volumes_geog ON pg_volumes USING gist (geog)"))
    conn.execute(text("CREATE INDEX pg_volumes_start ON pg_volumes (start_at)"))
    conn.execute(text("ANALYZE pg_volumes"))


def checks(rng: np.random.Generator) -> list[tuple[str, list[Volume4D]]]:
    made = []
    for _ in range(CHECKS):
        centre_lon = rng.uniform(seed.WEST + 1.0, seed.EAST - 1.0)
        centre_lat = rng.uniform(seed.SOUTH + 1.0, seed.NORTH - 1.0)
        lon = centre_lon + rng.uniform(-1.0, 1.0, VOLUMES_PER_CHECK)
        lat = centre_lat + rng.uniform(-1.0, 1.0, VOLUMES_PER_CHECK)
        first = seed.WEEK_START + timedelta(hours=float(rng.uniform(0.0, seed.WEEK_H - 18.0)))
        volumes = make_volumes(rng, VOLUMES_PER_CHECK, lon, lat, first, 12.0)
        made.append((seed.PARTIES[int(rng.integers(0, len(seed.PARTIES)))], volumes))
    return made


def postgis_params(owner: str, volumes: list[Volume4D]) -> dict[str, Any]:
    cores = [core_and_radius(v) for v in volumes]
    return {
        "geog": list(shapely.to_wkb([c for c, _ in cores], hex=True)),
        "radius": [r for _, r in cores],
        "lower": [v.altitude.lower_m for v in volumes],
        "upper": [v.altitude.upper_m for v in volumes],
        "ref": [v.altitude.reference for v in volumes],
        "start": [v.start for v in volumes],
        "end": [v.end for v in volumes],
        "party": owner,
    }


def ms(values: list[float], q: float) -> str:
    return f"{seed.quantile_ms(values, q):.2f} ms"


def main() -> None:
    count = int(os.environ.get("BENCH_POSTGIS_N", "1000000"))
    assert GEOID_MARGIN_M == 110.0, "the PostGIS query hard-codes 300 + 110 m across references"
    version = ensure_postgis()
    url, schema = seed.pg_schema_url("dcf_postgis")
    postgis_url = url + ",public"  # search_path: our schema, then PostGIS's types and functions
    clock = time.perf_counter
    try:
        seed.init_database(url)
        began = clock()
        seed.seed_volumes(url, count)
        ours_seeded = clock() - began
        print(f"seeded our tables on PostgreSQL: {ours_seeded:.0f} s", flush=True)
        # A server's start-up: the in-memory index built from the rows, streamed.
        ours = make_engine(url)
        startup = MemoryIndex()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        began = clock()
        with ours.connect() as conn:
            startup.build(conn, seed.WEEK_START)
        startup_s = clock() - began
        startup_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss_before
        startup_mib = startup.index.memory_bytes() / 2**20
        del startup
        pg = make_engine(postgis_url)
        began = clock()
        with pg.begin() as conn:
            load_postgis(conn, count)
        postgis_loaded = clock() - began
        print(f"loaded PostGIS (COPY + GiST): {postgis_loaded:.0f} s", flush=True)

        began = clock()
        owners = [""] * (count + 1)
        stored: list[Volume4D | None] = [None] * (count + 1)
        index = VolumeIndex()

        def items() -> Any:
            for key, owner, volume in seed.generated(count):
                owners[key] = owner
                stored[key] = volume
                yield key, owner, volume

        index.add_many(items())
        built = clock() - began

        def lookup(key: int) -> tuple[str, Volume4D]:
            volume = stored[key]
            assert volume is not None
            return owners[key], volume

        work = checks(np.random.default_rng(20301124))
        policy = MinimaPolicy(MINIMA, ())
        cells = CellIndex()
        now = datetime.now(UTC)
        times: dict[str, list[float]] = {"memory": [], "stored": [], "postgis": []}
        answers: dict[str, list[set[int]]] = {"memory": [], "stored": [], "postgis": []}
        for owner, volumes in work[:20]:  # warm caches and prepared statements
            check(index, volumes, owner, MINIMA, lookup)
            with ours.connect() as conn:
                find_conflicts(conn, cells, owner, volumes, [], policy, now)
            with pg.connect() as conn:
                conn.execute(QUERY, postgis_params(owner, volumes)).all()
        with ours.connect() as stored_conn, pg.connect() as postgis_conn:
            for n, (owner, volumes) in enumerate(work):
                began = clock()
                found = check(index, volumes, owner, MINIMA, lookup)
                times["memory"].append(clock() - began)
                answers["memory"].append({key for _, key, _ in found})

                began = clock()
                with stored_conn.begin():
                    findings = find_conflicts(stored_conn, cells, owner, volumes, [], policy, now)
                times["stored"].append(clock() - began)
                answers["stored"].append(
                    {f.other.activity for f in findings if f.other.activity is not None}
                )

                began = clock()
                with postgis_conn.begin():
                    rows = postgis_conn.execute(QUERY, postgis_params(owner, volumes)).all()
                times["postgis"].append(clock() - began)
                answers["postgis"].append({int(r.id) for r in rows})
                if (n + 1) % 100 == 0:
                    print(f"  {n + 1} checks", flush=True)

        differences: list[tuple[int, int, str]] = []
        for n in range(len(work)):
            everyone = answers["memory"][n] | answers["stored"][n] | answers["postgis"][n]
            for key in sorted(everyone):
                said = "".join(
                    "MSP"[k] for k, way in enumerate(("memory", "stored", "postgis"))
                    if key in answers[way][n]
                )  # fmt: skip
                if said != "MSP":
                    differences.append((n, key, said))
        distances = []
        with pg.connect() as conn:
            for n, key, _ in differences[:50]:
                owner, volumes = work[n]
                params = postgis_params(owner, volumes)
                distances.append(conn.execute(GAP, {**params, "id": key}).scalar())
        ours.dispose()
        pg.dispose()
    finally:
        seed.drop_pg_schema(schema)

    medians = {way: statistics.median(values) for way, values in times.items()}
    pairs = sum(len(a) for a in answers["postgis"])
    agreeing = sum(
        1 for n in range(len(work)) if len({frozenset(answers[w][n]) for w in answers}) == 1
    )
    report: list[tuple[str, str]] = [
        ("stored volumes", f"{count:,} (same seed as notify_api)"),
        ("PostGIS", f"{version} on PostgreSQL 15"),
        ("seed our tables on PostgreSQL (COPY)", f"{ours_seeded:.0f} s"),
        ("load PostGIS table (COPY + GiST + btree + ANALYZE)", f"{postgis_loaded:.0f} s"),
        (
            "start-up: MemoryIndex.build from our tables (rows streamed)",
            f"{startup_s:.0f} s (target <= 60 s at 1M); index {startup_mib:.0f} MiB, "
            f"peak RSS grew {startup_rss:,.0f} MiB",
        ),
        ("build the in-process index (make volumes + add_many)", f"{built:.0f} s"),
        ("checks", f"{len(work):,} of {VOLUMES_PER_CHECK} volumes each"),
        ("conflicting stored volumes per check (mean)", f"{pairs / len(work):.1f}"),
        (
            "checks where all three agree",
            f"{agreeing:,} of {len(work):,}",
        ),
        ("differing (check, volume) pairs", f"{len(differences)}"),
    ]
    for (n, key, said), distance in zip(differences, distances, strict=False):
        report.append(
            (
                f"  check {n}, volume {key}",
                f"only {said}; PostGIS gap {distance:.2f} m (minimum 9,260 m)",
            )
        )
    for way, name in (
        ("memory", "in process (VolumeIndex + check)"),
        ("stored", "stored path (CellIndex + find_conflicts, PostgreSQL)"),
        ("postgis", "PostGIS (ST_DWithin, one LATERAL query)"),
    ):
        report.append(
            (f"{name}: median / p99 per check", f"{ms(times[way], 0.5)} / {ms(times[way], 0.99)}")
        )
    for way, name in (("memory", "in process"), ("stored", "stored path")):
        ratio = medians["postgis"] / medians[way]
        report.append(
            (
                f"PostGIS / {name} (median)",
                f"{ratio:,.1f} x (target >= 10 x: {'met' if ratio >= 10 else 'MISSED'})",
            )
        )
    seed.table(report)


if __name__ == "__main__":
    main()
