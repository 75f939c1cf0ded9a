"""An API client per test, on the parametrised engine, with the officers' tokens at hand."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from deconfliction.api import create_app
from deconfliction.store import tables as t
from deconfliction.store.db import make_engine
from tests.conftest import AREA_TOML, FakeClock, area_tokens


def event_count(engine: Engine) -> int:
    """The log's entries but its key records: what the officers' writes put there."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(t.entries)
                .where(~t.entries.c.kind.startswith("key."))
            ).scalar_one()
        )


class Api:
    """Calls the API as one officer or another: `api.as_("tr-duty").post(...)`."""

    def __init__(self, client: TestClient, tokens: dict[str, str], engine: Engine) -> None:
        self.client = client
        self.tokens = tokens
        self.engine = engine

    def as_(self, officer: str) -> OfficerClient:
        return OfficerClient(self.client, self.tokens[officer])

    def event_count(self) -> int:
        return event_count(self.engine)


class OfficerClient:
    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def request(
        self, method: str, url: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        response: httpx.Response = self.client.request(
            method, url, headers={**self.headers, **(headers or {})}, **kwargs
        )
        return response

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)


@pytest.fixture
def api(engine: Engine, clock: FakeClock, tokens: dict[str, str]) -> Iterator[Api]:
    with TestClient(
        create_app(
            engine, clock, checkpoint_every_s=None, hotline_every_s=None, tactical_every_s=None
        )
    ) as client:
        yield Api(client, tokens, engine)


@pytest.fixture
def sqlite_api(sqlite_template: Path, tmp_path: Path, clock: FakeClock) -> Iterator[Api]:
    """The API on an SQLite file of its own: the database the in-memory index serves, and one
    a test may migrate down and up."""
    path = tmp_path / "api.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    tokens = area_tokens(engine, AREA_TOML, clock())
    app = create_app(
        engine, clock, checkpoint_every_s=None, hotline_every_s=None, tactical_every_s=None
    )
    with TestClient(app) as client:
        yield Api(client, tokens, engine)
    engine.dispose()
