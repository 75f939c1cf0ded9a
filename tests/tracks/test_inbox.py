"""The track inbox: a follower's accepted states reach the leader's picture through the database.

The table round trip runs on SQLite and PostgreSQL; the hand-over between two `Live`s, the
NOTIFY and the drop counting are PostgreSQL's (one SQLite server has no follower).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import Engine, func, select

from deconfliction.feeds.servers import FeedConfig, FeedCounters
from deconfliction.store import tables as t
from deconfliction.store.db import make_engine, transaction
from deconfliction.stream.service import listen_url
from deconfliction.tracks import inbox
from deconfliction.tracks.loop import Live
from tests.conftest import FakeClock
from tests.feeds.support import RunningFeeds, cot_event, send_udp, wait_until
from tests.tracks.conftest import state

PG = pytest.mark.parametrize(
    "engine", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


def inbox_rows(engine: Engine) -> int:
    with transaction(engine, write=False) as conn:
        return int(conn.execute(select(func.count()).select_from(t.track_inbox)).scalar_one())


def test_states_come_out_as_they_went_in_oldest_first_and_are_taken_once(
    engine: Engine, clock: FakeClock
) -> None:
    now = clock()
    written = [
        state("TR", f"t{k}", 36.0 + k / 100, 38.0, 3000.0 + k, 60.0, 90.0, now, vs_mps=-1.5)
        for k in range(5)
    ]
    written[2] = replace(written[2], callsign="ANKA1", type="a-f-A")
    with transaction(engine, write=True) as conn:
        inbox.put(conn, written[:3])
    with transaction(engine, write=True) as conn:
        inbox.put(conn, written[3:])
    with transaction(engine, write=True) as conn:
        first = inbox.take(conn, limit=2)
    with transaction(engine, write=True) as conn:
        rest = inbox.take(conn)
    with transaction(engine, write=True) as conn:
        again = inbox.take(conn)
    assert first == written[:2]
    assert rest == written[2:]
    assert again == []
    assert inbox_rows(engine) == 0


@PG
def test_a_followers_accepted_states_reach_the_leaders_picture(
    engine: Engine, clock: FakeClock
) -> None:
    follower = Live(engine, clock, run_loop=False)
    leader = Live(engine, clock, run_loop=False)
    follower.intake.forwarding = True  # what follow() sets
    counters = follower.api_counters("TR")
    now = clock()
    kept = state("TR", "uav1", 36.0, 38.0, 3000.0, 60.0, 90.0, now)
    stale = state("IL", "f16", 36.1, 38.1, 3000.0, 200.0, 270.0, now - timedelta(minutes=5))
    assert follower.intake.offer(kept, counters) is None
    assert follower.intake.offer(stale, counters) is not None  # refused here: not handed on
    assert follower.outbox is not None and follower.outbox.flush() == 1
    assert [s.key for s in follower.picture.snapshot(now)] == ["TR/uav1"]
    assert leader.picture.snapshot(now) == []

    assert leader.inbox is not None
    assert asyncio.run(leader.inbox.drain()) == 1
    assert leader.picture.snapshot(now) == [kept]
    relay = {f.name: f for f in leader.feed_status()}["relay:TR"]
    assert (relay.received, relay.accepted, relay.party) == (1, 1, "TR")
    assert inbox_rows(engine) == 0
    # The leader does not hand on what it took (nor what it accepts itself).
    assert leader.outbox is not None and leader.outbox.pending() == 0


@PG
def test_a_followers_feed_hands_its_states_on_under_the_feeds_party(
    engine: Engine, clock: FakeClock
) -> None:
    follower = Live(engine, clock, [FeedConfig("cot-udp", 0, "IL", name="il")], run_loop=False)
    follower.intake.forwarding = True
    assert follower.outbox is not None
    with RunningFeeds(follower.feeds) as feeds:  # the feeds offer through the forwarding intake
        send_udp(feeds.port("il"), [cot_event("TR-looks-like-this", time=clock())])
        wait_until(lambda: follower.outbox is not None and follower.outbox.pending() == 1)
    assert follower.outbox.flush() == 1
    with transaction(engine, write=True) as conn:
        (taken,) = inbox.take(conn)
    assert (taken.party, taken.id, taken.source) == ("IL", "TR-looks-like-this", "cot")


@PG
def test_a_state_taken_late_is_dropped_by_the_leaders_rules(
    engine: Engine, clock: FakeClock
) -> None:
    leader = Live(engine, clock, run_loop=False)
    with transaction(engine, write=True) as conn:
        inbox.put(conn, [state("TR", "uav1", 36.0, 38.0, 3000.0, 60.0, 90.0, clock())])
    clock.now += timedelta(minutes=2)  # the former leader died; the new one drains late
    assert leader.inbox is not None
    assert asyncio.run(leader.inbox.drain()) == 1
    assert leader.picture.snapshot(clock()) == []
    relay = {f.name: f for f in leader.feed_status()}["relay:TR"]
    assert relay.accepted == 0 and sum(relay.dropped.values()) == 1


@PG
def test_the_leader_is_woken_when_and_only_when_the_write_commits(
    engine: Engine, clock: FakeClock
) -> None:
    with transaction(engine, write=False) as conn:
        name = inbox.channel(conn)
    one = state("TR", "uav1", 36.0, 38.0, 3000.0, 60.0, 90.0, clock())
    with psycopg.connect(listen_url(engine), autocommit=True) as listener:
        listener.execute(f'LISTEN "{name}"')
        with pytest.raises(RuntimeError), transaction(engine, write=True) as conn:
            inbox.put(conn, [one])
            raise RuntimeError("rolled back: no row, no wake")
        assert list(listener.notifies(timeout=0.3, stop_after=1)) == []
        with transaction(engine, write=True) as conn:
            inbox.put(conn, [one])
        assert len(list(listener.notifies(timeout=30.0, stop_after=1))) == 1
    assert inbox_rows(engine) == 1


@pytest.mark.postgres
def test_a_follower_counts_what_it_could_not_hand_on(clock: FakeClock) -> None:
    gone = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    try:
        outbox = inbox.Outbox(gone, max_pending=2)
        counters = FeedCounters("api:TR", "api", "TR")
        for k in range(3):
            outbox.offer(state("TR", f"t{k}", 36.0, 38.0, 3000.0, 60.0, 90.0, clock()), counters)
        assert outbox.pending() == 2
        assert outbox.flush() == 0
    finally:
        gone.dispose()
    assert counters.dropped == {inbox.BACKLOG_FULL: 1, inbox.UNREACHABLE: 2}
    assert outbox.pending() == 0


@PG
def test_the_reader_stops_when_cancelled_in_the_step_a_wake_arrives(engine: Engine) -> None:
    reader = inbox.InboxReader(engine, lambda state: None)

    async def run() -> None:
        task = asyncio.create_task(reader.run())
        await asyncio.sleep(0.3)  # it has drained, listens and waits for a wake
        assert reader.wakeup is not None and not task.done()
        reader.wakeup.set()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(5):  # a swallowed cancel: the reader runs on, this expires
                await task

    asyncio.run(run())
