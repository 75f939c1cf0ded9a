"""The `deconfliction` command, on SQLite and PostgreSQL: set up, declare, notify, list, cancel,
and one line with exit code 2 for every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from deconfliction.cli import app
from deconfliction.store import tables as t
from tests.api.conftest import event_count
from tests.builders import activity, volume, zone
from tests.conftest import AREA_TOML

runner = CliRunner()


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def area(engine: Engine, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "parties.toml"
    config.write_text(AREA_TOML, encoding="utf-8")
    code, out, err = run(
        "init",
        "--config",
        str(config),
        "--db",
        url_of(engine),
        "--keys-dir",
        str(tmp_path / "keys"),
    )
    assert code == 0, err
    return dict(line.split("\t") for line in out.splitlines())


def test_tokens_revoke_refuses_every_token_of_the_officer_at_once(
    engine: Engine, area: dict[str, str]
) -> None:
    code, fresh, err = run("tokens", "issue", "tr-duty", "--db", url_of(engine))
    assert code == 0, err
    assert run("activities", "list", "--db", url_of(engine), "--token", fresh.strip())[0] == 0
    code, out, err = run("tokens", "revoke", "tr-duty", "--db", url_of(engine))
    assert (code, out) == (0, "revoked 2 tokens of tr-duty\n"), err
    for token in (area["tr-duty"], fresh.strip()):
        code, _, err = run("activities", "list", "--db", url_of(engine), "--token", token)
        assert code == 2 and "token revoked" in err
    il = area["il-duty"]  # the other officers' tokens stay good
    assert run("activities", "list", "--db", url_of(engine), "--token", il)[0] == 0
    assert run("tokens", "revoke", "tr-duty", "--db", url_of(engine))[1] == (
        "revoked 0 tokens of tr-duty\n"
    )
    code, out, err = run("tokens", "revoke", "nobody", "--db", url_of(engine))
    assert (code, out, err) == (2, "", "error: unknown officer nobody\n")


def test_tokens_list_shows_each_officer_with_the_tokens_that_still_work(
    engine: Engine, area: dict[str, str]
) -> None:
    assert run("tokens", "issue", "tr-duty", "--db", url_of(engine))[0] == 0
    assert run("tokens", "revoke", "il-duty", "--db", url_of(engine))[0] == 0
    code, out, err = run("tokens", "list", "--db", url_of(engine))
    assert code == 0, err
    assert out.splitlines() == [
        "az-med\tAZ\tmediator\t1 active",
        "il-duty\tIL\tofficer\t0 active",
        "tr-cmd\tTR\tcommander\t1 active",
        "tr-duty\tTR\tofficer\t2 active",
        "un-obs\tUNDOF\tobserver\t1 active",
    ]
    code, out, err = run("tokens", "list", "--party", "TR", "--json", "--db", url_of(engine))
    assert code == 0, err
    assert [(o["id"], o["active_tokens"]) for o in json.loads(out)] == [
        ("tr-cmd", 1),
        ("tr-duty", 2),
    ]


def key(tmp_path: Path, officer: str) -> str:
    return str(tmp_path / "keys" / f"{officer}.key")


def test_init_prints_one_token_per_officer_and_stores_only_hashes(
    engine: Engine, area: dict[str, str]
) -> None:
    assert set(area) == {"tr-duty", "tr-cmd", "il-duty", "az-med", "un-obs"}
    with engine.connect() as conn:
        stored = set(conn.execute(select(t.tokens.c.hash)).scalars())
    assert not stored & set(area.values())
    assert len(stored) == 5


def test_init_twice_is_refused(engine: Engine, area: dict[str, str], tmp_path: Path) -> None:
    code, _, err = run("init", "--config", str(tmp_path / "parties.toml"), "--db", url_of(engine))
    assert code == 2
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_declare_notify_list_cancel(engine: Engine, area: dict[str, str], tmp_path: Path) -> None:
    db = url_of(engine)
    zone_file = tmp_path / "zone.json"
    zone_file.write_text(json.dumps(zone("caution")), encoding="utf-8")
    code, out, err = run(
        "zones",
        "declare",
        str(zone_file),
        "--db",
        db,
        "--token",
        area["il-duty"],
        "--key",
        key(tmp_path, "il-duty"),
    )
    assert code == 0, err
    assert json.loads(out)["owner"] == "IL"
    code, out, _ = run("zones", "list", "--db", db, "--token", area["tr-duty"], "--json")
    assert [z["rule"] for z in json.loads(out)] == ["caution"]

    plan = tmp_path / "plan.json"
    # The CLI's clock is the real one: a plan far in the future stays valid.
    future = activity(volume(start_h=24 * 365 * 20))
    plan.write_text(json.dumps(future), encoding="utf-8")
    code, out, err = run(
        "activities",
        "notify",
        str(plan),
        "--db",
        db,
        "--token",
        area["tr-duty"],
        "--key",
        key(tmp_path, "tr-duty"),
    )
    assert code == 0, err
    aid = json.loads(out)["id"]
    code, out, _ = run("activities", "list", "--db", db, "--token", area["il-duty"])
    assert out.splitlines()[0].startswith(f"{aid}\tTR\tair_patrol\tnotified")
    code, out, _ = run(
        "activities",
        "cancel",
        str(aid),
        "--version",
        "1",
        "--db",
        db,
        "--token",
        area["tr-duty"],
        "--key",
        key(tmp_path, "tr-duty"),
    )
    assert code == 0
    assert json.loads(out)["state"] == "cancelled"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{not json", "Expecting"),
        (json.dumps(activity(volume(lower=5000, upper=100))), "upside down"),
        (json.dumps({"kind": "air_patrol"}), "title"),
    ],
)
def test_bad_file_is_one_line_and_exit_2(
    engine: Engine, area: dict[str, str], tmp_path: Path, content: str, says: str
) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(content, encoding="utf-8")
    before = event_count(engine)
    code, _, err = run(
        "activities",
        "notify",
        str(plan),
        "--db",
        url_of(engine),
        "--token",
        area["tr-duty"],
        "--key",
        key(tmp_path, "tr-duty"),
    )
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert says in err
    assert event_count(engine) == before


def test_missing_file_wrong_token_and_observer(
    engine: Engine, area: dict[str, str], tmp_path: Path
) -> None:
    db = url_of(engine)
    code, _, err = run(
        "activities", "notify", str(tmp_path / "nope.json"), "--db", db, "--token", area["tr-duty"]
    )
    assert (code, len(err.strip().splitlines())) == (2, 1)
    code, _, err = run("activities", "list", "--db", db, "--token", "dcf_wrong")
    assert code == 2 and "unknown token" in err
    code, _, err = run("activities", "list", "--db", db)
    assert code == 2 and "token" in err
    zone_file = tmp_path / "zone.json"
    zone_file.write_text(json.dumps(zone()), encoding="utf-8")
    code, _, err = run("zones", "declare", str(zone_file), "--db", db, "--token", area["un-obs"])
    assert code == 2 and "observer" in err


READ_COMMANDS = [
    ["zones", "list"],
    ["conflicts", "list"],
    ["agreements", "rounds"],
    ["agreements", "commitments"],
    ["agreements", "violations"],
    ["incidents", "list"],
    ["incidents", "show", "1"],
    ["hotline", "inbox"],
    ["tracks", "alerts"],
    ["report", "--party", "TR", "--from", "2030-01-01", "--to", "2030-01-02"],
]


def test_every_subcommand_refuses_an_unknown_token_in_one_line(
    engine: Engine, area: dict[str, str]
) -> None:
    for command in READ_COMMANDS:
        code, out, err = run(*command, "--db", url_of(engine), "--token", "dcf_wrong")
        assert (code, out) == (2, ""), command
        assert err.startswith("error: ") and "unknown token" in err, command
        assert len(err.strip().splitlines()) == 1, command
