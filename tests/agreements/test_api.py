"""The agreements register over the API: rounds, positions, commitments, consents, violations;
bad input is refused whole."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from typer.testing import CliRunner

from deconfliction.agreements.checks import check_picture
from deconfliction.cli import app as cli_app
from deconfliction.store import tables as t
from deconfliction.tracks.picture import TrackState
from tests.api.conftest import Api
from tests.builders import activity, volume, zone
from tests.conftest import FakeClock

ROUND_1 = {
    "number": 1,
    "held_on": "2025-04-09",
    "venue": "Baku, Azerbaijan",
    "host": "AZ",
    "delegations": [{"party": "TR"}, {"party": "IL"}],
    "outcome": "no_agreement",
    "summary": "Interests set out; a direct channel kept open.",
}


def south_zone(api: Api) -> int:
    # 36.0-36.5 E, 33.0-33.5 N; declared by IL.
    r = api.as_("il-duty").post("/v1/zones", json=zone("caution", lon=36.0, lat=33.0))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def commitment(zone_id: int, **rule: Any) -> dict[str, Any]:
    return {
        "title": "No TR forces in the south",
        "parties": ["IL", "TR"],
        "rule": {"kind": "zone", "applies_to": ["TR"], "zone_id": zone_id, **rule},
    }


def rows(api: Api, table: Any) -> int:
    with api.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_round_and_positions(api: Api) -> None:
    r = api.as_("az-med").post("/v1/agreements/rounds", json=ROUND_1)
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert r.json()["recorded_by"] == "AZ"
    position = {"language": "he", "text": "קו אדום", "english": "A red line"}
    made = api.as_("il-duty").post(f"/v1/agreements/rounds/{rid}/positions", json=position)
    assert made.status_code == 201, made.text
    assert made.json()["party"] == "IL"  # from the token
    got = api.as_("un-obs").get(f"/v1/agreements/rounds/{rid}").json()
    assert [(p["party"], p["english"]) for p in got["positions"]] == [("IL", "A red line")]
    # The same round twice, an unknown host, a party claimed in the body: refused.
    assert api.as_("az-med").post("/v1/agreements/rounds", json=ROUND_1).status_code == 409
    bad = {**ROUND_1, "number": 2, "host": "XX"}
    assert api.as_("az-med").post("/v1/agreements/rounds", json=bad).status_code == 422
    claimed = {**position, "party": "TR"}
    r = api.as_("il-duty").post(f"/v1/agreements/rounds/{rid}/positions", json=claimed)
    assert r.status_code == 422
    # The observer records nothing.
    assert (
        api.as_("un-obs").post(f"/v1/agreements/rounds/{rid}/positions", json=position).status_code
        == 403
    )
    assert rows(api, t.agreement_rounds) == 1
    assert rows(api, t.agreement_positions) == 1


def test_commitment_binds_once_every_named_party_consented(api: Api) -> None:
    zid = south_zone(api)
    r = api.as_("il-duty").post("/v1/agreements/commitments", json=commitment(zid))
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert r.json()["status"] == "proposed"
    assert [(c["party"], c["consented_by"]) for c in r.json()["parties"]] == [
        ("IL", "il-duty"),
        ("TR", None),
    ]
    # AZ is not named: refused, nothing written.
    before = api.event_count()
    assert api.as_("az-med").post(f"/v1/agreements/commitments/{cid}/consent").status_code == 403
    assert api.event_count() == before
    r = api.as_("tr-duty").post(f"/v1/agreements/commitments/{cid}/consent")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "binding"
    assert r.json()["bound_at"] is not None
    assert api.as_("tr-duty").post(f"/v1/agreements/commitments/{cid}/consent").status_code == 409


def test_binding_zone_commitment_catches_a_plan_with_evidence(api: Api) -> None:
    zid = south_zone(api)
    # Filed before the commitment binds: checked when it binds.
    early = (
        api.as_("tr-duty")
        .post("/v1/activities", json=activity(volume(36.2, 33.2), title="early"))
        .json()["id"]
    )
    cid = api.as_("il-duty").post("/v1/agreements/commitments", json=commitment(zid)).json()["id"]
    assert api.as_("il-duty").get("/v1/agreements/violations").json() == []  # not binding yet
    api.as_("tr-duty").post(f"/v1/agreements/commitments/{cid}/consent")
    outside = api.as_("tr-duty").post("/v1/activities", json=activity(volume(38.0, 35.0)))
    assert outside.status_code == 201
    inside = (
        api.as_("tr-duty")
        .post("/v1/activities", json=activity(volume(36.1, 33.1), title="inside"))
        .json()["id"]
    )
    found = api.as_("il-duty").get("/v1/agreements/violations").json()
    assert [(v["party"], v["evidence"]["activities"]) for v in found] == [
        ("TR", [early]),
        ("TR", [inside]),
    ]
    assert found[1]["rule_kind"] == "zone"
    assert found[1]["evidence"]["time"] == "2030-01-01T01:00:00Z"
    # The observer is not named in the commitment: it reads no violation.
    assert api.as_("un-obs").get("/v1/agreements/violations").json() == []
    assert len(api.as_("az-med").get("/v1/agreements/violations").json()) == 2


def test_bad_commitments_write_nothing(api: Api) -> None:
    zid = south_zone(api)
    before = api.event_count()
    il = api.as_("il-duty")
    for body in (
        commitment(999),  # unknown zone
        commitment(zid, kind="lead_time", hours=-2),  # negative lead time
        {
            **commitment(zid),
            "rule": {
                "kind": "force_posture",
                "applies_to": ["TR"],
                "within_km": -5,
                "zone_id": zid,
            },
        },
        {
            **commitment(zid),
            "rule": {
                "kind": "force_posture",
                "applies_to": ["TR"],
                "within_km": 5,
                "max_aircraft": 1,
                "zone_id": zid,
            },
        },
        {**commitment(zid), "parties": ["IL"]},  # the rule binds TR, not named
        {**commitment(zid), "parties": ["IL", "UNDOF"]},  # an observer cannot commit
        {**commitment(zid), "rule": {"kind": "zone", "zone_id": zid}},  # applies_to missing
    ):
        r = il.post("/v1/agreements/commitments", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert api.event_count() == before
    assert rows(api, t.commitments) == 0


def test_tactical_check_stores_a_ceiling_breach_once_a_minute(api: Api, clock: FakeClock) -> None:
    zid = south_zone(api)
    body = {
        "title": "At most 1 TR aircraft in the south",
        "parties": ["IL", "TR"],
        "rule": {"kind": "force_posture", "applies_to": ["TR"], "zone_id": zid, "max_aircraft": 1},
    }
    cid = api.as_("il-duty").post("/v1/agreements/commitments", json=body).json()["id"]

    def state(track: str, lon: float) -> TrackState:
        now = clock()
        return TrackState(
            "TR", track, 33.2, lon, 5000, 200, 90, 0, now, now + timedelta(minutes=1), "api"
        )

    one = [state("a", 36.1), state("b", 38.0)]
    two = [state("a", 36.1), state("b", 36.3)]
    assert check_picture(api.engine, two, clock()) == []  # not binding yet
    api.as_("tr-duty").post(f"/v1/agreements/commitments/{cid}/consent")
    assert check_picture(api.engine, one, clock()) == []
    made = check_picture(api.engine, two, clock())
    assert len(made) == 1
    clock.advance(seconds=20)
    assert check_picture(api.engine, two, clock()) == []  # the same minute: stored once
    (violation,) = api.as_("il-duty").get("/v1/agreements/violations").json()
    assert violation["source"] == "tracks"
    assert [s["track"] for s in violation["evidence"]["track_states"]] == ["a", "b"]
    assert violation["evidence"]["aircraft"] == 2
    # The fact is in the record, its payload readable by the named parties only.
    entries = api.as_("il-duty").get("/v1/ledger/entries").json()
    fact = next(e for e in entries if e["entry"]["kind"] == "violation.detected")
    assert fact["entry"]["payload"]["violation"] == violation["id"]
    hidden = api.as_("un-obs").get("/v1/ledger/entries").json()
    assert next(e for e in hidden if e["index"] == fact["index"])["entry"]["payload"] is None


def test_agreements_cli_bad_input_exits_2(api: Api, tmp_path: Path) -> None:
    zid = south_zone(api)
    url = str(api.engine.url.render_as_string(hide_password=False))
    env = {"DECONFLICTION_TOKEN": api.tokens["il-duty"]}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(commitment(zid, kind="lead_time", hours=-1)))
    r = CliRunner().invoke(cli_app, ["agreements", "propose", str(bad), "--db", url], env=env)
    assert r.exit_code == 2
    assert r.output.startswith("error: rule.lead_time.hours")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(commitment(zid)))
    r = CliRunner().invoke(cli_app, ["agreements", "propose", str(good), "--db", url], env=env)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli_app, ["agreements", "consent", "1", "--db", url], env=env)
    assert r.exit_code == 2
    assert "already consented" in r.output
    listed = CliRunner().invoke(cli_app, ["agreements", "commitments", "--db", url], env=env)
    assert "IL:yes TR:no" in listed.output
