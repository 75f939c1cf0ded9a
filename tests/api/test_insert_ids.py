"""Rows inserted together get their ids back matched to them, in one INSERT for the lot, on
every database: the conflicts of a filing, their events and the plan's volumes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest.mock import patch

from sqlalchemy import Connection, Engine, event, select

from deconfliction.conflicts.detection import stored_volume
from deconfliction.detect.cells import cells_covering
from deconfliction.store import db
from deconfliction.store import tables as t
from deconfliction.store.db import insert_returning_ids, transaction
from tests.api.conftest import Api
from tests.builders import activity, volume
from tests.conftest import T0


@contextmanager
def inserts_into(engine: Engine, table: str) -> Iterator[list[str]]:
    """The INSERT statements into ``table`` sent while the block runs: by SQLAlchemy, or on
    SQLite's driver (`store.db.run_rows`)."""
    sent: list[str] = []

    def seen(*args: Any) -> None:
        statement = args[2]
        if statement.startswith(f"INSERT INTO {table} "):
            sent.append(statement)

    on_driver = db._on_driver

    def on_driver_seen(conn: Connection, plan: Any, values: list[list[Any]]) -> int:
        seen(conn, None, plan.sql)
        return on_driver(conn, plan, values)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        with patch.object(db, "_on_driver", on_driver_seen):
            yield sent
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def event_row(n: int) -> dict[str, Any]:
    return {"kind": "test.row", "audience": ["IL"], "payload": {"n": n}, "at": T0}


def test_ids_come_back_matched_to_their_rows_from_one_insert(engine: Engine) -> None:
    with transaction(engine, write=True) as conn:
        [alone] = insert_returning_ids(conn, t.stream_events, [event_row(-1)])
        with inserts_into(engine, "stream_events") as sent:
            ids = insert_returning_ids(conn, t.stream_events, [event_row(n) for n in range(7)])
        assert insert_returning_ids(conn, t.stream_events, []) == []
    assert len(sent) == 1
    assert len(set(ids)) == 7
    assert ids == sorted(ids)
    assert alone < ids[0]
    with engine.connect() as conn:
        rows = conn.execute(select(t.stream_events.c.id, t.stream_events.c.payload))
        stored = {row.id: row.payload for row in rows}
    assert stored == {alone: {"n": -1}, **{i: {"n": n} for n, i in enumerate(ids)}}


def test_a_batch_after_a_rolled_back_one_gets_its_own_rows_ids(engine: Engine) -> None:
    # The write that fails in a group commit rolls back alone; on SQLite its ids are taken again
    # by the next (the highest id went back), on PostgreSQL the sequence has moved on.
    with transaction(engine, write=True) as conn:
        with conn.begin_nested() as failed:
            insert_returning_ids(conn, t.stream_events, [event_row(n) for n in range(3)])
            failed.rollback()
        kept = insert_returning_ids(conn, t.stream_events, [event_row(n) for n in range(3)])
    with engine.connect() as conn:
        stored = conn.execute(select(t.stream_events.c.id).order_by(t.stream_events.c.id))
        assert list(stored.scalars()) == kept


def test_a_plan_meeting_several_others_records_each_conflict_under_its_own_id(api: Api) -> None:
    # Three IL plans far apart; one TR plan of three volumes, each crossing one of them.
    places = [(36.0, 34.0), (37.0, 34.0), (36.0, 35.0)]
    il = [
        api.as_("il-duty").post("/v1/activities", json=activity(volume(lon, lat))).json()["id"]
        for lon, lat in places
    ]
    with (
        inserts_into(api.engine, "conflicts") as conflicts,
        inserts_into(api.engine, "volumes") as volumes,
    ):
        tr = api.as_("tr-duty").post(
            "/v1/activities",
            json=activity(*(volume(lon + 0.1, lat + 0.1) for lon, lat in places)),
        )
    assert tr.status_code == 201, tr.text
    assert len(conflicts) == len(volumes) == 1
    made = tr.json()["conflicts"]
    assert sorted(c["b"]["activity"] for c in made) == il
    for answered in made:
        read = api.as_("tr-duty").get(f"/v1/conflicts/{answered['id']}").json()
        assert read["b"]["activity"] == answered["b"]["activity"]
        assert read["overlap"] == answered["overlap"]

    with api.engine.connect() as conn:
        # Each volume's cells were indexed under that volume's own id.
        rows = conn.execute(
            select(t.volumes.c.id, t.volumes.c.idx, t.volumes.c.geometry).where(
                t.volumes.c.activity_id == tr.json()["id"]
            )
        ).all()
        assert sorted(r.idx for r in rows) == [0, 1, 2]
        for row in rows:
            cells = conn.execute(
                select(t.volume_cells.c.cell).where(t.volume_cells.c.volume_id == row.id)
            ).scalars()
            assert sorted(cells) == sorted(cells_covering(stored_volume(row.geometry).footprint))
        # Each conflict's event tells of that conflict, in the order of the conflicts.
        told = conn.execute(
            select(t.stream_events.c.payload)
            .where(t.stream_events.c.kind == "conflict.detected")
            .order_by(t.stream_events.c.id)
        ).scalars()
        assert [p["conflict"] for p in told] == [c["id"] for c in made]
