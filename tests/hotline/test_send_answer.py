"""The answer to a sent message is built from what the send wrote, not read back: it must be the
message exactly as reading it gives it to the sender (receipts, ladders where the sender may see
them, rendering in the sender's language and time zone), and the stream's copy the neutral one."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select

from deconfliction.parties.service import directory, party_kinds
from deconfliction.store import tables as t
from deconfliction.store.db import transaction
from tests.conftest import FakeClock, area_tokens
from tests.hotline.conftest import HOTLINE_AREA, Hotline, notice

WARNING = {
    "type": "warning",
    "subject": "Live firing",
    "to": ["IL", "SY"],
    "priority": "FLASH",
    "warning": {
        "hazard": "live_firing",
        "position": {"lat": 36.2, "lon": 37.1},
        "radius_m": 5000,
        "band": {"lower_m": 0, "upper_m": 4572},
        "window": {"start": "2030-06-01T01:00:00Z", "end": "2030-06-01T03:00:00Z"},
    },
    "text": "ירי חי באזור",
    "language": "he",
}


def configure(hot: Hotline) -> None:
    """Settings the answer depends on: the sender's time zone, a recipient's ladder (with a
    mediator rung) and a channel's deadlines."""
    hot.as_("tr-duty").put(
        "/v1/hotline/parties/TR",
        json={"time_zone": "Europe/Istanbul", "ladder": [{"name": "duty", "role": "officer"}]},
        headers={"If-Match": '"0"'},
    ).raise_for_status()
    hot.as_("il-duty").put(
        "/v1/hotline/parties/IL",
        json={
            "time_zone": "Asia/Jerusalem",
            "ladder": [
                {"name": "duty_officer", "role": "officer"},
                {"name": "headquarters", "officers": ["il-hq"]},
                {"name": "mediator", "role": "mediator"},
            ],
        },
        headers={"If-Match": '"0"'},
    ).raise_for_status()
    hot.as_("tr-duty").put(
        "/v1/hotline/channels/IL-TR",
        json={"deadlines": {"FLASH": 120, "ROUTINE": 7200}},
        headers={"If-Match": '"1"'},  # a channel is made at version 1
    ).raise_for_status()


def read_back(hot: Hotline, officer: str, sent: dict[str, Any], query: str = "") -> Any:
    got = hot.as_(officer).get(f"/v1/hotline/messages/{sent['id']}{query}")
    assert got.status_code == 200, got.text
    return got.json()


@pytest.mark.parametrize("lang", [None, "ar"])
def test_the_senders_answer_is_the_message_as_read_back(hot: Hotline, lang: str | None) -> None:
    configure(hot)
    query = f"?lang={lang}" if lang else ""
    tr = hot.as_("tr-duty")
    first = tr.post(f"/v1/hotline/messages{query}", json=notice(["IL"]))
    assert first.status_code == 201, first.text
    opened = first.json()
    into_thread = tr.post(
        f"/v1/hotline/messages{query}",
        json={"type": "query", "thread": opened["thread"], "text": "Altitude?", "language": "en"},
    )
    assert into_thread.status_code == 201, into_thread.text
    replied = hot.as_("il-duty").post(
        f"/v1/hotline/messages{query}",
        json={
            "type": "reply",
            "thread": opened["thread"],
            "in_reply_to": into_thread.json()["id"],
            "text": "FL200",
            "language": "en",
        },
    )
    assert replied.status_code == 201, replied.text
    warned = tr.post(f"/v1/hotline/messages{query}", json=WARNING)
    assert warned.status_code == 201, warned.text
    for officer, answer in [
        ("tr-duty", first),
        ("tr-duty", into_thread),
        ("il-duty", replied),
        ("tr-duty", warned),
    ]:
        sent = answer.json()
        assert sent == read_back(hot, officer, sent, query), sent["type"]
    # Sent after the settings: the channel's FLASH deadline and IL's three rungs.
    to_il = next(r for r in warned.json()["receipts"] if r["party"] == "IL")
    assert to_il["deadline_at"] is not None and to_il["rung_name"] == "duty_officer"
    assert to_il["ladder"] is None  # a party's ladder is its own business and the mediator's


def test_a_mediator_sender_sees_the_recipients_ladders_in_its_answer(hot: Hotline) -> None:
    configure(hot)
    answer = hot.as_("az-med").post("/v1/hotline/messages", json=notice(["IL", "TR"]))
    assert answer.status_code == 201, answer.text
    sent = answer.json()
    assert sent == read_back(hot, "az-med", sent)
    ladders = {r["party"]: [rung["name"] for rung in r["ladder"]] for r in sent["receipts"]}
    assert ladders == {"IL": ["duty_officer", "headquarters", "mediator"], "TR": ["duty"]}


def test_the_streams_copy_is_the_neutral_message(hot: Hotline) -> None:
    configure(hot)
    sent = hot.as_("tr-duty").send(**WARNING)
    with hot.engine.connect() as conn:
        [copy] = conn.execute(
            select(t.stream_events.c.payload).where(t.stream_events.c.kind == "message.sent")
        ).scalars()
    seen = read_back(hot, "tr-duty", sent)  # the sender is no recipient: it sees no ladder
    assert copy["message"] == {**seen, "rendered": None}


def test_the_directory_is_kept_only_once_the_area_is_made(engine: Engine, clock: FakeClock) -> None:
    with transaction(engine, write=False) as conn:
        assert directory(conn).parties == {}  # an empty area is not kept: read again
    area_tokens(engine, HOTLINE_AREA, clock())
    with transaction(engine, write=False) as conn:
        found = directory(conn)
        assert party_kinds(conn) == {
            "AZ": "mediator",
            "IL": "participant",
            "SY": "participant",
            "TR": "participant",
            "UNDOF": "observer",
        }
        assert {o.id for o in found.officers} >= {"tr-duty", "il-hq", "az-med"}
        assert directory(conn) is found
