"""The write path's concurrency: SQLite's group commit, the log's lock taken at the end of a
write (so concurrent writes overlap on PostgreSQL), and the batch append keeping the tree RFC 6962.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, select, text
from sqlalchemy.exc import OperationalError

from deconfliction.errors import Conflict
from deconfliction.ledger.entry import LOG_PARTY
from deconfliction.ledger.merkle import root_from_leaves
from deconfliction.parties.models import Actor
from deconfliction.parties.service import authenticate
from deconfliction.record import log
from deconfliction.record.service import (
    Statement,
    append_statements,
    perform_write,
    record,
    sign_statement,
)
from deconfliction.store import db
from deconfliction.store import tables as t
from deconfliction.store.db import GroupCommit, make_engine, transaction, write_transaction
from tests.conftest import FakeClock, _truncate
from tests.record.support import Area, app_client, export, make_area, officer_kid, verify

WAIT_S = 20.0


def with_written_table(path: Any) -> Engine:
    """A new SQLite database at ``path`` with one table, ``written (n)``."""
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE written (n INTEGER PRIMARY KEY)"))
    return engine


def test_group_commit_runs_queued_writes_in_one_transaction_and_rolls_back_one_alone(
    tmp_path: Any,
) -> None:
    engine = with_written_table(tmp_path / "group.db")
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    group = GroupCommit()
    leading, release = threading.Event(), threading.Event()

    def insert(n: int, fail: bool = False) -> Callable[[Connection], int]:
        def work(conn: Connection) -> int:
            if n == 0:  # the first write holds the writer until the others have queued
                leading.set()
                assert release.wait(WAIT_S)
            conn.execute(text("INSERT INTO written VALUES (:n)"), {"n": n})
            if fail:
                raise ValueError(f"write {n} fails after its insert")
            return n

        return work

    answers: dict[int, Any] = {}

    def call(n: int) -> None:
        try:
            answers[n] = group.run(engine, insert(n, fail=n == 3))
        except ValueError as exc:
            answers[n] = exc

    first = threading.Thread(target=call, args=(0,))
    first.start()
    assert leading.wait(WAIT_S)
    others = [threading.Thread(target=call, args=(n,)) for n in range(1, 6)]
    for thread in others:
        thread.start()
    deadline = time.monotonic() + WAIT_S
    while group.queued < 5 and time.monotonic() < deadline:
        time.sleep(0.005)
    commits.clear()
    release.set()
    for thread in [first, *others]:
        thread.join(WAIT_S)

    assert [answers[n] for n in (0, 1, 2, 4, 5)] == [0, 1, 2, 4, 5]
    assert isinstance(answers[3], ValueError)
    # The first write's batch committed, then the five queued ones in one more commit.
    assert len(commits) == 2
    with engine.connect() as conn:
        written = conn.execute(text("SELECT n FROM written ORDER BY n")).scalars().all()
    assert written == [0, 1, 2, 4, 5]  # write 3 rolled back alone, after its callers' answer
    engine.dispose()


def test_a_write_alone_in_its_batch_runs_without_a_savepoint_and_fails_alone(
    tmp_path: Any,
) -> None:
    engine = with_written_table(tmp_path / "alone.db")
    sent: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))

    def insert(n: int, fail: bool) -> Callable[[Connection], int]:
        def work(conn: Connection) -> int:
            conn.execute(text("INSERT INTO written VALUES (:n)"), {"n": n})
            if fail:
                raise ValueError(f"write {n} fails after its insert")
            return n

        return work

    group = GroupCommit()
    with pytest.raises(ValueError, match="write 1 fails"):
        group.run(engine, insert(1, fail=True))
    assert group.run(engine, insert(2, fail=False)) == 2
    assert not [s for s in sent if "SAVEPOINT" in s]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM written")).scalars().all() == [2]
    engine.dispose()


def test_group_commit_answers_every_write_of_a_batch_whose_commit_fails(tmp_path: Any) -> None:
    engine = with_written_table(tmp_path / "fails.db")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE parent (n INTEGER PRIMARY KEY)"))
        conn.execute(
            text(
                "CREATE TABLE child (n INTEGER REFERENCES parent (n) DEFERRABLE INITIALLY DEFERRED)"
            )
        )

    def orphan(conn: Connection) -> None:
        conn.execute(text("INSERT INTO written VALUES (1)"))
        conn.execute(text("INSERT INTO child VALUES (7)"))  # fails only at the commit

    with pytest.raises(Exception, match="FOREIGN KEY"):
        GroupCommit().run(engine, orphan)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM written")).scalar() == 0
    engine.dispose()


@pytest.fixture
def pg_area(pg_url: str, clock: FakeClock) -> Iterator[Area]:
    engine = make_engine(pg_url)
    _truncate(engine)
    with app_client(engine, clock) as client:
        yield make_area(engine, clock, client, server_held=True)
    engine.dispose()


def actor_of(area: Area, officer: str) -> Actor:
    with transaction(area.engine, write=False) as conn:
        return authenticate(conn, area.setup.tokens[officer], area.clock())


@pytest.mark.postgres
def test_the_log_lock_is_taken_at_the_end_so_concurrent_writes_overlap(pg_area: Area) -> None:
    """Write A waits inside its use case; write B starts after it and must finish first. Were
    the log's lock taken at A's start (as it once was), B would wait for A and this would fail."""
    engine, now = pg_area.engine, pg_area.clock()
    tr, il = actor_of(pg_area, "tr-duty"), actor_of(pg_area, "il-duty")
    inside_a, b_done = threading.Event(), threading.Event()

    def use_case(actor: Actor, wait: bool) -> Callable[[Connection], tuple[int, dict[str, Any]]]:
        def run(conn: Connection) -> tuple[int, dict[str, Any]]:
            if wait:
                inside_a.set()
                assert b_done.wait(WAIT_S), "write B waited for write A"
            record(conn, actor, "conflict.resolved", "conflict/1", {"side": actor.party}, now)
            return 200, {"id": actor.party}

        return run

    def write(actor: Actor, wait: bool) -> dict[str, Any]:
        return perform_write(
            engine,
            actor,
            None,
            Statement("activity.acknowledge", target=1),
            use_case(actor, wait),
            lambda body: f"test/{body['id']}",
            now,
        )[2]

    receipts: dict[str, dict[str, Any]] = {}
    a = threading.Thread(target=lambda: receipts.update(A=write(tr, wait=True)))
    a.start()
    assert inside_a.wait(WAIT_S)
    receipts["B"] = write(il, wait=False)
    b_done.set()
    a.join(WAIT_S)

    # B is in the log before A, each write's fact right after its statement, pointing at it.
    assert receipts["B"]["index"] < receipts["A"]["index"]
    with transaction(engine, write=False) as conn:
        for side, party in (("A", "TR"), ("B", "IL")):
            index = receipts[side]["index"]
            statement, fact = conn.execute(
                select(t.entries).where(t.entries.c.idx.in_([index, index + 1]))
                .order_by(t.entries.c.idx)
            ).all()  # fmt: skip
            assert (statement.party, statement.subject) == (party, f"test/{party}")
            assert fact.party == LOG_PARTY
            assert fact.payload["statement"] == index
            assert fact.payload["side"] == party
    assert verify(export(engine), pg_area.trust).ok


def test_a_batch_of_statements_is_verified_appended_at_once_and_replays_refused(
    own_area: Area,
) -> None:
    engine, now = own_area.engine, own_area.clock()
    actor = actor_of(own_area, "tr-duty")
    private = own_area.setup.keys.officers["tr-duty"]
    kid = officer_kid("tr-duty", private)

    def signed(target: int, nonce: str | None = None) -> Statement:
        statement = Statement("activity.acknowledge", target=target)
        at = now + timedelta(milliseconds=target)
        signature = sign_statement(statement, "TR", "tr-duty", kid, private, at, nonce)
        return Statement(statement.kind, target=target, signed=signature)

    batch = [signed(i) for i in range(40)]
    with transaction(engine, write=True) as conn:
        before = log.size(conn)
        indices = append_statements(conn, actor, batch, now)
    assert indices == list(range(before, before + 40))
    with transaction(engine, write=False) as conn:
        size = log.size(conn)
        leaves = conn.execute(select(t.entries.c.leaf_hash).order_by(t.entries.c.idx)).scalars()
        # The tree updated once for the batch is the RFC 6962 tree of every leaf, and proves.
        assert log.root(conn, size) == root_from_leaves(bytes.fromhex(h) for h in leaves)
    assert verify(export(engine), own_area.trust).ok

    again = [signed(100, nonce="ab" * 16), signed(101, nonce="ab" * 16)]
    with pytest.raises(Conflict, match="replay"), transaction(engine, write=True) as conn:
        append_statements(conn, actor, again, now)
    with pytest.raises(Conflict, match="replay"), transaction(engine, write=True) as conn:
        append_statements(conn, actor, [batch[7]], now)
    with transaction(engine, write=False) as conn:
        assert log.size(conn) == size


def test_a_write_started_inside_a_write_transaction_fails_instead_of_hanging(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "WRITER_WAIT_S", 0.2)
    engine = make_engine(f"sqlite:///{tmp_path / 'nested.db'}")
    ran: list[int] = []

    def work(conn: Connection) -> int:
        ran.append(1)
        return int(conn.execute(text("SELECT 1")).scalar_one())

    began = time.monotonic()
    with pytest.raises(OperationalError, match="SQLite writer"), transaction(engine, write=True):
        write_transaction(engine, work)
    assert time.monotonic() - began < 10
    # The write that gave up was taken off the queue: the next leader does not run it.
    assert write_transaction(engine, lambda conn: conn.execute(text("SELECT 2")).scalar()) == 2
    assert ran == []
    engine.dispose()
