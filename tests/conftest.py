"""Fixtures shared by the storage tests: every such test runs on SQLite and on PostgreSQL.

PostgreSQL is the real server of the machine (DECONFLICTION_TEST_PG, default the local `test`
database). Each test session works in a schema of its own, so parallel runs do not collide.
Outside CI an unreachable server skips those tests with the reason; with CI=true it fails them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bench.areas import area_toml
from sqlalchemy import Engine, create_engine, text

from deconfliction.parties.models import AreaConfig
from deconfliction.parties.service import init_area
from deconfliction.store.db import make_engine, migrate, transaction
from deconfliction.store.tables import metadata

PG_URL = os.environ.get(
    "DECONFLICTION_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
T0 = datetime(2030, 1, 1, 0, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    """The tests' time: starts at T0 and moves only when a test moves it."""

    now: datetime = field(default=T0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is the slow part)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()  # closing the last connection folds the WAL into the file we copy
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    admin = create_engine(PG_URL)
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # any connection failure means the same: no server to test on
        admin.dispose()
        reason = f"PostgreSQL unreachable at {PG_URL}: {type(exc).__name__}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true needs it)")
        pytest.skip(reason)
    schema = f"dcf_test_{os.getpid()}_{secrets.token_hex(3)}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    yield url
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _truncate(engine: Engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        conn.execute(text("INSERT INTO ledger_state (id, size) VALUES (1, 0)"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        eng = make_engine(f"sqlite:///{path}")
    else:
        eng = make_engine(request.getfixturevalue("pg_url"))
        _truncate(eng)
    yield eng
    eng.dispose()


OFFICERS = ("tr-duty", "tr-cmd", "il-duty", "az-med", "un-obs")
AREA_TOML = area_toml("Test area", OFFICERS)


def area_tokens(engine: Engine, area_toml: str, now: datetime) -> dict[str, str]:
    """Set up the area with server-held keys; the officers' tokens."""
    with transaction(engine, write=True) as conn:
        return init_area(
            conn, AreaConfig.model_validate(tomllib.loads(area_toml)), now, server_held_keys=True
        ).tokens


@pytest.fixture
def tokens(engine: Engine, clock: FakeClock) -> dict[str, str]:
    return area_tokens(engine, AREA_TOML, clock())
