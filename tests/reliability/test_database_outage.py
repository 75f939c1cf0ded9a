"""The database goes away under a running app (PostgreSQL restarting, failing over, a cut link):
each request answers 503 problem+json with Retry-After, never a bare 500, and the app serves
again by itself once the database is back.

The app reaches PostgreSQL through a TCP relay in this process that the test cuts (closing
every relayed connection and refusing new ones) and restores."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from deconfliction.api import PROBLEM_JSON, create_app
from deconfliction.store.db import make_engine
from tests.builders import activity, volume
from tests.conftest import AREA_TOML, FakeClock, _truncate, area_tokens


class Relay:
    """Relays 127.0.0.1:port to the database server until cut."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.cut = False
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut:
                client.close()
                continue
            server = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):  # either side closed or cut: close both
            while data := source.recv(65536):
                sink.sendall(data)
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut_off(self) -> None:
        self.cut = True
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            self.sockets.clear()

    def restore(self) -> None:
        self.cut = False

    def close(self) -> None:
        self.cut_off()
        self.listener.close()


@pytest.fixture
def relay(pg_url: str) -> Iterator[tuple[Relay, str]]:
    url = make_url(pg_url)
    relay = Relay((url.host or "127.0.0.1", url.port or 5432))
    try:
        yield relay, url.set(port=relay.port).render_as_string(hide_password=False)
    finally:
        relay.close()


@pytest.mark.postgres
def test_requests_answer_503_while_the_database_is_away_and_work_again_after(
    relay: tuple[Relay, str], clock: FakeClock
) -> None:
    link, url = relay
    engine = make_engine(url)
    _truncate(engine)
    tokens = area_tokens(engine, AREA_TOML, clock())
    headers = {"Authorization": f"Bearer {tokens['tr-duty']}"}
    app = create_app(
        engine, clock, checkpoint_every_s=None, hotline_every_s=None, tactical_every_s=None
    )
    try:
        with TestClient(app) as client:
            assert client.get("/v1/activities", headers=headers).status_code == 200
            link.cut_off()
            for method, path, body in (
                ("GET", "/v1/activities", None),
                ("POST", "/v1/activities", activity(volume(), title="CAP")),
            ):
                answer = client.request(method, path, headers=headers, json=body)
                assert answer.status_code == 503, answer.text
                assert answer.headers["content-type"] == PROBLEM_JSON
                assert int(answer.headers["retry-after"]) >= 1
                assert answer.json()["status"] == 503
                assert "again" in answer.json()["detail"]
            link.restore()
            filed = client.post(
                "/v1/activities", headers=headers, json=activity(volume(), title="CAP")
            )
            assert filed.status_code == 201, filed.text
            listed = client.get("/v1/activities", headers=headers).json()
            assert [a["title"] for a in listed] == ["CAP"]  # the refused POST wrote nothing
    finally:
        engine.dispose()
