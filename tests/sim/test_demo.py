"""The demo day loads on SQLite and PostgreSQL and produces exactly the conflicts it was built
with: an IL patrol crossing a TR UAV transit near T4, a TR flight into the southern no-entry zone,
and a late IL notification into the Palmyra notify zone."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine
from typer.testing import CliRunner

from deconfliction.cli import app
from deconfliction.sim import syria
from deconfliction.sim.demo import load_demo


def test_demo_day_has_the_designed_conflicts(engine: Engine) -> None:
    summary = load_demo(engine, datetime(2030, 6, 1, 5, 30, tzinfo=UTC))
    assert summary.day_start == datetime(2030, 6, 1, 6, 0, tzinfo=UTC)
    found = {frozenset((a, b)) for _, a, b in summary.conflicts}
    assert found == {frozenset(pair) for pair in syria.expected_conflicts()}
    assert summary.late == [f"IL {syria.IL_INTO_PALMYRA}"]
    assert set(summary.activities) == {"TR", "IL"}
    assert len(summary.tokens) == 8


def test_demo_no_serve_prints_the_summary(tmp_path: object) -> None:
    db = f"sqlite:///{tmp_path}/demo.db"
    result = CliRunner().invoke(app, ["demo", "--no-serve", "--db", db])
    assert result.exit_code == 0, result.stderr
    assert "Conflicts detected: 3" in result.stdout
    assert syria.TR_UAV_T4 in result.stdout
    again = CliRunner().invoke(app, ["demo", "--no-serve", "--db", db])
    assert again.exit_code == 2  # the area exists already: say so, write nothing
    reset = CliRunner().invoke(app, ["demo", "--no-serve", "--reset", "--db", db])
    assert reset.exit_code == 0
