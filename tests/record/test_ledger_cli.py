"""The record from the terminal (SQLite): officers sign with their key files, the log is exported,
verified offline against trust.json, asked about an activity, and a revoked key signs no more."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from deconfliction.api import create_app
from deconfliction.cli import app
from deconfliction.record.keys import read_private
from deconfliction.record.service import Statement
from tests.api.conftest import Api
from tests.builders import activity, volume
from tests.conftest import AREA_TOML
from tests.record.support import log_size, signature_header

runner = CliRunner()
pytestmark = pytest.mark.parametrize("engine", ["sqlite"], indirect=True)


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


class Terminal:
    """The `deconfliction` command on one database, with the keys `init` wrote."""

    def __init__(self, engine: Engine, folder: Path) -> None:
        self.engine = engine
        self.db = engine.url.render_as_string(hide_password=False)
        self.folder = folder
        self.keys = folder / "keys"
        config = folder / "parties.toml"
        config.write_text(AREA_TOML, encoding="utf-8")
        code, out, err = run(
            "init", "--config", str(config), "--db", self.db, "--keys-dir", str(self.keys)
        )
        assert code == 0, err
        self.tokens = dict(line.split("\t") for line in out.splitlines())

    def __call__(self, *args: str) -> tuple[int, str, str]:
        return run(*args, "--db", self.db)

    def key(self, name: str) -> str:
        return str(self.keys / f"{name}.key")

    @property
    def trust(self) -> str:
        return str(self.keys / "trust.json")

    def notify(self, officer: str, body: dict[str, Any], name: str) -> tuple[int, str, str]:
        plan = self.folder / name
        plan.write_text(json.dumps(body), encoding="utf-8")
        return self(
            "activities",
            "notify",
            str(plan),
            "--token",
            self.tokens[officer],
            "--key",
            self.key(officer),
        )

    def export(self, name: str) -> Path:
        code, out, err = self("ledger", "export")
        assert code == 0, err
        path = self.folder / name
        path.write_text(out, encoding="utf-8")
        return path

    def ask(self, export: Path, activity_id: int) -> dict[str, Any]:
        code, out, err = run(
            "ledger", "ask", str(export), "--trust", self.trust, "--activity", str(activity_id)
        )
        assert code == 0, err
        answer: dict[str, Any] = json.loads(out)
        return answer


@pytest.fixture
def terminal(engine: Engine, tmp_path: Path) -> Terminal:
    return Terminal(engine, tmp_path)


def test_init_writes_keys_and_no_officer_key_stays_on_the_server(terminal: Terminal) -> None:
    trust = json.loads(Path(terminal.trust).read_text(encoding="utf-8"))
    assert set(trust["parties"]) == {"TR", "IL", "AZ", "UNDOF"}
    for name in ("TR.root", "IL.root", "tr-duty", "il-duty", "az-med"):
        assert (terminal.keys / f"{name}.key").stat().st_mode & 0o777 == 0o600
    code, _, err = terminal(
        "activities",
        "notify",
        str(terminal.folder / "missing.json"),
        "--token",
        terminal.tokens["tr-duty"],
    )
    assert code == 2 and err.startswith("error:")
    plan = terminal.folder / "plan.json"
    plan.write_text(json.dumps(activity()), encoding="utf-8")
    size = log_size(terminal.engine)
    # Without --key the server has no key to sign with: refused, nothing written.
    code, _, err = terminal(
        "activities", "notify", str(plan), "--token", terminal.tokens["tr-duty"]
    )
    assert code == 2, err
    assert log_size(terminal.engine) == size


def test_export_verify_and_a_flipped_byte(terminal: Terminal) -> None:
    code, out, err = terminal.notify("tr-duty", activity(title="patrol"), "plan.json")
    assert code == 0, err
    assert "recorded as entry" in err
    export = terminal.export("export.jsonl")
    code, out, err = run("ledger", "verify", str(export), "--trust", terminal.trust)
    assert code == 0, err
    assert out.startswith("ok:")
    assert f"{log_size(terminal.engine)} entries" in out

    lines = export.read_text(encoding="utf-8").splitlines()
    [(number, index)] = [
        (n, json.loads(line)["index"])
        for n, line in enumerate(lines)
        if '"kind":"activity.notify"' in line
    ]
    assert lines[number].count('"title":"patrol"') == 1
    lines[number] = lines[number].replace('"title":"patrol"', '"title":"patrom"')
    tampered = terminal.folder / "tampered.jsonl"
    tampered.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = run("ledger", "verify", str(tampered), "--trust", terminal.trust)
    assert code == 1
    assert f"first bad entry {index} " in err
    assert not out.startswith("ok:")


def test_ask_who_was_notified_and_who_acknowledged(terminal: Terminal) -> None:
    code, out, err = terminal.notify("tr-duty", activity(volume(36.0, 34.0)), "plan.json")
    assert code == 0, err
    aid = json.loads(out)["id"]
    answer = terminal.ask(terminal.export("first.jsonl"), aid)
    [notified] = answer["history"]
    assert notified["what"] == "notified"
    assert notified["notified_to"] == ["IL"]
    assert notified["by"] == "TR/tr-duty"
    assert notified["server_held_key"] is False
    assert notified["proof"][0]["inclusion_proof"] is not None

    # IL acknowledges over the API, signing on its client with its own key file.
    with TestClient(
        create_app(
            terminal.engine, checkpoint_every_s=None, hotline_every_s=None, tactical_every_s=None
        )
    ) as client:
        api = Api(client, terminal.tokens, terminal.engine)
        header = signature_header(
            Statement("activity.acknowledge", target=aid),
            "il-duty",
            read_private(Path(terminal.key("il-duty"))),
            datetime.now(UTC),
        )
        acked = api.as_("il-duty").post(f"/v1/activities/{aid}/acknowledge", headers=header)
        assert acked.status_code == 200, acked.text

    answer = terminal.ask(terminal.export("second.jsonl"), aid)
    assert [step["what"] for step in answer["history"]] == ["notified", "acknowledged"]
    acknowledged = answer["history"][1]
    assert acknowledged["party"] == "IL"
    assert acknowledged["by"] == "IL/il-duty"
    assert acknowledged["version"] == 1
    assert answer["checkpoint_size"] == log_size(terminal.engine)

    code, _, err = run(
        "ledger",
        "ask",
        str(terminal.folder / "second.jsonl"),
        "--trust",
        terminal.trust,
        "--activity",
        str(aid + 100),
    )
    assert code == 2 and err.startswith("error:")


def test_a_revoked_key_signs_no_more(terminal: Terminal) -> None:
    assert terminal.notify("tr-duty", activity(), "one.json")[0] == 0
    code, out, err = terminal(
        "keys",
        "revoke",
        "tr-duty",
        "--root",
        terminal.key("TR.root"),
        "--token",
        terminal.tokens["tr-cmd"],
    )
    assert code == 0, err
    assert out.startswith("revoked ")
    size = log_size(terminal.engine)
    code, _, err = terminal.notify("tr-duty", activity(), "two.json")
    assert code == 2
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1
    assert log_size(terminal.engine) == size
    # Another party's root key does not revoke TR's officers.
    code, _, err = terminal(
        "keys",
        "revoke",
        "tr-cmd",
        "--root",
        terminal.key("IL.root"),
        "--token",
        terminal.tokens["tr-cmd"],
    )
    assert code == 2, err
    assert terminal.notify("tr-cmd", activity(), "three.json")[0] == 0
    export = terminal.export("export.jsonl")
    code, out, err = run("ledger", "verify", str(export), "--trust", terminal.trust)
    assert code == 0, err
