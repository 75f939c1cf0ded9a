"""An idle keep-alive connection outlives the idle time of the clients and proxies in front of
the server. When the server closed first (uvicorn's default: after 5 s idle, httpx's own expiry
too), a client that reused the connection just then had its request cut: a reset or an end of
stream instead of an answer, to a POST that it cannot safely resend."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import uvicorn
from bench.serving import free_port
from sqlalchemy import Engine

from deconfliction.api import create_app
from deconfliction.cli import uvicorn_settings
from tests.conftest import FakeClock

CLIENT_IDLE_S = 5.5  # past uvicorn's default (5 s), as a proxy's or a pooled client's idle time


def answer(sock: socket.socket) -> bytes:
    """One whole HTTP answer (head and a Content-Length body), or what came before the close."""
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = sock.recv(65536)
        if not chunk:
            return got
        got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # the HTTP server is the same
def test_a_connection_idle_longer_than_a_client_keeps_it_still_answers(
    engine: Engine, clock: FakeClock
) -> None:
    app = create_app(
        engine, clock, checkpoint_every_s=None, hotline_every_s=None, tactical_every_s=None
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **uvicorn_settings())
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        request = b"GET /v1/me HTTP/1.1\r\nHost: test\r\n\r\n"
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(request)
            assert answer(sock).startswith(b"HTTP/1.1 401")
            time.sleep(CLIENT_IDLE_S)
            sock.sendall(request)
            assert answer(sock).startswith(b"HTTP/1.1 401")  # not closed meanwhile
    finally:
        server.should_exit = True
        thread.join(timeout=30)
