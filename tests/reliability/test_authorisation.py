"""Who may do what across the party line: every endpoint without credentials, and a table of
every endpoint that names one party's object x every role, own party and other party.

TR's duty officer files an activity (notified to IL, not to UNDOF) and sends IL a message.
Each row says which officers may read or change it; every other officer gets 403 or 404
(problem+json), and a refused write leaves the record as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from deconfliction.api import create_app
from deconfliction.store import tables as t
from tests.builders import activity
from tests.conftest import OFFICERS, FakeClock

PARTICIPANTS_AND_MEDIATOR = {"tr-duty", "tr-cmd", "il-duty", "az-med"}
TR_ACTING = {"tr-duty", "tr-cmd"}
IL_ACTING = {"il-duty"}
MEDIATOR = {"az-med"}  # the mediator reads ladders, speaks on and runs every channel
CURRENT = {"If-Match": "current"}  # the version the object is at when the row runs

# (method, path, body, headers, the officers allowed). {A}: TR's activity; {M}: TR's message
# to IL; {T}: its thread.
ROWS: list[tuple[str, str, Any, dict[str, str], set[str]]] = [
    ("GET", "/v1/activities/{A}", None, {}, PARTICIPANTS_AND_MEDIATOR),
    ("GET", "/v1/activities/{A}/versions", None, {}, PARTICIPANTS_AND_MEDIATOR),
    ("PUT", "/v1/activities/{A}", "activity", {"If-Match": '"1"'}, TR_ACTING),
    ("POST", "/v1/activities/{A}/cancel", None, {"If-Match": '"1"'}, TR_ACTING),
    ("POST", "/v1/activities/{A}/acknowledge", None, {}, IL_ACTING),
    ("GET", "/v1/hotline/messages/{M}", None, {}, PARTICIPANTS_AND_MEDIATOR),
    ("POST", "/v1/hotline/messages/{M}/read", None, {}, IL_ACTING),
    ("POST", "/v1/hotline/messages/{M}/acknowledge", None, {}, IL_ACTING),
    ("GET", "/v1/hotline/threads/{T}", None, {}, PARTICIPANTS_AND_MEDIATOR),
    ("GET", "/v1/hotline/parties/TR", None, {}, TR_ACTING | MEDIATOR),
    ("PUT", "/v1/hotline/parties/TR", "ladder", {"If-Match": '"0"'}, TR_ACTING),
    ("GET", "/v1/hotline/channels/IL-TR", None, {}, PARTICIPANTS_AND_MEDIATOR),
    ("PUT", "/v1/hotline/channels/IL-TR", "deadlines", CURRENT, TR_ACTING | IL_ACTING | MEDIATOR),
    ("POST", "/v1/hotline/channels/IL-TR/suspend", None, {}, TR_ACTING | IL_ACTING | MEDIATOR),
    ("POST", "/v1/activities", "activity", {}, TR_ACTING | IL_ACTING),
    ("POST", "/v1/hotline/messages", "message", {}, TR_ACTING | IL_ACTING | MEDIATOR),
]

BODIES: dict[str, Any] = {
    "activity": activity(),
    "ladder": {
        "time_zone": "Europe/Istanbul",
        "ladder": [{"name": "duty_officer", "role": "officer"}],
    },
    "deadlines": {"deadlines": {"FLASH": 60}},
    "message": {"type": "notice", "subject": "s", "to": ["IL"], "text": "t", "language": "en"},
}


@pytest.fixture
def client(engine: Engine, clock: FakeClock, tokens: dict[str, str]) -> Iterator[TestClient]:
    app = create_app(
        engine, clock, checkpoint_every_s=None, hotline_every_s=None, tactical_every_s=None
    )
    with TestClient(app) as test_client:
        yield test_client


def bearer(tokens: dict[str, str], officer: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[officer]}"}


def record_size(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.entries)).scalar_one())


def test_every_endpoint_refuses_a_caller_without_credentials(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    operations = [(m.upper(), p) for p, ops in paths.items() for m in ops]
    assert len(operations) >= 70
    for method, path in operations:
        concrete = path.format_map(_Any())
        for credentials in ({}, {"Authorization": "Bearer dcf_not-a-token"}):
            headers = {**credentials, "If-Match": '"0"'}  # so a version check cannot answer first
            answer = client.request(method, concrete, headers=headers)
            assert answer.status_code == 401, (method, concrete, answer.status_code, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"


class _Any(dict[str, str]):
    """Fills any path parameter: ids with 1, a party with TR, a channel with IL-TR."""

    def __missing__(self, key: str) -> str:
        return {"party": "TR", "pair": "IL-TR"}.get(key, "1")


@pytest.mark.parametrize(("method", "path", "body", "headers", "allowed"), ROWS)
def test_the_party_line(
    engine: Engine,
    client: TestClient,
    tokens: dict[str, str],
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    allowed: set[str],
) -> None:
    tr = bearer(tokens, "tr-duty")
    filed = client.post("/v1/activities", json=activity(), headers=tr)
    assert filed.status_code == 201, filed.text
    sent = client.post("/v1/hotline/messages", json=BODIES["message"], headers=tr)
    assert sent.status_code == 201, sent.text
    url = path.format(A=filed.json()["id"], M=sent.json()["id"], T=sent.json()["thread"])
    # The refused first: a refused write must not change what an allowed one then finds.
    for officer in sorted(OFFICERS, key=lambda o: o in allowed):
        before = record_size(engine)
        if headers == CURRENT:
            headers = {"If-Match": client.get(url, headers=tr).headers["ETag"]}
        answer = client.request(
            method,
            url,
            json=BODIES[body] if body is not None else None,
            headers={**bearer(tokens, officer), **headers},
        )
        if officer in allowed:
            assert answer.status_code < 300, (officer, method, url, answer.text)
            return  # one allowed caller proves the row; writes would change the next answer
        assert answer.status_code in (403, 404), (officer, method, url, answer.status_code)
        assert answer.headers["content-type"] == "application/problem+json"
        assert record_size(engine) == before, f"{officer}: a refused {method} {url} wrote"
