"""The answer to notify and amend is built from what was written, not read back: it must be
exactly what reading the activity and each conflict it created returns."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.api.conftest import Api, OfficerClient
from tests.builders import activity, iso, volume, zone
from tests.conftest import T0


def assert_answer_is_what_a_read_returns(reader: OfficerClient, answer: dict[str, Any]) -> None:
    filed = dict(answer)
    created = filed.pop("conflicts")
    assert filed == reader.get(f"/v1/activities/{filed['id']}").json()
    assert created == [reader.get(f"/v1/conflicts/{c['id']}").json() for c in created]


def test_notify_and_amend_answer_what_a_read_returns(api: Api) -> None:
    tr, il = api.as_("tr-duty"), api.as_("il-duty")
    assert tr.post("/v1/zones", json=zone("no_entry", lon=36.0, lat=33.0)).status_code == 201
    shared = tr.post("/v1/activities", json=activity(volume(36.0, 34.0), title="TR CAP"))
    secret = tr.post(
        "/v1/activities",
        json=activity(volume(36.05, 34.05), title="TR sortie", notified_to=["UNDOF"]),
    )
    assert shared.status_code == secret.status_code == 201
    plan = activity(
        volume(36.1, 34.1, start_h=-0.5),  # already flying: the activity is active
        volume(36.1, 33.1),  # inside TR's no-entry zone
        title="IL UAV",
        callsign="HAWK1",
    )
    filed = il.post("/v1/activities", json=plan)
    assert filed.status_code == 201
    answer = filed.json()
    assert answer["state"] == "active"
    sides = {(c["b"]["activity"], c["b"]["zone"], c["b"]["title"]) for c in answer["conflicts"]}
    assert sides == {
        (shared.json()["id"], None, "TR CAP"),
        (secret.json()["id"], None, None),  # IL learns where and when, not what
        (None, 1, "no_entry zone"),
    }
    assert_answer_is_what_a_read_returns(il, answer)

    url = f"/v1/activities/{answer['id']}"
    assert tr.post(f"{url}/acknowledge").status_code == 200
    amended = il.put(
        url,
        json=activity(volume(36.1, 34.1), title="IL UAV 2", notified_to=["TR"]),
        headers={"If-Match": '"1"'},
    )
    assert amended.status_code == 200
    again = amended.json()
    assert again["version"] == 2
    assert [a["party"] for a in again["acknowledgements"]] == ["TR"]  # of version 1, kept
    assert len(again["conflicts"]) == 2
    assert_answer_is_what_a_read_returns(il, again)


def test_route_plan_answers_what_a_read_returns(api: Api) -> None:
    tr, il = api.as_("tr-duty"), api.as_("il-duty")
    assert tr.post("/v1/activities", json=activity(volume(36.0, 34.0))).status_code == 201
    route = {
        "kind": "transit",
        "title": "IL transit",
        "route": {
            "waypoints": [
                {"lon": 35.8, "lat": 34.1, "time": iso(T0 + timedelta(hours=1))},
                {"lon": 36.3, "lat": 34.1, "time": iso(T0 + timedelta(hours=2))},
            ],
            "half_width_m": 2000,
            "altitude": {"lower_m": 3000, "upper_m": 4000},
        },
    }
    filed = il.post("/v1/activities", json=route)
    assert filed.status_code == 201, filed.text
    assert len(filed.json()["conflicts"]) == 1
    assert_answer_is_what_a_read_returns(il, filed.json())
