"""The event stream over WebSocket and SSE: what each caller may see, rendered for it, in id
order; a reconnect with the last id gets exactly what was missed; events ready together share
one frame; a recipient's own delivered receipts are not pushed back to it; the conflict hook."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from starlette.testclient import WebSocketDenialResponse, WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from deconfliction.parties.models import Actor
from deconfliction.store import tables as t
from deconfliction.store.db import transaction
from deconfliction.stream import routes
from deconfliction.stream.routes import frames_of
from deconfliction.stream.service import events_after, publish
from tests.builders import activity, volume
from tests.conftest import FakeClock
from tests.hotline.conftest import Hotline, notice

MEDIATOR = Actor("az-med", "AZ", "mediator", "mediator")


def visible_ids(engine: Engine, actor: Actor, after: int) -> list[int]:
    with transaction(engine, write=False) as conn:
        return [e.id for e in events_after(conn, actor, after)]


def events_in(frame: Any) -> list[dict[str, Any]]:
    """A frame holds one event object or an array of them."""
    return frame if isinstance(frame, list) else [frame]


def receive(ws: WebSocketTestSession, count: int) -> list[dict[str, Any]]:
    """Frames until at least `count` events came; all the events they held."""
    events: list[dict[str, Any]] = []
    while len(events) < count:
        events += events_in(ws.receive_json())
    return events


def test_websocket_reconnect_gets_exactly_the_missed_events(hot: Hotline, engine: Engine) -> None:
    tr, il = hot.as_("tr-duty"), hot.as_("il-duty")
    url = f"/v1/stream?after=0&token={hot.tokens['az-med']}"
    with hot.client.websocket_connect(url) as ws:
        first = tr.send(**notice(["IL"]))
        il.get("/v1/hotline/inbox")  # IL's client fetches it: the delivered receipt
        got = receive(ws, 2)
    assert [(e["kind"], e["id"]) for e in got] == [("message.sent", 1), ("message.delivered", 2)]
    assert got[0]["payload"]["message"]["id"] == first["id"]
    assert got[0]["payload"]["message"]["rendered"]["language"] == "az"  # the mediator's
    assert got[1]["payload"] == {
        "message": first["id"],
        "party": "IL",
        "officer": "il-duty",
        "at": "2030-01-01T00:00:00.000000Z",
    }
    # Disconnected: a message, a read and an acknowledgement happen meanwhile.
    second = tr.send(**notice(["IL"], text="second"))
    il.post(f"/v1/hotline/messages/{first['id']}/acknowledge")
    missed = visible_ids(engine, MEDIATOR, 2)
    assert missed == [3, 4, 5]
    with hot.client.websocket_connect(url.replace("after=0", "after=2")) as ws:
        again = receive(ws, len(missed))
        third = tr.send(**notice(["IL"], text="third"))
        [live] = receive(ws, 1)
    # Exactly what was missed, in order, then live events: nothing lost, nothing twice.
    assert [(e["id"], e["kind"]) for e in again] == [
        (3, "message.sent"),
        (4, "message.read"),
        (5, "message.acknowledged"),
    ]
    assert again[0]["payload"]["message"]["id"] == second["id"]
    assert (live["id"], live["kind"]) == (6, "message.sent")
    assert live["payload"]["message"]["id"] == third["id"]


def test_a_recipient_gets_its_messages_rendered_and_delivered_by_the_stream(
    hot: Hotline, engine: Engine, clock: FakeClock
) -> None:
    il_url = f"/v1/stream?token={hot.tokens['il-duty']}"
    with (
        hot.client.websocket_connect(
            "/v1/stream", headers={"Authorization": f"Bearer {hot.tokens['il-duty']}"}
        ) as il,
        hot.client.websocket_connect(f"/v1/stream?token={hot.tokens['tr-duty']}") as tr,
    ):
        clock.advance(seconds=5)
        sent = hot.as_("tr-duty").send(**notice(["IL"]), priority="FLASH")
        [pushed] = receive(il, 1)
        assert pushed["kind"] == "message.sent"
        rendered = pushed["payload"]["message"]["rendered"]
        assert (rendered["language"], rendered["dir"], rendered["priority"]) == (
            "he",
            "rtl",
            "בהול ביותר",
        )
        # Pushing it to IL was the delivery; the sender's party is told, IL itself is not.
        kinds = [e["kind"] for e in receive(tr, 2)]
        assert kinds == ["message.sent", "message.delivered"]
        with transaction(engine, write=True) as conn:
            marker = publish(conn, ["IL"], "test.marker", {}, clock())
        [after_delivery] = receive(il, 1)
        assert after_delivery["id"] == marker  # not IL's own delivered receipt before it
    receipt = hot.as_("tr-duty").get(f"/v1/hotline/messages/{sent['id']}").json()["receipts"][0]
    assert (receipt["delivered_by"], receipt["delivered_at"]) == ("il-duty", "2030-01-01T00:00:05Z")
    # A colleague's read and acknowledgement are pushed to IL; a catch-up from the table leaves
    # out IL's delivered receipt as the live push did.
    hot.as_("il-watch").post(f"/v1/hotline/messages/{sent['id']}/acknowledge")
    with hot.client.websocket_connect(f"{il_url}&after=0") as again:
        caught_up = receive(again, 4)
    assert [e["kind"] for e in caught_up] == [
        "message.sent",
        "test.marker",
        "message.read",
        "message.acknowledged",
    ]
    assert caught_up[3]["payload"]["officer"] == "il-watch"


def test_events_ready_together_come_in_one_frame_in_order(
    hot: Hotline, engine: Engine, clock: FakeClock
) -> None:
    def publish_together(count: int) -> list[int]:
        with transaction(engine, write=True) as conn:
            return [publish(conn, ["IL"], "test.burst", {"n": n}, clock()) for n in range(count)]

    url = f"/v1/stream?after=0&token={hot.tokens['il-duty']}"
    with hot.client.websocket_connect(url) as ws:
        # Committed together: read by one catch-up or one fan-out, sent as one array.
        burst = publish_together(3)
        frame = ws.receive_json()
        assert isinstance(frame, list)
        assert [e["id"] for e in frame] == burst
        assert [e["payload"]["n"] for e in frame] == [0, 1, 2]
        [alone] = publish_together(1)
        assert ws.receive_json()["id"] == alone  # one event: a plain object, as before


def test_a_large_catch_up_is_split_into_frames_under_the_limit(
    hot: Hotline, engine: Engine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes, "FRAME_LIMIT_CHARS", 400)
    with transaction(engine, write=True) as conn:
        ids = [publish(conn, ["SY"], "test.bulk", {"text": "x" * n}, clock()) for n in range(60)]
    url = f"/v1/stream?after=0&token={hot.tokens['sy-duty']}"
    frames: list[str] = []
    got: list[dict[str, Any]] = []
    with hot.client.websocket_connect(url) as ws:
        while len(got) < len(ids):
            frames.append(ws.receive_text())
            got += events_in(json.loads(frames[-1]))
    assert [e["id"] for e in got] == ids
    assert len(frames) > 1
    assert all(len(f) <= 400 for f in frames if f.startswith("["))


def _array_of(texts: list[str]) -> str:
    return "[" + ",".join(texts) + "]"


json_texts = st.lists(
    st.dictionaries(st.sampled_from("abc"), st.text(max_size=40), max_size=3).map(json.dumps)
)


@given(json_texts, st.integers(min_value=1, max_value=300))
def test_frames_of_keeps_every_event_in_order_and_arrays_within_the_limit(
    texts: list[str], limit: int
) -> None:
    frames = frames_of(texts, limit)
    # Brute force: parse every frame back and compare with the events themselves.
    parsed = [events_in(json.loads(f)) for f in frames]
    assert [e for p in parsed for e in p] == [json.loads(t) for t in texts]
    first = 0  # the index in `texts` of each frame's first event
    for frame, events in zip(frames, parsed, strict=True):
        if frame.startswith("["):
            assert len(frame) <= limit and len(events) > 1
        first += len(events)
        if first < len(texts):  # a frame ends only where the next event would not fit
            assert len(_array_of([*texts[first - len(events) : first], texts[first]])) > limit


def test_each_caller_sees_only_its_events(hot: Hotline, engine: Engine, clock: FakeClock) -> None:
    hot.as_("tr-duty").send(**notice(["IL"]))
    with transaction(engine, write=True) as conn:
        marker = publish(conn, ["UNDOF", "SY"], "test.marker", {"n": 1}, clock())
    for officer in ("un-obs", "sy-duty"):
        with hot.client.websocket_connect(f"/v1/stream?after=0&token={hot.tokens[officer]}") as ws:
            [got] = receive(ws, 1)
            assert got["id"] == marker, officer  # not the TR-IL message before it


def test_sse_resumes_from_last_event_id(hot: Hotline) -> None:
    tr = hot.as_("tr-duty")
    for text in ("one", "two", "three"):
        tr.send(**notice(["SY"], text=text))
    headers = {"Authorization": f"Bearer {hot.tokens['tr-duty']}", "Last-Event-ID": "1"}
    events: list[dict[str, Any]] = []
    with hot.client.stream("GET", "/v1/stream/sse?after=0", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        block: dict[str, str] = {}
        for line in response.iter_lines():
            if line.startswith(("id:", "event:", "data:")):
                name, _, value = line.partition(":")
                block[name] = value.strip()
            elif not line and "id" in block:
                events.append({**block, "data": json.loads(block["data"])})
                block = {}
                if len(events) == 2:
                    break
    assert [(e["id"], e["event"]) for e in events] == [("2", "message.sent"), ("3", "message.sent")]
    assert events[1]["data"]["payload"]["message"]["text"]["content"] == "three"
    assert events[0]["data"]["payload"]["message"]["rendered"]["language"] == "tr"


def test_bad_stream_requests_are_refused(hot: Hotline) -> None:
    cases = [
        ("/v1/stream", {}, 401),
        ("/v1/stream?token=dcf_nonsense", {}, 401),
        ("/v1/stream", {"Authorization": "Basic abc"}, 401),
        (f"/v1/stream?after=x&token={hot.tokens['il-duty']}", {}, 422),
        (f"/v1/stream?after=-1&token={hot.tokens['il-duty']}", {}, 422),
        (f"/v1/stream?lang=Hebrew&token={hot.tokens['il-duty']}", {}, 422),
    ]
    for url, headers, status in cases:
        with (
            pytest.raises(WebSocketDenialResponse) as refused,
            hot.client.websocket_connect(url, headers=headers),
        ):
            pass
        assert refused.value.status_code == status, url
        assert refused.value.headers["content-type"] == "application/problem+json"
    assert hot.client.get("/v1/stream/sse").status_code == 401
    bad = hot.client.get(
        "/v1/stream/sse",
        headers={"Authorization": f"Bearer {hot.tokens['il-duty']}", "Last-Event-ID": "abc"},
    )
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert issubclass(WebSocketDenialResponse, WebSocketDisconnect)


def test_a_detected_conflict_opens_a_thread_and_is_pushed(hot: Hotline, engine: Engine) -> None:
    hot.as_("tr-duty").post("/v1/activities", json=activity(volume(36.0, 34.0)))
    filed = hot.as_("il-duty").post("/v1/activities", json=activity(volume(36.1, 34.1))).json()
    [conflict] = filed["conflicts"]
    assert conflict["severity"] == "high"
    # Filing the crossing plan published the conflict and opened its thread, in its transaction.
    tr = Actor(officer="tr-duty", party="TR", role="officer", party_kind="participant")
    with transaction(engine, write=False) as conn:
        waiting = len(events_after(conn, tr, 0))
        thread_id = conn.execute(
            select(t.hotline_threads.c.id).where(t.hotline_threads.c.conflict_id == conflict["id"])
        ).scalar_one()  # exactly one thread for the conflict
    with hot.client.websocket_connect(f"/v1/stream?after=0&token={hot.tokens['tr-duty']}") as ws:
        events = receive(ws, waiting)
    by_kind = {e["kind"]: e for e in events}
    detected = by_kind["conflict.detected"]
    opened = next(e for e in events if e["payload"].get("message", {}).get("thread") == thread_id)
    assert detected["payload"]["conflict"] == conflict["id"]
    assert detected["payload"]["severity"] == "high"
    message = opened["payload"]["message"]
    assert (message["type"], message["priority"], message["to"]) == (
        "request_deconfliction",
        "URGENT",
        ["IL", "TR"],
    )
    assert message["sender"] == {"party": None, "officer": None}
    assert message["content"]["severity"] == "high"
    assert "çatışma #" in message["rendered"]["body"]
    thread = hot.as_("il-duty").get(f"/v1/hotline/threads/{thread_id}").json()
    assert thread["conflict"] == conflict["id"] and thread["parties"] == ["IL", "TR"]
    [sent] = hot.facts("message.sent")
    assert sent["by"] == "system" and sent["deadlines"]["IL"] == "2030-01-01T00:15:00.000000Z"
    with engine.connect() as conn:
        assert conn.execute(select(t.hotline_threads.c.conflict_id)).scalars().all() == [
            conflict["id"]
        ]


def test_a_client_without_a_context_manager_still_streams(
    engine: Engine, clock: FakeClock, area: dict[str, str]
) -> None:
    from tests.hotline.conftest import make_app

    client = TestClient(make_app(engine, clock))  # a fresh event loop per connection
    hot = Hotline(client, area, engine)
    hot.as_("tr-duty").send(**notice(["IL"]))
    for _ in range(2):
        with client.websocket_connect(f"/v1/stream?after=0&token={area['tr-duty']}") as ws:
            assert receive(ws, 1)[0]["id"] == 1
