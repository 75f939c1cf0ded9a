"""An imminent tactical alert opens a FLASH hotline thread to both parties: once per alert (not
on each update, not again after a restart), through the hotline's own path (receipts, the FLASH
deadline and the copied ladder, a signed fact, a stream event), under a configurable threshold.
Early cycles run on new states raise at once but leave the hysteresis' pace to the 1 Hz ones."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from deconfliction.api import open_alert_thread
from deconfliction.store import tables as t
from deconfliction.store.db import transaction
from deconfliction.tracks.alerting import Finding, Hysteresis
from deconfliction.tracks.loop import LoopConfig, TacticalLoop
from deconfliction.tracks.models import AlertOut
from deconfliction.tracks.picture import TrackPicture, TrackState, reckoned
from tests.conftest import FakeClock
from tests.tracks.conftest import declare_zone, state


def _report(picture: TrackPicture, states: list[TrackState], now: Any) -> list[TrackState]:
    fresh = [
        replace(reckoned(s, now), time=now, stale_at=now + timedelta(seconds=30)) for s in states
    ]
    for s in fresh:
        assert picture.update(s) is None
    return fresh


def _threads(engine: Engine) -> list[dict[str, Any]]:
    """Every hotline thread with its parties and messages (and their recipients)."""
    with transaction(engine, write=False) as conn:
        found = []
        for thread in conn.execute(select(t.hotline_threads).order_by(t.hotline_threads.c.id)):
            members = conn.execute(
                select(t.hotline_thread_parties.c.party)
                .where(t.hotline_thread_parties.c.thread_id == thread.id)
                .order_by(t.hotline_thread_parties.c.party)
            ).scalars()
            messages = conn.execute(
                select(t.hotline_messages).where(t.hotline_messages.c.thread_id == thread.id)
            ).all()
            recipients = conn.execute(
                select(t.hotline_recipients).where(
                    t.hotline_recipients.c.message_id.in_([m.id for m in messages])
                )
            ).all()
            found.append(
                {
                    "subject": thread.subject,
                    "parties": list(members),
                    "messages": messages,
                    "recipients": recipients,
                }
            )
    return found


def _facts(engine: Engine, kind: str) -> list[str]:
    with transaction(engine, write=False) as conn:
        return list(
            conn.execute(select(t.entries.c.subject).where(t.entries.c.kind == kind)).scalars()
        )


def _stream(engine: Engine, kind: str) -> list[dict[str, Any]]:
    with transaction(engine, write=False) as conn:
        rows = conn.execute(select(t.stream_events).where(t.stream_events.c.kind == kind)).all()
    return [{"audience": r.audience, "payload": r.payload} for r in rows]


def _head_on(now: Any, gap_deg: float) -> list[TrackState]:
    """An IL and a TR aircraft at 6,000 m flying at each other at 200 m/s each."""
    return [
        state("IL", "sufa", 34.8, 38.9 - gap_deg, 6000, 200, 90, now),
        state("TR", "akinci", 34.8, 38.9, 6100, 200, 270, now),
    ]


def test_an_alert_opens_one_flash_thread_when_it_becomes_imminent(
    engine: Engine, clock: FakeClock, tokens: dict[str, str]
) -> None:
    picture = TrackPicture()
    loop = TacticalLoop(engine, picture, on_imminent_in_tx=open_alert_thread)
    # 0.65 deg of longitude (about 59 km): separation lost in about 125 s, raised not imminent.
    tracks = _head_on(clock.now, 0.65)
    events: list[tuple[str, float]] = []
    for _ in range(12):
        tracks = _report(picture, tracks, clock.now)
        events += [(e, a.t_in_s) for a, e in loop.step(clock.now).events]
        if events[-1][0] == "raised":
            assert _threads(engine) == []
        clock.advance(seconds=1)
    assert events[0][0] == "raised" and events[0][1] > 120
    threads = _threads(engine)
    assert len(threads) == 1, "one thread per alert, not one per update"
    (thread,) = threads
    with transaction(engine, write=False) as conn:
        alert = conn.execute(select(t.alerts)).one()
    assert thread["subject"] == f"tactical alert #{alert.id}"
    assert thread["parties"] == ["IL", "TR"]
    (message,) = thread["messages"]
    assert (message.type, message.priority, message.sender_party) == ("warning", "FLASH", None)
    assert sorted(message.recipients) == ["IL", "TR"]
    assert message.content["alert"]["id"] == alert.id
    assert message.content["alert"]["t_in_s"] < 120
    assert message.content["band"]["lower_m"] <= 6100 <= message.content["band"]["upper_m"] + 1
    assert "IL/sufa" in message.text and "TR/akinci" in message.text
    # The FLASH deadline (120 s by default) and each party's ladder, as any FLASH message.
    assert sorted(r.party for r in thread["recipients"]) == ["IL", "TR"]
    for r in thread["recipients"]:
        assert r.deadline_at - message.created_at == timedelta(seconds=120)
        assert r.next_escalation_at == r.deadline_at and r.ladder
    assert _facts(engine, "message.sent") == [f"message/{message.id}"]
    (pushed,) = _stream(engine, "message.sent")
    assert pushed["audience"] == ["IL", "TR"]

    # A restart resumes the imminent alert: no second thread.
    loop2 = TacticalLoop(engine, picture, on_imminent_in_tx=open_alert_thread)
    for _ in range(3):
        tracks = _report(picture, tracks, clock.now)
        loop2.step(clock.now)
        clock.advance(seconds=1)
    assert len(_threads(engine)) == 1


def test_the_threshold_is_configurable_and_a_far_alert_opens_no_thread(
    engine: Engine, clock: FakeClock, tokens: dict[str, str]
) -> None:
    picture = TrackPicture()
    loop = TacticalLoop(
        engine, picture, LoopConfig(imminent_s=30.0), on_imminent_in_tx=open_alert_thread
    )
    tracks = _head_on(clock.now, 0.5)  # separation lost in about 90 s
    for _ in range(3):
        tracks = _report(picture, tracks, clock.now)
        loop.step(clock.now)
        clock.advance(seconds=1)
    assert _facts(engine, "alert.raised") and _threads(engine) == []


def test_a_zone_entry_tells_the_entering_party_and_the_owner(
    engine: Engine, clock: FakeClock, tokens: dict[str, str]
) -> None:
    ring = [[38.8, 34.7], [39.0, 34.7], [39.0, 34.9], [38.8, 34.9], [38.8, 34.7]]
    body = {
        "name": "South",
        "rule": "no_entry",
        "footprint": {"type": "Polygon", "coordinates": [ring]},
        "altitude": {"lower_m": 0, "upper_m": 3000, "reference": "MSL"},
        "valid_from": clock.now.isoformat(),
    }
    zone = declare_zone(engine, tokens, "il-duty", body, clock.now)
    picture = TrackPicture()
    loop = TacticalLoop(engine, picture, on_imminent_in_tx=open_alert_thread)
    # 0.1 deg west of the box at 100 m/s: the entry in about 90 s, imminent when raised.
    _report(picture, [state("TR", "anka", 34.8, 38.7, 2000, 100, 90, clock.now)], clock.now)
    (event,) = loop.step(clock.now).events
    assert event[1] == "raised" and event[0].zone == zone
    (thread,) = _threads(engine)
    assert thread["parties"] == ["IL", "TR"]
    (message,) = thread["messages"]
    assert message.priority == "FLASH" and message.content["alert"]["zone"] == zone
    assert f"zone #{zone}" in message.text
    # The entry point, on the box's western edge.
    assert message.content["position"]["lon"] == pytest.approx(38.8, abs=0.01)


def _finding(t_in_s: float) -> Finding:
    return Finding(
        kind="pair",
        a="IL/a",
        b="TR/b",
        zone=None,
        party_a="IL",
        party_b="TR",
        tcpa_s=t_in_s + 20,
        dcpa_m=1000.0,
        t_in_s=t_in_s,
        t_out_s=t_in_s + 40,
        segment=((38.0, 34.0), (38.0, 34.0)),
        altitudes_m=(6000.0, 6000.0),
    )


def test_early_cycles_raise_at_once_but_count_nothing() -> None:
    hysteresis = Hysteresis(clear_after=3, update_every=5, imminent_s=120.0)
    plan = hysteresis.observe([_finding(200)], counted=False)
    assert plan.raised == [_finding(200)] and plan.imminent == set()
    hysteresis.apply(plan, [7])
    # Many early cycles without the pair: no miss is counted, nothing is cleared.
    for _ in range(10):
        plan = hysteresis.observe([], counted=False)
        assert not plan
        hysteresis.apply(plan, [])
    # Nor are early cycles with it counted towards a periodic update ...
    for _ in range(10):
        plan = hysteresis.observe([_finding(190)], counted=False)
        assert not plan
        hysteresis.apply(plan, [])
    # ... but an early cycle that finds it imminent updates it at once, once.
    plan = hysteresis.observe([_finding(110)], counted=False)
    assert plan.updated == [(7, _finding(110))] and plan.imminent == {_finding(110).key}
    hysteresis.apply(plan, [])
    assert not hysteresis.observe([_finding(100)], counted=False)
    # The counted cycles clear it after three misses, as before.
    for cycle in range(3):
        plan = hysteresis.observe([])
        assert bool(plan.cleared) == (cycle == 2)
        hysteresis.apply(plan, [])
    assert hysteresis.active == {}


def test_loop_settings_from_the_environment() -> None:
    config = LoopConfig.from_env(
        {"DECONFLICTION_FLASH_UNDER_S": "90", "DECONFLICTION_REACT_MS": "0"}
    )
    assert (config.imminent_s, config.react_s) == (90.0, None)
    assert LoopConfig.from_env({}).imminent_s == 120.0
    assert LoopConfig.from_env({"DECONFLICTION_REACT_MS": "100"}).react_s == 0.1
    with pytest.raises(ValueError, match="DECONFLICTION_FLASH_UNDER_S"):
        LoopConfig.from_env({"DECONFLICTION_FLASH_UNDER_S": "soon"})
    with pytest.raises(ValueError, match="0-3600"):
        LoopConfig.from_env({"DECONFLICTION_FLASH_UNDER_S": "-1"})


def test_the_running_loop_reacts_to_new_states_between_its_counted_cycles(
    engine: Engine, clock: FakeClock, tokens: dict[str, str]
) -> None:
    picture = TrackPicture()
    raised: list[AlertOut] = []
    # Counted cycles every 60 s: an alert within the test's wait can only come from an early one.
    loop = TacticalLoop(
        engine,
        picture,
        LoopConfig(every_s=60.0, react_s=0.05),
        on_alert=lambda alert, event: raised.append(alert) if event == "raised" else None,
    )

    async def scenario() -> None:
        task = asyncio.create_task(loop.run(lambda: clock.now))
        try:
            for _ in range(500):  # the first (counted) cycle, on the empty picture
                if loop._resumed:
                    break
                await asyncio.sleep(0.02)
            _report(picture, _head_on(clock.now, 0.5), clock.now)
            for _ in range(1500):
                if raised:
                    break
                await asyncio.sleep(0.02)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(scenario())
    assert [(a.a, a.b) for a in raised] == [("IL/sufa", "TR/akinci")]
