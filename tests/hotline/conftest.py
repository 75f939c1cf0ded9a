"""The hotline's tests: an app with the hotline and stream routers, on SQLite and PostgreSQL, for
an area of two participants speaking Turkish and Hebrew, a third speaking Arabic, an Azerbaijani
mediator and an English-speaking observer."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from deconfliction.api import create_app
from deconfliction.parties.models import AreaConfig
from deconfliction.parties.service import init_area
from deconfliction.store import tables as t
from deconfliction.store.db import transaction
from tests.conftest import FakeClock

HOTLINE_AREA = """
area = "Hotline test area"

[[party]]
code = "TR"
name = "Türkiye"
language = "tr"
[[party.officer]]
id = "tr-duty"
name = "TR duty officer"
role = "officer"
[[party.officer]]
id = "tr-watch"
name = "TR watch commander"
role = "commander"

[[party]]
code = "IL"
name = "Israel"
language = "he"
[[party.officer]]
id = "il-duty"
name = "IL duty officer"
role = "officer"
[[party.officer]]
id = "il-watch"
name = "IL watch commander"
role = "commander"
[[party.officer]]
id = "il-hq"
name = "IL headquarters"
role = "commander"

[[party]]
code = "SY"
name = "Syria"
language = "ar"
[[party.officer]]
id = "sy-duty"
name = "SY duty officer"
role = "officer"

[[party]]
code = "AZ"
name = "Azerbaijan"
language = "az"
kind = "mediator"
[[party.officer]]
id = "az-med"
name = "AZ mediator"
role = "mediator"

[[party]]
code = "UNDOF"
name = "UNDOF"
language = "en"
kind = "observer"
[[party.officer]]
id = "un-obs"
name = "UNDOF observer"
role = "observer"
"""


def make_app(engine: Engine, clock: FakeClock) -> FastAPI:
    """The app without background loops: the tests run the scheduler themselves."""
    return create_app(
        engine, clock, checkpoint_every_s=None, hotline_every_s=None, tactical_every_s=None
    )


@pytest.fixture
def area(engine: Engine, clock: FakeClock) -> dict[str, str]:
    with transaction(engine, write=True) as conn:
        return init_area(
            conn,
            AreaConfig.model_validate(tomllib.loads(HOTLINE_AREA)),
            clock(),
            server_held_keys=True,
        ).tokens


class Officer:
    def __init__(self, client: TestClient, officer: str, token: str) -> None:
        self.client = client
        self.officer = officer
        self.token = token
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
        return Officer(self.client, officer, self.tokens[officer])

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
