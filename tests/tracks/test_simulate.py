"""The demo's simulated tracks: every activity flying at an instant is where its notification
says, and the day's designed encounters happen for real: the IL patrol east of Homs crosses the
TR UAV transit near T4 (a pair alert), the TR ANKA flight enters Israel's southern no-entry zone
(a zone alert)."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from deconfliction.activities.models import ActivityOut
from deconfliction.api import open_alert_thread
from deconfliction.sim import syria
from deconfliction.sim.demo import DemoSummary, load_demo
from deconfliction.store import tables as t
from deconfliction.store.db import make_engine, transaction
from deconfliction.tracks import cli as tracks_cli
from deconfliction.tracks.loop import Live, LoopConfig, TacticalLoop, stored_activities
from deconfliction.tracks.models import AlertOut
from deconfliction.tracks.picture import IntakeRules, TrackPicture
from deconfliction.tracks.simulate import simulate_tracks

LOADED_AT = datetime(2030, 6, 1, 5, 30, tzinfo=UTC)
DAY = datetime(2030, 6, 1, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def loaded(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[tuple[Engine, DemoSummary]]:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    summary = load_demo(engine, LOADED_AT)
    assert summary.day_start == DAY
    yield engine, summary
    engine.dispose()


@pytest.fixture
def demo(loaded: tuple[Engine, DemoSummary]) -> Engine:
    return loaded[0]


def _titles(activities: list[ActivityOut]) -> dict[str, str]:
    return {f"{a.party}/sim-{a.id}": a.title for a in activities}


def test_simulated_tracks_stay_in_their_notification(demo: Engine) -> None:
    activities = stored_activities(demo, LOADED_AT)
    rules = IntakeRules()
    for hour in (1, 8.2, 13.9):
        now = DAY + timedelta(hours=hour)
        states = simulate_tracks(activities, DAY, now)
        assert states, hour
        flying = {a.id for a in activities if a.start <= now < a.end}
        assert {int(s.id.removeprefix("sim-")) for s in states} <= flying
        for s in states:
            assert rules.check(s, now) is None, s
    uav = next(a for a in activities if a.title == syria.TR_UAV_T4)
    (state,) = [
        s
        for s in simulate_tracks(activities, DAY, DAY + timedelta(hours=8, minutes=1))
        if s.id == f"sim-{uav.id}"
    ]
    assert (state.party, state.alt_m, state.callsign) == ("TR", 6000.0, "AKINCI 31")
    assert state.gs_mps == pytest.approx(60.0, rel=0.01)


def test_the_demo_encounters_raise_alerts(demo: Engine) -> None:
    activities = stored_activities(demo, LOADED_AT)
    titles = _titles(activities)
    picture = TrackPicture()
    loop = TacticalLoop(demo, picture, persist=False, on_imminent_in_tx=open_alert_thread)
    raised: list[tuple[str, str]] = []
    flash: list[tuple[str, str]] = []
    # The crossing near T4 (both airborne from 08:06) and the ANKA flight reaching the south.
    for start, minutes in (
        (DAY + timedelta(hours=8, minutes=6), 12),
        (DAY + timedelta(hours=13, minutes=48), 10),
    ):
        for second in range(0, minutes * 60, 5):
            now = start + timedelta(seconds=second)
            for s in simulate_tracks(activities, DAY, now):
                picture.update(s)
            for alert, event in loop.step(now).events:
                other = titles[alert.b] if alert.b else f"zone {alert.zone}"
                if event == "raised":
                    raised.append((titles[alert.a], other))
                with transaction(demo, write=False) as conn:
                    threads = conn.execute(
                        select(t.hotline_threads.c.subject).where(
                            t.hotline_threads.c.subject == f"tactical alert #{alert.id}"
                        )
                    ).all()
                if threads and (titles[alert.a], other) not in flash:
                    flash.append((titles[alert.a], other))
    assert (syria.IL_PATROL_HOMS, syria.TR_UAV_T4) in raised
    assert any(a == syria.TR_INTO_SOUTH and b.startswith("zone") for a, b in raised)
    assert len(raised) == 2
    # Both became imminent: each opened its FLASH hotline thread (the T4 crossing first).
    assert flash[0] == (syria.IL_PATROL_HOMS, syria.TR_UAV_T4) and len(flash) == 2


def test_the_simulation_task_feeds_the_live_picture(demo: Engine) -> None:
    """What the demo runs: `Live.start_simulation` with the day shifted to the crossing."""
    seen: list[tuple[AlertOut, str]] = []
    crossing = DAY + timedelta(hours=8, minutes=12)
    now = datetime(2030, 6, 1, 5, 45, tzinfo=UTC)  # the real time the demo runs at
    live = Live(
        demo,
        lambda: now,
        config=LoopConfig(every_s=0.05),
        on_alert=lambda a, e: seen.append((a, e)),
    )

    async def scenario() -> None:
        async with live:
            live.start_simulation(DAY, shift=crossing - now, every_s=0.05)
            for _ in range(1500):  # up to 30 s on a loaded machine
                if seen:
                    break
                await asyncio.sleep(0.02)

    asyncio.run(scenario())
    titles = _titles(stored_activities(demo, LOADED_AT))
    ((alert, event),) = seen[:1]
    assert event == "raised"
    assert {titles[alert.a], titles[alert.b or ""]} == {syria.IL_PATROL_HOMS, syria.TR_UAV_T4}
    (sim,) = [f for f in live.feed_status() if f.name == "sim"]
    assert sim.accepted > 0 and sim.dropped == {}
    assert {s.time for s in live.picture.snapshot()} == {now}


def test_simulate_command(loaded: tuple[Engine, DemoSummary]) -> None:
    engine, summary = loaded
    token = summary.tokens["il-duty"][2]
    at = (DAY + timedelta(hours=8, minutes=12)).isoformat()
    result = CliRunner().invoke(
        tracks_cli.app,
        [
            "simulate",
            "--at",
            at,
            "--db",
            engine.url.render_as_string(hide_password=False),
            "--token",
            token,
        ],
    )
    assert result.exit_code == 0, result.stderr
    shown = [json.loads(line) for line in result.stdout.splitlines()]
    assert shown and {s["party"] for s in shown} <= {"IL", "TR"}
    assert any(s["callsign"] == "SUFA 71" for s in shown)
