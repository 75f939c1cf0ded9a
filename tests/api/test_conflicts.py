"""Strategic conflicts over the API: detected on notify and amend, told to both sides with the
overlap only, acknowledged and accepted per party, resolved when a plan changes."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api
from tests.builders import activity, volume, zone


def crossing(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    tr = api.as_("tr-duty").post(
        "/v1/activities", json=activity(volume(36.0, 34.0), title="TR UAV")
    )
    il = api.as_("il-duty").post(
        "/v1/activities", json=activity(volume(36.1, 34.1), title="IL CAP")
    )
    assert tr.status_code == il.status_code == 201
    return tr.json(), il.json()


def test_crossing_activities_make_one_conflict_told_to_both(api: Api) -> None:
    tr, il = crossing(api)
    assert tr["conflicts"] == []
    [made] = il["conflicts"]
    assert made["kind"] == "activities"
    assert made["severity"] == "high"
    assert made["state"] == "open"
    assert (made["a"]["party"], made["a"]["activity"]) == ("IL", il["id"])
    assert (made["b"]["party"], made["b"]["activity"]) == ("TR", tr["id"])
    overlap = made["overlap"]
    assert overlap["region"]["type"] in ("Polygon", "MultiPolygon")
    assert overlap["distance_m"] == 0.0
    assert [p["party"] for p in made["parties"]] == ["IL", "TR"]
    for officer in ("tr-duty", "il-duty", "az-med"):
        listed = api.as_(officer).get("/v1/conflicts").json()
        assert [c["id"] for c in listed] == [made["id"]], officer
    assert api.as_("un-obs").get("/v1/conflicts").json() == []
    assert api.as_("un-obs").get(f"/v1/conflicts/{made['id']}").status_code == 404


def test_same_party_never_conflicts(api: Api) -> None:
    api.as_("tr-duty").post("/v1/activities", json=activity(volume(36.0, 34.0)))
    again = api.as_("tr-cmd").post("/v1/activities", json=activity(volume(36.0, 34.0)))
    assert again.json()["conflicts"] == []


def test_minimal_disclosure_of_an_activity_not_notified_to_the_reader(api: Api) -> None:
    # TR shares its plan only with UNDOF; IL's crossing plan still conflicts with it.
    tr = (
        api.as_("tr-duty")
        .post(
            "/v1/activities",
            json=activity(volume(36.0, 34.0), title="secret TR sortie", notified_to=["UNDOF"]),
        )
        .json()
    )
    il = api.as_("il-duty").post("/v1/activities", json=activity(volume(36.1, 34.1))).json()
    [made] = il["conflicts"]
    assert made["b"]["activity"] == tr["id"]
    assert made["b"]["title"] is None  # IL learns where, when and how high, not what
    assert made["overlap"]["region"]["type"] in ("Polygon", "MultiPolygon")
    assert api.as_("il-duty").get(f"/v1/activities/{tr['id']}").status_code == 404
    seen_by_tr = api.as_("tr-duty").get(f"/v1/conflicts/{made['id']}").json()
    assert seen_by_tr["b"]["title"] == "secret TR sortie"


def test_separated_in_altitude_or_time_is_no_conflict(api: Api) -> None:
    api.as_("tr-duty").post(
        "/v1/activities", json=activity(volume(36.0, 34.0, lower=1000, upper=2000))
    )
    high = api.as_("il-duty").post(
        "/v1/activities", json=activity(volume(36.0, 34.0, lower=2300, upper=4000))
    )
    assert high.json()["conflicts"] == []  # 300 m gap is not < 300 m
    close = api.as_("il-duty").post(
        "/v1/activities", json=activity(volume(36.0, 34.0, lower=2299, upper=4000))
    )
    assert len(close.json()["conflicts"]) == 1
    assert close.json()["conflicts"][0]["severity"] == "medium"  # within minima, not sharing
    later = api.as_("il-duty").post(
        "/v1/activities",
        json=activity(volume(36.0, 34.0, lower=1000, upper=2000, start_h=3 + 600 / 3600)),
    )
    assert later.json()["conflicts"] == []  # a 600 s gap is not < 600 s


def test_horizontal_minimum_in_metres(api: Api) -> None:
    # Two squares at the same latitude, 0.1 degree of longitude apart (~9.2 km at 34 N): within
    # 9,260 m; 0.11 degree (~10.1 km) is not.
    api.as_("tr-duty").post("/v1/activities", json=activity(volume(36.0, 34.0, size=0.1)))
    near = api.as_("il-duty").post("/v1/activities", json=activity(volume(36.2, 34.0, size=0.1)))
    far = api.as_("il-duty").post("/v1/activities", json=activity(volume(36.21, 34.0, size=0.1)))
    assert len(near.json()["conflicts"]) == 1
    assert 9000 < near.json()["conflicts"][0]["overlap"]["distance_m"] < 9260
    assert far.json()["conflicts"] == []


def test_acknowledge_then_accept_by_both(api: Api) -> None:
    _, il = crossing(api)
    cid = il["conflicts"][0]["id"]
    url = f"/v1/conflicts/{cid}"
    assert api.as_("un-obs").post(f"{url}/acknowledge").status_code in (403, 404)
    assert api.as_("az-med").post(f"{url}/acknowledge").status_code == 403
    one = api.as_("il-duty").post(f"{url}/acknowledge").json()
    assert one["state"] == "open"
    assert api.as_("il-duty").post(f"{url}/acknowledge").status_code == 409
    both = api.as_("tr-cmd").post(f"{url}/acknowledge").json()
    assert both["state"] == "acknowledged"
    assert {p["party"]: p["acknowledged_by"] for p in both["parties"]} == {
        "IL": "il-duty",
        "TR": "tr-cmd",
    }
    assert api.as_("tr-duty").post(f"{url}/accept").json()["state"] == "acknowledged"
    accepted = api.as_("il-duty").post(f"{url}/accept").json()
    assert accepted["state"] == "accepted"
    assert api.as_("il-duty").post(f"{url}/accept").status_code == 409
    entries = api.as_("az-med").get("/v1/ledger/entries", params={"limit": 1000}).json()
    kinds = [e["entry"]["kind"] for e in entries]
    assert kinds.count("conflict.acknowledge") == 2 and kinds.count("conflict.accept") == 2
    assert kinds.count("conflict.acknowledged") == 2 and kinds.count("conflict.accepted") == 2


def test_amend_resolves_and_rechecks(api: Api) -> None:
    tr, il = crossing(api)
    cid = il["conflicts"][0]["id"]
    moved = api.as_("il-duty").put(
        f"/v1/activities/{il['id']}", json=activity(volume(38.0, 35.0)), headers={"If-Match": '"1"'}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["conflicts"] == []
    old = api.as_("tr-duty").get(f"/v1/conflicts/{cid}").json()
    assert (old["state"], old["resolution"]) == ("resolved", "amended")
    # Amending back into the TR plan makes a new conflict on the new version.
    back = (
        api.as_("il-duty")
        .put(
            f"/v1/activities/{il['id']}",
            json=activity(volume(36.1, 34.1)),
            headers={"If-Match": '"2"'},
        )
        .json()
    )
    [again] = back["conflicts"]
    assert again["a"]["version"] == 3
    assert again["id"] != cid
    # Cancelling the TR plan resolves it too, and TR's old volumes stop conflicting.
    api.as_("tr-duty").post(f"/v1/activities/{tr['id']}/cancel", headers={"If-Match": '"1"'})
    assert api.as_("il-duty").get(f"/v1/conflicts/{again['id']}").json()["resolution"] == (
        "cancelled"
    )
    fresh = api.as_("il-duty").post("/v1/activities", json=activity(volume(36.1, 34.1)))
    assert fresh.json()["conflicts"] == []
    open_ = api.as_("il-duty").get("/v1/conflicts", params={"state": "open"}).json()
    assert open_ == []


def test_zone_rules(api: Api) -> None:
    api.as_("il-duty").post("/v1/zones", json=zone("no_entry", lon=35.8, lat=32.6, size=0.8))
    api.as_("il-duty").post("/v1/zones", json=zone("caution", lon=38.0, lat=35.0, size=0.5))
    api.as_("il-duty").post(
        "/v1/zones", json=zone("notify", lon=39.0, lat=35.0, size=0.5, lead_time_s=3600)
    )
    into_no_entry = api.as_("tr-duty").post("/v1/activities", json=activity(volume(36.0, 33.0)))
    [c] = into_no_entry.json()["conflicts"]
    assert (c["kind"], c["severity"], c["b"]["zone"], c["b"]["party"]) == ("zone", "high", 1, "IL")
    caution = api.as_("tr-duty").post("/v1/activities", json=activity(volume(38.1, 35.1)))
    assert [c["severity"] for c in caution.json()["conflicts"]] == ["advisory"]
    timely = api.as_("tr-duty").post("/v1/activities", json=activity(volume(39.1, 35.1, start_h=2)))
    assert timely.json()["conflicts"] == [] and timely.json()["late"] is False
    late = api.as_("tr-duty").post("/v1/activities", json=activity(volume(39.1, 35.1, start_h=0.5)))
    assert [c["severity"] for c in late.json()["conflicts"]] == ["medium"]
    assert late.json()["late"] is True
    # The owner's own zones never conflict with its own activity.
    own = api.as_("il-duty").post("/v1/activities", json=activity(volume(36.0, 33.0)))
    assert [c["kind"] for c in own.json()["conflicts"]] == ["activities"]


def test_zone_minima_override(api: Api) -> None:
    # Inside this agreed training area the parties accept 1 km / 100 m / 0 s.
    small = {"horizontal_m": 1000, "vertical_m": 100, "time_buffer_s": 0}
    api.as_("tr-duty").post(
        "/v1/zones", json=zone("caution", lon=40.0, lat=35.0, size=1.0, minima=small)
    )
    api.as_("il-duty").post("/v1/activities", json=activity(volume(40.2, 35.2, size=0.1)))
    # 0.1 degree (~9.1 km) apart: a conflict under the default 9,260 m, none under 1 km.
    beside = api.as_("tr-duty").post("/v1/activities", json=activity(volume(40.4, 35.2, size=0.1)))
    assert beside.json()["conflicts"] == []
    outside = api.as_("tr-duty").post("/v1/activities", json=activity(volume(42.0, 37.0, size=0.1)))
    api_il = api.as_("il-duty").post("/v1/activities", json=activity(volume(42.2, 37.0, size=0.1)))
    assert outside.json()["conflicts"] == []
    assert len(api_il.json()["conflicts"]) == 1


def test_check_is_a_dry_run(api: Api) -> None:
    api.as_("tr-duty").post("/v1/activities", json=activity(volume(36.0, 34.0)))
    before = api.event_count()
    r = api.as_("il-duty").post("/v1/activities/check", json=activity(volume(36.1, 34.1)))
    assert r.status_code == 200, r.text
    [proposed] = r.json()
    assert proposed["b"]["party"] == "TR" and proposed["volumes"] == [0]
    assert api.event_count() == before
    assert api.as_("il-duty").get("/v1/conflicts").json() == []


def test_conflict_filters(api: Api) -> None:
    crossing(api)
    tr = api.as_("tr-duty")
    assert len(tr.get("/v1/conflicts", params={"party": "IL"}).json()) == 1
    assert tr.get("/v1/conflicts", params={"party": "AZ"}).json() == []
    assert tr.get("/v1/conflicts", params={"state": "accepted"}).json() == []
    assert len(tr.get("/v1/conflicts", params={"start": "2030-01-01T02:00:00Z"}).json()) == 1
    assert tr.get("/v1/conflicts", params={"start": "2030-01-02T00:00:00Z"}).json() == []
    assert tr.get("/v1/conflicts", params={"state": "bogus"}).status_code == 422


def test_sharing_only_an_edge_is_within_the_minima_not_shared_airspace(api: Api) -> None:
    api.as_("tr-duty").post("/v1/activities", json=activity(volume(36.0, 34.0)))
    beside = api.as_("il-duty").post("/v1/activities", json=activity(volume(36.2, 34.0)))
    [found] = beside.json()["conflicts"]
    assert found["overlap"]["distance_m"] == 0.0
    assert found["severity"] == "medium"


def test_declaring_a_zone_detects_the_activities_already_filed(api: Api) -> None:
    tr = api.as_("tr-duty")
    crossed = tr.post("/v1/activities", json=activity(volume(36.0, 33.0))).json()
    cautioned = tr.post("/v1/activities", json=activity(volume(38.1, 35.1))).json()
    timely = tr.post("/v1/activities", json=activity(volume(39.1, 35.1, start_h=2))).json()
    late = tr.post("/v1/activities", json=activity(volume(39.1, 35.2, start_h=0.5))).json()
    elsewhere = tr.post("/v1/activities", json=activity(volume(44.0, 30.0))).json()
    il = api.as_("il-duty")
    no_entry = il.post("/v1/zones", json=zone("no_entry", lon=35.8, lat=32.6, size=0.8)).json()
    caution = il.post("/v1/zones", json=zone("caution", lon=38.0, lat=35.0, size=0.5)).json()
    notify = il.post(
        "/v1/zones", json=zone("notify", lon=39.0, lat=35.0, size=0.5, lead_time_s=3600)
    ).json()
    # The declaring party's own activities never conflict with its zone.
    il.post("/v1/activities", json=activity(volume(46.0, 28.0)))
    il.post("/v1/zones", json=zone("no_entry", lon=45.8, lat=27.8, size=0.5))

    found = {
        (c["a"]["activity"], c["b"]["zone"]): (c["kind"], c["severity"], c["a"]["party"])
        for c in tr.get("/v1/conflicts").json()
    }
    assert found == {
        (crossed["id"], no_entry["id"]): ("zone", "high", "TR"),
        (cautioned["id"], caution["id"]): ("zone", "advisory", "TR"),
        (late["id"], notify["id"]): ("zone", "medium", "TR"),
    }
    assert timely["id"] not in {a for a, _ in found} and elsewhere["id"] not in {
        a for a, _ in found
    }
    # Told to both parties, like any conflict, with its hotline thread.
    assert {c["id"] for c in il.get("/v1/conflicts").json()} == {
        c["id"] for c in tr.get("/v1/conflicts").json()
    }
    threads = il.get("/v1/hotline/threads").json()
    assert len(threads) == 3
