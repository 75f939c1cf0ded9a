"""The live picture as the server runs it: `Live` started in an event loop with its feed servers
and the 1 Hz loop task (here faster); CoT in over real sockets, an alert out through the hook."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import Engine

from deconfliction.feeds.servers import FeedConfig
from deconfliction.tracks.loop import Live, LoopConfig
from deconfliction.tracks.models import AlertOut
from tests.conftest import FakeClock
from tests.feeds.support import cot_event


async def _send_tcp(port: int, data: bytes) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def _send_udp(port: int, data: bytes) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, remote_addr=("127.0.0.1", port)
    )
    transport.sendto(data)
    transport.close()


def test_cot_in_alert_out(engine: Engine, clock: FakeClock, tokens: dict[str, str]) -> None:
    alerts: list[tuple[AlertOut, str]] = []
    raised = threading.Event()

    def on_alert(alert: AlertOut, event: str) -> None:
        alerts.append((alert, event))
        raised.set()

    feeds = [FeedConfig("cot-tcp", 0, "IL", name="il"), FeedConfig("cot-udp", 0, "TR", name="tr")]
    live = Live(engine, clock, feeds, config=LoopConfig(every_s=0.05), on_alert=on_alert)

    async def scenario() -> None:
        async with live:
            await _send_tcp(live.feeds.port("il"), cot_event("sufa", 34.8, 38.3, 6000))
            await _send_udp(
                live.feeds.port("tr"), cot_event("akinci", 34.8, 38.9, 6000, course=270)
            )
            for _ in range(200):
                if raised.is_set():
                    break
                await asyncio.sleep(0.02)

    asyncio.run(scenario())
    ((alert, event),) = alerts
    assert (event, alert.a, alert.b, alert.parties) == (
        "raised",
        "IL/sufa",
        "TR/akinci",
        ["IL", "TR"],
    )
    assert [f.accepted for f in live.feed_status()] == [1, 1]


def test_a_feed_must_be_bound_to_a_participant(
    engine: Engine, clock: FakeClock, tokens: dict[str, str]
) -> None:
    live = Live(engine, clock, [FeedConfig("cot", 0, "AZ")], run_loop=False)
    with pytest.raises(ValueError, match="AZ is not a participant"):
        asyncio.run(live.start())


def test_the_picture_comes_back_after_a_restart(
    engine: Engine, clock: FakeClock, tokens: dict[str, str]
) -> None:
    feeds = [FeedConfig("cot-tcp", 0, "TR", name="tr")]

    async def first() -> None:
        live = Live(engine, clock, feeds, run_loop=False)
        async with live:
            await _send_tcp(live.feeds.port("tr"), cot_event("anka", 34.0, 37.0))
            for _ in range(100):
                if len(live.picture):
                    break
                await asyncio.sleep(0.02)
        # stop() wrote the picture

    async def second() -> int:
        live = Live(engine, clock, feeds, run_loop=False)
        async with live:
            return len(live.picture)

    asyncio.run(first())
    clock.advance(seconds=10)
    assert asyncio.run(second()) == 1
    clock.advance(minutes=5)
    assert asyncio.run(second()) == 0
