"""A real `deconfliction serve` process on loopback (bench.serving), for the tests that kill and
restart it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import serving
from bench.areas import area_toml
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from deconfliction.cli import app

AREA_TOML = area_toml("Reliability test area", ("tr-duty", "il-duty", "il-watch"))


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


class Server(serving.Server):
    """`deconfliction serve` on `db`, its log in the test's working directory."""

    def __init__(self, db: str, workdir: Path, env: dict[str, str] | None = None) -> None:
        super().__init__(db, workdir / "serve.log", env)

    @property
    def url(self) -> str:
        return self.base
