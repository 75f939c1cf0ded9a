"""An idle keep-alive connection outlives the idle time of the clients and proxies in front of
the server. When the server closed first (uvicorn's default: after 5 s idle, httpx's own expiry
too), a client that reused the connection just then had its request cut: a reset or an end of
stream instead of an answer, to a POST that it cannot safely resend."""

from __future__ import annotations

import socket
import time

import pytest
from sqlalchemy import Engine

from tests.conftest import FakeClock
from tests.hotline.conftest import Served

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
    request = b"GET /v1/me HTTP/1.1\r\nHost: test\r\n\r\n"
    with (
        Served(engine, clock) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        sock.sendall(request)
        assert answer(sock).startswith(b"HTTP/1.1 401")
        time.sleep(CLIENT_IDLE_S)
        sock.sendall(request)
        assert answer(sock).startswith(b"HTTP/1.1 401")  # not closed meanwhile
