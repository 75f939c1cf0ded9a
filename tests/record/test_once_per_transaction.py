"""What a write does once per transaction on PostgreSQL however many of its steps ask (each
asking is a round trip under the write's cell locks): take the log's lock, and notify the
listening servers of new events. Done again where it may have gone: in a new transaction, or
after the savepoint that did it rolled back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, event

from deconfliction.record import log
from deconfliction.store.db import make_engine
from deconfliction.stream.service import publish, publish_many
from tests.conftest import T0, _truncate

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    _truncate(engine)
    yield engine
    engine.dispose()


def statements(engine: Engine, *words: str) -> list[str]:
    """The statements sent from now on that contain all of `words`."""
    seen: list[str] = []

    def count(_conn: Connection, _cursor: object, statement: str, *_args: object) -> None:
        if all(word in statement for word in words):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    return seen


def lock_statements(engine: Engine) -> list[str]:
    return statements(engine, "FOR UPDATE", "ledger_state")


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


def test_events_of_one_transaction_notify_once(pg_engine: Engine) -> None:
    seen = statements(pg_engine, "pg_notify")
    with pg_engine.begin() as conn:
        publish(conn, ["TR"], "test.one", {}, T0)
        publish_many(conn, [(["IL"], "test.two", {}), (["TR"], "test.three", {})], T0)
        savepoint = conn.begin_nested()
        publish(conn, ["IL"], "test.four", {}, T0)  # a savepoint of its own: notifies
        savepoint.rollback()  # and loses it, with the event
        publish(conn, ["IL"], "test.five", {}, T0)  # so notifies again
    assert len(seen) == 3
    with pg_engine.begin() as conn:
        publish(conn, ["TR"], "test.six", {}, T0)
    assert len(seen) == 4
