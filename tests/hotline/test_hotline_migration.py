"""Migration 0004 creates exactly the hotline and stream tables of `store/tables.py`."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, Table

from deconfliction.store.tables import metadata

OURS = ("hotline_", "stream_")


def table_of(diff: Any) -> str:
    """The table an autogenerate difference is about."""
    first = diff[0] if isinstance(diff, list) else diff
    for item in first[1:]:
        if isinstance(item, Table):
            return str(item.name)
        table = getattr(item, "table", None)
        if isinstance(table, Table):
            return str(table.name)
        if isinstance(item, str):
            return item
    return ""


def test_migration_matches_the_tables(engine: Engine) -> None:
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    ours = [d for d in diffs if table_of(d).startswith(OURS)]
    assert ours == []
    with engine.connect() as conn:
        names = set(engine.dialect.get_table_names(conn))
    assert {t for t in metadata.tables if t.startswith(OURS)} <= names
