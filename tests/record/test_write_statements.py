"""What a write route puts into the statement the officer signs (`http.Writer`): the body as sent
for writes that carry one, nothing for those that do not (a body sent anyway is not signed), and
the hotline's wrapped body naming the channel."""

from __future__ import annotations

from typing import Any

from deconfliction.ledger.entry import Entry
from deconfliction.record.service import Statement
from tests.builders import activity, volume
from tests.record.support import Area, decode_receipt, json_request, signature_header


def signed(area: Area, statement: Statement, officer: str, sent: Any) -> dict[str, Any]:
    """`sent` as the request body, with the officer's signature over `statement`."""
    request = json_request(sent) if sent is not None else {"headers": {}}
    private = area.setup.keys.officers[officer]
    request["headers"].update(signature_header(statement, officer, private, area.clock()))
    return request


def recorded(area: Area, answer: Any) -> tuple[str, Entry]:
    """The ledger subject and entry of a write's receipt."""
    receipt = decode_receipt(answer.headers["Deconfliction-Receipt"])
    got = area.api.as_("tr-duty").get(f"/v1/ledger/entries/{receipt['index']}").json()
    return got["subject"], Entry.from_json(got["entry"])


def test_a_body_sent_to_a_write_without_one_is_not_in_the_statement(own_area: Area) -> None:
    area = own_area
    body = activity(volume(36.0, 34.0))
    made = area.api.as_("tr-duty").post(
        "/v1/activities", **signed(area, Statement("activity.notify", body=body), "tr-duty", body)
    )
    assert made.status_code == 201, made.text
    aid = made.json()["id"]

    cancel = Statement("activity.cancel", target=aid, version=1)
    request = signed(area, cancel, "tr-duty", {"why": "not part of a cancellation"})
    request["headers"]["If-Match"] = '"1"'
    cancelled = area.api.as_("tr-duty").post(f"/v1/activities/{aid}/cancel", **request)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.headers["ETag"] == f'"{cancelled.json()["version"]}"'
    subject, entry = recorded(area, cancelled)
    assert subject == f"activity/{aid}"
    assert entry.kind == "activity.cancel"
    assert entry.payload == {"target": aid, "version": 1, "body": None}


def test_a_hotline_channel_write_signs_the_body_with_the_channel(own_area: Area) -> None:
    area = own_area
    sent = {"reason": "maintenance"}
    statement = Statement("channel.suspend", body={"channel": "IL-TR", "request": sent})
    suspended = area.api.as_("tr-duty").post(
        "/v1/hotline/channels/IL-TR/suspend", **signed(area, statement, "tr-duty", sent)
    )
    assert suspended.status_code == 200, suspended.text
    subject, entry = recorded(area, suspended)
    assert subject == f"channel/{suspended.json()['id']}"
    assert entry.payload == {"target": None, "version": None, "body": statement.body}

    # The same signature over the bare body (the channel left out) is refused.
    bare = Statement("channel.resume", body=sent)
    refused = area.api.as_("tr-duty").post(
        "/v1/hotline/channels/IL-TR/resume", **signed(area, bare, "tr-duty", sent)
    )
    assert refused.status_code == 401, refused.text
