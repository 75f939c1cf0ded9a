"""Deadlines and escalation: per priority and party pair, up each party's ladder as copied onto
the message, run by a scheduler whose timers are rows: they survive a restart and fire once
however many schedulers run."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from deconfliction.hotline import scheduler, service
from deconfliction.store.db import make_engine, transaction
from tests.conftest import FakeClock
from tests.hotline.conftest import Hotline, make_app, notice

IL_LADDER = {
    "time_zone": "Asia/Jerusalem",
    "ladder": [
        {"name": "duty_officer", "role": "officer"},
        {"name": "watch_commander", "officers": ["il-watch"], "wait_s": {"FLASH": 60}},
        {"name": "headquarters", "officers": ["il-hq"], "wait_s": {"FLASH": 90}},
        {"name": "mediator", "role": "mediator", "wait_s": {"FLASH": 120}},
    ],
}


def with_scheduler(engine: Engine, clock: FakeClock) -> FastAPI:
    """The app with the scheduler loop in its lifespan, as the lead wires it in api.py."""
    app = make_app(engine, clock)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[None]:
        async with inner(a):
            task = asyncio.create_task(scheduler.loop(engine, clock, every_s=0.02))
            try:
                yield
            finally:
                task.cancel()

    app.router.lifespan_context = lifespan
    return app


def receipt(hot: Hotline, officer: str, message_id: int, party: str = "IL") -> dict[str, Any]:
    got = hot.as_(officer).get(f"/v1/hotline/messages/{message_id}").json()
    found: dict[str, Any] = next(r for r in got["receipts"] if r["party"] == party)
    return found


def test_a_flash_escalates_across_a_restart(
    engine: Engine, clock: FakeClock, area: dict[str, str]
) -> None:
    with TestClient(with_scheduler(engine, clock)) as client:
        hot = Hotline(client, area, engine)
        sent = hot.as_("tr-duty").send(**notice(["IL"]), priority="FLASH")
        assert sent["receipts"][0]["next_escalation_at"] == "2030-01-01T00:02:00Z"
        time.sleep(0.1)  # the scheduler runs, nothing is due yet
        assert hot.facts("message.escalated") == []
    # The server is gone. Time passes beyond the FLASH deadline (2 minutes) while nothing runs.
    clock.advance(minutes=3)
    with TestClient(with_scheduler(engine, clock)) as client:
        hot = Hotline(client, area, engine)
        deadline = time.monotonic() + 10
        while not hot.facts("message.escalated") and time.monotonic() < deadline:
            time.sleep(0.02)
        mine = receipt(hot, "il-duty", sent["id"])
        assert mine["rung"] == 1 and mine["rung_name"] == "watch_commander"
        assert mine["overdue"] is True
        assert mine["escalated_at"] == "2030-01-01T00:03:00Z"
        [escalated] = hot.facts("message.escalated")
        assert escalated["message"] == sent["id"]
        assert escalated["officers"] == ["il-hq", "il-watch"]  # default rung: IL commanders
        assert escalated["by"] == "system"
        time.sleep(0.1)  # more passes fire nothing more
        assert len(hot.facts("message.escalated")) == 1


def test_the_ladder_is_climbed_rung_by_rung_and_acknowledgement_stops_it(
    hot: Hotline, engine: Engine, clock: FakeClock
) -> None:
    il = hot.as_("il-duty")
    il.put("/v1/hotline/parties/IL", json=IL_LADDER, headers={"If-Match": '"0"'}).raise_for_status()
    sent = hot.as_("tr-duty").send(**notice(["IL"]), priority="FLASH")
    ladder = receipt(hot, "il-duty", sent["id"])["ladder"]
    assert ladder == [
        {"name": "duty_officer", "officers": ["il-duty"], "wait_s": 120},
        {"name": "watch_commander", "officers": ["il-watch"], "wait_s": 60},
        {"name": "headquarters", "officers": ["il-hq"], "wait_s": 90},
        {"name": "mediator", "officers": ["az-med"], "wait_s": 120},
    ]
    # Editing the ladder now changes no message in flight.
    il.put(
        "/v1/hotline/parties/IL",
        json={**IL_LADDER, "ladder": IL_LADDER["ladder"][:1]},
        headers={"If-Match": '"1"'},
    ).raise_for_status()
    assert receipt(hot, "il-duty", sent["id"])["ladder"] == ladder
    steps = []
    for minutes, rung in ((1.9, 0), (0.2, 1), (1.0, 2), (1.5, 3)):
        clock.advance(minutes=minutes)
        scheduler.run_due(engine, clock())
        steps.append(receipt(hot, "il-duty", sent["id"])["rung"])
        assert steps[-1] == rung, (minutes, steps)
    assert [f["name"] for f in hot.facts("message.escalated")] == [
        "watch_commander",
        "headquarters",
        "mediator",
    ]
    clock.advance(minutes=2)  # the mediator's wait passes: the message is recorded overdue
    assert scheduler.run_due(engine, clock()) == 1
    [overdue] = hot.facts("message.overdue")
    assert overdue["message"] == sent["id"] and overdue["next_escalation_at"] is None
    assert receipt(hot, "il-duty", sent["id"])["next_escalation_at"] is None
    clock.advance(hours=1)
    assert scheduler.run_due(engine, clock()) == 0

    urgent = hot.as_("tr-duty").send(**notice(["IL"]), priority="URGENT")
    clock.advance(minutes=10)
    il.post(f"/v1/hotline/messages/{urgent['id']}/acknowledge").raise_for_status()
    clock.advance(hours=2)
    assert scheduler.run_due(engine, clock()) == 0  # acknowledged in time: no escalation
    assert receipt(hot, "il-duty", urgent["id"])["overdue"] is False


def test_deadlines_by_priority_and_per_party_pair(hot: Hotline, clock: FakeClock) -> None:
    tr = hot.as_("tr-duty")
    due = {
        p: tr.send(**notice(["IL"]), priority=p)["receipts"][0]["deadline_at"]
        for p in ("FLASH", "URGENT", "ROUTINE")
    }
    assert due == {
        "FLASH": "2030-01-01T00:02:00Z",
        "URGENT": "2030-01-01T00:15:00Z",
        "ROUTINE": "2030-01-01T04:00:00Z",
    }
    channel = hot.as_("il-duty").get("/v1/hotline/channels/TR-IL")
    assert channel.json()["id"] == "IL-TR" and channel.headers["ETag"] == '"1"'
    changed = hot.as_("il-duty").put(
        "/v1/hotline/channels/IL-TR",
        json={"deadlines": {"FLASH": 60, "ROUTINE": 3600}},
        headers={"If-Match": '"1"'},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["deadlines"] == {"FLASH": 60, "URGENT": 900, "ROUTINE": 3600}
    assert hot.facts("channel.configured")[0]["deadlines"] == {"FLASH": 60, "ROUTINE": 3600}
    flash = tr.send(**notice(["IL", "SY"]), priority="FLASH")
    assert [r["deadline_at"] for r in flash["receipts"]] == [
        "2030-01-01T00:01:00Z",  # IL-TR: 60 s
        "2030-01-01T00:02:00Z",  # SY-TR: the default
    ]
    stale = hot.as_("tr-duty").put(
        "/v1/hotline/channels/IL-TR", json={"deadlines": {"FLASH": 30}}, headers={"If-Match": '"1"'}
    )
    assert stale.status_code == 409 and stale.json()["current_version"] == 2
    bad = [
        ("/v1/hotline/channels/IL-TR", {"deadlines": {"FLASH": 1}}, '"2"', 422),
        ("/v1/hotline/channels/IL-TR", {}, '"2"', 422),
        ("/v1/hotline/channels/IL-TR", {"deadlines": {"FLASH": 60}}, None, 428),
        ("/v1/hotline/channels/IL-SY", {"deadlines": {"FLASH": 60}}, '"1"', 404),
        ("/v1/hotline/channels/ILTR", {"deadlines": {"FLASH": 60}}, '"1"', 404),
        ("/v1/hotline/parties/IL", {"time_zone": "Mars/Olympus", "ladder": []}, '"0"', 422),
        ("/v1/hotline/parties/TR", {"time_zone": "UTC", "ladder": [{"name": "x"}]}, '"0"', 422),
        (
            "/v1/hotline/parties/TR",
            {"time_zone": "UTC", "ladder": [{"name": "x", "officers": ["il-hq"]}]},
            '"0"',
            422,
        ),
        (
            "/v1/hotline/parties/IL",
            {"time_zone": "UTC", "ladder": [{"name": "x", "role": "officer"}]},
            '"0"',
            403,
        ),
    ]
    entries = hot.entries()
    for url, body, version, status in bad:
        headers = {"If-Match": version} if version else {}
        response = hot.as_("tr-duty").put(url, json=body, headers=headers)
        assert response.status_code == status, (url, body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert hot.entries() == entries


def test_an_escalation_fires_once_with_two_schedulers(
    hot: Hotline, engine: Engine, clock: FakeClock
) -> None:
    sent = [hot.as_("tr-duty").send(**notice(["IL", "SY"]), priority="FLASH") for _ in range(6)]
    clock.advance(minutes=3)
    # Both schedulers read the same due timer; only the first claim fires it.
    with transaction(engine, write=False) as conn:
        due = service.due_escalations(conn, clock())
    assert len(due) == 12
    with transaction(engine, write=True) as conn:
        assert service.escalate(conn, due[0], clock()) is True
    with transaction(engine, write=True) as conn:
        assert service.escalate(conn, due[0], clock()) is False
    # Two schedulers on two engines (two servers) racing over the rest.
    other = make_engine(engine.url.render_as_string(hide_password=False))
    counts: list[int] = []
    barrier = threading.Barrier(2)

    def run(e: Engine) -> None:
        barrier.wait()
        counts.append(scheduler.run_due(e, clock()))

    threads = [threading.Thread(target=run, args=(e,)) for e in (engine, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.dispose()
    assert sum(counts) == 11
    facts = hot.facts("message.escalated")
    assert len(facts) == 12
    assert len({(f["message"], f["party"]) for f in facts}) == 12
    assert {receipt(hot, "az-med", m["id"], p)["rung"] for m in sent for p in ("IL", "SY")} == {1}
