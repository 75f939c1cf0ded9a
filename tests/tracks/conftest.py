"""The live picture's tests: an app with the tracks and alerts routers and a `Live` whose loop
the test steps by hand (no background task), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from deconfliction.api import create_app
from deconfliction.parties.service import authenticate
from deconfliction.record.service import Statement, say
from deconfliction.store.db import transaction
from deconfliction.tracks.loop import Live
from deconfliction.tracks.picture import TrackState
from deconfliction.tracks.routes import alerts_router, router
from deconfliction.zones import service as zones
from deconfliction.zones.models import ZoneIn
from tests.conftest import FakeClock


class LiveApi:
    def __init__(self, client: TestClient, live: Live, tokens: dict[str, str]) -> None:
        self.client = client
        self.live = live
        self.tokens = tokens

    def headers(self, officer: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[officer]}"}

    def get(self, officer: str, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, headers=self.headers(officer), **kwargs)

    def post(self, officer: str, url: str, **kwargs: Any) -> Any:
        return self.client.post(url, headers=self.headers(officer), **kwargs)


@pytest.fixture
def live(engine: Engine, clock: FakeClock, tokens: dict[str, str]) -> Live:
    return Live(engine, clock, run_loop=False)


@pytest.fixture
def live_api(
    live: Live, engine: Engine, clock: FakeClock, tokens: dict[str, str]
) -> Iterator[LiveApi]:
    app = create_app(
        engine, clock, checkpoint_every_s=None, hotline_every_s=None, tactical_every_s=None
    )
    app.include_router(router)
    app.include_router(alerts_router)
    app.state.live = live
    with TestClient(app) as client:
        yield LiveApi(client, live, tokens)


def state(
    party: str,
    track: str,
    lat: float,
    lon: float,
    alt_m: float,
    gs_mps: float,
    course_deg: float,
    at: datetime,
    vs_mps: float = 0.0,
) -> TrackState:
    return TrackState(
        party=party,
        id=track,
        lat=lat,
        lon=lon,
        alt_m=alt_m,
        gs_mps=gs_mps,
        course_deg=course_deg,
        vs_mps=vs_mps,
        time=at,
        stale_at=at + timedelta(seconds=30),
        source="api",
    )


def declare_zone(
    engine: Engine, tokens: dict[str, str], officer: str, body: dict[str, Any], now: datetime
) -> int:
    with transaction(engine, write=True) as conn:
        actor = authenticate(conn, tokens[officer], now)
        zone, _ = say(
            conn,
            actor,
            Statement("zone.declare", body=body),
            lambda: zones.declare(conn, actor, ZoneIn.model_validate(body), now),
            "zone",
            now,
        )
    return zone.id
