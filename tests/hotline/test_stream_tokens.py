"""A token revoked while its officer's streams are open: they end (the hub checks its
connections' tokens every DECONFLICTION_STREAM_TOKEN_CHECK_S), the other officers' stay open,
and a reconnection with the revoked token is refused."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import Engine
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from deconfliction.parties.service import revoke_tokens
from deconfliction.store.db import transaction
from tests.conftest import FakeClock
from tests.hotline.conftest import Served

WAIT_S = 30.0  # the check comes every 0.2 s here; this only bounds a test that fails


def test_a_revoked_tokens_streams_end_and_it_cannot_reconnect(
    engine: Engine, clock: FakeClock, area: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DECONFLICTION_STREAM_TOKEN_CHECK_S", "0.2")
    monkeypatch.setenv("DECONFLICTION_STREAM_POLL_S", "0.05")
    revoked, kept = area["il-duty"], area["tr-duty"]
    with Served(engine, clock) as server:
        ws_base = server.base.replace("http://", "ws://") + "/v1/stream?token="
        with (
            connect(ws_base + revoked, open_timeout=WAIT_S) as revoked_ws,
            connect(ws_base + kept, open_timeout=WAIT_S) as kept_ws,
            httpx.stream(
                "GET", f"{server.base}/v1/stream/sse", params={"token": revoked}, timeout=WAIT_S
            ) as sse,
        ):
            lines = sse.iter_lines()
            assert next(lines) == "retry: 2000"
            with transaction(engine, write=True) as conn:
                assert revoke_tokens(conn, "il-duty", clock()) == 1
            with pytest.raises(ConnectionClosed):
                revoked_ws.recv(timeout=WAIT_S)
            # The SSE response ends as a response does (a cut one raises here).
            assert [line for line in lines if line and not line.startswith(":")] == []
            with pytest.raises(TimeoutError):  # still open, nothing to say
                kept_ws.recv(timeout=1.0)
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_base + revoked, open_timeout=WAIT_S)
    assert refused.value.response.status_code == 401
