"""Every kind of bad input gets a 4xx problem+json that says what is wrong, and writes nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.builders import activity, iso, square, volume, zone
from tests.conftest import T0, FakeClock


def with_volume(**changes: Any) -> dict[str, Any]:
    return activity({**volume(), **changes})


BOWTIE = {
    "type": "Polygon",
    "coordinates": [[[36, 34], [36.2, 34.2], [36.2, 34], [36, 34.2], [36, 34]]],
}
UNCLOSED = {"type": "Polygon", "coordinates": [[[36, 34], [36.2, 34], [36.2, 34.2], [36, 34.2]]]}

ACTIVITY_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("self-intersecting polygon", with_volume(footprint=BOWTIE), "self-intersect"),
    ("unclosed ring", with_volume(footprint=UNCLOSED), "clos"),
    ("latitude out of range", with_volume(footprint=square(36, 95)), "latitude"),
    ("longitude out of range", with_volume(footprint=square(181, 34)), "longitude"),
    ("not a polygon", with_volume(footprint={"type": "Point", "coordinates": [36, 34]}), "Polygon"),
    (
        "upside-down altitude band",
        with_volume(altitude={"lower_m": 6000, "upper_m": 3000, "reference": "W84"}),
        "upside",
    ),
    (
        "inverted time window",
        with_volume(
            time={"start": iso(T0 + timedelta(hours=3)), "end": iso(T0 + timedelta(hours=2))}
        ),
        "inverted",
    ),
    (
        "zero-length time window",
        with_volume(
            time={"start": iso(T0 + timedelta(hours=3)), "end": iso(T0 + timedelta(hours=3))}
        ),
        "empty",
    ),
    (
        "time window in the past",
        with_volume(
            time={"start": iso(T0 - timedelta(hours=3)), "end": iso(T0 - timedelta(hours=2))}
        ),
        "past",
    ),
    (
        "naive time",
        with_volume(time={"start": "2030-01-01T01:00:00", "end": "2030-01-01T02:00:00"}),
        "timezone",
    ),
    ("unknown party", activity(notified_to=["XX"]), "XX"),
    ("notifying oneself", activity(notified_to=["TR"]), "itself"),
    ("unknown kind", {**activity(), "kind": "bombing_run"}, "kind"),
    (
        "both volumes and route",
        {
            **activity(),
            "route": {"waypoints": [], "half_width_m": 1, "altitude": {"lower_m": 0, "upper_m": 1}},
        },
        "route",
    ),
    (
        "negative radius",
        with_volume(footprint=None, circle={"center": [36, 34], "radius_m": -5}),
        "radius",
    ),
    ("no volumes", {**activity(), "volumes": []}, "volumes"),
]


@pytest.mark.parametrize(
    ("case", "body", "says"), ACTIVITY_CASES, ids=[c[0] for c in ACTIVITY_CASES]
)
def test_bad_activity(api: Api, case: str, body: dict[str, Any], says: str) -> None:
    r = api.as_("tr-duty").post("/v1/activities", json=body)
    assert 400 <= r.status_code < 500, (case, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["status"] == r.status_code
    assert says.lower() in problem["detail"].lower(), (case, problem["detail"])
    assert api.event_count() == 0
    assert api.as_("tr-duty").get("/v1/activities").json() == []


def test_nan_is_refused(api: Api) -> None:
    raw = json.dumps(with_volume(altitude={"lower_m": 0, "upper_m": 1000}))
    raw = raw.replace('"upper_m": 1000', '"upper_m": NaN')
    r = api.as_("tr-duty").post(
        "/v1/activities", content=raw, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert api.event_count() == 0


def test_nan_in_coordinates_is_refused(api: Api) -> None:
    raw = json.dumps(activity()).replace("36.0, 34.0]", "NaN, 34.0]", 1)
    assert "NaN" in raw
    r = api.as_("tr-duty").post(
        "/v1/activities", content=raw, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert api.event_count() == 0


def test_body_over_one_mebibyte(api: Api) -> None:
    huge = activity(title="x" * 10)
    huge["padding"] = "y" * (1024 * 1024 + 10)
    r = api.as_("tr-duty").post("/v1/activities", json=huge)
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("application/problem+json")
    assert api.event_count() == 0


def test_streamed_body_over_one_mebibyte(api: Api) -> None:
    def chunks() -> Any:
        for _ in range(20):
            yield b" " * (64 * 1024)

    r = api.as_("tr-duty").post(
        "/v1/activities", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert api.event_count() == 0


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic abc", "Bearer "])
def test_missing_or_wrong_token(api: Api, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    r = api.client.post("/v1/activities", json=activity(), headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert api.event_count() == 0


def test_expired_token(api: Api, clock: FakeClock) -> None:
    clock.advance(days=91)
    r = api.as_("tr-duty").get("/v1/zones")
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]


ZONE_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("self-intersecting", zone(footprint=BOWTIE), "self-intersect"),
    ("upside-down band", zone(altitude={"lower_m": 100, "upper_m": 0}), "upside"),
    ("inverted validity", zone(valid_to=iso(T0 - timedelta(days=1))), "valid_to"),
    ("unknown rule", zone(rule="shoot_on_sight"), "rule"),
    ("footprint and circle", zone(circle={"center": [36, 34], "radius_m": 10}), "exactly one"),
]


@pytest.mark.parametrize(("case", "body", "says"), ZONE_CASES, ids=[c[0] for c in ZONE_CASES])
def test_bad_zone(api: Api, case: str, body: dict[str, Any], says: str) -> None:
    r = api.as_("il-duty").post("/v1/zones", json=body)
    assert r.status_code == 422, (case, r.text)
    assert says.lower() in r.json()["detail"].lower(), (case, r.json()["detail"])
    assert api.event_count() == 0


def test_unknown_ids_are_404(api: Api) -> None:
    tr = api.as_("tr-duty")
    assert tr.get("/v1/activities/999").status_code == 404
    assert tr.get("/v1/zones/999").status_code == 404
    assert tr.post("/v1/zones/999/consent").status_code == 404
    assert tr.get("/v1/nowhere").status_code == 404
    assert tr.get("/v1/nowhere").headers["content-type"].startswith("application/problem+json")


def test_malformed_if_match(api: Api) -> None:
    aid = api.as_("tr-duty").post("/v1/activities", json=activity()).json()["id"]
    r = api.as_("tr-duty").post(f"/v1/activities/{aid}/cancel", headers={"If-Match": "abc"})
    assert r.status_code == 422
