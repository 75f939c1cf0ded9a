"""Receipts (delivered, read, acknowledged: once each, by recipients only, with who and when) and
every bad input: a problem+json 4xx and nothing written."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, event, select

from deconfliction.hotline.service import mark_delivered
from deconfliction.parties.models import Actor
from deconfliction.store import tables as t
from deconfliction.store.db import transaction
from tests.builders import iso
from tests.conftest import T0, FakeClock
from tests.hotline.conftest import Hotline, notice


def test_delivered_read_acknowledged_with_who_and_when(hot: Hotline, clock: FakeClock) -> None:
    sent = hot.as_("tr-duty").send(**notice(["IL", "SY"]), priority="URGENT")
    url = f"/v1/hotline/messages/{sent['id']}"
    [il, sy] = sent["receipts"]
    assert il["delivered_at"] is None and il["deadline_at"] == "2030-01-01T00:15:00Z"
    clock.advance(seconds=30)
    inbox = hot.as_("il-watch").get("/v1/hotline/inbox").json()
    assert [m["id"] for m in inbox] == [sent["id"]]
    il = inbox[0]["receipts"][0]
    assert (il["party"], il["delivered_by"], il["delivered_at"]) == (
        "IL",
        "il-watch",
        "2030-01-01T00:00:30Z",
    )
    clock.advance(seconds=30)
    hot.as_("il-duty").get("/v1/hotline/inbox")  # already delivered: nothing changes
    assert len(hot.facts("message.delivered")) == 1
    read = hot.as_("il-duty").post(f"{url}/read")
    assert read.status_code == 200
    il = read.json()["receipts"][0]
    assert (il["read_by"], il["read_at"], il["acknowledged_at"]) == (
        "il-duty",
        "2030-01-01T00:01:00Z",
        None,
    )
    clock.advance(seconds=30)
    ack = hot.as_("il-duty").post(f"{url}/acknowledge")
    assert ack.status_code == 200
    il = ack.json()["receipts"][0]
    assert (il["acknowledged_by"], il["acknowledged_at"]) == ("il-duty", "2030-01-01T00:01:30Z")
    assert il["next_escalation_at"] is None  # acknowledged: no escalation
    # Syria acknowledges without reading first: delivered and read come with it.
    sy = hot.as_("sy-duty").post(f"{url}/acknowledge").json()["receipts"][1]
    assert sy["delivered_at"] == sy["read_at"] == sy["acknowledged_at"] == "2030-01-01T00:01:30Z"
    seen_by_sender = hot.as_("tr-duty").get(url).json()["receipts"]
    assert [(r["party"], r["acknowledged_by"]) for r in seen_by_sender] == [
        ("IL", "il-duty"),
        ("SY", "sy-duty"),
    ]
    # Each receipt is the officer's statement and the log's fact.
    assert hot.entries("message.mark_read") == 1  # il-duty's statement
    assert [f["party"] for f in hot.facts("message.read")] == ["IL", "SY"]  # the log's facts
    assert [f["party"] for f in hot.facts("message.acknowledged")] == ["IL", "SY"]
    assert hot.entries("message.acknowledge") == 2


def test_a_retried_acknowledgement_with_its_key_gets_the_first_answer(hot: Hotline) -> None:
    sent = hot.as_("tr-duty").send(**notice(["IL"]))
    url = f"/v1/hotline/messages/{sent['id']}/acknowledge"
    first = hot.as_("il-duty").post(url, headers={"Idempotency-Key": "ack-1"})
    entries = hot.entries()
    again = hot.as_("il-duty").post(url, headers={"Idempotency-Key": "ack-1"})
    assert again.status_code == 200 and again.json() == first.json()
    assert hot.entries() == entries


def problem(response: Any, status: int, needle: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert needle.lower() in body["detail"].lower(), body["detail"]


def test_bad_receipts_are_refused_and_write_nothing(hot: Hotline) -> None:
    sent = hot.as_("tr-duty").send(**notice(["IL"]))
    url = f"/v1/hotline/messages/{sent['id']}"
    hot.as_("il-duty").post(f"{url}/acknowledge").raise_for_status()
    hot.as_("il-duty").get(url)
    entries = hot.entries()
    cases = [
        ("il-duty", f"{url}/acknowledge", 409, "already acknowledged for IL by il-duty"),
        ("il-watch", f"{url}/acknowledge", 409, "already acknowledged"),
        ("il-duty", f"{url}/read", 409, "already read"),
        ("tr-duty", f"{url}/acknowledge", 403, "TR is not a recipient"),
        ("tr-watch", f"{url}/read", 403, "not a recipient"),
        ("az-med", f"{url}/acknowledge", 403, "AZ is not a recipient"),
        ("sy-duty", f"{url}/acknowledge", 404, "no message"),
        ("un-obs", f"{url}/acknowledge", 403, "observer"),
        ("il-duty", "/v1/hotline/messages/999/acknowledge", 404, "no message 999"),
    ]
    for officer, target, status, needle in cases:
        problem(hot.as_(officer).post(target), status, needle)
    unauthenticated = hot.client.post(f"{url}/acknowledge")
    problem(unauthenticated, 401, "Authorization")
    assert hot.entries() == entries


def future(hours: float) -> str:
    return iso(T0 + timedelta(hours=hours))


WARNING: dict[str, Any] = {
    "hazard": "gps_jamming",
    "position": {"lat": 33.0, "lon": 36.0},
    "band": {"lower_m": 0, "upper_m": 3000},
    "window": {"start": future(1), "end": future(2)},
}


def test_bad_messages_are_refused_and_write_nothing(hot: Hotline) -> None:
    query = hot.as_("il-duty").send(type="query", subject="Q", to=["TR"], text="?", language="en")
    thread = query["thread"]
    notice_id = hot.as_("il-duty").send(type="notice", thread=thread, text="n", language="en")["id"]
    sy_thread = hot.as_("sy-duty").send(**notice(["IL"]))["thread"]
    entries = hot.entries()
    base = notice(["IL"])
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("unknown type", {**base, "type": "gossip"}, 422, "type"),
        ("unknown priority", {**base, "priority": "IMMEDIATE"}, 422, "priority"),
        ("unknown party", {**base, "to": ["XX"]}, 422, "unknown party XX"),
        ("malformed party", {**base, "to": ["il"]}, 422, "not a party code"),
        ("to itself", {**base, "to": ["TR"]}, 422, "itself"),
        ("to an observer", {**base, "to": ["UNDOF"]}, 422, "observer party"),
        ("to the mediator", {**base, "to": ["AZ"]}, 422, "mediator is copied"),
        ("party twice", {**base, "to": ["IL", "IL"]}, 422, "twice"),
        ("no recipients", {**base, "to": None}, 422, "'to'"),
        ("no subject", {**base, "subject": None}, 422, "subject"),
        ("text without language", {**base, "language": None}, 422, "language"),
        ("bad language tag", {**base, "language": "English"}, 422, "language"),
        ("blank text", {**base, "text": "   "}, 422, "blank"),
        ("control characters", {**base, "text": "a\x07b"}, 422, "control"),
        ("text too long", {**base, "text": "x" * 4001}, 422, "text"),
        ("notice without text", {**base, "text": None, "language": None}, 422, "needs 'text'"),
        ("unknown field", {**base, "colour": "red"}, 422, "colour"),
        ("section of another type", {**base, "warning": WARNING}, 422, "does not belong"),
        ("warning without section", {**base, "type": "warning"}, 422, "needs 'warning'"),
        (
            "latitude out of range",
            {**base, "type": "warning", "warning": {**WARNING, "position": {"lat": 91, "lon": 0}}},
            422,
            "lat",
        ),
        (
            "upside-down band",
            {
                **base,
                "type": "warning",
                "warning": {**WARNING, "band": {"lower_m": 5000, "upper_m": 1000}},
            },
            422,
            "upside down",
        ),
        (
            "inverted window",
            {
                **base,
                "type": "warning",
                "warning": {**WARNING, "window": {"start": future(2), "end": future(1)}},
            },
            422,
            "inverted",
        ),
        (
            "naive time",
            {
                **base,
                "type": "warning",
                "warning": {
                    **WARNING,
                    "window": {"start": "2030-01-01T01:00:00", "end": future(2)},
                },
            },
            422,
            "timezone",
        ),
        (
            "window in the past",
            {
                **base,
                "type": "warning",
                "warning": {**WARNING, "window": {"start": future(-3), "end": future(-2)}},
            },
            422,
            "already ended",
        ),
        (
            "incident in the future",
            {
                **base,
                "type": "incident_notice",
                "incident": {
                    "kind": "lock_on",
                    "occurred_at": future(1),
                    "position": {"lat": 33, "lon": 36},
                },
            },
            422,
            "future",
        ),
        (
            "deconfliction without reference",
            {**base, "type": "request_deconfliction", "deconfliction": {}},
            422,
            "names a 'conflict' or an 'activity'",
        ),
        (
            "unknown conflict",
            {**base, "type": "request_deconfliction", "deconfliction": {"conflict": 999}},
            422,
            "no conflict 999",
        ),
        (
            "unknown activity",
            {**base, "type": "request_deconfliction", "deconfliction": {"activity": 999}},
            422,
            "no activity 999",
        ),
        (
            "altitude proposal without band",
            {
                **base,
                "type": "request_deconfliction",
                "deconfliction": {"activity": 1, "proposal": {"action": "change_altitude"}},
            },
            422,
            "band",
        ),
        (
            "reply without in_reply_to",
            {"type": "reply", "thread": thread, "text": "a", "language": "en"},
            422,
            "in_reply_to",
        ),
        (
            "reply to a notice",
            {
                "type": "reply",
                "thread": thread,
                "in_reply_to": notice_id,
                "text": "a",
                "language": "en",
            },
            422,
            "is a notice",
        ),
        (
            "reply outside the thread",
            {**base, "type": "reply", "in_reply_to": query["id"]},
            422,
            "thread",
        ),
        (
            "thread not visible",
            {"type": "notice", "thread": sy_thread, "text": "a", "language": "en"},
            422,
            "no thread",
        ),
        (
            "unknown thread",
            {"type": "notice", "thread": 999, "text": "a", "language": "en"},
            422,
            "no thread 999",
        ),
        (
            "outside the thread",
            {"type": "notice", "thread": thread, "to": ["SY"], "text": "a", "language": "en"},
            422,
            "not in thread",
        ),
        (
            "NaN",
            {**base, "type": "warning", "warning": {**WARNING, "radius_m": float("nan")}},
            422,
            "",
        ),
    ]
    for name, body, status, needle in cases:
        if name == "NaN":
            raw = (
                '{"type":"warning","subject":"s","to":["IL"],"warning":{"hazard":"other",'
                '"position":{"lat":NaN,"lon":0}}}'
            )
            response = hot.as_("tr-duty").post(
                "/v1/hotline/messages", content=raw, headers={"Content-Type": "application/json"}
            )
        else:
            body = {k: v for k, v in body.items() if v is not None}
            response = hot.as_("tr-duty").post("/v1/hotline/messages", json=body)
        assert response.status_code == status, (name, response.text)
        assert response.headers["content-type"] == "application/problem+json", name
        assert needle.lower() in response.json()["detail"].lower(), (name, response.json())
    problem(
        hot.as_("un-obs").post("/v1/hotline/messages", json={**base, "to": ["IL"]}),
        403,
        "observer",
    )
    oversized = hot.as_("tr-duty").post(
        "/v1/hotline/messages",
        content=b'{"text": "' + b"x" * (1024 * 1024 + 10) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert oversized.status_code == 413
    assert hot.entries() == entries


def test_delivered_receipts_for_many_messages_are_given_once_each_in_a_few_statements(
    hot: Hotline, engine: Engine, clock: FakeClock
) -> None:
    """A stream push of many messages gives their receipts in one transaction: each receipt its
    log entry and its event, but the hotline's statements do not grow with the messages."""
    sent = [hot.as_("tr-duty").send(**notice(["IL", "SY"]))["id"] for _ in range(6)]
    il = Actor("il-watch", "IL", "officer", "participant")
    clock.advance(seconds=5)

    def deliver(ids: list[int]) -> tuple[list[int], int]:
        statements: list[str] = []

        def seen(*args: Any) -> None:
            statements.append(args[2])

        event.listen(engine, "before_cursor_execute", seen)
        try:
            with transaction(engine, write=True) as conn:
                given = mark_delivered(conn, il, ids, clock())
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        return given, len([s for s in statements if "hotline_" in s])

    first, few = deliver(sent[:1])
    assert first == sent[:1]
    given, many = deliver([*reversed(sent), sent[0]])  # out of order, repeated, one given
    assert given == sent[1:]
    assert many == few == 2  # the UPDATE that sets them and the query of their senders
    assert deliver(sent)[0] == []  # all given: nothing more
    facts = hot.facts("message.delivered")
    assert [(f["message"], f["party"], f["officer"]) for f in facts] == [
        (m, "IL", "il-watch") for m in sent
    ]
    with engine.connect() as conn:
        events = conn.execute(
            select(t.stream_events.c.payload, t.stream_events.c.audience)
            .where(t.stream_events.c.kind == "message.delivered")
            .order_by(t.stream_events.c.id)
        ).all()
    assert [(e.payload["message"], sorted(e.audience)) for e in events] == [
        (m, ["IL", "TR"]) for m in sent
    ]
    inbox = hot.as_("az-med").get("/v1/hotline/inbox").json()  # the mediator sees them all
    assert {
        (m["id"], r["party"], r["delivered_by"], r["delivered_at"])
        for m in inbox
        for r in m["receipts"]
    } == {(m, "IL", "il-watch", "2030-01-01T00:00:05Z") for m in sent} | {
        (m, "SY", None, None) for m in sent
    }
