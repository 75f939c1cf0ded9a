"""On PostgreSQL a writer holds an advisory lock on every cell its plan reaches, taken in one
statement, until it commits: a crossing writer waits for it (what makes detection race-free)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from shapely import Polygon
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from deconfliction import geo
from deconfliction.conflicts.detection import LOCK_NAMESPACE, lock_cells
from deconfliction.detect.cells import cells_covering
from tests.conftest import T0

REACH_M = 9260.0


def square_volume(lon: float, lat: float, size: float = 0.01) -> geo.Volume4D:
    ring = [(lon, lat), (lon + size, lat), (lon + size, lat + size), (lon, lat + size)]
    return geo.Volume4D(
        Polygon(ring),
        geo.AltitudeBand(3000.0, 4000.0, "W84"),
        T0 + timedelta(hours=1),
        T0 + timedelta(hours=2),
    )


def held_cells(conn: Connection) -> list[int]:
    return list(
        conn.execute(
            text(
                "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND classid = :ns "
                "AND pid = pg_backend_pid() ORDER BY objid"
            ),
            {"ns": LOCK_NAMESPACE},
        ).scalars()
    )


def test_a_writer_holds_every_cell_it_reaches_until_it_commits(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises its writers: no cell locks")
    # On the corner of four cells: the plan, grown by the reach, touches all four.
    corner = square_volume(36.0, 34.0)
    cells = sorted(cells_covering(corner.footprint, REACH_M))
    assert len(cells) == 4
    inside_one = square_volume(36.1, 34.1)  # its reach stays within one of the four
    with engine.connect() as first, engine.connect() as second:
        with first.begin():
            lock_cells(first, [corner], REACH_M)
            assert held_cells(first) == cells
            with second.begin():
                second.execute(text("SET LOCAL lock_timeout = '200ms'"))
                with pytest.raises(OperationalError, match="lock timeout"):
                    lock_cells(second, [inside_one], REACH_M)
        with second.begin():
            lock_cells(second, [inside_one], REACH_M)  # free once the first committed
            assert held_cells(second) == sorted(cells_covering(inside_one.footprint, REACH_M))
