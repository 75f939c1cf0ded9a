"""`hotline send|inbox|read|ack|watch` as a Typer app, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine
from typer.testing import CliRunner

from deconfliction.hotline.cli import hotline_app

runner = CliRunner()


def run(engine: Engine, token: str, *args: str) -> tuple[int, str, str]:
    db = engine.url.render_as_string(hide_password=False)
    result = runner.invoke(hotline_app, [*args, "--db", db, "--token", token])
    return result.exit_code, result.stdout, result.stderr


def test_send_inbox_read_ack_watch(engine: Engine, area: dict[str, str], tmp_path: Path) -> None:
    code, out, err = run(
        engine,
        area["tr-duty"],
        "send",
        "--to",
        "IL",
        "--priority",
        "FLASH",
        "--subject",
        "Tanker",
        "--text",
        "Tanker active",
    )
    assert code == 0, err
    assert out.startswith("sent message 1 in thread 1; acknowledgement due: IL by ")
    assert "recorded as entry" in err
    warning = tmp_path / "warning.json"
    warning.write_text(
        json.dumps(
            {
                "type": "warning",
                "subject": "Firing",
                "to": ["IL"],
                "warning": {
                    "hazard": "live_firing",
                    "position": {"lat": 36, "lon": 37},
                    "band": {"lower_m": 0, "upper_m": 3000},
                    "window": {"start": "2099-01-01T00:00:00Z", "end": "2099-01-01T02:00:00Z"},
                },
            }
        ),
        encoding="utf-8",
    )
    code, out, err = run(engine, area["tr-duty"], "send", "--file", str(warning), "--json")
    assert code == 0, err
    assert json.loads(out)["type"] == "warning"

    code, out, err = run(engine, area["il-duty"], "inbox")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("1\tFLASH\tTR\tIL:delivered\t")  # fetching them delivered them
    assert lines[0].endswith("הודעה: Tanker active")  # the title in Hebrew, the text as written

    code, out, err = run(engine, area["il-duty"], "read", "2", "--lang", "en")
    assert code == 0, err
    assert out.startswith("[ROUTINE] Warning (message 2, thread 2)")
    assert "Hazard: live firing" in out
    code, out, _ = run(engine, area["il-duty"], "read", "2", "--json")
    assert json.loads(out)["receipts"][0]["read_by"] == "il-duty"

    code, out, err = run(engine, area["il-duty"], "ack", "1")
    assert (code, out.strip()) == (0, "acknowledged message 1")
    code, out, err = run(engine, area["il-duty"], "ack", "1")
    assert code == 2 and err.startswith("error: message 1 was already acknowledged")
    code, out, _ = run(engine, area["il-duty"], "inbox", "--pending", "--json")
    assert [m["id"] for m in json.loads(out)] == [2]

    code, out, err = run(engine, area["tr-duty"], "watch", "--after", "0", "--once")
    assert code == 0, err
    kinds = [line.split("\t")[2] for line in out.splitlines()]
    assert kinds[:2] == ["message.sent", "message.sent"]
    assert "message.acknowledged" in kinds
    assert "[FLAŞ] Bildirim" in out.splitlines()[0]  # rendered for TR, in Turkish


def test_bad_input_is_one_line_and_exit_code_2(engine: Engine, area: dict[str, str]) -> None:
    cases = [
        (area["tr-duty"], ["send", "--to", "IL", "--text", "x"], "subject"),
        (area["tr-duty"], ["send", "--to", "XX", "--subject", "s", "--text", "x"], "unknown party"),
        (area["tr-duty"], ["send", "--to", "IL", "--subject", "s", "--type", "gossip"], "type"),
        (area["tr-duty"], ["read", "99"], "no message 99"),
        (area["tr-duty"], ["ack", "99"], "no message 99"),
        ("dcf_nonsense", ["inbox"], "unknown token"),
        ("", ["inbox"], "no token"),
    ]
    for token, args, needle in cases:
        code, _, err = run(engine, token, *args)
        assert code == 2, (args, err)
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
        assert needle in err, (args, err)
