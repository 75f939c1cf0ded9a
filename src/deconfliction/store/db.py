"""Engines, transactions and migrations.

SQLite runs in WAL mode with one writer at a time: a write transaction starts with
BEGIN IMMEDIATE so that it takes the write lock up front instead of failing half-way on upgrade.
The threads of one process queue for that lock in the process (`GroupCommit.holding`) instead of
spinning in SQLite's busy handler, and the writes of the API are group-committed: up to
GROUP_LIMIT queued writes run in one transaction, each in its own SAVEPOINT (one that fails rolls
back alone), with one commit for all; each is answered only after that commit.
PostgreSQL runs at READ COMMITTED; writers that must not race take advisory locks.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import deque, namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, TypeVar, cast

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    Insert,
    Select,
    Table,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import Executable

DEFAULT_URL = "sqlite:///deconfliction.db"
# Writes per group commit on SQLite: enough to drain the API's thread pool in one or two commits.
GROUP_LIMIT = 64
# How long a write waits for this process's SQLite writer: SQLite's own busy timeout.
WRITER_WAIT_S = 30.0
T = TypeVar("T")


def database_url(explicit: str | None = None) -> str:
    """--db wins, then DECONFLICTION_DB, then the SQLite file in the working directory."""
    return explicit or os.environ.get("DECONFLICTION_DB") or DEFAULT_URL


def make_engine(url: str) -> Engine:
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, **_JSON_COLUMNS)


def loop_engine(engine: Engine) -> Engine | None:
    """An engine for the reads an event loop makes itself (a request's token), or None where
    they belong in the thread pool.

    On an SQLite file: one connection of its own that only the loop's thread uses, so such a
    read never waits for the pool that the worker threads share; a local read in WAL mode
    costs less than the hop to a worker thread. Elsewhere a read crosses the network (and an
    in-memory SQLite database is another database on another connection)."""
    if not is_sqlite(engine) or engine.url.database in (None, "", ":memory:"):
        return None
    return _sqlite_engine(engine.url.render_as_string(hide_password=False), poolclass=StaticPool)


def _sqlite_engine(url: str, **pool: Any) -> Engine:
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, **_JSON_COLUMNS, **pool
    )
    _sqlite_pragmas(engine)
    return engine


def dumps_json(value: Any) -> str:
    """A JSON column's text. Names that are not strings are written as strings, as the standard
    encoder does; a value it could not write (a datetime, say) is refused here too."""
    return orjson.dumps(value, option=JSON_OPTIONS).decode()


# JSON columns (conflict regions, plans, event payloads, answers) through orjson: several times
# faster than the standard encoder on a region's coordinates.
_JSON_COLUMNS: dict[str, Any] = {"json_serializer": dumps_json, "json_deserializer": orjson.loads}
JSON_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def first_in_transaction(conn: Connection, mark: str) -> bool:
    """True the first time `mark` is asked for in this transaction, then False until it ends.
    Marked on the innermost transaction: a savepoint rolled back takes what it did with it (its
    row locks, its notifications), so after it the next asks again."""
    by = conn.get_nested_transaction() or conn.get_transaction()
    if by is not None and conn.info.get(mark) is by:
        return False
    conn.info[mark] = by
    return True


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let us emit BEGIN ourselves (the driver's implicit BEGIN is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        # On the driver's connection: every transaction begins here, and SQLAlchemy's
        # execution path costs several times the statement itself.
        dbapi_conn = conn.connection.dbapi_connection
        assert dbapi_conn is not None
        dbapi_conn.execute("BEGIN IMMEDIATE" if conn.info.get("write") else "BEGIN")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def transaction(engine: Engine, *, write: bool) -> Iterator[Connection]:
    """One transaction: committed when the block ends, rolled back on any exception."""
    with _writer(engine) if write else nullcontext(), engine.connect() as conn:
        conn.info["write"] = write
        with conn.begin():
            yield conn


def write_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run `work` in a write transaction that has committed when this returns.

    On SQLite, concurrent calls of this process are group-committed; elsewhere each call is its
    own transaction (PostgreSQL's writers run in parallel, serialised only where they must be).
    """
    if is_sqlite(engine):
        return _group(engine).run(engine, work)
    with transaction(engine, write=True) as conn:
        return work(conn)


@dataclass(eq=False)
class _Write:
    work: Callable[[Connection], Any]
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class GroupCommit:
    """The one writer of an SQLite database in this process.

    A caller queues its write and then waits for the writer lock; whoever gets it first leads:
    it takes up to `limit` queued writes (its own and those that queued meanwhile), runs them in
    one transaction, commits, and wakes their callers. Under load the queue fills while a batch
    runs, so the commit's cost is shared; alone, a write is its own batch.
    """

    def __init__(self, limit: int = GROUP_LIMIT) -> None:
        self.limit = limit
        self._writer = threading.Lock()
        self._queue: deque[_Write] = deque()
        self._queue_lock = threading.Lock()

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Hold this process's writer; waiting longer than SQLite would is an error, not a hang
        (a thread that waits for its own write while inside a write transaction, for one)."""
        if not self._writer.acquire(timeout=WRITER_WAIT_S):
            raise OperationalError(
                "waiting for the SQLite writer", None, TimeoutError("database is locked")
            )
        try:
            yield
        finally:
            self._writer.release()

    @property
    def queued(self) -> int:
        """Writes waiting for a leader."""
        with self._queue_lock:
            return len(self._queue)

    def run(self, engine: Engine, work: Callable[[Connection], T]) -> T:
        write = _Write(work)
        with self._queue_lock:
            self._queue.append(write)
        while not write.done.is_set():
            try:
                with self.holding():
                    if not write.done.is_set():
                        self._lead(engine)
            except OperationalError:
                with self._queue_lock:
                    if write in self._queue:  # never run: it fails, and it never will run
                        self._queue.remove(write)
                        raise
                write.done.wait()  # a leader runs it: answer as that commit says
        if write.error is not None:
            raise write.error
        result: T = write.result
        return result

    def _lead(self, engine: Engine) -> None:
        with self._queue_lock:
            batch = [self._queue.popleft() for _ in range(min(self.limit, len(self._queue)))]
        try:
            with engine.connect() as conn:
                conn.info["write"] = True
                with conn.begin():
                    if len(batch) == 1:
                        # Alone, it needs no savepoint: failing, it rolls the transaction back.
                        batch[0].result = batch[0].work(conn)
                    else:
                        for write in batch:
                            try:
                                with conn.begin_nested():
                                    write.result = write.work(conn)
                            except Exception as exc:  # this write is rolled back alone
                                write.error = exc
        except BaseException as exc:
            # A write alone failed, the commit failed or the batch was interrupted: none of the
            # batch is written.
            for write in batch:
                write.result, write.error = None, exc
            if not isinstance(exc, Exception):
                raise
        finally:
            for write in batch:
                write.done.set()


_GROUPS: weakref.WeakKeyDictionary[Engine, GroupCommit] = weakref.WeakKeyDictionary()
_GROUPS_LOCK = threading.Lock()


def _group(engine: Engine) -> GroupCommit:
    with _GROUPS_LOCK:
        group = _GROUPS.get(engine)
        if group is None:
            # Held by the engine only: the group goes with its engine.
            group = _GROUPS[engine] = GroupCommit()
        return group


def _writer(engine: Engine) -> AbstractContextManager[Any]:
    """What a write transaction holds while it runs: the process's writer lock on SQLite."""
    return _group(engine).holding() if is_sqlite(engine) else nullcontext()


def alembic_config(conn: Connection) -> Config:
    """Alembic's configuration for the package's migrations, run on ``conn``."""
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("deconfliction.store") / "migrations")
    )
    cfg.attributes["connection"] = conn
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    with engine.connect() as conn:
        conn.info["write"] = True
        command.upgrade(alembic_config(conn), "head")
        conn.commit()


def run_rows(conn: Connection, statement: Executable, rows: Sequence[Mapping[str, Any]]) -> None:
    """Run a constant INSERT / UPDATE / DELETE once per row of ``rows`` (one executemany), for
    writes on every request's path.

    On SQLite it runs on the driver's cursor, compiled once per set of keys and bound by the
    columns' own processors (what is stored is what SQLAlchemy would store): SQLAlchemy's
    per-execution work costs more there than the statement (~40 us against ~10 us). Errors are
    SQLAlchemy's all the same. Elsewhere, and for a statement that needs more than binding
    (a Python-side default, an expanding IN), SQLAlchemy runs it."""
    if not rows:
        return
    plan = _driver_plan(conn, statement, tuple(rows[0]))
    if plan is None:
        conn.execute(statement, list(rows))
    else:
        _on_driver(conn, plan, [plan.bind(row) for row in rows])


def insert_row(conn: Connection, statement: Insert, row: Mapping[str, Any]) -> int:
    """Insert one row into a table whose key ``id`` the database numbers; return that id (on
    SQLite by way of the driver, as `run_rows`)."""
    plan = _driver_plan(conn, statement, tuple(row))
    if plan is None:
        made = conn.execute(statement, dict(row)).inserted_primary_key
        assert made is not None
        return int(made[0])
    return _on_driver(conn, plan, [plan.bind(row)])


def fetch_rows(
    conn: Connection, statement: Select[Any], params: Mapping[str, Any] | None = None
) -> Sequence[Any]:
    """The rows of a constant SELECT, each with its columns as attributes, for reads on every
    request's path: on SQLite by way of the driver as `run_rows`, the values read through the
    columns' own processors (what SQLAlchemy would give); elsewhere SQLAlchemy's rows."""
    given = params or {}
    plan = _driver_plan(conn, statement, tuple(given))
    if plan is None or plan.row is None:
        return conn.execute(statement, dict(given)).all()
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    try:
        raw = dbapi_conn.execute(plan.sql, plan.bind(given)).fetchall()
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _as_sqlalchemy_error(conn, plan, [given], exc) from exc
    make, results = plan.row, plan.results
    if not results:
        return [make._make(values) for values in raw]
    rows = []
    for values in raw:
        read = list(values)
        for at, process in results:
            read[at] = process(read[at])
        rows.append(make._make(read))
    return rows


def fetch_first(
    conn: Connection, statement: Select[Any], params: Mapping[str, Any] | None = None
) -> Any:
    """The first row of `fetch_rows`, or None."""
    found = fetch_rows(conn, statement, params)
    return found[0] if found else None


def _on_driver(conn: Connection, plan: _DriverPlan, values: list[list[Any]]) -> int:
    """Run the plan once per tuple of values; the last row id (SQLite's rowid)."""
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    cursor = dbapi_conn.cursor()
    try:
        if len(values) == 1:
            cursor.execute(plan.sql, values[0])
        else:
            cursor.executemany(plan.sql, values)
        return int(cursor.lastrowid or 0)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _as_sqlalchemy_error(conn, plan, values, exc) from exc
    finally:
        cursor.close()


def _as_sqlalchemy_error(
    conn: Connection, plan: _DriverPlan, params: Sequence[Any], exc: Exception
) -> Exception:
    """The driver's error as SQLAlchemy would have raised it (IntegrityError, ...)."""
    return DBAPIError.instance(
        plan.sql, params, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
    )


@dataclass(frozen=True)
class _DriverPlan:
    sql: str
    keys: tuple[str, ...]  # the bound values' names, in the statement's order
    # Per position: whether the row gives the value, or the statement itself (its WHERE's
    # literals), and then that value.
    given: tuple[bool, ...]
    fixed: tuple[Any, ...]
    # The positions whose values a column's processor converts (most bind as they are).
    processed: tuple[tuple[int, Callable[[Any], Any]], ...]
    # A SELECT's rows: their type (columns by name), and the columns a processor reads.
    row: type[Any] | None = None
    results: tuple[tuple[int, Callable[[Any], Any]], ...] = ()

    def bind(self, row: Mapping[str, Any]) -> list[Any]:
        values = [
            row[key] if given else fixed
            for key, given, fixed in zip(self.keys, self.given, self.fixed, strict=True)
        ]
        for at, process in self.processed:
            values[at] = process(values[at])
        return values


_NOT_JUST_BINDING = (
    "insert_prefetch",
    "update_prefetch",
    "postfetch",
    "post_compile_params",
    "literal_execute_params",
    "effective_returning",
)
_PLANS: dict[tuple[int, tuple[str, ...]], tuple[Executable, _DriverPlan | None]] = {}
_PLANS_LOCK = threading.Lock()
_PLANS_MAX = 1_000


def _driver_plan(
    conn: Connection, statement: Executable, keys: tuple[str, ...]
) -> _DriverPlan | None:
    """How to run ``statement`` with these keys on SQLite's driver, or None where SQLAlchemy
    must (PostgreSQL: there the round trip, not SQLAlchemy, is the cost)."""
    if not is_sqlite(conn.engine):
        return None
    key = (id(statement), keys)
    found = _PLANS.get(key)
    if found is not None:
        return found[1]
    dialect = conn.dialect
    compiled = cast(
        SQLCompiler,
        statement.compile(  # type: ignore[attr-defined]
            dialect=dialect, column_keys=list(keys) if isinstance(statement, Insert) else None
        ),
    )
    plan: _DriverPlan | None = None
    # Python-side defaults, expanding IN lists, RETURNING: SQLAlchemy's part, not binding.
    simple = not any(getattr(compiled, name, None) for name in _NOT_JUST_BINDING)
    if simple and compiled.positiontup is not None:
        names = tuple(compiled.positiontup)
        binds = [compiled.binds[name] for name in names]
        processors = [b.type.dialect_impl(dialect).bind_processor(dialect) for b in binds]
        plan = _DriverPlan(
            sql=compiled.string,
            keys=names,
            given=tuple(name in keys for name in names),
            fixed=tuple(b.effective_value for b in binds),
            processed=tuple((at, p) for at, p in enumerate(processors) if p is not None),
            **_reading(statement, dialect),
        )
    with _PLANS_LOCK:
        if len(_PLANS) >= _PLANS_MAX:  # only constant statements belong here; never grow
            _PLANS.clear()
        # Held with its statement: an id is not reused while the statement lives.
        _PLANS[key] = (statement, plan)
    return plan


def _reading(statement: Executable, dialect: Dialect) -> dict[str, Any]:
    """A SELECT's row type and result processors, when its columns have distinct names."""
    if not isinstance(statement, Select):
        return {}
    columns = list(statement.selected_columns)
    names = [c.key for c in columns if c.key is not None and c.key.isidentifier()]
    if len(set(names)) != len(columns):
        return {}
    try:
        row = namedtuple("DriverRow", names)  # type: ignore[misc]
    except ValueError:  # a name a tuple cannot take (a keyword, a leading underscore)
        return {}
    processors = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
    return {
        "row": row,
        "results": tuple((at, p) for at, p in enumerate(processors) if p is not None),
    }


def insert_returning_ids(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> list[int]:
    """Insert ``rows`` into ``table``, whose key ``id`` the database numbers, in one statement,
    and return their ids in the order of ``rows``, ascending.

    SQLAlchemy runs an INSERT ... RETURNING of several rows on SQLite one row at a time (SQLite
    does not say in what order RETURNING answers), so there the rows get their ids from us: the
    next ones after the highest, which SQLite would give them too (no table is AUTOINCREMENT),
    exact because the writer holds the write lock from that read to its commit (BEGIN IMMEDIATE). On
    PostgreSQL SQLAlchemy sorts the RETURNING rows of one batched statement back into the order
    of ``rows``, and the sequence hands out ids to concurrent writers without a race.
    """
    if not rows:
        return []
    returning, explicit, highest = _id_statements(table)
    if conn.dialect.name != "sqlite":
        return [int(i) for i in conn.execute(returning, list(rows)).scalars()]
    if len(rows) == 1:
        return [insert_row(conn, explicit, rows[0])]
    first = int(fetch_rows(conn, highest)[0][0]) + 1
    ids = list(range(first, first + len(rows)))
    run_rows(conn, explicit, [{**row, "id": i} for i, row in zip(ids, rows, strict=True)])
    return ids


@cache
def _id_statements(table: Table) -> tuple[Any, Any, Any]:
    """`insert_returning_ids`'s statements for ``table``, built once (building one costs about
    as much as running it)."""
    return (
        insert(table).returning(table.c.id, sort_by_parameter_order=True),
        insert(table),
        select(func.coalesce(func.max(table.c.id), 0).label("highest")),
    )
