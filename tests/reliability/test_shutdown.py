"""Stopping `deconfliction serve` (SIGTERM) while officers' streams are open: the server ends them
and exits at once, and its log never shows a token passed in a stream's query."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from deconfliction.serving import STOP_GRACE_S, redact_tokens
from tests.reliability.server import Server, init_area


def test_sigterm_ends_open_streams_and_the_log_shows_no_token(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'stop.db'}"
    tokens = init_area(db, tmp_path)
    token = tokens["tr-duty"]
    server = Server(db, tmp_path)
    server.start()
    try:
        with (
            httpx.stream(
                "GET", f"{server.base}/v1/stream/sse", params={"token": token}, timeout=30
            ) as sse,
            connect(f"ws://127.0.0.1:{server.port}/v1/stream?token={token}") as ws,
        ):
            lines = sse.iter_lines()
            assert next(lines) == "retry: 2000"
            began = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            # The SSE response ends as a response does (a cut one raises here).
            assert [line for line in lines if line and not line.startswith(":")] == []
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=30)
            code = server.process.wait(timeout=30)
            took = time.monotonic() - began
    finally:
        server.stop()
    log = server.log.read_text(encoding="utf-8")
    assert code == -signal.SIGTERM  # uvicorn raises the signal again once it has shut down
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012  # service restart
    assert took < STOP_GRACE_S, log  # ended by the server, not cut at the grace's end
    assert "Application shutdown complete" in log
    assert "timeout graceful shutdown exceeded" not in log
    assert token not in log
    assert log.count("token=REDACTED") == 2  # the SSE request and the WebSocket


@given(st.from_regex(r"[A-Za-z0-9_.~%+=/-]+", fullmatch=True))
def test_a_token_in_a_query_never_survives_redaction(token: str) -> None:
    for path in (
        f"/v1/stream?token={token}",
        f"/v1/stream/sse?after=3&token={token}&lang=tr",
        f"/v1/stream?lang=en&token={token}",
    ):
        redacted = redact_tokens(path)
        assert "token=REDACTED" in redacted
        assert redacted.replace("token=REDACTED", "") == path.replace(f"token={token}", "")
