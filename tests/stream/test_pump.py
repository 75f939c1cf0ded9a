"""A WebSocket connection's side of the stream, without a server: `_pump` against a stand-in
socket, a `Session` on a real database and a `Subscription` that the test pushes to itself (no
hub task, so nothing arrives that the test did not push).

The pump handles a live batch in its own loop rather than through `_events`; these pin down
what it must still do: one frame per batch (an object alone, an array of several), each event
once across the catch-up and the live pushes however they overlap, an overflow caught up from
the table, and each delivered receipt given once per process and party.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import pytest
from fastapi import WebSocket
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine

from deconfliction.parties.models import Actor
from deconfliction.store.db import transaction
from deconfliction.stream import service as stream_service
from deconfliction.stream.routes import SENT, Session, _pump
from deconfliction.stream.service import (
    StreamEvent,
    StreamHub,
    Subscription,
    events_after,
    publish,
)
from tests.conftest import T0, FakeClock
from tests.hotline.conftest import make_app

IL = Actor("il-duty", "IL", "officer", "participant")
WAIT_S = 10.0


class Socket:
    """Stands in for the WebSocket: the events of each frame `_pump` sends."""

    def __init__(self) -> None:
        self.frames: list[list[int]] = []

    async def send(self, message: dict[str, Any]) -> None:
        assert message["type"] == "websocket.send"
        frame = json.loads(message["text"])
        self.frames.append([e["id"] for e in frame] if isinstance(frame, list) else [frame["id"]])

    async def until(self, count: int) -> list[list[int]]:
        """The frames, once there are `count` of them (or fail after WAIT_S)."""
        async with asyncio.timeout(WAIT_S):
            while len(self.frames) < count:
                await asyncio.sleep(0.01)
        return self.frames


def add(engine: Engine, clock: FakeClock, count: int) -> list[StreamEvent]:
    """Publish `count` events for IL; those events as the table gives them."""
    with transaction(engine, write=True) as conn:
        ids = [publish(conn, ["IL"], "test.pump", {"n": n}, clock()) for n in range(count)]
    with transaction(engine, write=False) as conn:
        return [e for e in events_after(conn, IL, ids[0] - 1) if e.id in ids]


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_the_pump_sends_each_event_once_in_frames_through_catch_up_overlap_and_overflow(
    engine: Engine, clock: FakeClock, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = make_app(engine, clock).state.services
    one, two, three = add(engine, clock, 3)

    async def run() -> list[list[int]]:
        hub = StreamHub(engine, fallback_s=3600)
        sub = Subscription(IL, loop=asyncio.get_running_loop())
        session = Session(svc, hub, IL, None)
        socket = Socket()
        pump = asyncio.create_task(_pump(cast(WebSocket, socket), session, sub, one.id - 1))
        try:
            await socket.until(1)  # the catch-up: the three, in one frame
            # Pushed while the catch-up ran: those it sent are skipped, the rest sent once.
            four, five = add(engine, clock, 2)
            for event in (two, three, four):
                sub.push(event)
            await socket.until(2)
            sub.push(five)  # live and alone: its object, not an array
            await socket.until(3)
            # A slow connection overflows: what waited is dropped, the table has it all.
            monkeypatch.setattr(stream_service, "QUEUE_LIMIT", 1)
            six, seven = add(engine, clock, 2)
            sub.push(six)
            sub.push(seven)
            assert sub.overflowed and sub.pending == []
            frames = await socket.until(4)
            sub.push(seven)  # a late push of one it caught up: nothing more to send
            await asyncio.sleep(0.1)
            return frames
        finally:
            pump.cancel()

    frames = asyncio.run(run())
    first = one.id
    assert frames == [
        [first, first + 1, first + 2],
        [first + 3],
        [first + 4],
        [first + 5, first + 6],
    ]


def test_a_push_wakes_the_waiting_connection_once_with_everything_pushed_so_far() -> None:
    def event(n: int) -> StreamEvent:
        return StreamEvent(id=n, kind="test", at=T0, audience=["IL"], payload={})

    async def run() -> list[int]:
        sub = Subscription(IL, loop=asyncio.get_running_loop())
        waiting = asyncio.create_task(sub.take())
        await asyncio.sleep(0.01)
        for n in (1, 2, 3):  # the second and third push find the waiter woken already
            sub.push(event(n))
        return [e.id for e in await asyncio.wait_for(waiting, WAIT_S)]

    assert asyncio.run(run()) == [1, 2, 3]


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_fresh_takes_only_what_is_past_the_mark_and_moves_it(
    engine: Engine, clock: FakeClock, tokens: dict[str, str]
) -> None:
    svc = make_app(engine, clock).state.services
    session = Session(svc, StreamHub(engine), IL, None)

    def events(*ids: int) -> list[StreamEvent]:
        return [StreamEvent(id=i, kind="test", at=T0, audience=["IL"], payload={}) for i in ids]

    assert session.fresh([], from_table=True) == []
    assert [e.id for e in session.fresh(events(1, 2), from_table=False)] == [1, 2]
    assert [e.id for e in session.fresh(events(2, 3, 4), from_table=False)] == [3, 4]
    assert session.fresh(events(3, 4), from_table=True) == []
    # From the table, only those pushed to the reader: not its own party's delivered receipt.
    receipt = StreamEvent(
        id=5, kind="message.delivered", at=T0, audience=["IL", "TR"], payload={"party": "IL"}
    )
    assert [e.id for e in session.fresh([receipt, *events(6)], from_table=True)] == [6]
    assert session.last == 6


# -- delivered receipts: once per message and party, by whichever connection pushes it first ---

readers = st.lists(st.sampled_from(["IL", "SY", "TR", "AZ"]), min_size=1, max_size=5)
pushes = st.lists(
    st.tuples(
        st.integers(0, 4),  # which reader (modulo how many there are)
        st.lists(  # a batch: (message id, its recipients), or None for another kind of event
            st.one_of(
                st.none(),
                st.tuples(st.integers(1, 4), st.lists(st.sampled_from(["IL", "SY"]), min_size=1)),
            ),
            min_size=1,
            max_size=3,
        ),
    ),
    max_size=12,
)


@settings(max_examples=80, deadline=None)
@given(readers, pushes)
def test_each_delivered_receipt_is_given_once_per_party_by_the_first_connection_to_push_it(
    parties: list[str], batches: list[tuple[int, list[tuple[int, list[str]] | None]]]
) -> None:
    hub = StreamHub(create_engine("sqlite://"), fallback_s=3600)
    sessions = []
    for party in parties:
        session = object.__new__(Session)  # what `to_deliver` reads; no database needed
        session.hub, session.party = hub, party
        sessions.append(session)
    given_by_reference: set[tuple[int, str]] = set()
    for n, (reader, batch) in enumerate(batches):
        events = [
            StreamEvent(
                id=n * 10 + k,
                kind=SENT if item else "message.read",
                at=T0,
                audience=["IL", "SY", "TR"],
                payload={"message": {"id": item[0], "to": item[1]}} if item else {"message": 1},
            )
            for k, item in enumerate(batch)
        ]
        session = sessions[reader % len(sessions)]
        party = session.party
        mine = [item[0] for item in batch if item and party in item[1]]
        expected = [m for m in mine if (m, party) not in given_by_reference]
        given_by_reference.update((m, party) for m in mine)
        assert session.to_deliver(events) == expected
