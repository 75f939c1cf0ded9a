"""Backup and restore of the whole database, while the servers run.

SQLite: the online backup API copies a consistent snapshot page by page (readers and the WAL
writer go on); the copy is written next to the target and renamed into place, so a failed
backup leaves no half-written file. Restore checks the file (SQLite, integrity, one of our
databases) and copies it into the live database with the same API, in one step.

PostgreSQL: ``pg_dump --format=custom`` of the current schema (a consistent snapshot, one
transaction), and ``pg_restore --clean --if-exists --single-transaction`` back, so a restore
either replaces everything or nothing. Both tools must be on PATH (Debian:
``postgresql-client``). After a restore the schema is migrated to this version's head.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from deconfliction.errors import Invalid
from deconfliction.store.db import is_sqlite, migrate


def backup(engine: Engine, target: Path) -> None:
    """Write a consistent copy of the database to ``target`` (replaced if it exists)."""
    partial = target.with_name(target.name + ".partial")
    try:
        if is_sqlite(engine):
            with closing(_sqlite(engine)) as source, closing(sqlite3.connect(partial)) as copy:
                source.backup(copy)
        else:
            _run(
                engine,
                "pg_dump",
                "--format=custom",
                "--no-owner",
                f"--schema={_schema(engine)}",
                f"--file={partial}",
                _libpq_url(engine),
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def restore(engine: Engine, source: Path) -> None:
    """Replace the whole database with the backup ``source``, then migrate it to head."""
    if not source.is_file():
        raise Invalid(f"{source}: no such backup file")
    if is_sqlite(engine):
        backup_db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            _check_sqlite_backup(backup_db, source)
            with closing(_sqlite(engine)) as live:
                backup_db.backup(live)
        finally:
            backup_db.close()
    else:
        _run(
            engine,
            "pg_restore",
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            f"--dbname={_libpq_url(engine)}",
            str(source),
        )
    engine.dispose()  # pooled connections may hold the replaced schema's cached state
    migrate(engine)


def _sqlite(engine: Engine) -> sqlite3.Connection:
    path = make_url(engine.url).database
    if not path or path == ":memory:":
        raise Invalid("an in-memory SQLite database has nothing to back up or restore")
    return sqlite3.connect(path)


def _check_sqlite_backup(db: sqlite3.Connection, source: Path) -> None:
    try:
        [(verdict,)] = db.execute("PRAGMA integrity_check").fetchall()
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise Invalid(f"{source} is not a SQLite database: {exc}") from exc
    if verdict != "ok":
        raise Invalid(f"{source} fails the SQLite integrity check: {verdict}")
    if not {"alembic_version", "entries"} <= tables:
        raise Invalid(f"{source} is not a deconfliction database")


def _schema(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT current_schema()")).scalar_one())


def _libpq_url(engine: Engine) -> str:
    """The SQLAlchemy URL as libpq reads it (no ``+driver``); the password goes by
    PGPASSWORD, not on a command line others can list."""
    url = make_url(engine.url).set(drivername="postgresql", password=None)
    return url.render_as_string(hide_password=False)


def _run(engine: Engine, tool: str, *args: str) -> None:
    program = shutil.which(tool)
    if program is None:
        raise Invalid(f"{tool} is not installed (Debian: apt-get install postgresql-client)")
    env = dict(os.environ)
    password = make_url(engine.url).password
    if password is not None:
        env["PGPASSWORD"] = str(password)
    done = subprocess.run([program, *args], capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise Invalid(f"{tool}: {last}")
