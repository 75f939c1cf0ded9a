"""Who reads what: every endpoint returning activities, zones or entries, with every role."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api
from tests.builders import activity, zone
from tests.conftest import OFFICERS

# notified_to -> the officers that may see the activity (its own party always does).
CASES = [
    (None, {"tr-duty", "tr-cmd", "il-duty", "az-med"}),
    (["UNDOF"], {"tr-duty", "tr-cmd", "az-med", "un-obs"}),
    (["IL", "UNDOF"], {"tr-duty", "tr-cmd", "il-duty", "az-med", "un-obs"}),
]


@pytest.mark.parametrize(("notified_to", "readers"), CASES)
def test_activity_visibility_per_role(
    api: Api, notified_to: list[str] | None, readers: set[str]
) -> None:
    body = activity() if notified_to is None else activity(notified_to=notified_to)
    created = api.as_("tr-duty").post("/v1/activities", json=body)
    assert created.status_code == 201, created.text
    aid = created.json()["id"]
    for officer in OFFICERS:
        client = api.as_(officer)
        listed = [a["id"] for a in client.get("/v1/activities").json()]
        features = client.get("/v1/activities", params={"format": "geojson"}).json()["features"]
        one = client.get(f"/v1/activities/{aid}")
        versions = client.get(f"/v1/activities/{aid}/versions")
        if officer in readers:
            assert listed == [aid], officer
            assert {f["properties"]["id"] for f in features} == {aid}, officer
            assert one.status_code == 200, officer
            assert versions.status_code == 200, officer
        else:
            assert listed == [], officer
            assert features == [], officer
            assert one.status_code == 404, officer
            assert versions.status_code == 404, officer
            # Not even its acknowledgement path reveals that it exists.
            assert client.post(f"/v1/activities/{aid}/acknowledge").status_code in (403, 404)


def test_zones_are_read_by_every_role(api: Api) -> None:
    zid = api.as_("il-duty").post("/v1/zones", json=zone()).json()["id"]
    for officer in OFFICERS:
        client = api.as_(officer)
        assert [z["id"] for z in client.get("/v1/zones").json()] == [zid], officer
        assert client.get(f"/v1/zones/{zid}").status_code == 200, officer


@pytest.mark.parametrize("officer", ["az-med", "un-obs"])
def test_mediators_and_observers_do_not_act_for_a_party(api: Api, officer: str) -> None:
    client = api.as_(officer)
    assert client.post("/v1/activities", json=activity()).status_code == 403
    assert client.post("/v1/zones", json=zone()).status_code == 403
    assert api.event_count() == 0


def test_every_role_verifies_every_entry_but_reads_only_shared_payloads(api: Api) -> None:
    tr = api.as_("tr-duty").post("/v1/activities", json=activity(title="TR sortie"))
    api.as_("il-duty").post("/v1/zones", json=zone()).raise_for_status()
    sizes = set()
    for officer in OFFICERS:
        entries = api.as_(officer).get("/v1/ledger/entries", params={"limit": 1000}).json()
        sizes.add(len(entries))
        by_kind = {e["entry"]["kind"]: e for e in entries}
        notify = by_kind["activity.notify"]["entry"]
        assert len(notify["payload_sha256"]) == 64, officer
        if officer == "un-obs":  # the TR activity was not notified to UNDOF
            assert notify["payload"] is None
            assert by_kind["activity.notified"]["entry"]["payload"] is None
        else:
            assert notify["payload"]["body"]["title"] == "TR sortie", officer
        # Zones are declared to all: everyone reads their statements.
        assert by_kind["zone.declare"]["entry"]["payload"]["body"]["rule"] == "no_entry"
    assert len(sizes) == 1  # the same log for everyone
    assert tr.status_code == 201


def test_me_and_parties(api: Api) -> None:
    me = api.as_("il-duty").get("/v1/me").json()
    assert me["officer"] == {
        "id": "il-duty",
        "party": "IL",
        "name": "IL duty officer",
        "role": "officer",
    }
    assert me["party"]["language"] == "he"
    codes = [p["code"] for p in api.as_("un-obs").get("/v1/parties").json()]
    assert codes == ["AZ", "IL", "TR", "UNDOF"]


def test_openapi_lists_every_endpoint_and_needs_no_token(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    paths = set(spec["paths"])
    for path in (
        "/v1/activities",
        "/v1/activities/{activity_id}/acknowledge",
        "/v1/zones",
        "/v1/conflicts",
        "/v1/ledger/export",
        "/v1/ledger/proof/inclusion",
    ):
        assert path in paths, path
    assert api.client.get("/docs").status_code == 200
