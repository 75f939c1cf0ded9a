"""Channels between pairs of parties: periodic comms checks that must be acknowledged (a missed
one degrades the channel for both parties and the mediator), suspend and resume on record."""

from __future__ import annotations

from sqlalchemy import Engine

from deconfliction.hotline import scheduler
from tests.conftest import FakeClock
from tests.hotline.conftest import Hotline, notice


def state(hot: Hotline, officer: str, pair: str = "IL-TR") -> str:
    response = hot.as_(officer).get(f"/v1/hotline/channels/{pair}")
    assert response.status_code == 200, response.text
    found: str = response.json()["state"]
    return found


def test_a_missed_comms_check_degrades_the_channel(
    hot: Hotline, engine: Engine, clock: FakeClock
) -> None:
    assert scheduler.run_due(engine, clock()) == 0  # makes the channels of participant pairs
    channels = hot.as_("az-med").get("/v1/hotline/channels").json()
    assert [c["id"] for c in channels] == ["IL-SY", "IL-TR", "SY-TR"]
    assert {c["next_comms_check_at"] for c in channels} == {"2030-01-01T06:00:00Z"}
    assert [c["id"] for c in hot.as_("tr-duty").get("/v1/hotline/channels").json()] == [
        "IL-TR",
        "SY-TR",
    ]
    assert hot.as_("un-obs").get("/v1/hotline/channels").json() == []
    clock.advance(hours=6)
    assert scheduler.run_due(engine, clock()) == 3  # one check per channel
    assert scheduler.run_due(engine, clock()) == 0
    checks = hot.as_("tr-duty").get("/v1/hotline/inbox?pending=true").json()
    assert [(c["type"], c["to"], c["sender"]["party"]) for c in checks] == [
        ("comms_check", ["IL", "TR"], None),
        ("comms_check", ["SY", "TR"], None),
    ]
    assert checks[0]["rendered"]["title"] == "Haberleşme kontrolü"
    assert checks[0]["receipts"][0]["deadline_at"] == "2030-01-01T06:15:00Z"  # URGENT
    for check in checks:
        hot.as_("tr-duty").post(f"/v1/hotline/messages/{check['id']}/acknowledge")
    sy_check = hot.as_("sy-duty").get("/v1/hotline/inbox?pending=true").json()
    for check in sy_check:
        hot.as_("sy-duty").post(f"/v1/hotline/messages/{check['id']}/acknowledge")
    clock.advance(minutes=16)  # IL never answered its two checks
    scheduler.run_due(engine, clock())
    for officer in ("tr-duty", "il-duty", "az-med"):
        assert state(hot, officer, "IL-TR") == "degraded", officer
    assert state(hot, "az-med", "IL-SY") == "degraded"
    assert state(hot, "tr-duty", "SY-TR") == "open"
    degraded = hot.facts("channel.degraded")
    assert [d["channel"] for d in degraded] == ["IL-SY", "IL-TR"]
    assert "not acknowledged by IL" in degraded[1]["reason"]
    # IL answers late: once no check on the channel is overdue, it is open again.
    il_checks = hot.as_("il-duty").get("/v1/hotline/inbox?pending=true").json()
    hot.as_("il-duty").post(f"/v1/hotline/messages/{il_checks[0]['id']}/acknowledge")
    assert state(hot, "il-duty", "IL-SY") == "open"
    assert state(hot, "il-duty", "IL-TR") == "degraded"
    hot.as_("il-duty").post(f"/v1/hotline/messages/{il_checks[1]['id']}/acknowledge")
    assert state(hot, "tr-duty", "IL-TR") == "open"
    assert [r["channel"] for r in hot.facts("channel.restored")] == ["IL-SY", "IL-TR"]
    clock.advance(hours=6)
    assert scheduler.run_due(engine, clock()) == 3  # the next round of checks, 6 h later


def test_suspend_and_resume_are_recorded(hot: Hotline, engine: Engine, clock: FakeClock) -> None:
    tr = hot.as_("tr-duty")
    suspended = tr.post("/v1/hotline/channels/IL-TR/suspend", json={"reason": "maintenance"})
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["state"] == "suspended"
    assert suspended.json()["next_comms_check_at"] is None
    assert state(hot, "il-duty") == state(hot, "az-med") == "suspended"
    entries = hot.entries()
    refused = tr.post("/v1/hotline/messages", json=notice(["IL"]))
    assert refused.status_code == 409 and "suspended (maintenance)" in refused.json()["detail"]
    assert tr.post("/v1/hotline/channels/IL-TR/suspend").status_code == 409
    assert hot.as_("sy-duty").post("/v1/hotline/channels/IL-TR/suspend").status_code == 404
    assert hot.as_("un-obs").post("/v1/hotline/channels/IL-TR/resume").status_code == 403
    assert tr.post("/v1/hotline/channels/SY-TR/resume").status_code == 409  # not suspended
    assert hot.entries() == entries
    clock.advance(hours=7)
    scheduler.run_due(engine, clock())
    assert hot.as_("il-duty").get("/v1/hotline/inbox").json() == []  # no checks while suspended
    resumed = hot.as_("az-med").post("/v1/hotline/channels/IL-TR/resume", json={"reason": "done"})
    assert resumed.status_code == 200 and resumed.json()["state"] == "open"
    assert resumed.json()["next_comms_check_at"] == "2030-01-01T13:00:00Z"
    assert [f["reason"] for f in hot.facts("channel.suspended")] == ["maintenance"]
    [fact] = hot.facts("channel.resumed")
    assert (fact["reason"], fact["by"]) == ("done", "AZ/az-med")
    assert hot.entries("channel.suspend") == hot.entries("channel.resume") == 1
    tr.send(**notice(["IL"]))
