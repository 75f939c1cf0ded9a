"""The SQL cell index keyed by time slot as well (migration 0010): a check reads only the slots
near its window and still finds every stored volume the cell-only key found; the migration
files the stored volumes exactly as a write does, both ways."""

from __future__ import annotations

import random

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, select, text

from deconfliction.conflicts.detection import (
    CellIndex,
    _cell_candidates,
    near_in_time_and_altitude,
)
from deconfliction.detect.cells import cells_covering
from deconfliction.detect.strategic import SeparationMinima
from deconfliction.store import tables as t
from deconfliction.store.db import alembic_config, transaction
from deconfliction.store.tables import metadata
from deconfliction.volumes import volume_from_json
from tests.api.conftest import Api
from tests.builders import activity, volume
from tests.conftest import FakeClock

REACH = SeparationMinima(10_000.0, 300.0, 600.0)


def notify_many(api: Api, officer: str, count: int, rng: random.Random) -> None:
    """Activities at random places and times over three days, lasting 20 minutes to 12 hours
    (so some are filed under the long slot)."""
    for n in range(count):
        body = activity(
            volume(
                36.0 + rng.uniform(-0.6, 0.6),
                34.0 + rng.uniform(-0.6, 0.6),
                start_h=rng.uniform(1, 72),
                hours=rng.choice([0.34, 1, 2.5, 5.9, 6.0, 6.1, 12]),
                lower=rng.choice([1000, 3000, 5000]),
                upper=rng.choice([6000, 9000]),
                size=rng.uniform(0.02, 0.3),
            ),
            title=f"{officer} {n}",
        )
        answer = api.as_(officer).post("/v1/activities", json=body)
        assert answer.status_code == 201, answer.text


def test_the_slots_lose_no_candidate_the_cells_alone_found(api: Api, clock: FakeClock) -> None:
    rng = random.Random(20301207)
    notify_many(api, "tr-duty", 120, rng)
    with transaction(api.engine, write=False) as conn:
        every_slot = sorted(set(conn.execute(select(t.volume_cells.c.slot)).scalars()))
        assert len(every_slot) > 20  # the rows are spread over many slots
        for _ in range(40):
            checked = [
                volume_from_json(
                    volume(
                        36.0 + rng.uniform(-0.6, 0.6),
                        34.0 + rng.uniform(-0.6, 0.6),
                        start_h=rng.uniform(0, 75),
                        hours=rng.choice([0.5, 2, 8]),
                        size=rng.uniform(0.02, 0.2),
                    )
                )
            ]
            found = CellIndex().candidates(conn, "IL", checked, REACH, clock())
            cells = sorted({c for v in checked for c in cells_covering(v.footprint, 10_000.0)})
            unslotted = conn.execute(
                _cell_candidates(len(checked), by_slot=True),
                {
                    "cells": cells,
                    "slots": every_slot,
                    "party": "IL",
                    **near_in_time_and_altitude(checked, REACH),
                },
            ).all()
            assert [c.id for c in found] == [r.id for r in unslotted]


def cell_rows(engine: Engine) -> list[tuple[int, ...]]:
    """The rows of volume_cells as the schema of the moment has them."""
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(text("SELECT * FROM volume_cells")))


def alembic_to(engine: Engine, revision: str) -> None:
    with engine.connect() as conn:
        conn.info["write"] = True
        if revision == "head":
            command.upgrade(alembic_config(conn), "head")
        else:
            command.downgrade(alembic_config(conn), revision)
        conn.commit()


def test_migrating_files_every_active_volume_as_a_write_does(sqlite_api: Api) -> None:
    # On an SQLite file of its own: the test moves its schema down and up again.
    engine = sqlite_api.engine
    notify_many(sqlite_api, "tr-duty", 30, random.Random(7))
    cancelled = sqlite_api.as_("tr-duty").post(
        "/v1/activities/1/cancel", headers={"If-Match": '"1"'}
    )
    assert cancelled.status_code == 200, cancelled.text
    written = cell_rows(engine)
    with engine.connect() as conn:
        ids = {r[2] for r in written}
        volumes = conn.execute(select(t.volumes.c.id, t.volumes.c.active)).all()
    assert ids == {v.id for v in volumes if v.active} and len(ids) == 29
    alembic_to(engine, "0009")
    assert cell_rows(engine) == sorted({(cell, vid) for cell, _, vid in written})
    alembic_to(engine, "head")
    assert cell_rows(engine) == written


def test_the_migrated_table_is_the_declared_one(engine: Engine) -> None:
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in diffs if "volume_cells" in repr(d)] == []
