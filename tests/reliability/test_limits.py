"""The limits a hostile client meets: request body size, requests per token, WebSocket message
size. Each answer is problem+json (the WebSocket one a close code)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from starlette.websockets import WebSocketDisconnect

from deconfliction.api import MAX_BODY_BYTES, create_app
from deconfliction.errors import Problem
from deconfliction.http import RateLimit
from deconfliction.stream.routes import MAX_WS_MESSAGE_BYTES
from tests.conftest import FakeClock


@pytest.fixture
def client(engine: Engine, clock: FakeClock, tokens: dict[str, str]) -> TestClient:
    app = create_app(
        engine, clock, checkpoint_every_s=None, hotline_every_s=None, tactical_every_s=None
    )
    return TestClient(app)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_over_its_rate_gets_429_with_retry_after(
    client: TestClient, tokens: dict[str, str]
) -> None:
    client.app.state.services.rate_limit = RateLimit(per_s=0.5, burst=3)  # type: ignore[attr-defined]
    for _ in range(3):
        assert client.get("/v1/me", headers=bearer(tokens["tr-duty"])).status_code == 200
    refused = client.get("/v1/me", headers=bearer(tokens["tr-duty"]))
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["Retry-After"] == "2"  # one request back at 0.5 a second
    assert refused.json()["title"] == "Too many requests"
    # Another officer's token has its own bucket.
    assert client.get("/v1/me", headers=bearer(tokens["il-duty"])).status_code == 200


def test_the_bucket_refills_at_the_rate() -> None:
    limit = RateLimit(per_s=2, burst=2)
    limit.take("t", now=0.0)
    limit.take("t", now=0.0)
    with pytest.raises(Problem) as refused:
        limit.take("t", now=0.1)
    assert refused.value.status == 429 and refused.value.extra["retry_after_s"] == 1
    limit.take("t", now=0.6)  # 0.5 s at 2 a second: one request back
    with pytest.raises(Problem):
        limit.take("t", now=0.6)
    limit.take("t", now=10.0)
    limit.take("t", now=10.0)  # never more than the burst, however long it waited
    with pytest.raises(Problem):
        limit.take("t", now=10.0)


def test_forgotten_buckets_are_bounded() -> None:
    limit = RateLimit(per_s=1, burst=1, max_tokens=3)
    for n in range(10):
        limit.take(f"made-up-{n}", now=0.0)
    assert len(limit._buckets) == 3


def test_a_body_over_the_limit_is_413_problem_json(
    client: TestClient, tokens: dict[str, str]
) -> None:
    answer = client.post(
        "/v1/activities",
        content=b"{" + b" " * MAX_BODY_BYTES + b"}",
        headers={**bearer(tokens["tr-duty"]), "Content-Type": "application/json"},
    )
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"


def test_a_websocket_message_over_the_limit_closes_the_stream(
    client: TestClient, tokens: dict[str, str]
) -> None:
    with client.websocket_connect(f"/v1/stream?token={tokens['tr-duty']}") as ws:
        ws.send_text("ping")  # small messages are read and ignored
        ws.send_text("x" * (MAX_WS_MESSAGE_BYTES + 1))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 1009
