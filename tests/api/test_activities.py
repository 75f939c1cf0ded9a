"""Activities over the API: notify, versions, amend, cancel, acknowledge, late flag, retries."""

from __future__ import annotations

from datetime import timedelta

from tests.api.conftest import Api
from tests.builders import activity, iso, volume, zone
from tests.conftest import T0, FakeClock


def test_notify_get_and_list(api: Api) -> None:
    tr = api.as_("tr-duty")
    r = tr.post("/v1/activities", json=activity(volume(), title="CAP T4", callsign="ASENA 11"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["party"] == "TR"
    assert body["state"] == "notified"
    assert body["version"] == 1
    assert body["notified_to"] == ["IL"]  # participants only, not the mediator or the observer
    assert r.headers["ETag"] == '"1"'
    assert body["volumes"][0]["footprint"]["type"] == "Polygon"
    assert body["conflicts"] == []
    got = tr.get(f"/v1/activities/{body['id']}").json()
    assert got == {k: v for k, v in body.items() if k != "conflicts"}
    listed = tr.get("/v1/activities").json()
    assert [a["id"] for a in listed] == [body["id"]]


def test_party_comes_from_token_not_body(api: Api) -> None:
    r = api.as_("tr-duty").post("/v1/activities", json={**activity(), "party": "IL"})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert api.event_count() == 0


def test_route_becomes_one_volume_per_leg(api: Api) -> None:
    route = {
        "waypoints": [
            {"lon": 36.0, "lat": 34.0, "time": iso(T0 + timedelta(hours=1))},
            {"lon": 36.5, "lat": 34.2, "time": iso(T0 + timedelta(hours=2))},
            {"lon": 37.0, "lat": 34.5, "time": iso(T0 + timedelta(hours=3))},
        ],
        "half_width_m": 5000,
        "altitude": {"lower_m": 3000, "upper_m": 6000, "reference": "W84"},
    }
    r = api.as_("il-duty").post(
        "/v1/activities", json={"kind": "transit", "title": "transit", "route": route}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert len(body["volumes"]) == 2
    assert body["route"]["half_width_m"] == 5000
    assert body["start"].startswith("2030-01-01T01:00")
    assert body["end"].startswith("2030-01-01T03:00")


def test_amend_keeps_old_versions_and_needs_if_match(api: Api) -> None:
    tr = api.as_("tr-duty")
    created = tr.post("/v1/activities", json=activity(volume())).json()
    url = f"/v1/activities/{created['id']}"
    assert tr.put(url, json=activity(volume(lon=37.0))).status_code == 428
    r = tr.put(url, json=activity(volume(lon=37.0)), headers={"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    assert r.headers["ETag"] == '"2"'
    stale = tr.put(url, json=activity(volume(lon=38.0)), headers={"If-Match": '"1"'})
    assert stale.status_code == 409
    assert stale.json()["current_version"] == 2
    versions = tr.get(f"{url}/versions").json()
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["volumes"][0]["footprint"]["coordinates"][0][0] == [36.0, 34.0]
    assert versions[1]["volumes"][0]["footprint"]["coordinates"][0][0] == [37.0, 34.0]


def test_cancel_needs_current_version_and_is_final(api: Api) -> None:
    tr = api.as_("tr-duty")
    created = tr.post("/v1/activities", json=activity()).json()
    url = f"/v1/activities/{created['id']}"
    assert tr.post(f"{url}/cancel", headers={"If-Match": '"7"'}).status_code == 409
    r = tr.post(f"{url}/cancel", headers={"If-Match": '"1"'})
    assert r.status_code == 200
    assert r.json()["state"] == "cancelled"
    again = tr.post(f"{url}/cancel", headers={"If-Match": '"2"'})
    assert again.status_code == 409
    assert tr.put(url, json=activity(), headers={"If-Match": '"2"'}).status_code == 409


def test_only_the_owner_amends_or_cancels(api: Api) -> None:
    created = api.as_("tr-duty").post("/v1/activities", json=activity()).json()
    url = f"/v1/activities/{created['id']}"
    il = api.as_("il-duty")
    assert il.post(f"{url}/cancel", headers={"If-Match": '"1"'}).status_code == 403
    assert il.put(url, json=activity(), headers={"If-Match": '"1"'}).status_code == 403


def test_acknowledge_is_by_the_other_party_once_per_version(api: Api) -> None:
    created = api.as_("tr-duty").post("/v1/activities", json=activity()).json()
    url = f"/v1/activities/{created['id']}"
    assert api.as_("tr-duty").post(f"{url}/acknowledge").status_code == 403
    assert api.as_("un-obs").post(f"{url}/acknowledge").status_code in (403, 404)
    assert api.as_("az-med").post(f"{url}/acknowledge").status_code == 403
    r = api.as_("il-duty").post(f"{url}/acknowledge")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "acknowledged"
    assert [(a["party"], a["officer"], a["version"]) for a in body["acknowledgements"]] == [
        ("IL", "il-duty", 1)
    ]
    assert api.as_("il-duty").post(f"{url}/acknowledge").status_code == 409
    # An amendment is a new notification: it must be read again.
    amended = (
        api.as_("tr-duty")
        .put(url, json=activity(volume(lon=37)), headers={"If-Match": '"1"'})
        .json()
    )
    assert amended["state"] == "notified"
    assert api.as_("il-duty").post(f"{url}/acknowledge").status_code == 200


def test_state_follows_the_clock(api: Api, clock: FakeClock) -> None:
    created = (
        api.as_("tr-duty").post("/v1/activities", json=activity(volume(start_h=1, hours=2))).json()
    )
    url = f"/v1/activities/{created['id']}"
    clock.advance(hours=1, minutes=30)
    assert api.as_("tr-duty").get(url).json()["state"] == "active"
    clock.advance(hours=2)
    assert api.as_("tr-duty").get(url).json()["state"] == "completed"
    assert [
        a["id"]
        for a in api.as_("tr-duty").get("/v1/activities", params={"state": "completed"}).json()
    ] == [created["id"]]


def test_late_notification_into_a_notify_zone_is_accepted_and_flagged(api: Api) -> None:
    api.as_("tr-duty").post(
        "/v1/zones", json=zone("notify", lon=37.5, lat=34.4, size=0.3, lead_time_s=24 * 3600)
    ).raise_for_status()
    late = api.as_("il-duty").post(
        "/v1/activities", json=activity(volume(lon=37.6, lat=34.5, start_h=2))
    )
    assert late.status_code == 201
    assert late.json()["late"] is True
    assert late.json()["late_zones"] == [1]
    timely = api.as_("il-duty").post(
        "/v1/activities", json=activity(volume(lon=37.6, lat=34.5, start_h=30))
    )
    assert timely.json()["late"] is False
    elsewhere = api.as_("il-duty").post(
        "/v1/activities", json=activity(volume(lon=35.0, lat=33.0, start_h=2))
    )
    assert elsewhere.json()["late"] is False
    # A party's own notify zone never makes its own activity late.
    own = api.as_("tr-duty").post(
        "/v1/activities", json=activity(volume(lon=37.6, lat=34.5, start_h=2))
    )
    assert own.json()["late"] is False


def test_idempotency_key_returns_first_answer_and_writes_once(api: Api) -> None:
    tr = api.as_("tr-duty")
    headers = {"Idempotency-Key": "k-123"}
    first = tr.post("/v1/activities", json=activity(), headers=headers)
    events = api.event_count()
    second = tr.post("/v1/activities", json=activity(), headers=headers)
    assert second.status_code == first.status_code == 201
    assert second.json() == first.json()
    assert api.event_count() == events
    assert len(tr.get("/v1/activities").json()) == 1
    other = tr.post("/v1/activities", json=activity(title="different"), headers=headers)
    assert other.status_code == 409
    # The key belongs to its officer: another officer's same key is a new request.
    assert (
        api.as_("tr-cmd").post("/v1/activities", json=activity(), headers=headers).status_code
        == 201
    )


def test_geojson_listing(api: Api) -> None:
    api.as_("tr-duty").post(
        "/v1/activities",
        json=activity(
            volume(),
            {**volume(), "footprint": None, "circle": {"center": [36.5, 34.5], "radius_m": 10000}},
        ),
    )
    fc = api.as_("il-duty").get("/v1/activities", params={"format": "geojson"})
    assert fc.headers["content-type"].startswith("application/geo+json")
    features = fc.json()["features"]
    assert len(features) == 2
    assert features[1]["properties"]["circle"] == {"center": [36.5, 34.5], "radius_m": 10000.0}
    assert features[1]["geometry"]["type"] == "Polygon"
