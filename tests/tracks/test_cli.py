"""`deconfliction tracks ...` commands of the live picture (the Typer app the CLI merges in)."""

from __future__ import annotations

import json
from pathlib import Path

import defusedxml.ElementTree as SafeET
from sqlalchemy import Engine
from typer.testing import CliRunner

from deconfliction.feeds.servers import FeedConfig, FeedServers
from deconfliction.tracks.cli import app
from deconfliction.tracks.loop import TacticalLoop
from deconfliction.tracks.picture import IntakeRules, TrackPicture
from tests.conftest import FakeClock
from tests.feeds.support import RunningFeeds, cot_event, wait_until
from tests.tracks.conftest import state


def _db_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_alerts_command_shows_what_the_party_may_see(
    engine: Engine, clock: FakeClock, tokens: dict[str, str]
) -> None:
    picture = TrackPicture()
    picture.update(state("IL", "a", 34.8, 38.3, 6000, 200, 90, clock.now))
    picture.update(state("TR", "b", 34.8, 38.9, 6000, 200, 270, clock.now))
    TacticalLoop(engine, picture).step(clock.now)
    runner = CliRunner()
    db = ["--db", _db_url(engine)]
    shown = runner.invoke(app, ["alerts", *db, "--json", "--token", tokens["tr-duty"]])
    assert shown.exit_code == 0, shown.stderr
    (alert,) = [json.loads(line) for line in shown.stdout.splitlines()]
    assert (alert["a"], alert["b"], alert["state"]) == ("IL/a", "TR/b", "raised")
    text = runner.invoke(app, ["alerts", *db, "--token", tokens["il-duty"]])
    assert "IL/a x TR/b" in text.stdout and "IL/TR" in text.stdout
    cot = runner.invoke(app, ["alerts", *db, "--cot", "--token", tokens["az-med"]])
    assert SafeET.fromstring(cot.stdout.strip().encode()).get("type") == "u-d-f"
    hidden = runner.invoke(app, ["alerts", *db, "--token", tokens["un-obs"]])
    assert hidden.exit_code == 0 and hidden.stdout == ""
    bad = runner.invoke(app, ["alerts", *db, "--token", "dcf_nope"])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: unknown token")


def test_send_cot_feeds_a_running_server(tmp_path: Path) -> None:
    path = tmp_path / "events.xml"
    path.write_bytes(cot_event("one") + b"\n" + cot_event("two", 35.0))
    picture = TrackPicture()
    servers = FeedServers(
        [FeedConfig("cot", 0, "TR", name="cot")], picture, IntakeRules(), FakeClock()
    )
    with RunningFeeds(servers):
        port = str(servers.port("cot"))
        sent = CliRunner().invoke(app, ["send-cot", str(path), "--port", port])
        assert sent.exit_code == 0, sent.stderr
        assert "sent 2 events" in sent.stdout
        wait_until(lambda: len(picture) == 2)
        udp = CliRunner().invoke(app, ["send-cot", str(path), "--port", port, "--udp"])
        assert udp.exit_code == 0
        wait_until(lambda: servers.status()[0].received == 4)
    assert [s.key for s in picture.snapshot()] == ["TR/one", "TR/two"]
    path.write_bytes(cot_event("cut")[:100])
    cut = CliRunner().invoke(app, ["send-cot", str(path)])
    assert cut.exit_code == 2 and "not closed" in cut.stderr
