"""The live picture over HTTP: states posted by officers take the token's party (a body naming
one is refused), tracks and alerts are shown to the parties involved and the mediator, feed
counters per party, alerts as CoT."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import defusedxml.ElementTree as SafeET

from deconfliction.feeds.cot import CotSplitter
from deconfliction.parties.service import authenticate
from deconfliction.store.db import transaction
from deconfliction.tracks.service import readable_alert_ids
from tests.conftest import T0, FakeClock
from tests.tracks.conftest import LiveApi


def _state(track: str, lat: float = 34.8, lon: float = 38.3, **extra: Any) -> dict[str, Any]:
    return {
        "id": track,
        "lat": lat,
        "lon": lon,
        "alt_m": 6000,
        "gs_mps": 200,
        "course_deg": 90,
        "time": T0.isoformat(),
        **extra,
    }


def test_states_take_the_party_of_the_token(live_api: LiveApi) -> None:
    answer = live_api.post("il-duty", "/v1/tracks", json={"states": [_state("sufa-71")]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"accepted": 1, "dropped": []}
    answer = live_api.post("tr-cmd", "/v1/tracks", json={"states": [_state("sufa-71", lon=38.9)]})
    assert answer.json()["accepted"] == 1

    def keys(officer: str) -> list[str]:
        return [t["key"] for t in live_api.get(officer, "/v1/tracks").json()]

    assert keys("il-duty") == ["IL/sufa-71"]
    assert keys("tr-duty") == ["TR/sufa-71"]
    assert keys("az-med") == ["IL/sufa-71", "TR/sufa-71"]
    assert keys("un-obs") == []
    track = live_api.get("il-duty", "/v1/tracks").json()[0]
    assert (track["party"], track["source"], track["stale"]) == (
        "IL",
        "api",
        "2030-01-01T00:00:30Z",
    )


def test_a_party_in_the_body_is_refused(live_api: LiveApi) -> None:
    for body in (
        {"party": "TR", "states": [_state("x")]},
        {"states": [_state("x", party="TR")]},
    ):
        answer = live_api.post("il-duty", "/v1/tracks", json=body)
        assert answer.status_code == 422
        assert "party is the one of your token" in answer.json()["detail"]
    assert len(live_api.live.picture) == 0


def test_bad_states_are_refused_whole_and_outdated_ones_dropped(
    live_api: LiveApi, clock: FakeClock
) -> None:
    answer = live_api.post(
        "il-duty", "/v1/tracks", json={"states": [_state("ok"), _state("bad", lat=95)]}
    )
    assert answer.status_code == 422 and len(live_api.live.picture) == 0
    clock.advance(seconds=45)
    answer = live_api.post(
        "il-duty",
        "/v1/tracks",
        json={
            "states": [
                _state("stale"),  # time T0, stale 30 s later: already stale
                _state("fresh", time=clock.now.isoformat()),
                _state("future", time=(clock.now + timedelta(minutes=5)).isoformat()),
                _state("far", lat=10.0, lon=10.0, time=clock.now.isoformat()),
            ]
        },
    )
    assert answer.json() == {
        "accepted": 1,
        "dropped": [
            {"index": 0, "id": "stale", "reason": "stale"},
            {"index": 2, "id": "future", "reason": "time_in_future"},
            {"index": 3, "id": "far", "reason": "outside_area"},
        ],
    }
    assert live_api.post("un-obs", "/v1/tracks", json={"states": [_state("x")]}).status_code == 403
    assert live_api.post("az-med", "/v1/tracks", json={"states": [_state("x")]}).status_code == 403
    feeds = live_api.get("il-duty", "/v1/tracks/feeds").json()
    assert [(f["name"], f["received"], f["accepted"], f["dropped"]) for f in feeds] == [
        ("api:IL", 4, 1, {"outside_area": 1, "stale": 1, "time_in_future": 1})
    ]
    assert live_api.get("tr-duty", "/v1/tracks/feeds").json() == []
    assert [f["name"] for f in live_api.get("az-med", "/v1/tracks/feeds").json()] == ["api:IL"]


def _raise_an_alert(live_api: LiveApi) -> int:
    live_api.post("il-duty", "/v1/tracks", json={"states": [_state("sufa", 34.8, 38.3)]})
    live_api.post(
        "tr-duty",
        "/v1/tracks",
        json={"states": [_state("akinci", 34.8, 38.9, course_deg=270)]},
    )
    result = live_api.live.loop.step(T0)
    ((alert, event),) = result.events
    assert event == "raised"
    return alert.id


def test_alerts_are_seen_by_the_parties_in_them_and_the_mediator(live_api: LiveApi) -> None:
    alert_id = _raise_an_alert(live_api)
    for officer in ("il-duty", "tr-cmd", "az-med"):
        found = live_api.get(officer, "/v1/alerts").json()
        assert [a["id"] for a in found] == [alert_id], officer
        assert live_api.get(officer, f"/v1/alerts/{alert_id}").status_code == 200
    assert live_api.get("un-obs", "/v1/alerts").json() == []
    assert live_api.get("un-obs", f"/v1/alerts/{alert_id}").status_code == 404
    alert = live_api.get("il-duty", f"/v1/alerts/{alert_id}").json()
    assert (alert["kind"], alert["a"], alert["b"], alert["parties"]) == (
        "pair",
        "IL/sufa",
        "TR/akinci",
        ["IL", "TR"],
    )
    assert alert["segment"]["type"] == "LineString"
    assert live_api.get("il-duty", "/v1/alerts?state=cleared").json() == []
    assert len(live_api.get("il-duty", "/v1/alerts?state=all").json()) == 1
    with transaction(live_api.live.engine, write=False) as conn:
        for officer, expected in (("tr-duty", {alert_id}), ("un-obs", set())):
            actor = authenticate(conn, live_api.tokens[officer], T0)
            assert readable_alert_ids(conn, actor, [alert_id, 999]) == expected


def test_alerts_as_cot(live_api: LiveApi) -> None:
    alert_id = _raise_an_alert(live_api)
    one = live_api.get("tr-duty", f"/v1/alerts/{alert_id}/cot")
    assert one.headers["content-type"].startswith("application/xml")
    root = SafeET.fromstring(one.content, forbid_dtd=True)
    assert (root.get("uid"), root.get("type")) == (f"deconfliction.alert.{alert_id}", "u-d-f")
    stream = live_api.get("az-med", "/v1/alerts/cot").content
    events = [e for e in CotSplitter().feed(stream) if isinstance(e, bytes)]
    assert len(events) == 1
    assert SafeET.fromstring(events[0], forbid_dtd=True).get("uid") == root.get("uid")
    assert live_api.get("un-obs", "/v1/alerts/cot").content == b""


def test_without_a_live_picture_the_routes_answer_503(live_api: LiveApi) -> None:
    del live_api.client.app.state.live  # type: ignore[attr-defined]
    answer = live_api.get("il-duty", "/v1/tracks")
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
