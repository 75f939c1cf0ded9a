"""Officers who hold their own keys sign every write on their client (`Deconfliction-Signature`):
the server records the statement only if that signature, over exactly the request, by a valid
certified key, made just now and never seen before, checks out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from deconfliction.ledger.entry import Entry
from deconfliction.record.keys import revoke
from deconfliction.record.service import Statement
from deconfliction.store.db import transaction
from tests.builders import activity, volume
from tests.record.support import (
    Area,
    decode_receipt,
    export,
    json_request,
    log_size,
    officer_kid,
    sign_checkpoint,
    signature_header,
    verify,
)


def signed_request(area: Area, statement: Statement, officer: str, **sign: Any) -> dict[str, Any]:
    """The request of `statement.body`, signed by the officer over `statement`."""
    request = json_request(statement.body) if statement.body is not None else {"headers": {}}
    private = area.setup.keys.officers[officer]
    request["headers"].update(
        signature_header(statement, officer, private, sign.pop("now", area.clock()), **sign)
    )
    return request


def notify(area: Area, officer: str, request: dict[str, Any]) -> Any:
    return area.api.as_(officer).post("/v1/activities", **request)


def test_an_unsigned_write_is_refused_and_writes_nothing(own_area: Area) -> None:
    size = log_size(own_area.engine)
    refused = notify(own_area, "tr-duty", json_request(activity()))
    assert refused.status_code == 401, refused.text
    assert "Deconfliction-Signature" in refused.json()["detail"]
    assert log_size(own_area.engine) == size
    assert own_area.api.as_("tr-duty").get("/v1/activities").json() == []


def test_a_signed_write_is_recorded_as_signed_by_the_officer(own_area: Area) -> None:
    area = own_area
    body = activity(volume(36.0, 34.0), title="CAP T4")
    statement = Statement("activity.notify", body=body)
    made = notify(area, "tr-duty", signed_request(area, statement, "tr-duty"))
    assert made.status_code == 201, made.text
    aid = made.json()["id"]

    receipt = decode_receipt(made.headers["Deconfliction-Receipt"])
    got = area.api.as_("tr-duty").get(f"/v1/ledger/entries/{receipt['index']}").json()
    entry = Entry.from_json(got["entry"])
    assert got["subject"] == f"activity/{aid}"
    assert (entry.kind, entry.party, entry.author) == ("activity.notify", "TR", "tr-duty")
    assert entry.server_held_key is False
    assert entry.key_id == officer_kid("tr-duty", area.setup.keys.officers["tr-duty"])
    assert entry.payload == {"target": None, "version": None, "body": body}
    assert entry.leaf_hash.hex() == receipt["leaf_hash"]

    # Signed acts with a target and a version: acknowledge by IL, cancel by TR.
    ack = Statement("activity.acknowledge", target=aid)
    acked = area.api.as_("il-duty").post(
        f"/v1/activities/{aid}/acknowledge", **signed_request(area, ack, "il-duty")
    )
    assert acked.status_code == 200, acked.text
    cancel = Statement("activity.cancel", target=aid, version=1)
    request = signed_request(area, cancel, "tr-duty")
    request["headers"]["If-Match"] = '"1"'
    cancelled = area.api.as_("tr-duty").post(f"/v1/activities/{aid}/cancel", **request)
    assert cancelled.status_code == 200, cancelled.text

    sign_checkpoint(area.engine, area.clock())
    records = export(area.engine)
    result = verify(records, area.trust)
    assert result.ok, result.detail
    said = [r["entry"] for r in records if r["type"] == "entry" and r["entry"]["party"] != "_log"]
    said = [e for e in said if not e["kind"].startswith("key.")]
    assert [(e["kind"], e["author"], e["server_held_key"]) for e in said] == [
        ("activity.notify", "tr-duty", False),
        ("activity.acknowledge", "il-duty", False),
        ("activity.cancel", "tr-duty", False),
    ]


def test_a_replayed_signed_request_is_refused(own_area: Area) -> None:
    area = own_area
    statement = Statement("activity.notify", body=activity())
    request = signed_request(area, statement, "tr-duty")
    assert notify(area, "tr-duty", request).status_code == 201
    size = log_size(area.engine)
    again = notify(area, "tr-duty", request)
    assert again.status_code == 409, again.text
    assert "replay" in again.json()["detail"]
    assert log_size(area.engine) == size
    assert len(area.api.as_("tr-duty").get("/v1/activities").json()) == 1
    # The header is TR's: with IL's token it names no key of IL's.
    stolen = notify(area, "il-duty", request)
    assert stolen.status_code in (401, 403), stolen.text
    assert log_size(area.engine) == size


def test_a_signature_over_another_request_is_refused(own_area: Area) -> None:
    area = own_area
    size = log_size(area.engine)
    signed_for = Statement("activity.notify", body=activity(title="what was signed"))
    request = json_request(activity(title="what was sent"))
    private = area.setup.keys.officers["tr-duty"]
    request["headers"].update(signature_header(signed_for, "tr-duty", private, area.clock()))
    refused = notify(area, "tr-duty", request)
    assert refused.status_code == 401, refused.text
    assert log_size(area.engine) == size

    # The version a change applies to is signed too: cancel signed for version 2, sent for 1.
    made = notify(
        area,
        "tr-duty",
        signed_request(area, Statement("activity.notify", body=activity()), "tr-duty"),
    )
    aid = made.json()["id"]
    size = log_size(area.engine)
    request = signed_request(area, Statement("activity.cancel", target=aid, version=2), "tr-duty")
    request["headers"]["If-Match"] = '"1"'
    refused = area.api.as_("tr-duty").post(f"/v1/activities/{aid}/cancel", **request)
    assert refused.status_code == 401, refused.text
    assert log_size(area.engine) == size
    # And the kind: an acknowledgement's signature does not make a cancellation.
    request = signed_request(area, Statement("activity.acknowledge", target=aid), "tr-duty")
    request["headers"]["If-Match"] = '"1"'
    refused = area.api.as_("tr-duty").post(f"/v1/activities/{aid}/cancel", **request)
    assert refused.status_code == 401, refused.text
    assert log_size(area.engine) == size


def test_a_signature_made_too_long_ago_or_ahead_is_refused(own_area: Area) -> None:
    area = own_area
    size = log_size(area.engine)
    statement = Statement("activity.notify", body=activity())
    for off in (timedelta(minutes=-10), timedelta(minutes=10)):
        request = signed_request(area, statement, "tr-duty", now=area.clock() + off)
        refused = notify(area, "tr-duty", request)
        assert refused.status_code == 401, (off, refused.text)
        assert log_size(area.engine) == size
    # Within the allowed skew it is accepted: the refusals were about the time.
    request = signed_request(area, statement, "tr-duty", now=area.clock() - timedelta(minutes=4))
    assert notify(area, "tr-duty", request).status_code == 201


def test_a_revoked_officer_key_signs_nothing_more(own_area: Area) -> None:
    area = own_area
    statement = Statement("activity.notify", body=activity())
    assert notify(area, "tr-duty", signed_request(area, statement, "tr-duty")).status_code == 201
    with transaction(area.engine, write=True) as conn:
        revoked = revoke(conn, "TR", area.roots["TR"], "tr-duty", area.clock())
    assert revoked == [officer_kid("tr-duty", area.setup.keys.officers["tr-duty"])]
    size = log_size(area.engine)
    refused = notify(area, "tr-duty", signed_request(area, statement, "tr-duty"))
    assert refused.status_code in (401, 403), refused.text
    assert log_size(area.engine) == size
    # The other officers of TR still write; the log with the revocation still verifies.
    assert notify(area, "tr-cmd", signed_request(area, statement, "tr-cmd")).status_code == 201
    sign_checkpoint(area.engine, area.clock())
    result = verify(export(area.engine), area.trust)
    assert result.ok, result.detail


def test_a_malformed_signature_header_is_refused(own_area: Area) -> None:
    request = json_request(activity())
    request["headers"]["Deconfliction-Signature"] = "keyid=00000000;nonce=00"
    size = log_size(own_area.engine)
    refused = notify(own_area, "tr-duty", request)
    assert refused.status_code in (401, 422), refused.text
    assert log_size(own_area.engine) == size
