"""Engines, transactions and migrations.

SQLite runs in WAL mode with one writer at a time: a write transaction starts with
BEGIN IMMEDIATE so that it takes the write lock up front instead of failing half-way on upgrade.
PostgreSQL runs at READ COMMITTED; writers that must not race take advisory locks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

DEFAULT_URL = "sqlite:///deconfliction.db"


def database_url(explicit: str | None = None) -> str:
    """--db wins, then DECONFLICTION_DB, then the SQLite file in the working directory."""
    return explicit or os.environ.get("DECONFLICTION_DB") or DEFAULT_URL


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _sqlite_pragmas(engine)
        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


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
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("write") else "BEGIN")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def transaction(engine: Engine, *, write: bool) -> Iterator[Connection]:
    """One transaction: committed when the block ends, rolled back on any exception."""
    with engine.connect() as conn:
        conn.info["write"] = write
        with conn.begin():
            yield conn


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    script_location = str(resources.files("deconfliction.store") / "migrations")
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    with engine.connect() as conn:
        conn.info["write"] = True
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        conn.commit()
