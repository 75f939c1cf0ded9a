"""Incidents over the API: every transition of the lifecycle and every refusal (nothing is
written by a refused step)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from deconfliction.store import tables as t
from tests.api.conftest import Api
from tests.builders import activity, volume


def report_body(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "unsafe_proximity",
        "other_party": "IL",
        "occurred_at": "2030-01-01T00:00:00Z",
        "place": {"lon": 37.6, "lat": 34.5, "name": "T4"},
        "description": "IL F-16 within 2 NM of an Akinci UAV",
        **extra,
    }


def new_incident(api: Api, **extra: Any) -> dict[str, Any]:
    r = api.as_("tr-duty").post("/v1/incidents", json=report_body(**extra))
    assert r.status_code == 201, r.text
    return dict(r.json())


def step(api: Api, officer: str, incident: int, action: str, **body: Any) -> Any:
    return api.as_(officer).post(f"/v1/incidents/{incident}/{action}", json=body or None)


def refused(api: Api, response: Any, status: int, before: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert api.event_count() == before


def test_full_lifecycle_to_closed_with_agreed_findings(api: Api) -> None:
    own = api.as_("tr-duty").post("/v1/activities", json=activity(volume())).json()["id"]
    seen = api.as_("il-duty").post("/v1/activities", json=activity(volume(38, 35))).json()["id"]
    incident = new_incident(
        api, evidence=[{"kind": "activity", "ref": own}, {"kind": "activity", "ref": seen}]
    )
    iid = incident["id"]
    assert incident["state"] == "reported"
    assert incident["reported_by"] == "TR"
    assert {e["ref"] for e in incident["evidence"]} == {str(own), str(seen)}
    before = api.event_count()
    refused(api, step(api, "tr-duty", iid, "acknowledge"), 403, before)  # the reporter
    refused(api, step(api, "tr-duty", iid, "review"), 409, before)  # not acknowledged yet
    refused(api, step(api, "az-med", iid, "acknowledge"), 403, before)  # the mediator
    refused(api, step(api, "un-obs", iid, "acknowledge"), 403, before)  # the observer
    r = step(api, "il-duty", iid, "acknowledge", note="Looking into it")
    assert r.json()["state"] == "acknowledged"
    refused(api, step(api, "il-duty", iid, "acknowledge"), 409, api.event_count())
    refused(
        api,
        step(api, "tr-duty", iid, "findings", outcome="agreed", text="x"),
        409,
        api.event_count(),
    )
    assert step(api, "tr-duty", iid, "review").json()["state"] == "joint_review"
    refused(api, step(api, "tr-duty", iid, "close"), 409, api.event_count())
    r = step(
        api, "il-duty", iid, "findings", outcome="agreed", text="Both below 2 NM; new CAP line"
    )
    assert r.json()["state"] == "agreed_findings"
    assert r.json()["findings"] == "Both below 2 NM; new CAP line"
    first = step(api, "tr-duty", iid, "close").json()
    assert first["state"] == "agreed_findings"  # closing needs both parties
    assert first["close_consents"] == ["TR"]
    refused(api, step(api, "tr-duty", iid, "close"), 409, api.event_count())  # closing alone
    closed = step(api, "il-duty", iid, "close").json()
    assert closed["state"] == "closed"
    assert [h["action"] for h in closed["history"]] == [
        "report",
        "acknowledge",
        "review",
        "findings",
        "close",
        "close",
    ]
    refused(api, step(api, "il-duty", iid, "close"), 409, api.event_count())
    refused(api, step(api, "tr-duty", iid, "duplicate", of=iid), 409, api.event_count())
    # The mediator reads it; the observer does not.
    assert api.as_("az-med").get(f"/v1/incidents/{iid}").status_code == 200
    assert api.as_("un-obs").get(f"/v1/incidents/{iid}").status_code == 404


def test_disputed_then_closed(api: Api) -> None:
    iid = new_incident(api, kind="radar_lock_on")["id"]
    step(api, "il-duty", iid, "acknowledge")
    step(api, "il-duty", iid, "review")
    r = step(api, "tr-duty", iid, "findings", outcome="disputed", text="IL denies the lock-on")
    assert r.json()["state"] == "disputed"
    assert step(api, "il-duty", iid, "close").json()["state"] == "disputed"
    assert step(api, "tr-duty", iid, "close").json()["state"] == "closed"


def test_duplicate_links_to_its_original_and_nothing_is_deleted(api: Api) -> None:
    original = new_incident(api)["id"]
    copy = (
        api.as_("il-duty")
        .post("/v1/incidents", json=report_body(other_party="TR", kind="zone_infringement"))
        .json()["id"]
    )
    before = api.event_count()
    refused(api, step(api, "il-duty", copy, "duplicate", of=copy), 422, before)
    refused(api, step(api, "il-duty", copy, "duplicate", of=999), 422, before)
    r = step(api, "il-duty", copy, "duplicate", of=original)
    assert r.json()["state"] == "duplicate"
    assert r.json()["duplicate_of"] == original
    third = new_incident(api)["id"]
    refused(api, step(api, "tr-duty", third, "duplicate", of=copy), 422, api.event_count())
    listed = api.as_("tr-duty").get("/v1/incidents").json()
    assert [i["id"] for i in listed] == [original, copy, third]
    assert step(api, "il-duty", copy, "acknowledge").status_code == 409


def test_evidence_the_caller_may_not_see_is_refused(api: Api) -> None:
    hidden = (
        api.as_("il-duty")
        .post("/v1/activities", json=activity(volume(38, 35), notified_to=["UNDOF"]))
        .json()["id"]
    )
    with api.engine.connect() as conn:
        il_entry = (
            conn.execute(select(t.entries.c.idx).where(t.entries.c.subject == f"activity/{hidden}"))
            .scalars()
            .first()
        )
    before = api.event_count()
    tr = api.as_("tr-duty")
    for evidence in (
        {"kind": "activity", "ref": hidden},
        {"kind": "activity", "ref": 999},
        {"kind": "conflict", "ref": 1},
        {"kind": "alert", "ref": 1},
        {"kind": "message", "ref": 1},
        {"kind": "ledger", "ref": il_entry},
        {"kind": "track_state", "ref": "IL/heron"},
        {"kind": "activity", "ref": "12; drop"},
    ):
        r = tr.post("/v1/incidents", json=report_body(evidence=[evidence]))
        refused(api, r, 422, before)
        assert "not visible to TR" in r.json()["detail"]
    iid = new_incident(api)["id"]
    before = api.event_count()
    refused(
        api,
        tr.post(f"/v1/incidents/{iid}/evidence", json=[{"kind": "activity", "ref": hidden}]),
        422,
        before,
    )
    mine = tr.post("/v1/activities", json=activity(volume())).json()["id"]
    r = tr.post(f"/v1/incidents/{iid}/evidence", json=[{"kind": "activity", "ref": mine}])
    assert r.status_code == 200, r.text
    assert r.json()["evidence"] == [{"kind": "activity", "ref": str(mine)}]


def test_bad_reports(api: Api) -> None:
    before = api.event_count()
    tr = api.as_("tr-duty")
    for body in (
        report_body(other_party="TR"),
        report_body(other_party="AZ"),
        report_body(kind="ufo"),
        report_body(place={"lon": 200, "lat": 34}),
        report_body(reported_by="IL"),
        report_body(occurred_at="2030-01-01T00:00:00"),
    ):
        refused(api, tr.post("/v1/incidents", json=body), 422, before)
    refused(api, api.as_("un-obs").post("/v1/incidents", json=report_body()), 403, before)
