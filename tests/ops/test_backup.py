"""`deconfliction backup` and `restore`: a round trip gives back the same rows and a record
that verifies, on SQLite (online backup API) and PostgreSQL (pg_dump / pg_restore)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from typer.testing import CliRunner

from deconfliction.cli import app
from deconfliction.ledger.checkpoint import NoteVerifier
from deconfliction.ledger.verify import verify_export
from deconfliction.ops.lease import acquire
from deconfliction.record import log
from deconfliction.record.keys import trust
from deconfliction.store import tables as t
from deconfliction.store.db import transaction
from tests.conftest import T0

runner = CliRunner()


def _rows(engine: Engine) -> dict[str, list[str]]:
    with engine.connect() as conn:
        return {
            table.name: sorted(repr(tuple(row)) for row in conn.execute(select(table)))
            for table in t.metadata.sorted_tables
        }


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_backup_and_restore_round_trip(
    engine: Engine, tokens: dict[str, str], tmp_path: Path
) -> None:
    url = engine.url.render_as_string(hide_password=False)
    with transaction(engine, write=True) as conn:
        log.checkpoint(conn, T0)
    before = _rows(engine)
    assert before["entries"], "the area's key certificates are entries"
    file = tmp_path / "area.backup"
    assert _cli("backup", str(file), "--db", url) == (0, f"backed up to {file}\n")
    assert file.stat().st_size > 0
    assert not list(tmp_path.glob("*.partial"))

    # Life goes on after the backup; the restore takes the database back to it.
    assert acquire(engine, "replica-1", T0, 10)
    assert _rows(engine) != before
    code, out = _cli("restore", str(file), "--db", url)
    assert code == 2 and "--yes" in out  # destructive: asks first, changes nothing
    assert _rows(engine)["leader_leases"]
    assert _cli("restore", str(file), "--yes", "--db", url) == (0, f"restored from {file}\n")
    engine.dispose()
    assert _rows(engine) == before

    with transaction(engine, write=False) as conn:
        records: list[Any] = list(log.export_records(conn))
        anchors: dict[str, Any] = trust(conn)
    result = verify_export(
        records,
        party_roots={p: base64.b64decode(k) for p, k in anchors["parties"].items()},
        log_key=NoteVerifier.from_vkey(anchors["log"]),
    )
    assert result.ok and result.entries == len(before["entries"]), result


def test_restore_refuses_what_is_not_a_backup(engine: Engine, tmp_path: Path) -> None:
    url = engine.url.render_as_string(hide_password=False)
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a database at all" * 100)
    code, out = _cli("restore", str(junk), "--yes", "--db", url)
    assert code == 2 and out.startswith("error: ") and len(out.splitlines()) == 1
    code, out = _cli("restore", str(tmp_path / "missing"), "--yes", "--db", url)
    assert code == 2 and "no such backup file" in out
