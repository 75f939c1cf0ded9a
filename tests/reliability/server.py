"""A real `deconfliction serve` process on loopback, for the tests that kill and restart it."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from deconfliction.cli import app

CLI = str(Path(sys.executable).parent / "deconfliction")

AREA_TOML = """
area = "Reliability test area"

[[party]]
code = "TR"
name = "Türkiye"
language = "tr"
[[party.officer]]
id = "tr-duty"
name = "TR duty officer"
role = "officer"

[[party]]
code = "IL"
name = "Israel"
language = "he"
[[party.officer]]
id = "il-duty"
name = "IL duty officer"
role = "officer"
[[party.officer]]
id = "il-watch"
name = "IL watch commander"
role = "commander"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli(*args: str) -> str:
    """Run the command line in this process (a new interpreter costs seconds on a loaded
    machine); its standard output, or fail the test with its error."""
    done = CliRunner().invoke(app, list(args))
    if done.exit_code != 0:
        raise AssertionError(
            f"deconfliction {' '.join(args)}: exit {done.exit_code}\n{done.output}"
        )
    return done.stdout


def init_area(db: str, workdir: Path) -> dict[str, str]:
    """`deconfliction init` with server-held keys; the officers' tokens."""
    config = workdir / "parties.toml"
    config.write_text(AREA_TOML, encoding="utf-8")
    out = cli(
        "init",
        "--config",
        str(config),
        "--db",
        db,
        "--keys-dir",
        str(workdir / "keys"),
        "--server-held-keys",
    )
    pairs = (line.split("\t") for line in out.splitlines() if "\t" in line)
    return dict((officer, token) for officer, token in pairs)


@contextmanager
def pg_schema(admin_url: str) -> Iterator[str]:
    """A fresh schema on the PostgreSQL server for one test; its URL."""
    admin = create_engine(admin_url)
    schema = f"dcf_rel_{os.getpid()}_{secrets.token_hex(3)}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{admin_url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class Server:
    """`deconfliction serve --db DB --port PORT` as a child process."""

    def __init__(self, db: str, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.db = db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"serve-{self.port}.log"
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self, ready_within_s: float = 60) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [CLI, "serve", "--db", self.db, "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        deadline = time.monotonic() + ready_within_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited {self.process.returncode}: {self.tail()}")
            try:
                if httpx.get(f"{self.url}/openapi.json", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server not ready within {ready_within_s} s: {self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, whatever was in flight is cut off."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-3000:]
