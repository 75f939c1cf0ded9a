"""Two `deconfliction serve` replicas on PostgreSQL: tracks posted to the follower only are
checked by the leader's tactical loop (through the track inbox), and the alert it raises is seen
on both replicas, in the API and on the stream."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from bench.serving import Server
from typer.testing import CliRunner

from deconfliction.cli import app as cli
from deconfliction.ops.lease import current_holder
from deconfliction.store.db import make_engine
from tests.conftest import _truncate
from tests.hotline.conftest import HOTLINE_AREA
from tests.hotline.test_stream_fanout import START_LIMIT_S, next_event, stream

WAIT_S = 30.0  # the alert comes within a few loop cycles; this only bounds a failing test


def crossing(track: str, lon: float, course_deg: float) -> dict[str, Any]:
    """A state at 6000 m, 200 m/s on the parallel 34.8 N, now: two of them 0.6 deg of
    longitude apart and head on close in about two minutes."""
    return {
        "id": track,
        "lat": 34.8,
        "lon": lon,
        "alt_m": 6000,
        "gs_mps": 200,
        "course_deg": course_deg,
        "time": datetime.now(UTC).isoformat(),
    }


@pytest.fixture
def replicas(pg_url: str, tmp_path: Path) -> Iterator[tuple[Server, Server, dict[str, str]]]:
    """Two replicas on one database: (leader, follower, tokens)."""
    engine = make_engine(pg_url)
    _truncate(engine)
    config = tmp_path / "parties.toml"
    config.write_text(HOTLINE_AREA, encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        ["init", "--config", str(config), "--db", pg_url, "--server-held-keys",
         "--keys-dir", str(tmp_path / "keys")],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    tokens = dict(line.split("\t") for line in result.stdout.splitlines())
    servers = [Server(pg_url, tmp_path / f"server{k}.log") for k in (1, 2)]
    try:
        for server in servers:
            server.start(START_LIMIT_S)
        holder = current_holder(engine, datetime.now(UTC)) or ""
        leading = [s for s in servers if f":{s.process.pid}:" in holder]
        assert len(leading) == 1, holder
        (follower,) = [s for s in servers if s is not leading[0]]
        yield leading[0], follower, tokens
    finally:
        for server in servers:
            server.stop()
        engine.dispose()


def get(server: Server, token: str, path: str) -> Any:
    answer = httpx.get(
        f"{server.base}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=WAIT_S
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.postgres
def test_tracks_posted_to_the_follower_are_checked_by_the_leader(
    replicas: tuple[Server, Server, dict[str, str]],
) -> None:
    leader, follower, tokens = replicas
    with stream(follower.base, tokens["il-duty"], after=0) as il_on_follower:
        for officer, state in (
            ("il-duty", crossing("sufa", 38.3, 90)),
            ("tr-duty", crossing("akinci", 38.9, 270)),
        ):
            answer = httpx.post(
                f"{follower.base}/v1/tracks",
                json={"states": [state]},
                headers={"Authorization": f"Bearer {tokens[officer]}"},
                timeout=WAIT_S,
            )
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"accepted": 1, "dropped": []}
        raised = next_event(il_on_follower, "alert.raised")["payload"]["alert"]
    assert (raised["a"], raised["b"], raised["parties"]) == ("IL/sufa", "TR/akinci", ["IL", "TR"])
    for server in (leader, follower):
        alerts = get(server, tokens["tr-duty"], "/v1/alerts")
        assert [a["id"] for a in alerts] == [raised["id"]]
    # The leader holds the states only by the inbox: its feeds count them as relayed.
    relayed = {f["name"]: f["accepted"] for f in get(leader, tokens["az-med"], "/v1/tracks/feeds")}
    assert relayed == {"relay:IL": 1, "relay:TR": 1}
    assert [t["key"] for t in get(leader, tokens["tr-duty"], "/v1/tracks")] == ["TR/akinci"]
