"""Zones over the API: declare each rule and shape, withdraw, and agree by consent."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.builders import zone


def test_declare_list_get(api: Api) -> None:
    il = api.as_("il-duty")
    r = il.post("/v1/zones", json=zone("no_entry"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["owner"], body["rule"], body["status"], body["version"]) == (
        "IL",
        "no_entry",
        "declared",
        1,
    )
    assert body["footprint"]["type"] == "Polygon"
    circle = zone("notify", lead_time_s=86400)
    del circle["footprint"]
    circle["circle"] = {"center": [37.63, 34.52], "radius_m": 25000}
    r2 = api.as_("tr-duty").post("/v1/zones", json=circle)
    assert r2.status_code == 201, r2.text
    assert r2.json()["circle"] == {"center": [37.63, 34.52], "radius_m": 25000.0}
    assert r2.json()["lead_time_s"] == 86400
    assert [z["id"] for z in il.get("/v1/zones").json()] == [body["id"], r2.json()["id"]]
    assert [z["id"] for z in il.get("/v1/zones", params={"owner": "TR"}).json()] == [
        r2.json()["id"]
    ]
    got = il.get(f"/v1/zones/{body['id']}")
    assert got.json() == body
    assert got.headers["ETag"] == '"1"'
    fc = il.get("/v1/zones", params={"format": "geojson"}).json()
    assert [f["properties"]["rule"] for f in fc["features"]] == ["no_entry", "notify"]


def test_notify_rule_needs_a_lead_time(api: Api) -> None:
    r = api.as_("tr-duty").post("/v1/zones", json=zone("notify"))
    assert r.status_code == 422
    assert "lead_time_s" in r.json()["detail"]
    r = api.as_("tr-duty").post("/v1/zones", json=zone("caution", lead_time_s=3600))
    assert r.status_code == 422


def test_withdraw_keeps_the_zone_on_record(api: Api) -> None:
    il = api.as_("il-duty")
    zid = il.post("/v1/zones", json=zone()).json()["id"]
    assert il.post(f"/v1/zones/{zid}/withdraw").status_code == 428
    assert (
        api.as_("tr-duty")
        .post(f"/v1/zones/{zid}/withdraw", headers={"If-Match": '"1"'})
        .status_code
        == 403
    )
    assert il.post(f"/v1/zones/{zid}/withdraw", headers={"If-Match": '"2"'}).status_code == 409
    r = il.post(f"/v1/zones/{zid}/withdraw", headers={"If-Match": '"1"'})
    assert r.status_code == 200
    assert r.json()["status"] == "withdrawn"
    assert r.json()["withdrawn_at"] is not None
    assert il.get("/v1/zones").json() == []
    kept = il.get("/v1/zones", params={"include_withdrawn": True}).json()
    assert [z["status"] for z in kept] == ["withdrawn"]
    assert il.get(f"/v1/zones/{zid}").json()["status"] == "withdrawn"


def test_agreed_zone_needs_every_named_party(api: Api) -> None:
    il = api.as_("il-duty")
    r = il.post("/v1/zones", json=zone(agreed_with=["TR", "AZ"]))
    assert r.status_code == 201, r.text
    zid = r.json()["id"]
    assert r.json()["status"] == "proposed"
    consents = {c["party"]: c["consented_by"] for c in r.json()["parties"]}
    assert consents == {"IL": "il-duty", "TR": None, "AZ": None}
    assert api.as_("un-obs").post(f"/v1/zones/{zid}/consent").status_code == 403
    assert il.post(f"/v1/zones/{zid}/consent").status_code == 409  # already consented
    after_tr = api.as_("tr-cmd").post(f"/v1/zones/{zid}/consent")
    assert after_tr.status_code == 200
    assert after_tr.json()["status"] == "proposed"
    assert api.as_("tr-duty").post(f"/v1/zones/{zid}/consent").status_code == 409
    agreed = api.as_("az-med").post(f"/v1/zones/{zid}/consent").json()
    assert agreed["status"] == "agreed"
    assert {c["party"]: c["consented_by"] for c in agreed["parties"]} == {
        "IL": "il-duty",
        "TR": "tr-cmd",
        "AZ": "az-med",
    }
    entries = api.as_("az-med").get("/v1/ledger/entries", params={"limit": 1000}).json()
    said = [
        (e["entry"]["party"], e["entry"]["kind"])
        for e in entries
        if e["entry"]["party"] != "_log" and not e["entry"]["kind"].startswith("key.")
    ]
    assert said == [("IL", "zone.declare"), ("TR", "zone.consent"), ("AZ", "zone.consent")]


def test_consent_by_a_party_not_named(api: Api) -> None:
    zid = api.as_("il-duty").post("/v1/zones", json=zone(agreed_with=["TR"])).json()["id"]
    assert api.as_("az-med").post(f"/v1/zones/{zid}/consent").status_code == 403


def test_agreed_with_unknown_party_or_self(api: Api) -> None:
    before = api.event_count()
    assert api.as_("il-duty").post("/v1/zones", json=zone(agreed_with=["XX"])).status_code == 422
    assert api.as_("il-duty").post("/v1/zones", json=zone(agreed_with=["IL"])).status_code == 422
    assert api.event_count() == before
