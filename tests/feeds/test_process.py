"""The feed process: it never outlives the server, a dead one is replaced on the same ports with
the counts kept, and only plain values cross from it to the server, states exactly as parsed."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deconfliction.feeds.process import (
    HEADER,
    Outgoing,
    frame,
    loads_plain,
    state_of_wire,
    wire_state,
)
from deconfliction.feeds.servers import FeedConfig, FeedServers
from deconfliction.tracks.picture import IntakeRules, TrackPicture, TrackState
from tests.conftest import T0, FakeClock
from tests.feeds.support import (
    BILLION_LAUGHS,
    RunningFeeds,
    cot_event,
    send_tcp,
    wait_until,
)

STALE = timedelta(seconds=30)
# A server in a process of its own: it starts its feeds, says where they are, and waits.
SERVER = """
import asyncio
from datetime import UTC, datetime
from deconfliction.feeds.servers import FeedConfig, FeedServers
from deconfliction.tracks.picture import IntakeRules, TrackPicture

async def main() -> None:
    feeds = [FeedConfig("cot-tcp", 0, "IL", name="il")]
    servers = FeedServers(feeds, TrackPicture(), IntakeRules(), lambda: datetime.now(UTC))
    await servers.start()
    print(servers.pid, servers.port("il"), flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def _running(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie waiting for its reaper does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_the_feed_process_ends_when_the_server_is_killed() -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, cwd=Path(__file__).parents[2]
    )
    try:
        assert server.stdout is not None
        pid, port = map(int, server.stdout.readline().split())
        assert pid != server.pid and _running(pid) and not _refused(port)
        server.send_signal(signal.SIGKILL)  # no shutdown handler runs
        server.wait(10)
        wait_until(lambda: not _running(pid), timeout_s=10)
        assert _refused(port)
    finally:
        server.kill()
        server.wait(10)


def test_a_dead_feed_process_is_replaced_on_the_same_port_with_the_counts_kept() -> None:
    picture = TrackPicture()
    servers = FeedServers(
        [FeedConfig("cot-tcp", 0, "IL", name="il")], picture, IntakeRules(), FakeClock()
    )
    oversized = cot_event("big", extra="<remarks>" + "x" * 70_000 + "</remarks>")
    with RunningFeeds(servers):
        port, first = servers.port("il"), servers.pid
        assert first is not None and first != os.getpid()
        send_tcp(port, [b"<event uid='m'><point></event>", BILLION_LAUGHS, cot_event("a")])
        wait_until(lambda: servers.status()[0].received == 3)
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: servers.pid not in (None, first), timeout_s=60)
        wait_until(lambda: servers.status()[0].listening)
        assert servers.port("il") == port
        send_tcp(port, [oversized, cot_event("b")])
        wait_until(lambda: servers.status()[0].received == 5)
        status = servers.status()[0]
    assert [s.key for s in picture.snapshot()] == ["IL/a", "IL/b"]
    assert status.accepted == 2
    assert status.dropped == {"forbidden_xml": 1, "malformed": 1, "oversized": 1}


def test_only_plain_values_come_from_the_feed_process() -> None:
    plain = ([(0, "uid", 1.5, None)], [(0, 1, 0, {"malformed": 1}, 2, True)])
    assert loads_plain(frame(plain)[4:]) == plain
    for value in (datetime(2030, 1, 1, tzinfo=UTC), FeedConfig("cot", 0, "IL")):
        with pytest.raises(pickle.UnpicklingError):
            loads_plain(frame(value)[4:])


moments = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
finite = st.floats(allow_nan=False, allow_infinity=False)


@given(
    moments,
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=1)),
    st.tuples(finite, finite, finite, finite, finite, finite),
    st.one_of(st.none(), st.text(max_size=64)),
)
def test_a_state_crosses_exactly_and_takes_its_feeds_party(
    time: datetime,
    stale_in: timedelta,
    values: tuple[float, float, float, float, float, float],
    callsign: str | None,
) -> None:
    state = TrackState("TR", "uid-1", *values, time, time + stale_in, "cot", callsign, "a-f-A")
    wire = pickle.loads(frame(wire_state(3, state))[4:])
    assert wire[0] == 3
    assert state_of_wire("IL", wire) == TrackState(
        "IL", "uid-1", *values, time, time + stale_in, "cot", callsign, "a-f-A"
    )


def _frames(data: bytes) -> list[Any]:
    """The complete frames at the start of ``data``."""
    found = []
    while len(data) >= HEADER.size:
        (size,) = HEADER.unpack(data[: HEADER.size])
        if len(data) < HEADER.size + size:
            break
        found.append(loads_plain(data[HEADER.size : HEADER.size + size]))
        data = data[HEADER.size + size :]
    return found


def test_while_the_server_is_busy_only_the_latest_state_of_a_track_waits() -> None:
    def state(uid: str, seconds: int = 0, callsign: str | None = None) -> TrackState:
        at = T0 + timedelta(seconds=seconds)
        return TrackState("IL", uid, 34, 38, 6000, 200, 90, 0, at, at + STALE, "cot", callsign)

    async def scenario() -> bytes:
        server, process = socket.socketpair()
        out = Outgoing(process, 1, 2, asyncio.Event())
        (tally,) = out.tallies
        out.open()
        tally.keep(state("big", callsign="x" * 4_000_000))  # more than the socket holds
        await asyncio.sleep(0)  # that batch is being written: the server has not read it yet
        for seconds in (1, 3, 2):
            tally.keep(state("x", seconds))
        tally.keep(state("y"))
        tally.keep(state("z"))  # a third track while two wait (at most 2 here)
        server.setblocking(False)
        loop = asyncio.get_running_loop()
        data = b""
        while len(_frames(data)) < 2:
            data += await loop.sock_recv(server, 1 << 22)
        server.close()
        process.close()
        return data

    first, second = _frames(asyncio.run(scenario()))
    assert [w[1] for w in first[0]] == ["big"]
    states, tallies = second
    assert [(w[1], w[8]) for w in states] == [
        ("x", wire_state(0, state("x", 3))[8]),
        ("y", wire_state(0, state("y"))[8]),
    ]
    assert tallies == [(0, 0, 0, {"superseded": 2, "too_many_tracks": 1}, 0, False)]
