"""Schemathesis against /openapi.json, as every officer role and with no token: whatever the
request, no 5xx, and every error is problem+json. Bounded: a few examples an operation.

The SSE stream is left out (its answer never ends); tests/hotline covers its bad input."""

from __future__ import annotations

import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from deconfliction.api import create_app
from deconfliction.http import RateLimit
from deconfliction.parties.models import AreaConfig
from deconfliction.parties.service import init_area
from deconfliction.store.db import make_engine, transaction
from tests.builders import activity
from tests.conftest import AREA_TOML, OFFICERS, FakeClock

EXAMPLES = 3  # an operation; x 5 callers each
CALLS = {"total": 0, "5xx": 0}


@pytest.fixture(scope="module")
def seeded(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """An app on a database with the test area, an activity and a message, so that ids exist."""
    path = tmp_path_factory.mktemp("hostile") / "hostile.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    clock = FakeClock()
    with transaction(engine, write=True) as conn:
        tokens = init_area(
            conn,
            AreaConfig.model_validate(tomllib.loads(AREA_TOML)),
            clock(),
            server_held_keys=True,
        ).tokens
    # The live picture runs (tracks are accepted); the other background jobs stay off.
    app = create_app(engine, clock, checkpoint_every_s=None, hotline_every_s=None, feeds=[])
    app.state.services.rate_limit = RateLimit(per_s=1e6, burst=1e6)  # the fuzzer is one token
    with TestClient(app) as client:
        tr = {"Authorization": f"Bearer {tokens['tr-duty']}"}
        assert client.post("/v1/activities", json=activity(), headers=tr).status_code == 201
        message = {"type": "notice", "subject": "s", "to": ["IL"], "text": "t", "language": "en"}
        assert client.post("/v1/hotline/messages", json=message, headers=tr).status_code == 201
        yield client, tokens  # the fuzzer calls through this client: the app's lifespan runs
    print(f"\nschemathesis: {CALLS['total']} calls, {CALLS['5xx']} answered 5xx")
    engine.dispose()


def test_no_5xx_and_every_error_is_problem_json(
    seeded: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = seeded
    callers = [{"Authorization": f"Bearer {tokens[o]}"} for o in OFFICERS] + [{}]
    api = schemathesis.openapi.from_dict(client.get("/openapi.json").json())

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: schemathesis.Case[Any]) -> None:
        for headers in callers:
            # On the client's own event loop, where the app's background tasks live.
            request = case.as_transport_kwargs(base_url=str(client.base_url), headers=headers)
            request.pop("cookies", None)  # the operations take none
            if isinstance(request.get("data"), str | bytes):
                request["content"] = request.pop("data")  # raw bodies: httpx's name
            response = client.request(**request)
            CALLS["total"] += 1
            if response.status_code >= 500:
                CALLS["5xx"] += 1
            case.validate_response(response, checks=[not_a_server_error])
            if response.status_code >= 400:
                content_type = response.headers.get("content-type", "")
                assert content_type.startswith("application/problem+json"), (
                    f"{case.method} {case.formatted_path}: {response.status_code} {content_type}"
                )
                assert response.json()["status"] == response.status_code

    operations = 0
    for found in api.get_all_operations():
        assert isinstance(found, Ok), found  # the schema of every operation loads
        operation = found.ok()
        if operation.path == "/v1/stream/sse":
            continue  # an answer that never ends; its input is checked before it starts
        given(case=operation.as_strategy())(fuzz)()
        operations += 1
    assert operations >= 69  # every operation of the API but the event stream
