"""The signed record over the API, on SQLite and PostgreSQL: every write is one signed officer
statement plus the log's own facts pointing at it; receipts, proofs, checkpoints, the export and
its offline verification, minimal disclosure to an observer, cosigning."""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import OperationalError

from deconfliction.api import create_app
from deconfliction.errors import Invalid
from deconfliction.ledger.canonical import canonical_json
from deconfliction.ledger.checkpoint import NoteSigner, open_checkpoint, parse_note
from deconfliction.ledger.entry import LOG_PARTY, Entry, payload_sha256
from deconfliction.ledger.errors import Reason
from deconfliction.ledger.merkle import verify_consistency, verify_inclusion
from deconfliction.ledger.signing import load_public_key
from deconfliction.ledger.signing import verify as verify_signature
from deconfliction.parties.service import authenticate
from deconfliction.record import log as record_log
from deconfliction.record.checkpoints import cosign_latest
from deconfliction.record.service import Statement
from deconfliction.store import tables as t
from deconfliction.store.db import transaction
from tests.api.conftest import Api
from tests.builders import activity, volume, zone
from tests.conftest import FakeClock
from tests.record.support import (
    Area,
    checkpoint_of,
    cosigners,
    decode_receipt,
    export,
    is_statement,
    json_request,
    log_verifier,
    signature_header,
    verify,
)

PROBLEM_JSON = "application/problem+json"


def created(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def busy_day(api: Api) -> list[tuple[str, str, httpx.Response]]:
    """One of every write: (statement kind, officer, response), in the order they were made."""
    il, tr, tr_cmd = api.as_("il-duty"), api.as_("tr-duty"), api.as_("tr-cmd")
    done: list[tuple[str, str, httpx.Response]] = []

    def did(kind: str, officer: str, response: httpx.Response, status: int = 200) -> Any:
        created(response, status)
        done.append((kind, officer, response))
        return response.json()

    zid = did("zone.declare", "il-duty", il.post("/v1/zones", json=zone(agreed_with=["TR"])), 201)[
        "id"
    ]
    did("zone.consent", "tr-cmd", tr_cmd.post(f"/v1/zones/{zid}/consent"))
    tr_plan = activity(volume(36.0, 34.0), title="TR UAV")
    aid = did("activity.notify", "tr-duty", tr.post("/v1/activities", json=tr_plan), 201)["id"]
    il_plan = activity(volume(36.1, 34.1), title="IL CAP")
    [conflict] = did("activity.notify", "il-duty", il.post("/v1/activities", json=il_plan), 201)[
        "conflicts"
    ]
    did("activity.acknowledge", "il-duty", il.post(f"/v1/activities/{aid}/acknowledge"))
    did("conflict.acknowledge", "tr-duty", tr.post(f"/v1/conflicts/{conflict['id']}/acknowledge"))
    did("conflict.accept", "il-duty", il.post(f"/v1/conflicts/{conflict['id']}/accept"))
    amended = activity(volume(37.0, 34.0), title="TR UAV moved")
    did(
        "activity.amend",
        "tr-duty",
        tr.put(f"/v1/activities/{aid}", json=amended, headers={"If-Match": '"1"'}),
    )
    did(
        "activity.cancel",
        "tr-duty",
        tr.post(f"/v1/activities/{aid}/cancel", headers={"If-Match": '"2"'}),
    )
    return done


def api_export(api: Api, officer: str) -> list[str]:
    response = api.as_(officer).get("/v1/ledger/export")
    assert response.status_code == 200, response.text
    return response.text.splitlines()


def all_entries(api: Api, officer: str) -> list[dict[str, Any]]:
    response = api.as_(officer).get("/v1/ledger/entries", params={"limit": 1000})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def trust_of(api: Api, officer: str = "az-med") -> dict[str, Any]:
    response = api.as_(officer).get("/v1/ledger/trust")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def test_every_write_is_one_signed_statement_and_the_export_verifies(api: Api) -> None:
    writes = busy_day(api)
    med = api.as_("az-med")
    note = med.post("/v1/ledger/checkpoint")
    assert note.status_code == 200
    lines = api_export(api, "az-med")
    trust = trust_of(api)

    result = verify(lines, trust)
    assert result.ok, result.detail
    assert result.entries == checkpoint_of(note.text).size == api.event_count() + 5  # + 5 certs
    assert result.checkpointed_size == result.entries

    records = [json.loads(line) for line in lines]
    entries = {r["index"]: r["entry"] for r in records if r["type"] == "entry"}
    statements = {i: e for i, e in entries.items() if is_statement(e)}
    # One statement per write, of its kind, by its officer, in the order of the writes...
    assert [(e["kind"], e["author"]) for e in statements.values()] == [
        (kind, officer) for kind, officer, _ in writes
    ]
    # ...at the index its receipt names, signed by the server with the officer's held key.
    receipts = [decode_receipt(r.headers["Deconfliction-Receipt"]) for _, _, r in writes]
    assert [r["index"] for r in receipts] == list(statements)
    assert all(e["server_held_key"] is True for e in statements.values())
    notified = statements[receipts[2]["index"]]["payload"]
    assert notified == {
        "target": None,
        "version": None,
        "body": activity(volume(36.0, 34.0), title="TR UAV"),
    }
    # Every fact of the log points at the statement of its own write.
    facts = {i: e for i, e in entries.items() if e["party"] == LOG_PARTY}
    assert [e["kind"] for e in facts.values()] == [
        "zone.declared",
        "zone.consented",
        "activity.notified",
        "activity.notified",
        "conflict.detected",
        "message.sent",  # the hotline thread the conflict opened
        "activity.acknowledged",
        "conflict.acknowledged",
        "conflict.accepted",
        "conflict.resolved",
        "activity.amended",
        "activity.cancelled",
    ]
    for index, fact in facts.items():
        cause = fact["payload"]["statement"]
        assert cause in statements, (index, fact)
        assert cause == max(i for i in statements if i < index)  # the write it belongs to
        said = statements[cause]
        by = fact["payload"]["by"]
        # The hotline thread of a conflict is the system's message, caused by the same write.
        assert by == (
            "system" if fact["kind"] == "message.sent" else f"{said['party']}/{said['author']}"
        )


def test_receipt_is_signed_by_the_log_and_names_the_entry(api: Api) -> None:
    response = api.as_("tr-duty").post("/v1/activities", json=activity())
    assert response.status_code == 201
    receipt = decode_receipt(response.headers["Deconfliction-Receipt"])
    got = api.as_("tr-duty").get(f"/v1/ledger/entries/{receipt['index']}").json()
    assert got["index"] == receipt["index"]
    entry = Entry.from_json(got["entry"])
    assert (entry.kind, entry.author) == ("activity.notify", "tr-duty")
    assert entry.leaf_hash.hex() == receipt["leaf_hash"]
    assert datetime.fromisoformat(got["integrated_at"]) == datetime.fromisoformat(
        receipt["integrated_time"]
    )

    log_key = log_verifier(trust_of(api, "tr-duty"))
    assert receipt["log"] == log_key.name
    assert receipt["key_id"] == log_key.key_id.hex()
    body = {k: receipt[k] for k in ("log", "index", "leaf_hash", "integrated_time")}
    public = load_public_key(log_key.public_key)
    signature = base64.b64decode(receipt["signature"])
    assert verify_signature(public, canonical_json(body), signature)
    # The signature binds the index: the same receipt for another entry does not verify.
    assert not verify_signature(
        public, canonical_json({**body, "index": body["index"] - 1}), signature
    )


def test_idempotent_retry_returns_the_same_receipt_and_adds_no_entry(api: Api) -> None:
    tr = api.as_("tr-duty")
    key = {"Idempotency-Key": "retry-1"}
    first = tr.post("/v1/activities", json=activity(), headers=key)
    assert first.status_code == 201
    size = len(all_entries(api, "az-med"))
    again = tr.post("/v1/activities", json=activity(), headers=key)
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert decode_receipt(again.headers["Deconfliction-Receipt"]) == decode_receipt(
        first.headers["Deconfliction-Receipt"]
    )
    assert len(all_entries(api, "az-med")) == size
    # The same key for another request is refused, still writing nothing.
    other = tr.post("/v1/activities", json=activity(title="other"), headers=key)
    assert other.status_code == 409
    assert len(all_entries(api, "az-med")) == size


def test_inclusion_and_consistency_proofs_verify_against_checkpoints(api: Api) -> None:
    med = api.as_("az-med")
    api.as_("tr-duty").post("/v1/activities", json=activity(volume(40.0, 30.0)))
    old_note = med.post("/v1/ledger/checkpoint").text
    busy_day(api)
    new_note = med.post("/v1/ledger/checkpoint").text
    log_key = log_verifier(trust_of(api))
    old, _ = open_checkpoint(old_note, [log_key])
    new, _ = open_checkpoint(new_note, [log_key])
    assert 0 < old.size < new.size

    leaves = [Entry.from_json(e["entry"]).leaf_hash for e in all_entries(api, "az-med")]
    assert len(leaves) == new.size
    for size, root in ((old.size, old.root), (new.size, new.root)):
        for index in range(size):
            got = med.get("/v1/ledger/proof/inclusion", params={"index": index, "size": size})
            assert got.status_code == 200, got.text
            proof = [base64.b64decode(h) for h in got.json()["proof"]]
            assert base64.b64decode(got.json()["root"]) == root
            assert verify_inclusion(leaves[index], index, size, proof, root), (index, size)
            other = leaves[(index + 1) % size]
            assert not verify_inclusion(other, index, size, proof, root)

    got = med.get("/v1/ledger/proof/consistency", params={"old": old.size, "new": new.size})
    assert got.status_code == 200, got.text
    proof = [base64.b64decode(h) for h in got.json()["proof"]]
    assert verify_consistency(old.size, new.size, old.root, new.root, proof)
    assert not verify_consistency(old.size, new.size, new.root, new.root, proof)
    for middle in range(1, new.size):
        got = med.get("/v1/ledger/proof/consistency", params={"old": middle, "new": new.size})
        proof = [base64.b64decode(h) for h in got.json()["proof"]]
        middle_root = base64.b64decode(
            med.get("/v1/ledger/proof/inclusion", params={"index": 0, "size": middle}).json()[
                "root"
            ]
        )
        assert verify_consistency(middle, new.size, middle_root, new.root, proof), middle

    for url, params in (
        ("/v1/ledger/proof/inclusion", {"index": new.size, "size": new.size}),
        ("/v1/ledger/proof/inclusion", {"index": 0, "size": new.size + 1}),
        ("/v1/ledger/proof/inclusion", {"index": -1, "size": new.size}),
        ("/v1/ledger/proof/consistency", {"old": new.size, "new": old.size}),
        ("/v1/ledger/proof/consistency", {"old": old.size, "new": new.size + 1}),
    ):
        bad = med.get(url, params=params)
        assert bad.status_code == 422, (url, params, bad.text)
        assert bad.headers["content-type"].startswith(PROBLEM_JSON)
        assert bad.json()["status"] == 422


def stored_checkpoints(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.checkpoints)).scalar_one())


def stored_entries(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.entries)).scalar_one())


def test_reading_the_checkpoint_never_signs_one_and_a_post_signs_one_now(api: Api) -> None:
    tr, med = api.as_("tr-duty"), api.as_("az-med")
    none_yet = med.get("/v1/ledger/checkpoint")
    assert none_yet.status_code == 404
    assert none_yet.headers["content-type"] == PROBLEM_JSON
    first = med.post("/v1/ledger/checkpoint")
    assert first.status_code == 200, first.text
    assert checkpoint_of(first.text).size == 5  # the officers' key certificates

    assert tr.post("/v1/activities", json=activity(volume(40.0, 30.0))).status_code == 201
    # The log grew; a read still answers the stored checkpoint and stores none.
    assert med.get("/v1/ledger/checkpoint").text == first.text
    assert stored_checkpoints(api.engine) == 1

    grown = tr.post("/v1/ledger/checkpoint").text  # any officer may ask for one now
    assert checkpoint_of(grown).size == stored_entries(api.engine) > 5
    assert med.get("/v1/ledger/checkpoint").text == grown
    # Asking again with nothing new answers the same checkpoint, signing none.
    assert med.post("/v1/ledger/checkpoint").text == grown
    assert stored_checkpoints(api.engine) == 2
    assert api.client.post("/v1/ledger/checkpoint").status_code == 401


def first_signed_checkpoint(
    engine: Engine, clock: FakeClock, tokens: dict[str, str], every_s: float, failure: str
) -> httpx.Response:
    """The first checkpoint a served app's leader signs (`failure` if none within 10 s)."""
    app = create_app(
        engine, clock, checkpoint_every_s=every_s, hotline_every_s=None, tactical_every_s=None
    )
    with TestClient(app) as client:
        med = Api(client, tokens, engine).as_("az-med")
        deadline = time.monotonic() + 10
        while (found := med.get("/v1/ledger/checkpoint")).status_code == 404:
            assert time.monotonic() < deadline, failure
            time.sleep(0.05)
    return found


def test_the_leader_signs_a_checkpoint_on_taking_the_lead(
    engine: Engine, clock: FakeClock, tokens: dict[str, str]
) -> None:
    found = first_signed_checkpoint(
        engine, clock, tokens, 3600, "no checkpoint signed after taking the lead"
    )
    assert found.status_code == 200, found.text
    assert checkpoint_of(found.text).size == 5


def test_the_leaders_signer_goes_on_after_a_signing_fails(
    engine: Engine, clock: FakeClock, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sign = record_log.checkpoint
    calls: list[int] = []

    def first_fails(conn: Connection, now: datetime) -> str:
        calls.append(1)
        if len(calls) == 1:  # the database away for a moment (a lock held too long, say)
            raise OperationalError("INSERT INTO checkpoints", {}, Exception("database is locked"))
        return sign(conn, now)

    monkeypatch.setattr(record_log, "checkpoint", first_fails)
    found = first_signed_checkpoint(
        engine, clock, tokens, 0.05, "the signer stopped at its first failure"
    )
    assert len(calls) >= 2 and found.status_code == 200


def test_observer_sees_every_entry_but_only_the_payloads_shared_with_it(api: Api) -> None:
    tr, il = api.as_("tr-duty"), api.as_("il-duty")
    hidden = created(tr.post("/v1/activities", json=activity(volume(36.0, 34.0))), 201)["id"]
    shared = created(
        tr.post(
            "/v1/activities",
            json=activity(volume(38.0, 36.0), notified_to=["IL", "UNDOF"]),
        ),
        201,
    )["id"]
    il_plan = created(il.post("/v1/activities", json=activity(volume(36.1, 34.1))), 201)
    assert il_plan["conflicts"], "the crossing plans conflict"
    created(il.post(f"/v1/activities/{hidden}/acknowledge"))

    seen = all_entries(api, "un-obs")
    full = all_entries(api, "az-med")
    assert [e["index"] for e in seen] == [e["index"] for e in full]
    by_subject: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for mine, theirs in zip(seen, full, strict=True):
        assert mine["entry"]["payload_sha256"] == theirs["entry"]["payload_sha256"]
        assert theirs["entry"]["payload"] is not None
        by_subject.setdefault(mine["subject"].split("/")[0], []).append((mine, theirs))
        if mine["subject"] in (f"activity/{hidden}", f"activity/{il_plan['id']}"):
            assert mine["entry"]["payload"] is None, mine
            assert payload_sha256(theirs["entry"]["payload"]) == mine["entry"]["payload_sha256"]
        elif mine["subject"].startswith(("conflict/", "message/")):
            # Conflicts and their hotline threads are the parties' business, not the observer's.
            assert mine["entry"]["payload"] is None, mine
        else:  # its own share, zones and keys
            assert mine["entry"]["payload"] == theirs["entry"]["payload"], mine
    assert len([m for m, _ in by_subject["activity"] if m["subject"] == f"activity/{hidden}"]) == 4
    assert any(m["subject"] == f"activity/{shared}" for m, _ in by_subject["activity"])
    assert by_subject["conflict"]
    # A participant the activity was notified to reads it: IL reads TR's hidden-from-UNDOF plan.
    il_view = {e["index"]: e for e in all_entries(api, "il-duty")}
    assert all(
        il_view[m["index"]]["entry"]["payload"] is not None
        for m, _ in by_subject["activity"]
        if m["subject"] == f"activity/{hidden}"
    )

    api.as_("un-obs").post("/v1/ledger/checkpoint")
    lines = api_export(api, "un-obs")
    result = verify(lines, trust_of(api, "un-obs"))
    assert result.ok, result.detail
    assert result.entries == len(full)
    exported = [json.loads(line) for line in lines]
    redacted = [
        r["entry"] for r in exported if r["type"] == "entry" and r["entry"]["payload"] is None
    ]
    assert redacted and all(e["payload_sha256"] for e in redacted)


def test_parties_cosign_checkpoints_with_their_root_keys(own_area: Area) -> None:
    area = own_area
    engine, now, roots, trust = area.engine, area.clock(), area.roots, area.trust
    with transaction(engine, write=True) as conn:
        tr = authenticate(conn, area.setup.tokens["tr-duty"], now)
        first = cosign_latest(conn, tr, roots["TR"], now)
    log_key = log_verifier(trust)
    checkpoint, opened = open_checkpoint(first, [log_key, *cosigners(trust)])
    assert opened.signers == (log_key.name, "TR")
    assert checkpoint.size == 5  # the officers' key certificates

    # The log grows by a write the officer signed on its client.
    body = activity()
    statement = Statement("activity.notify", body=body)
    request = json_request(body)
    request["headers"].update(
        signature_header(statement, "tr-duty", area.setup.keys.officers["tr-duty"], now)
    )
    assert area.api.as_("tr-duty").post("/v1/activities", **request).status_code == 201

    # IL cosigns the new checkpoint over the API; a line by another key is refused.
    il = area.api.as_("il-duty")
    note = il.post("/v1/ledger/checkpoint").text
    size = checkpoint_of(note).size
    assert size > checkpoint.size
    text = parse_note(note).text
    wrong = NoteSigner("IL", roots["TR"]).sign(text).line()
    refused = il.post(f"/v1/ledger/checkpoints/{size}/cosign", json={"signature": wrong})
    assert refused.status_code == 422
    line = NoteSigner("IL", roots["IL"]).sign(text).line()
    cosigned = il.post(f"/v1/ledger/checkpoints/{size}/cosign", json={"signature": line})
    assert cosigned.status_code == 200, cosigned.text
    assert line in cosigned.text

    with transaction(engine, write=True) as conn:
        tr = authenticate(conn, area.setup.tokens["tr-duty"], now)
        with pytest.raises(Invalid):  # not TR's root: the client cannot cosign as TR with it
            cosign_latest(conn, tr, roots["IL"], now)
    with transaction(engine, write=True) as conn:
        tr = authenticate(conn, area.setup.tokens["tr-duty"], now)
        second = cosign_latest(conn, tr, roots["TR"], now)
    _, opened = open_checkpoint(second, [log_key, *cosigners(trust)])
    assert opened.signers == (log_key.name, "IL", "TR")

    records = export(engine)
    result = verify(records, trust, cosigners=cosigners(trust), required_cosigners=["TR"])
    assert result.ok, result.detail
    assert result.checkpointed_size == size
    assert result.signers == (log_key.name, "IL", "TR")
    # IL did not cosign the first checkpoint: requiring it names that checkpoint.
    result = verify(records, trust, cosigners=cosigners(trust), required_cosigners=["IL"])
    assert not result.ok
    assert result.reason == Reason.CHECKPOINT_SIGNATURE
    assert records[result.record or 0]["type"] == "checkpoint"
    assert checkpoint_of(records[result.record or 0]["note"]).size == checkpoint.size
