"""Push delivery of the stream, in process and across replicas, over real HTTP and WebSocket.

With the hubs' fallback poll set far beyond the tests' waits (DECONFLICTION_STREAM_POLL_S), an
event can only arrive in time by a wake: the commit hook in the server that wrote it, or
PostgreSQL NOTIFY in another server. The hub hands each live connection exactly the events of
its party but its own delivered receipts (the mediator: all), checked against a brute-force
reference, and NOTIFY is sent when, and only when, the publishing transaction commits. Across
two `deconfliction serve` processes on PostgreSQL, a client of one replica gets what is written
through the other, both ways, and a client that reconnects to the other replica with its last
id gets exactly what it missed, in order, once. The fallback poll itself is tested on SQLite,
where two servers share a file and nothing wakes the one that did not write.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from bench.serving import Server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from typer.testing import CliRunner
from websockets.sync.client import ClientConnection, connect

from deconfliction.cli import app as cli
from deconfliction.parties.models import Actor
from deconfliction.store import tables as t
from deconfliction.store.db import make_engine, transaction
from deconfliction.stream import service as stream_service
from deconfliction.stream import wire
from deconfliction.stream.service import (
    StreamEvent,
    StreamHub,
    Subscription,
    channel,
    listen_url,
    publish,
)
from tests.conftest import T0, FakeClock, _truncate
from tests.hotline.conftest import HOTLINE_AREA, Served, notice

WAIT_S = 30.0  # a wake comes in milliseconds; this only bounds a test that fails
NEVER_S = "3600"  # the fallback poll during these tests: longer than any wait
START_LIMIT_S = 180.0  # a server process starting on a busy machine


def send(base: str, token: str, **body: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{base}/v1/hotline/messages",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=WAIT_S,
    )
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


@dataclass
class Stream:
    """A WebSocket client of the stream and the events of its last frame not yet read (a frame
    holds one event object or an array of them)."""

    ws: ClientConnection
    ready: deque[dict[str, Any]] = field(default_factory=deque)


@contextlib.contextmanager
def stream(base: str, token: str, after: int | None = None) -> Iterator[Stream]:
    url = base.replace("http://", "ws://") + f"/v1/stream?token={token}"
    if after is not None:
        url += f"&after={after}"
    with connect(url, open_timeout=WAIT_S) as ws:
        yield Stream(ws)


def next_event(ws: Stream, kind: str | None = None) -> dict[str, Any]:
    """The next event (of `kind`, skipping others), or fail after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while True:
        if not ws.ready:
            left = deadline - time.monotonic()
            assert left > 0, f"no {kind or 'event'} within {WAIT_S} s"
            frame = json.loads(ws.ws.recv(timeout=left))
            ws.ready.extend(frame if isinstance(frame, list) else [frame])
        event: dict[str, Any] = ws.ready.popleft()
        if kind is None or event["kind"] == kind:
            return event


def party_event_ids(engine: Engine, party: str, after: int) -> list[int]:
    """The ids of the events pushed to `party`'s officers, after `after`, from the table: those
    of its audience but its own delivered receipts."""
    events = t.stream_events
    with transaction(engine, write=False) as conn:
        rows = conn.execute(
            select(events.c.id, events.c.kind, events.c.payload)
            .join(t.stream_audience, t.stream_audience.c.event_id == events.c.id)
            .where(t.stream_audience.c.party == party, events.c.id > after)
            .order_by(events.c.id)
        ).all()
    return [
        r.id for r in rows if not (r.kind == "message.delivered" and r.payload["party"] == party)
    ]


# -- the hub's fan-out against a brute-force reference ---------------------------------------

PARTIES = ["IL", "SY", "TR", "UNDOF"]
readers = st.lists(st.sampled_from([*PARTIES, "AZ"]), min_size=1, max_size=8)
events = st.lists(
    st.tuples(
        st.lists(st.sampled_from(PARTIES), unique=True, max_size=3),
        st.sampled_from(["message.sent", "message.delivered", "message.read", "test.other"]),
        st.sampled_from(PARTIES),  # whose receipt it is
    ),
    max_size=12,
)


def reference_pushed(party: str, audience: list[str], kind: str, receipt_of: str) -> bool:
    """Brute force: the mediator gets everything; others their audience's events, but not
    their own party's delivered receipts."""
    if party == "AZ":
        return True
    return party in audience and not (kind == "message.delivered" and receipt_of == party)


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(readers, events)
def test_the_hubs_fan_out_pushes_each_event_to_exactly_its_readers_once_in_order(
    engine: Engine, parties: list[str], published: list[tuple[list[str], str, str]]
) -> None:
    made = [
        StreamEvent(id=i, kind=kind, at=T0, audience=sorted(audience), payload={"party": whose})
        for i, (audience, kind, whose) in enumerate(published, start=1)
    ]

    async def run() -> list[list[StreamEvent]]:
        hub = StreamHub(engine, fallback_s=3600)
        subs = []
        for n, party in enumerate(parties):
            role = "mediator" if party == "AZ" else "officer"
            kind = "mediator" if party == "AZ" else "participant"
            subs.append(await hub.subscribe(Actor(f"o{n}", party, role, kind)))
        hub._fan_out(made)
        got = [await sub.take() if sub.pending else [] for sub in subs]
        await hub.close()
        return got

    got = asyncio.run(run())
    for party, taken in zip(parties, got, strict=True):
        expected = [
            e
            for e, (audience, kind, whose) in zip(made, published, strict=True)
            if reference_pushed(party, audience, kind, whose)
        ]
        assert taken == expected, party


def test_a_subscription_that_overflows_drops_what_waited_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stream_service, "QUEUE_LIMIT", 3)
    sub = Subscription(Actor("il-duty", "IL", "officer", "participant"))
    for n in range(5):
        sub.push(StreamEvent(id=n + 1, kind="test", at=T0, audience=["IL"], payload={}))
    assert sub.overflowed and sub.pending == []

    async def take() -> list[StreamEvent]:
        return await sub.take(wait_s=5)  # returns at once: the caller catches up from the table

    assert asyncio.run(take()) == []


def test_a_live_wait_ends_when_woken_with_what_was_pushed_and_a_cancelled_one_leaves_no_waiter(
    engine: Engine,
) -> None:
    def event(n: int) -> StreamEvent:
        return StreamEvent(id=n, kind="test", at=T0, audience=["IL"], payload={})

    async def run() -> None:
        hub = StreamHub(engine, fallback_s=3600)
        sub = await hub.subscribe(Actor("il-duty", "IL", "officer", "participant"))
        waiting = asyncio.create_task(sub.take())  # no timeout: a WebSocket's wait
        await asyncio.sleep(0.05)
        assert not waiting.done() and sub.waiter is not None
        hub._fan_out([event(1), event(2)])
        async with asyncio.timeout(1):
            assert [e.id for e in await waiting] == [1, 2]
        assert sub.waiter is None and sub.pending == []
        cancelled = asyncio.create_task(sub.take())
        await asyncio.sleep(0.01)
        cancelled.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cancelled
        assert sub.waiter is None
        hub._fan_out([event(3)])  # waking nobody is harmless; the event waits for the next take
        assert [e.id for e in await sub.take(wait_s=1)] == [3]
        # A take cancelled in the step its event arrives ends cancelled (3.11's wait_for would
        # return the event and swallow the cancel); the event waits for the next take.
        timed = asyncio.create_task(sub.take(wait_s=60))
        await asyncio.sleep(0.01)
        hub._fan_out([event(4)])
        timed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await timed
        assert [e.id for e in await sub.take(wait_s=1)] == [4]
        await hub.close()

    asyncio.run(run())


def test_the_hub_stops_when_cancelled_in_the_step_a_wake_arrives(engine: Engine) -> None:
    async def run() -> None:
        hub = StreamHub(engine, fallback_s=3600)
        await hub.subscribe(Actor("il-duty", "IL", "officer", "participant"))
        await asyncio.sleep(0.05)  # the hub has read and waits for a wake
        task, wakeup = hub._task, hub._wakeup
        assert task is not None and wakeup is not None and not task.done()
        wakeup.set()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(5):  # a swallowed cancel: the hub runs on, this expires
                await task

    asyncio.run(run())


def test_a_commit_wakes_its_servers_hub_at_once(
    engine: Engine, clock: FakeClock, area: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DECONFLICTION_STREAM_POLL_S", NEVER_S)
    with Served(engine, clock) as server, stream(server.base, area["il-duty"], after=0) as ws:
        first = send(server.base, area["tr-duty"], **notice(["IL"]))
        assert next_event(ws, "message.sent")["payload"]["message"]["id"] == first["id"]
        # Subscribed and live now: the next one can only come by the commit's wake.
        second = send(server.base, area["tr-duty"], **notice(["IL"], text="second"))
        assert next_event(ws, "message.sent")["payload"]["message"]["id"] == second["id"]


def test_live_fan_out_gives_each_connection_exactly_what_its_party_may_see(
    engine: Engine, clock: FakeClock, area: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DECONFLICTION_STREAM_POLL_S", NEVER_S)
    parties = {"il-duty": "IL", "il-watch": "IL", "sy-duty": "SY", "un-obs": "UNDOF",
               "az-med": "AZ", "tr-duty": "TR"}  # fmt: skip
    everyone = ["IL", "SY", "UNDOF", "TR"]

    def publish_now(audience: list[str], kind: str, payload: dict[str, Any] | None = None) -> int:
        with transaction(engine, write=True) as conn:
            return publish(conn, audience, kind, payload or {}, clock())

    with Served(engine, clock) as server, contextlib.ExitStack() as stack:
        sockets = {
            officer: stack.enter_context(stream(server.base, area[officer], after=0))
            for officer in parties
        }
        publish_now(everyone, "test.ready")
        for ws in sockets.values():
            until_kind(ws, "test.ready")  # every connection is live now
        audiences = [["IL"], ["SY"], ["IL", "SY"], ["UNDOF"], [], ["TR", "IL"]]
        published = [(publish_now(a, "test.fan_out"), a) for a in audiences]
        # A delivered receipt goes to the sender's party and the mediator, not back to the
        # party whose receipt it is; its read receipt goes to both.
        for kind in ("message.delivered", "message.read"):
            receipt = {"message": 1, "party": "IL", "officer": "il-duty"}
            published.append((publish_now(["IL", "TR"], kind, receipt), ["IL", "TR"]))
        end = publish_now(everyone, "test.end")
        got = {officer: [e["id"] for e in until_kind(ws, "test.end")]
               for officer, ws in sockets.items()}  # fmt: skip
    delivered = published[-2][0]
    for officer, party in parties.items():
        mediator = party == "AZ"  # the mediator sees every event
        expected = [
            i
            for i, audience in published
            if mediator or (party in audience and not (i == delivered and party == "IL"))
        ]
        assert got[officer] == [*expected, end], officer


@pytest.mark.parametrize("refused", [False, True], ids=["written-directly", "every-write-refused"])
def test_a_live_websocket_gets_each_event_once_in_order_written_by_the_hub_or_caught_up(
    engine: Engine,
    clock: FakeClock,
    area: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    frame_writes: list[bool],
    refused: bool,
) -> None:
    """Under `serve` the hub writes a caught-up connection's frames itself (`stream.wire`); a
    connection that cannot take them (slow: here every one, by a limit below zero) is sent
    nothing and catches up from the table instead. Either way: every event once, in order,
    and a message pushed to its recipient gives the sender's party its delivered receipt."""
    monkeypatch.setenv("DECONFLICTION_STREAM_POLL_S", NEVER_S)
    if refused:
        monkeypatch.setattr(wire, "SLOW_CLIENT_BYTES", -1)

    def publish_now(kind: str) -> int:
        with transaction(engine, write=True) as conn:
            return publish(conn, ["IL"], kind, {}, clock())

    with (
        Served(engine, clock) as server,
        stream(server.base, area["il-duty"]) as il,
        stream(server.base, area["az-med"]) as az,
        stream(server.base, area["tr-duty"]) as tr,
    ):
        hub = server.app.state.stream_hub
        deadline = time.monotonic() + WAIT_S
        while len(hub.subscribers) < 3 or any(s.waiter is None for s in hub.subscribers):
            assert time.monotonic() < deadline, "the connections never waited live"
            time.sleep(0.01)
        burst = [publish_now("test.burst") for _ in range(40)]
        message = send(server.base, area["tr-duty"], **notice(["IL"]))
        got = {name: until_message(ws, message["id"]) for name, ws in (("il", il), ("az", az))}
        receipt = next_event(tr, "message.delivered")
    sent = got["il"][-1]["id"]
    for name, events in got.items():
        ids = [e["id"] for e in events]
        assert ids == sorted(set(ids)), name  # in order, none twice
        assert set(burst) | {sent} <= set(ids), name  # none missed
    assert receipt["payload"]["message"] == message["id"]
    assert receipt["payload"]["party"] == "IL"
    assert frame_writes and all(w is not refused for w in frame_writes)


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_a_client_that_stops_reading_is_caught_up_from_the_table_when_it_reads_again(
    engine: Engine,
    clock: FakeClock,
    area: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    frame_writes: list[bool],
) -> None:
    """A client that does not read fills its socket, then the server's buffer for it: past
    `SLOW_CLIENT_BYTES` the hub writes it nothing more (its memory stays bounded), and when it
    reads again it gets what it missed from the table, after what was already on its way."""
    monkeypatch.setenv("DECONFLICTION_STREAM_POLL_S", NEVER_S)

    def publish_now(kind: str, count: int = 1, size: int = 0) -> list[int]:
        with transaction(engine, write=True) as conn:
            blob = {"blob": "x" * size}
            return [publish(conn, ["IL"], kind, blob, clock()) for _ in range(count)]

    def wait_until(done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not done():
            assert time.monotonic() < deadline, what
            time.sleep(0.01)

    with Served(engine, clock) as server:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window, set early
        sock.connect(("127.0.0.1", server.port))
        url = f"ws://127.0.0.1:{server.port}/v1/stream?token={area['il-duty']}"
        with connect(url, sock=sock, open_timeout=WAIT_S) as ws:
            hub = server.app.state.stream_hub
            wait_until(lambda: any(s.direct for s in hub.subscribers), "never live")
            big = publish_now("test.big", count=300, size=20_000)  # ~6 MB, not read
            wait_until(lambda: bool(frame_writes), "the hub never wrote")
            later = publish_now("test.later", count=5)
            wait_until(lambda: False in frame_writes, "never held back")
            end = publish_now("test.end")
            got = [e["id"] for e in until_kind(Stream(ws), "test.end")]
    assert got == [*big, *later, *end]
    assert frame_writes[0] is True and frame_writes[-1] is False


@pytest.fixture
def frame_writes(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What each of the hub's direct writes answered, in order (True: written)."""
    answers: list[bool] = []
    write = wire.FrameWriter.write

    def counted(self: wire.FrameWriter, frames: list[bytes]) -> bool:
        answers.append(write(self, frames))
        return answers[-1]

    monkeypatch.setattr(wire.FrameWriter, "write", counted)
    return answers


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_a_server_that_missed_the_wake_reads_it_by_the_fallback_poll(
    engine: Engine, clock: FakeClock, area: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DECONFLICTION_STREAM_POLL_S", "0.2")
    # A second engine on the same file: its server hears nothing of the first one's commits.
    other = make_engine(str(engine.url))
    try:
        with (
            Served(engine, clock) as writer,
            Served(other, clock) as reader,
            stream(reader.base, area["il-duty"], after=0) as ws,
        ):
            first = send(writer.base, area["tr-duty"], **notice(["IL"]))
            assert next_event(ws, "message.sent")["payload"]["message"]["id"] == first["id"]
            second = send(writer.base, area["tr-duty"], **notice(["IL"], text="second"))
            assert next_event(ws, "message.sent")["payload"]["message"]["id"] == second["id"]
    finally:
        other.dispose()


# -- two replicas on PostgreSQL ----------------------------------------------------------------


@pytest.mark.postgres
def test_publish_notifies_listeners_when_and_only_when_it_commits(pg_url: str) -> None:
    engine = make_engine(pg_url)
    _truncate(engine)
    with transaction(engine, write=False) as conn:
        name = channel(conn)
    try:
        with psycopg.connect(listen_url(engine), autocommit=True) as listener:
            listener.execute(f'LISTEN "{name}"')
            with transaction(engine, write=True) as conn:
                kept = publish(conn, ["IL"], "test.kept", {}, T0)
                before_commit = list(listener.notifies(timeout=0.2, stop_after=1))
            with pytest.raises(RuntimeError), transaction(engine, write=True) as conn:
                publish(conn, ["IL"], "test.rolled_back", {}, T0)
                raise RuntimeError("the change fails: no event, no notification")
            with transaction(engine, write=True) as conn:
                later = publish(conn, ["TR"], "test.later", {}, T0)
            told = [n.payload for n in listener.notifies(timeout=WAIT_S, stop_after=2)]
            stray = list(listener.notifies(timeout=0.2, stop_after=1))
    finally:
        engine.dispose()
    assert before_commit == []
    assert told == [str(kept), str(later)]
    assert stray == []


@pytest.fixture
def replicas(pg_url: str, tmp_path: Path) -> Iterator[tuple[list[str], dict[str, str]]]:
    """Two `deconfliction serve` processes on one PostgreSQL database; their bases, tokens."""
    engine = make_engine(pg_url)
    _truncate(engine)
    engine.dispose()
    config = tmp_path / "parties.toml"
    config.write_text(HOTLINE_AREA, encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        ["init", "--config", str(config), "--db", pg_url, "--server-held-keys",
         "--keys-dir", str(tmp_path / "keys")],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    tokens = dict(line.split("\t") for line in result.stdout.splitlines())
    servers = [
        Server(pg_url, tmp_path / f"server{k}.log", {"DECONFLICTION_STREAM_POLL_S": NEVER_S})
        for k in (1, 2)
    ]
    try:
        for server in servers:
            server.start(START_LIMIT_S)
        yield [server.base for server in servers], tokens
    finally:
        for server in servers:
            server.stop()


@pytest.mark.postgres
def test_an_event_written_through_one_replica_reaches_a_client_of_the_other(
    replicas: tuple[list[str], dict[str, str]], pg_url: str
) -> None:
    (one, two), tokens = replicas
    tr, il, mediator = tokens["tr-duty"], tokens["il-duty"], tokens["az-med"]
    got: list[dict[str, Any]] = []  # everything IL's client got, across its connections
    with stream(two, il, after=0) as il_on_two, stream(one, mediator, after=0) as az_on_one:
        first = send(one, tr, **notice(["IL"]))
        got += until_message(il_on_two, first["id"])
        # Replica 2 pushed it to IL and wrote IL's delivered receipt: replica 1's client gets it.
        delivered = next_event(az_on_one, "message.delivered")
        assert delivered["payload"]["message"] == first["id"]
        # Both subscribed and live: only NOTIFY can bring the next one to replica 2 in time.
        second = send(one, tr, **notice(["IL"], text="second"))
        got += until_message(il_on_two, second["id"])

    # Reconnect by id across replicas: IL was on replica 2; while it is away, events are written
    # through both replicas; it comes back through replica 1 with the last id it got.
    third = send(one, tr, **notice(["IL"], text="third"))
    ack = httpx.post(
        f"{two}/v1/hotline/messages/{first['id']}/acknowledge",
        headers={"Authorization": f"Bearer {il}"},
        timeout=WAIT_S,
    )
    assert ack.status_code == 200, ack.text
    with stream(one, il, after=got[-1]["id"]) as il_on_one:
        got += until_message(il_on_one, third["id"])
        got += until_kind(il_on_one, "message.acknowledged")
        fourth = send(two, tr, **notice(["IL"], text="fourth"))
        got += until_message(il_on_one, fourth["id"])

    engine = make_engine(pg_url)
    try:
        stored = party_event_ids(engine, "IL", 0)
    finally:
        engine.dispose()
    # Every event for IL up to the last one received, in order, none missed, none twice.
    ids = [e["id"] for e in got]
    assert ids == stored[: len(ids)]


def until_message(ws: Stream, message_id: int) -> list[dict[str, Any]]:
    """Events up to and including the `message.sent` of that message."""
    return until(ws, lambda e: e["kind"] == "message.sent"
                 and e["payload"]["message"]["id"] == message_id)  # fmt: skip


def until_kind(ws: Stream, kind: str) -> list[dict[str, Any]]:
    return until(ws, lambda e: e["kind"] == kind)


def until(ws: Stream, last: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    events = [next_event(ws)]
    while not last(events[-1]):
        events.append(next_event(ws))
    return events
