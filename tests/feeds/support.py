"""Helpers for the feed tests: CoT and SBS-1 text, feed servers running in a thread of their own
(an event loop as in the server), and polling until something happened."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from types import TracebackType

from deconfliction.feeds.cot import cot_time
from deconfliction.feeds.servers import FeedServers
from tests.conftest import T0


def cot_event(
    uid: str,
    lat: float = 34.8,
    lon: float = 38.9,
    hae: float = 6000.0,
    *,
    time: datetime = T0,
    stale_s: float = 60.0,
    course: float = 90.0,
    speed: float = 200.0,
    kind: str = "a-f-A-M-F",
    callsign: str = "VIPER 1",
    extra: str = "",
) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>'
        f'<event version="2.0" uid="{uid}" type="{kind}" how="m-g" time="{cot_time(time)}" '
        f'start="{cot_time(time)}" stale="{cot_time(time + timedelta(seconds=stale_s))}">'
        f'<point lat="{lat}" lon="{lon}" hae="{hae}" ce="10" le="10"/>'
        f'<detail><track course="{course}" speed="{speed}"/><contact callsign="{callsign}"/>'
        f"{extra}</detail></event>"
    ).encode()


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE event [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
    b'<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>'
    b'<event version="2.0" uid="&lol4;" type="a-f-A" time="2030-01-01T00:00:00Z">'
    b'<point lat="34" lon="38" hae="1000"/></event>'
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE event [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<event version="2.0" uid="xxe" type="a-f-A" time="2030-01-01T00:00:00Z">'
    b'<point lat="34" lon="38" hae="1000"/><detail><remarks>&x;</remarks></detail></event>'
)


def sbs1(kind: int, icao: str, local: datetime, **fields: str) -> bytes:
    """A BaseStation line: MSG,kind with the generated/logged date and time ``local``."""
    values = [""] * 22
    values[0], values[1], values[2], values[3] = "MSG", str(kind), "1", "1"
    values[4], values[5] = icao, "1"
    day, clock = local.strftime("%Y/%m/%d"), local.strftime("%H:%M:%S.%f")[:-3]
    values[6], values[7], values[8], values[9] = day, clock, day, clock
    names = {
        "callsign": 10,
        "altitude": 11,
        "speed": 12,
        "track": 13,
        "lat": 14,
        "lon": 15,
        "vrate": 16,
    }
    for name, value in fields.items():
        values[names[name]] = value
    values[18:22] = ["0", "0", "0", "0"]
    return (",".join(values) + "\r\n").encode()


def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def send_tcp(port: int, pieces: list[bytes], pause_s: float = 0.03) -> None:
    """Send ``pieces`` as separate writes (TCP_NODELAY and a pause between them, so the server
    reads them apart), then close."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(pause_s)


def send_udp(port: int, datagrams: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for datagram in datagrams:
            sock.sendto(datagram, ("127.0.0.1", port))


class RunningFeeds:
    """``with RunningFeeds(servers):`` the servers run on an event loop in a thread."""

    def __init__(self, servers: FeedServers) -> None:
        self.servers = servers
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> FeedServers:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.servers.start(), self.loop).result(60)
        return self.servers

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        asyncio.run_coroutine_threadsafe(self.servers.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
