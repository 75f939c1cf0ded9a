"""The log's lock on PostgreSQL: taken once per transaction however many steps of a write ask for
it (each asking is a round trip under the write's cell locks), and taken again where it may have
gone: in a new transaction, or after the savepoint that took it rolled back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, event

from deconfliction.record import log
from deconfliction.store.db import make_engine
from tests.conftest import _truncate

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    _truncate(engine)
    yield engine
    engine.dispose()


def lock_statements(engine: Engine) -> list[str]:
    seen: list[str] = []

    def count(_conn: Connection, _cursor: object, statement: str, *_args: object) -> None:
        if "FOR UPDATE" in statement and "ledger_state" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    return seen


def test_the_lock_is_taken_once_per_transaction(pg_engine: Engine) -> None:
    seen = lock_statements(pg_engine)
    with pg_engine.begin() as conn:
        log.lock(conn)
        log.lock(conn)
        log.lock(conn)
    assert len(seen) == 1
    with pg_engine.begin() as conn:  # the same connection from the pool, a new transaction
        log.lock(conn)
    assert len(seen) == 2


def test_a_savepoint_rolled_back_takes_its_lock_with_it(pg_engine: Engine) -> None:
    seen = lock_statements(pg_engine)
    with pg_engine.begin() as conn:
        savepoint = conn.begin_nested()
        log.lock(conn)
        savepoint.rollback()  # PostgreSQL releases the row lock taken inside it
        log.lock(conn)
        log.lock(conn)
    assert len(seen) == 2


def test_a_second_writer_waits_for_the_first_to_commit(pg_engine: Engine) -> None:
    with pg_engine.begin() as first:
        log.lock(first)
        log.lock(first)  # not taken again, still held
        with pg_engine.connect() as second:
            second.exec_driver_sql("SET lock_timeout = '100ms'")
            with pytest.raises(Exception, match="lock timeout"):
                log.lock(second)
            second.rollback()
