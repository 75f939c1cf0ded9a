"""The hotline's tests: an app with the hotline and stream routers, on SQLite and PostgreSQL, for
an area of two participants speaking Turkish and Hebrew, a third speaking Arabic, an Azerbaijani
mediator and an English-speaking observer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from bench.areas import area_toml
from bench.serving import free_port
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from deconfliction.api import create_app
from deconfliction.serving import uvicorn_settings
from deconfliction.store import tables as t
from tests.api.conftest import OfficerClient
from tests.conftest import FakeClock, area_tokens

SERVED_START_LIMIT_S = 180.0  # a server starting on a busy machine
SERVED_STOP_LIMIT_S = 30.0
HOTLINE_AREA = area_toml(
    "Hotline test area",
    ("tr-duty", "tr-watch", "il-duty", "il-watch", "il-hq", "sy-duty", "az-med", "un-obs"),
)


def make_app(engine: Engine, clock: FakeClock) -> FastAPI:
    """The app without background loops: the tests run the scheduler themselves."""
    return create_app(
        engine, clock, checkpoint_every_s=None, hotline_every_s=None, tactical_every_s=None
    )


@pytest.fixture
def area(engine: Engine, clock: FakeClock) -> dict[str, str]:
    return area_tokens(engine, HOTLINE_AREA, clock())


class Officer(OfficerClient):
    def send(self, **body: Any) -> dict[str, Any]:
        """Send a message that must be accepted; its answer."""
        response = self.post("/v1/hotline/messages", json=body)
        assert response.status_code == 201, response.text
        answer: dict[str, Any] = response.json()
        return answer


class Hotline:
    def __init__(self, client: TestClient, tokens: dict[str, str], engine: Engine) -> None:
        self.client = client
        self.tokens = tokens
        self.engine = engine

    def as_(self, officer: str) -> Officer:
        return Officer(self.client, self.tokens[officer])

    def entries(self, kind: str | None = None) -> int:
        """How many entries the log holds (of one kind)."""
        query = select(func.count()).select_from(t.entries)
        if kind is not None:
            query = query.where(t.entries.c.kind == kind)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def facts(self, kind: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.entries.c.payload)
                .where(t.entries.c.kind == kind)
                .order_by(t.entries.c.idx)
            ).scalars()
            return [dict(r) for r in rows]


@pytest.fixture
def hot(engine: Engine, clock: FakeClock, area: dict[str, str]) -> Iterator[Hotline]:
    with TestClient(make_app(engine, clock)) as client:
        yield Hotline(client, area, engine)


def notice(
    to: list[str], text: str = "Tanker track active over the border tonight", **extra: Any
) -> dict[str, Any]:
    return {
        "type": "notice",
        "subject": "Tanker track",
        "to": to,
        "text": text,
        "language": "en",
        **extra,
    }


class Served:
    """An app served by uvicorn in a thread of this process, on a loopback port, run as
    `deconfliction serve` runs it."""

    def __init__(self, engine: Engine, clock: FakeClock) -> None:
        self.port = free_port()
        self.app = make_app(engine, clock)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            **uvicorn_settings(),  # as `deconfliction serve` runs: the hub writes frames itself
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + SERVED_START_LIMIT_S
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=SERVED_STOP_LIMIT_S)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"
