"""Every feed over real sockets on 127.0.0.1 (ephemeral ports): CoT over TCP and UDP, SBS-1
listening and dialing; bad input is dropped and counted and the server keeps serving."""

from __future__ import annotations

import socket
import threading
from datetime import timedelta

import pytest

from deconfliction.feeds.servers import FeedConfig, FeedServers
from deconfliction.tracks.picture import IntakeRules, TrackPicture
from tests.conftest import T0, FakeClock
from tests.feeds.support import (
    BILLION_LAUGHS,
    EXTERNAL_ENTITY,
    RunningFeeds,
    cot_event,
    sbs1,
    send_tcp,
    send_udp,
    wait_until,
)


def _servers(*configs: FeedConfig) -> tuple[FeedServers, TrackPicture]:
    picture = TrackPicture()
    return FeedServers(list(configs), picture, IntakeRules(), FakeClock()), picture


def test_cot_tcp_events_split_across_writes() -> None:
    servers, picture = _servers(FeedConfig("cot-tcp", 0, "IL"))
    stream = cot_event("a", 34.1) + b"\r\n" + cot_event("b", 34.2) + cot_event("c", 34.3)
    mid_tag = stream.index(b"</event>") + 3  # "</e" | "vent>"
    mid_attr = stream.index(b'uid="b"') + 5
    pieces = [stream[:mid_tag], stream[mid_tag:mid_attr], stream[mid_attr:-20], stream[-20:]]
    with RunningFeeds(servers):
        send_tcp(servers.port("cot-tcp:0:IL"), pieces)
        wait_until(lambda: len(picture) == 3)
        status = servers.status()[0]
    assert [(s.key, s.lat) for s in picture.snapshot()] == [
        ("IL/a", 34.1),
        ("IL/b", 34.2),
        ("IL/c", 34.3),
    ]
    assert (status.received, status.accepted, status.dropped) == (3, 3, {})


def test_cot_udp_one_event_per_datagram() -> None:
    servers, picture = _servers(FeedConfig("cot-udp", 0, "TR"))
    with RunningFeeds(servers):
        port = servers.port("cot-udp:0:TR")
        send_udp(port, [cot_event("u1"), cot_event("u2", 35.0), b"not xml at all"])
        wait_until(lambda: servers.status()[0].received == 3)
        status = servers.status()[0]
    assert [s.key for s in picture.snapshot()] == ["TR/u1", "TR/u2"]
    assert status.dropped == {"malformed": 1}


def test_cot_kind_listens_on_tcp_and_udp_on_one_port() -> None:
    servers, picture = _servers(FeedConfig("cot", 0, "IL", name="both"))
    with RunningFeeds(servers):
        port = servers.port("both")
        send_tcp(port, [cot_event("tcp")])
        send_udp(port, [cot_event("udp")])
        wait_until(lambda: len(picture) == 2)
    assert {s.key for s in picture.snapshot()} == {"IL/tcp", "IL/udp"}


def test_sbs1_merges_msg3_and_msg4_and_converts_local_time() -> None:
    config = FeedConfig("sbs1", 0, "TR", utc_offset=timedelta(hours=3))
    servers, picture = _servers(config)
    local = T0.replace(tzinfo=None) + timedelta(hours=3, seconds=5)  # 03:00:05 at UTC+3
    lines = [
        sbs1(1, "4BA9C1", local, callsign="THY6JM  "),
        sbs1(3, "4BA9C1", local, altitude="20000", lat="34.90000", lon="38.50000"),
        sbs1(8, "4BA9C1", local),
        sbs1(4, "4BA9C1", local, speed="400", track="135", vrate="-1200"),
    ]
    data = b"".join(lines)
    with RunningFeeds(servers):
        send_tcp(servers.port(config.label), [data[:70], data[70:200], data[200:]])
        wait_until(lambda: servers.status()[0].received == 4)
        status = servers.status()[0]
    (state,) = picture.snapshot()
    assert (state.key, state.callsign, state.source) == ("TR/4BA9C1", "THY6JM", "sbs1")
    assert state.time == T0 + timedelta(seconds=5)
    assert (state.lat, state.lon) == (34.9, 38.5)
    assert state.alt_m == pytest.approx(6096.0)
    assert state.gs_mps == pytest.approx(205.778, abs=1e-3)
    assert state.course_deg == 135.0
    assert state.vs_mps == pytest.approx(-6.096)
    assert (status.accepted, status.ignored, status.dropped) == (1, 3, {})


def test_sbs1_dials_a_receiver() -> None:
    receiver = socket.create_server(("127.0.0.1", 0))
    port = receiver.getsockname()[1]
    local = T0.replace(tzinfo=None)

    def serve_once() -> None:
        conn, _ = receiver.accept()
        with conn:
            conn.sendall(sbs1(3, "738065", local, altitude="30000", lat="33.5", lon="36.3"))
            conn.sendall(sbs1(4, "738065", local, speed="450", track="10", vrate="0"))

    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    config = FeedConfig("sbs1", port, "IL", connect="127.0.0.1")
    servers, picture = _servers(config)
    with RunningFeeds(servers):
        wait_until(lambda: len(picture) == 1)
    thread.join(5)
    receiver.close()
    assert picture.snapshot()[0].key == "IL/738065"


def test_bad_input_is_dropped_counted_and_the_server_keeps_serving() -> None:
    servers, picture = _servers(FeedConfig("cot", 0, "IL", name="cot"))
    oversized = cot_event("big", extra="<remarks>" + "x" * 70_000 + "</remarks>")
    with RunningFeeds(servers):
        port = servers.port("cot")
        send_tcp(
            port,
            [
                b"<event uid='m'><point></event>",  # malformed
                BILLION_LAUGHS,
                EXTERNAL_ENTITY,
                cot_event("far", 95.0),  # out of range
                oversized[:40_000],
                oversized[40_000:],
                cot_event("ok-1"),
                cot_event("stale", time=T0 - timedelta(minutes=5)),
                cot_event("cut")[:150],  # truncated: the connection closes here
            ],
        )
        send_udp(port, [BILLION_LAUGHS, EXTERNAL_ENTITY, cot_event("far", 34, 200)])
        wait_until(lambda: servers.status()[0].received == 11)
        send_tcp(port, [cot_event("ok-2")])  # a new connection is served as before
        wait_until(lambda: len(picture) == 2)
        status = servers.status()[0]
    assert [s.key for s in picture.snapshot()] == ["IL/ok-1", "IL/ok-2"]
    assert status.accepted == 2
    assert status.dropped == {
        "forbidden_xml": 4,
        "malformed": 1,
        "out_of_range": 2,
        "oversized": 1,
        "stale": 1,
        "truncated": 1,
    }
    after = servers.status()[0]
    assert after.connections == 0 and after.listening is False


def test_sbs1_bad_lines_are_dropped_and_counted() -> None:
    servers, picture = _servers(FeedConfig("sbs1", 0, "TR", name="sbs"))
    local = T0.replace(tzinfo=None)
    lines = [
        b"MSG,3,1,1,ZZZZZZ,1,2030/01/01,00:00:00.000,,,,1000,,,34,38,,,0,0,0,0\n",  # ICAO
        b"MSG,3,1,1\n",  # too few fields
        b"\xff\xfe garbage\n",
        b"A" * 5000 + b"\n",  # oversized line
        sbs1(3, "4BA9C1", local, altitude="1000", lat="91", lon="38"),
        sbs1(3, "4BA9C1", local, altitude="lots", lat="34", lon="38"),
        sbs1(3, "4BA9C1", local, altitude="1000", lat="34", lon="38"),
        sbs1(4, "4BA9C1", local, speed="100", track="90"),
    ]
    with RunningFeeds(servers):
        send_tcp(servers.port("sbs"), lines)
        wait_until(lambda: len(picture) == 1)
        status = servers.status()[0]
    assert status.dropped == {"bad_value": 1, "malformed": 3, "out_of_range": 1, "oversized": 1}
    assert status.accepted == 1


def test_connections_over_the_limit_are_refused_and_counted() -> None:
    picture = TrackPicture()
    servers = FeedServers(
        [FeedConfig("cot-tcp", 0, "IL", name="few")],
        picture,
        IntakeRules(),
        FakeClock(),
        max_connections=1,
    )
    with RunningFeeds(servers):
        port = servers.port("few")
        first = socket.create_connection(("127.0.0.1", port))
        wait_until(lambda: servers.status()[0].connections == 1)
        second = socket.create_connection(("127.0.0.1", port))
        wait_until(lambda: servers.status()[0].dropped.get("too_many_connections") == 1)
        first.sendall(cot_event("still-served"))
        first.close()
        second.close()
        wait_until(lambda: len(picture) == 1)
