"""Fixtures of the record tests: the shared `api` (server-held keys, on both databases) and an
area set up here, whose party root keys the tests hold."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from tests.api.conftest import api  # noqa: F401  (the shared fixture, re-exported)
from tests.conftest import FakeClock
from tests.record.support import Area, app_client, make_area


@pytest.fixture
def held_area(engine: Engine, clock: FakeClock) -> Iterator[Area]:
    """Officers with server-held keys (the API signs for them); the test holds the roots."""
    with app_client(engine, clock) as client:
        yield make_area(engine, clock, client, server_held=True)


@pytest.fixture
def own_area(engine: Engine, clock: FakeClock) -> Iterator[Area]:
    """Officers who hold their own keys and sign each write on their client."""
    with app_client(engine, clock) as client:
        yield make_area(engine, clock, client, server_held=False)
