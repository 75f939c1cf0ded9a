"""The stored detection path (the in-memory index on SQLite, the SQL cell index on PostgreSQL)
finds exactly the conflicts of a brute-force check of every pair of volumes."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import given, settings
from shapely import MultiPolygon, Polygon

from deconfliction.activities.models import ActivityIn
from deconfliction.activities.service import notify
from deconfliction.api import create_app
from deconfliction.conflicts.detection import VolumeCache, index_numbers, stored_volume
from deconfliction.detect.strategic import SeparationMinima, conflict
from deconfliction.geo import Volume4D
from deconfliction.geo.projection import footprint_box
from deconfliction.parties.service import authenticate
from deconfliction.record.service import Statement, say
from deconfliction.store.db import transaction
from deconfliction.volumes import volume_from_json, volume_json
from tests.api.conftest import Api
from tests.builders import activity, iso, volume
from tests.conftest import T0
from tests.detect_strategic.reference import volumes

MINIMA = SeparationMinima(9260, 300, 600)
OFFICER = {"TR": "tr-duty", "IL": "il-duty"}


def random_volume(rng: random.Random) -> dict[str, Any]:
    lon, lat = rng.uniform(35.8, 36.6), rng.uniform(33.8, 34.4)
    start = T0 + timedelta(minutes=rng.randrange(30, 600, 10))
    lower = rng.choice([0, 1000, 2700, 3000, 5000])
    shape: dict[str, Any]
    if rng.random() < 0.3:
        shape = {"circle": {"center": [lon, lat], "radius_m": rng.uniform(1000, 15000)}}
    else:
        w, h = rng.uniform(0.01, 0.2), rng.uniform(0.005, 0.2)
        shape = {
            "footprint": {
                "type": "Polygon",
                "coordinates": [
                    [[lon, lat], [lon + w, lat], [lon + w, lat + h], [lon, lat + h], [lon, lat]]
                ],
            }
        }
    return {
        **shape,
        "altitude": {
            "lower_m": lower,
            "upper_m": lower + rng.choice([300, 1000, 3000]),
            "reference": "W84",
        },
        "time": {"start": iso(start), "end": iso(start + timedelta(minutes=rng.choice([10, 60])))},
    }


def test_filed_conflicts_equal_the_brute_force_reference(api: Api) -> None:
    rng = random.Random(20251)
    filed: list[tuple[int, str, list[dict[str, Any]]]] = []
    found: set[frozenset[int]] = set()
    for n in range(40):
        party = rng.choice(["TR", "IL"])
        volumes = [random_volume(rng) for _ in range(rng.randint(1, 3))]
        r = api.as_(OFFICER[party]).post("/v1/activities", json=activity(*volumes, title=str(n)))
        assert r.status_code == 201, r.text
        body = r.json()
        filed.append((body["id"], party, volumes))
        found |= {frozenset((body["id"], c["b"]["activity"])) for c in body["conflicts"]}
    expected = {
        frozenset((a_id, b_id))
        for i, (a_id, a_party, a_vols) in enumerate(filed)
        for b_id, b_party, b_vols in filed[:i]
        if a_party != b_party
        and any(
            conflict(volume_from_json(va), volume_from_json(vb), MINIMA) is not None
            for va in a_vols
            for vb in b_vols
        )
    }
    assert expected, "the random plans should cross somewhere"
    assert found == expected


def test_index_sees_writes_made_outside_the_server_and_survives_a_restart(api: Api) -> None:
    # Another process (the CLI) files a TR plan straight into the database.
    body = activity(volume(36.0, 34.0), title="filed by the CLI")
    with transaction(api.engine, write=True) as conn:
        actor = authenticate(conn, api.tokens["tr-duty"], T0)
        say(
            conn,
            actor,
            Statement("activity.notify", body=body),
            lambda: notify(conn, actor, ActivityIn.model_validate(body), T0),
            "activity",
            T0,
        )
    crossing = api.as_("il-duty").post("/v1/activities", json=activity(volume(36.1, 34.1)))
    assert [c["b"]["party"] for c in crossing.json()["conflicts"]] == ["TR"]
    # A new server on the same database rebuilds its index and still sees both.
    with TestClient(
        create_app(
            api.engine,
            lambda: T0,
            checkpoint_every_s=None,
            hotline_every_s=None,
            tactical_every_s=None,
        )
    ) as fresh:
        r = fresh.post(
            "/v1/activities/check",
            json=activity(volume(36.05, 34.05)),
            headers={"Authorization": f"Bearer {api.tokens['tr-cmd']}"},
        )
        assert [c["b"]["party"] for c in r.json()] == ["IL"]


@settings(max_examples=200, deadline=None)
@given(plan=volumes())
def test_stored_volumes_read_back_equal_the_validated_ones(plan: list[Volume4D]) -> None:
    # Candidate rows skip validation (done when written): the result must be the same volume.
    plan = [*plan, Volume4D(MultiPolygon([plan_square(0.0), plan_square(0.2)]), *rest(plan[0]))]
    for written in plan:
        data = volume_json(written)
        read = stored_volume(data)
        assert read == volume_from_json(data)  # written in RFC 7946 winding, so not `written`
        assert (read.altitude, read.start, read.end) == (
            written.altitude,
            written.start,
            written.end,
        )
        assert read.start.tzinfo == written.start.tzinfo
        band = written.altitude
        assert index_numbers(data) == (
            *footprint_box(written.footprint),
            band.lower_m,
            band.upper_m,
            written.start.timestamp(),
            written.end.timestamp(),
        )


def plan_square(offset: float) -> Polygon:
    return Polygon(
        [(36 + offset, 33), (36.1 + offset, 33), (36.1 + offset, 33.1), (36 + offset, 33.1)]
    )


def rest(volume: Volume4D) -> tuple[Any, ...]:
    return volume.altitude, volume.start, volume.end


def test_volume_cache_keeps_the_most_recent(api: Api) -> None:
    body = activity(volume(36.0, 34.0), volume(37.0, 34.0), volume(38.0, 34.0))
    assert api.as_("tr-duty").post("/v1/activities", json=body).status_code == 201
    cache = VolumeCache(capacity=2)
    with api.engine.connect() as conn:
        first = cache.get_many(conn, [1, 2, 3])
        assert sorted(first) == [1, 2, 3] and sorted(cache._volumes) == [2, 3]
        again = cache.get_many(conn, [2])
        assert again[2] is first[2]  # served from the cache, not parsed again
        assert cache.get_many(conn, [1])[1] == first[1]
        assert sorted(cache._volumes) == [1, 2]
