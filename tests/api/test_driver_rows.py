"""`store.db.run_rows`, `insert_row` and `fetch_rows`: on SQLite they bypass SQLAlchemy's
execution path, so what they store and read must be exactly what SQLAlchemy would store and
read, and their errors must be SQLAlchemy's; elsewhere SQLAlchemy runs them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from deconfliction.store import tables as t
from deconfliction.store.db import fetch_first, fetch_rows, insert_row, run_rows, transaction
from tests.conftest import T0

NODES = insert(t.ledger_nodes)
ENTRIES = insert(t.entries)
EVENTS = insert(t.stream_events)
SIZE = update(t.ledger_state).where(t.ledger_state.c.id == 1).values(size=10)


def entry_row(idx: int, **changed: Any) -> dict[str, Any]:
    row = {
        "idx": idx,
        "kind": "test.fact",
        "party": "LOG",
        "author": "log",
        "subject": "test/1",
        "payload": {"é": [1, 2.5, None, True], "nested": {"b": "ü", "a": 10**15}},
        "payload_sha256": "ab" * 32,
        "client_time": "2026-01-01T00:00:00Z",
        "nonce": f"nonce-{idx}",
        "key_id": "k1",
        "supersedes": None,
        "server_held_key": True,
        "signature": "c2ln",
        "leaf_hash": "cd" * 32,
        "integrated_at": T0 + timedelta(microseconds=123456),
    }
    return {**row, **changed}


def stored(engine: Engine, table: str, key: str) -> dict[Any, tuple[Any, ...]]:
    """The rows as the database holds them (the driver's values, not SQLAlchemy's), by key,
    without the key."""
    with engine.connect() as conn:
        result = conn.exec_driver_sql(f"SELECT * FROM {table}")
        keys, rows = list(result.keys()), result.all()
    at = keys.index(key)
    return {row[at]: tuple(v for i, v in enumerate(row) if i != at) for row in rows}


def test_rows_are_stored_exactly_as_sqlalchemy_stores_them(engine: Engine) -> None:
    with transaction(engine, write=True) as conn:
        conn.execute(ENTRIES, [entry_row(0), entry_row(1, supersedes="ef" * 32)])
        run_rows(conn, ENTRIES, [entry_row(2), entry_row(3, supersedes="ef" * 32)])
        conn.execute(NODES, [{"level": 0, "idx": 0, "hash": bytes(range(32))}])
        run_rows(conn, NODES, [{"level": 0, "idx": 1, "hash": bytes(range(32))}])
    entries = stored(engine, "entries", "idx")
    assert entries[2] == tuple(v if v != "nonce-0" else "nonce-2" for v in entries[0]), (
        "a row written by the driver differs from SQLAlchemy's"
    )
    assert entries[3] == tuple(v if v != "nonce-1" else "nonce-3" for v in entries[1])
    with engine.connect() as conn:
        read = {r.idx: r for r in conn.execute(select(t.entries))}
        assert read[2].integrated_at == T0 + timedelta(microseconds=123456)
        assert read[2].payload == entry_row(2)["payload"]
        assert read[2].server_held_key is True
        nodes = dict(conn.execute(select(t.ledger_nodes.c.idx, t.ledger_nodes.c.hash)).all())
    assert nodes == {0: bytes(range(32)), 1: bytes(range(32))}


def test_the_statement_s_own_values_are_bound_and_the_rows_values_processed(
    engine: Engine,
) -> None:
    with transaction(engine, write=True) as conn:
        run_rows(conn, SIZE, [{}])
        assert conn.execute(select(t.ledger_state.c.size)).scalar_one() == 10
        run_rows(conn, update(t.ledger_state).values(size=t.ledger_state.c.size + 1), [{}])
        assert conn.execute(select(t.ledger_state.c.size)).scalar_one() == 11
        run_rows(conn, NODES, [])  # nothing to write: nothing sent
        first = insert_row(conn, EVENTS, {"kind": "a", "audience": [], "payload": {}, "at": T0})
        second = insert_row(
            conn, EVENTS, {"kind": "b", "audience": ["IL"], "payload": {}, "at": T0}
        )
        assert second == first + 1
        assert conn.execute(
            select(t.stream_events.c.kind, t.stream_events.c.audience).where(
                t.stream_events.c.id == second
            )
        ).one() == ("b", ["IL"])


def test_a_refused_row_raises_sqlalchemy_s_error_and_writes_none_of_the_batch(
    engine: Engine,
) -> None:
    with transaction(engine, write=True) as conn:
        run_rows(conn, NODES, [{"level": 0, "idx": 5, "hash": b"x" * 32}])
    with pytest.raises(IntegrityError), transaction(engine, write=True) as conn:
        run_rows(
            conn,
            NODES,
            [{"level": 0, "idx": 6, "hash": b"y" * 32}, {"level": 0, "idx": 5, "hash": b"z" * 32}],
        )
    with engine.connect() as conn:
        held = conn.execute(text("SELECT idx, hash FROM ledger_nodes ORDER BY idx")).all()
    assert [(i, bytes(h)) for i, h in held] == [(5, b"x" * 32)]


def test_rows_read_by_the_driver_are_sqlalchemy_s_rows(engine: Engine) -> None:
    by_idx = select(t.entries).where(t.entries.c.idx >= bindparam("low")).order_by(t.entries.c.idx)
    wanted = select(t.entries.c.idx).where(t.entries.c.idx.in_(bindparam("ids", expanding=True)))
    with transaction(engine, write=True) as conn:
        run_rows(conn, ENTRIES, [entry_row(0), entry_row(1, supersedes="ef" * 32)])
        fetched = fetch_rows(conn, by_idx, {"low": 0})
        assert [tuple(r) for r in fetched] == [tuple(r) for r in conn.execute(by_idx, {"low": 0})]
        assert fetched[1].supersedes == "ef" * 32
        assert fetched[0].supersedes is None
        assert fetched[0].integrated_at == T0 + timedelta(microseconds=123456)
        assert fetched[0].payload == entry_row(0)["payload"]
        assert fetched[0].server_held_key is True
        assert fetch_rows(conn, by_idx, {"low": 2}) == []
        assert fetch_first(conn, by_idx, {"low": 1}).supersedes == "ef" * 32
        assert fetch_first(conn, by_idx, {"low": 2}) is None
        # An expanding IN list is SQLAlchemy's to run.
        assert [r.idx for r in fetch_rows(conn, wanted, {"ids": [1, 5]})] == [1]
