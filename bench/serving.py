"""`deconfliction serve` as a real process on a free loopback port, ready once it answers.

One launcher for the benchmarks (bench.seed, bench.stream, bench.load, ...) and for the tests
that need a real server to kill, restart or run twice (tests/reliability). It lives in bench
and the tests import it, not the other way round: a benchmark must run without pytest and the
test fixtures, while the tests already import from the repository root (`tests.*`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


class ServerFailed(RuntimeError):
    """The server exited or did not answer in time; the message ends with its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """`deconfliction serve --db DB --port PORT` as a child process, its output in `log`.

    The port is chosen once, so a server killed and started again answers at the same `base`.
    `env` adds to this process's environment (rate limits, lease TTL, ...).
    """

    def __init__(self, db: str, log: Path, env: Mapping[str, str] | None = None) -> None:
        self.db = db
        self.log = log
        self.env = {**os.environ, **(env or {})}
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ready_s = 0.0  # how long the last start took until the first answer
        self.kills = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise ServerFailed("the server was never started")
        return self._process

    def start(self, timeout_s: float = 900.0) -> None:
        """Start it and return once GET /openapi.json answers 200 (the app is up)."""
        began = time.perf_counter()
        command = [sys.executable, "-m", "deconfliction.cli", "serve", "--db", self.db]
        with self.log.open("ab") as out:
            self._process = subprocess.Popen(
                [*command, "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=ROOT,
            )
        with httpx.Client(timeout=5.0) as client:
            while time.perf_counter() - began < timeout_s:
                if self._process.poll() is not None:
                    raise ServerFailed(
                        f"server exited with {self._process.returncode}:\n{self.tail()}"
                    )
                try:
                    if client.get(f"{self.base}/openapi.json").status_code == 200:
                        self.ready_s = time.perf_counter() - began
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        self.stop()
        raise ServerFailed(f"server not ready after {timeout_s:.0f} s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, whatever was in flight is cut off."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), SIGKILL if it has not ended within 20 s."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=20)

    def tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-3000:]


def start_server(
    db: str, log: Path, timeout_s: float = 900.0, env: Mapping[str, str] | None = None
) -> Server:
    """A server on `db`, started and answering."""
    server = Server(db, log, env)
    server.start(timeout_s)
    return server


def stop_server(server: Server) -> None:
    server.stop()
