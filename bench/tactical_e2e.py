"""The live picture end to end: CoT intake to alert on the stream, 5,000 tracks at 1 Hz.

Starts ``deconfliction serve`` as a real process on a fresh SQLite database with two CoT TCP
feeds (``DECONFLICTION_FEEDS``: one bound to TR, one to IL). From this process:

- a feeder thread per party keeps half of TRACKS tracks reporting at 1 Hz over its feed's TCP
  connection: each second is cut into SLICES sends, each carrying its share of the tracks
  (random traffic over Syria, 32-37.5 N, 35.5-42.5 E, 60-280 m/s, 30% climbing or descending,
  each party in its own altitude layer: see :func:`background`), so the server takes a steady
  5,000 events/s, not one burst a second;
- after WARM_S (the first burst of the whole picture absorbed), ENCOUNTERS planted encounters,
  three a second: an IL track appears first, alone; two seconds later a TR track appears 40 km
  ahead of it, head-on at the same level (separation lost in about 77 s: imminent, so its FLASH
  hotline thread is written in the same transaction as the alert). The TR track's first event
  creates the encounter: its send time is taken just before the ``sendall`` that carries it;
- a WebSocket client on ``/v1/stream`` (the mediator's token: it sees every alert and gives no
  delivered receipts) notes when each ``alert.raised`` event of a planted pair arrives.

Reported: p50/p99/max of send-to-arrival over the planted encounters (issue #6 anchor: p99 <=
250 ms at 5,000 tracks updating at 1 Hz), the feeds' counters (every event accepted?), the
CPU of the server's main process and of its feed process, and what the server's work costs at
that load, in this process: the CPU time of one CoT event (process time, little moved by other
load) in the feed process and in the server's, and the cycle over the run's
last picture (the 5,000 tracks): an early cycle (the tracks that reported since the last one),
a counted one (the whole picture), and the picture write (every track, in pieces).

Run: ``python -m bench tactical_e2e``. BENCH_E2E_TRACKS, BENCH_E2E_ENCOUNTERS and
DECONFLICTION_REACT_MS (the server's early-cycle spacing; 0 = only the 1 Hz cycles) change it.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import httpx
import numpy as np
from websockets.sync.client import connect

from bench import seed
from deconfliction.feeds.cot import CotSplitter, cot_time, event_state
from deconfliction.feeds.process import frame, loads_plain, state_of_wire, wire_state
from deconfliction.feeds.servers import FeedCounters, Intake
from deconfliction.store.db import make_engine
from deconfliction.tracks.loop import LoopConfig, TacticalLoop
from deconfliction.tracks.picture import IntakeRules, TrackPicture, TrackState
from deconfliction.tracks.service import PIECE_ROWS

TRACKS = int(os.environ.get("BENCH_E2E_TRACKS", "5000"))
ENCOUNTERS = int(os.environ.get("BENCH_E2E_ENCOUNTERS", "120"))
ENCOUNTERS_PER_S = 3
SLICES = 10
WARM_S = 15.0
LEAD_S = 2  # the IL track of an encounter reports alone this long before the TR one appears
DRAIN_S = 30.0  # after the last encounter, how long to wait for the alerts still to come
TARGET_P99_MS = 250.0
SOUTH, NORTH, WEST, EAST = 32.0, 37.5, 35.5, 42.5
METRES_PER_DEG = 111_320.0
PARTIES = ("TR", "IL")


@dataclass
class Traffic:
    """One party's tracks: flat-earth dead reckoning is plenty for one minute of flight."""

    party: str
    uid: list[str]
    lat: np.ndarray
    lon: np.ndarray
    alt: np.ndarray
    gs: np.ndarray
    course: np.ndarray
    vs: np.ndarray
    born: list[float] = field(default_factory=list)  # monotonic time a track starts reporting

    def advance(self, seconds: float) -> None:
        rad = np.radians(self.course)
        self.lat += self.gs * np.cos(rad) * seconds / METRES_PER_DEG
        self.lon += (
            self.gs * np.sin(rad) * seconds / (METRES_PER_DEG * np.cos(np.radians(self.lat)))
        )
        self.alt += self.vs * seconds

    def add(self, uid: str, lat: float, lon: float, alt: float, course: float, at: float) -> None:
        self.uid.append(uid)
        self.lat = np.append(self.lat, lat)
        self.lon = np.append(self.lon, lon)
        self.alt = np.append(self.alt, alt)
        self.gs = np.append(self.gs, 200.0)
        self.course = np.append(self.course, course)
        self.vs = np.append(self.vs, 0.0)
        self.born.append(at)


def background(rng: np.random.Generator, party: str, count: int) -> Traffic:
    """A party's background tracks in its own altitude layer (TR 300-5,700 m, IL 6,600-12,000
    m; climbing or descending towards the layer's middle, so never out of it in a run): the
    background never conflicts with itself; only planted tracks raise alerts."""
    low, high = (300.0, 5_700.0) if party == "TR" else (6_600.0, 12_000.0)
    alt = rng.uniform(low, high, count)
    climbing = rng.random(count) < 0.3
    middle = (low + high) / 2
    vs = np.where(climbing, rng.uniform(2.5, 15, count) * np.where(alt < middle, 1, -1), 0.0)
    return Traffic(
        party,
        [f"bg-{party}-{i}" for i in range(count)],
        rng.uniform(SOUTH, NORTH, count),
        rng.uniform(WEST, EAST, count),
        alt,
        rng.uniform(60, 280, count),
        rng.uniform(0, 360, count),
        vs,
        [0.0] * count,
    )


def cot(
    uid: str, lat: float, lon: float, alt: float, course: float, gs: float, vs: float, now: datetime
) -> str:
    speed = (gs * gs + vs * vs) ** 0.5
    slope = np.degrees(np.arctan2(vs, gs)) if speed else 0.0
    at = cot_time(now)
    return (
        f'<event version="2.0" uid="{uid}" type="a-f-A-M-F" time="{at}" start="{at}" '
        f'stale="{cot_time(now + timedelta(seconds=30))}" how="m-g">'
        f'<point lat="{lat:.6f}" lon="{lon:.6f}" hae="{alt:.1f}" ce="10" le="10"/>'
        f'<detail><track course="{course:.2f}" speed="{speed:.2f}" slope="{slope:.3f}"/>'
        "</detail></event>"
    )


class Feeder(threading.Thread):
    """Sends a party's tracks, a slice every 1/SLICES s; notes when each new track first went."""

    def __init__(self, traffic: Traffic, port: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.traffic = traffic
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.stop = stop
        self.lock = threading.Lock()
        self.first_sent: dict[str, tuple[float, float]] = {}  # (perf_counter, time.time)
        self.sent = 0
        self.late_slices = 0

    def run(self) -> None:
        step = 1.0 / SLICES
        tick = time.monotonic()
        slice_no = 0
        while not self.stop.is_set():
            with self.lock:
                tr = self.traffic
                now_m = time.monotonic()
                now = datetime.now(UTC)
                rows = [i for i in range(slice_no, len(tr.uid), SLICES) if tr.born[i] <= now_m]
                # A new track reports at once, in whatever slice is going out.
                fresh = [
                    i
                    for i in range(len(tr.uid))
                    if tr.uid[i] not in self.first_sent
                    and tr.born[i] <= now_m
                    and i % SLICES != slice_no
                ]
                events = [
                    cot(
                        tr.uid[i],
                        tr.lat[i],
                        tr.lon[i],
                        tr.alt[i],
                        tr.course[i],
                        tr.gs[i],
                        tr.vs[i],
                        now,
                    )
                    for i in rows + fresh
                ]
                new = [tr.uid[i] for i in rows + fresh if tr.uid[i] not in self.first_sent]
            payload = "".join(events).encode()
            sent_at = (time.perf_counter(), time.time())
            self.sock.sendall(payload)
            for uid in new:
                self.first_sent[uid] = sent_at
            self.sent += len(events)
            slice_no = (slice_no + 1) % SLICES
            tick += step
            with self.lock:
                self.traffic.advance(step)
            pause = tick - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                self.late_slices += 1
        self.sock.close()


class Listener(threading.Thread):
    """The WebSocket client: arrival time of each alert.raised, by (a, b)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.ws = connect(url, max_size=None, open_timeout=30)
        # (a, b): (arrival perf_counter, the alert's raised_at: the cycle's time, wall clock)
        self.raised: dict[tuple[str, str | None], tuple[float, float]] = {}
        self.kinds: dict[str, int] = {}

    def run(self) -> None:
        try:
            for frame in self.ws:
                arrived = time.perf_counter()
                parsed = json.loads(frame)  # one event, or an array of those ready together
                for event in parsed if isinstance(parsed, list) else [parsed]:
                    self.kinds[event["kind"]] = self.kinds.get(event["kind"], 0) + 1
                    if event["kind"] == "alert.raised":
                        alert = event["payload"]["alert"]
                        cycle = datetime.fromisoformat(alert["raised_at"]).timestamp()
                        self.raised.setdefault((alert["a"], alert["b"]), (arrived, cycle))
        except Exception:  # closed at the end of the run
            return


def plant(feeders: dict[str, Feeder], rng: np.random.Generator, k: int, at: float) -> None:
    """Encounter k: an IL track now, the TR track 40 km ahead of it LEAD_S seconds later."""
    lat0, lon0 = rng.uniform(SOUTH + 0.5, NORTH - 0.5), rng.uniform(WEST + 0.5, EAST - 0.5)
    course = float(rng.uniform(0, 360))
    alt = float(rng.uniform(2000, 11000))
    ahead = 40_000.0 + 200.0 * LEAD_S  # the IL track flies on while the TR one waits
    rad = np.radians(course)
    lat1 = lat0 + ahead * np.cos(rad) / METRES_PER_DEG
    lon1 = lon0 + ahead * np.sin(rad) / (METRES_PER_DEG * np.cos(np.radians(lat0)))
    with feeders["IL"].lock:
        feeders["IL"].traffic.add(f"enc-{k}", lat0, lon0, alt, course, at)
    with feeders["TR"].lock:
        feeders["TR"].traffic.add(
            f"enc-{k}", lat1, lon1, alt + 50, (course + 180) % 360, at + LEAD_S
        )


def _states(traffic: list[Traffic], now: datetime) -> list[TrackState]:
    return [
        TrackState(
            tr.party,
            uid,
            float(tr.lat[i]),
            float(tr.lon[i]),
            float(tr.alt[i]),
            float(tr.gs[i]),
            float(tr.course[i]),
            float(tr.vs[i]),
            now,
            now + timedelta(seconds=30),
            "cot",
        )
        for tr in traffic
        for i, uid in enumerate(tr.uid)
    ]


@dataclass
class CycleCosts:
    """Medians of 10, in ms, over the run's last picture."""

    tracks: int
    early_wall: float
    early_cpu: float
    counted_wall: float
    counted_cpu: float
    write_wall: float
    write_cpu: float
    piece_wall: float  # a piece of the picture write: what an alert may wait for


def cycle_at_load(url: str, traffic: list[Traffic], react_s: float) -> CycleCosts:
    """The cycle over the run's last picture (every track of ``traffic`` at its last place), in
    a loop in this process on the run's database: an early cycle after the share of the tracks
    that reports in ``react_s`` at 1 Hz, a counted cycle (the whole picture), and the picture
    write of every track in its pieces."""
    engine = make_engine(url)
    picture = TrackPicture()
    now = datetime.now(UTC)
    for state in _states(traffic, now):
        picture.update(state)
    loop = TacticalLoop(engine, picture, LoopConfig(), persist=True)
    loop.step(now)  # reads the zones, resumes the stored alerts, writes the picture once
    every = max(1, round(1.0 / react_s))
    samples: dict[str, list[float]] = {}

    def timed(name: str, work: Callable[[], object]) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        samples.setdefault(f"{name}_wall", []).append(time.perf_counter() - wall)
        samples.setdefault(f"{name}_cpu", []).append(time.process_time() - cpu)

    for k in range(1, 11):
        at = now + timedelta(seconds=k)
        states = _states(traffic, at)
        for state in states[k % every :: every]:
            picture.update(state)
        timed("early", partial(loop.step, at, counted=False))
        for state in states:
            picture.update(state)
        timed("counted", partial(loop.step, at, write=False))
        timed("write", loop.write_picture)
    engine.dispose()
    medians = {name: 1e3 * statistics.median(x) for name, x in samples.items()}
    pieces = -(-len(picture) // PIECE_ROWS)
    return CycleCosts(len(picture), piece_wall=medians["write_wall"] / pieces, **medians)


def feed_process(pid: int) -> int:
    """The server's feed process (``python -m deconfliction.feeds``, its child)."""
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii").split():
        command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        if b"deconfliction.feeds" in command:
            return int(child)
    raise RuntimeError(f"the server {pid} has no feed process")


def intake_cpu_us(count: int = 2000) -> tuple[float, float]:
    """CPU time (process time, so little moved by other load) of one CoT event, in
    microseconds: in the feed process, splitting and parsing it, and in the server's, taking it
    from the feed process's batch (unpickle, party, intake rules, picture) as
    ``FeedServers`` does, in batches of 50."""
    now = datetime.now(UTC)
    data = "".join(
        cot(f"u{i}", 34.0, 38.0, 5000.0, 90.0, 200.0, 3.0, now) for i in range(count)
    ).encode()
    rules = IntakeRules()
    began = time.process_time()
    wires = []
    for event in CotSplitter().feed(data):
        assert isinstance(event, bytes)
        wires.append(wire_state(0, event_state(event, "TR", rules)))
    parsed = time.process_time()
    frames = [frame((wires[k : k + 50], [])) for k in range(0, count, 50)]
    intake = Intake(TrackPicture(), rules, lambda: now)
    counters = FeedCounters("bench", "cot-tcp", "TR")
    taking = time.process_time()
    for data_frame in frames:
        states, _ = loads_plain(data_frame[4:])
        for wire in states:
            intake.offer(state_of_wire("TR", wire), counters)
    taken = time.process_time()
    assert counters.accepted == count
    return 1e6 * (parsed - began) / count, 1e6 * (taken - taking) / count


def main() -> None:
    rng = np.random.default_rng(20301124)
    workdir = Path(tempfile.mkdtemp(prefix="dcf-e2e-"))
    url = seed.sqlite_url(workdir / "e2e.db")
    tokens = seed.init_database(url)
    ports = {party: seed.free_port() for party in PARTIES}
    os.environ["DECONFLICTION_FEEDS"] = ",".join(f"cot-tcp:{ports[p]}:{p}" for p in PARTIES)
    react_ms = os.environ.get("DECONFLICTION_REACT_MS", "50 (default)")
    server = seed.start_server(url, workdir / "server.log")
    stop = threading.Event()
    try:
        listener = Listener(f"ws://127.0.0.1:{server.port}/v1/stream?token={tokens['az-med']}")
        listener.start()
        feeders = {p: Feeder(background(rng, p, TRACKS // 2), ports[p], stop) for p in PARTIES}
        for feeder in feeders.values():
            feeder.start()
        print(f"server ready in {server.ready_s:.1f} s; warming up {WARM_S:.0f} s", flush=True)
        time.sleep(WARM_S)
        feeds_pid = feed_process(server.process.pid)
        cpu_before = seed.cpu_seconds(server.process.pid)
        feeds_cpu_before = seed.cpu_seconds(feeds_pid)
        began = time.monotonic()
        began_pc = time.perf_counter()
        for k in range(ENCOUNTERS):
            plant(feeders, rng, k, time.monotonic())
            time.sleep(1.0 / ENCOUNTERS_PER_S)
        # Until every planted encounter has been seen on the stream (at most DRAIN_S more).
        drain_until = time.monotonic() + LEAD_S + DRAIN_S
        while time.monotonic() < drain_until:
            seen = list(listener.raised)
            planted = sum(1 for a, b in seen if a.startswith("IL/enc-") and b == f"TR{a[2:]}")
            if planted >= ENCOUNTERS:
                break
            time.sleep(0.2)
        measured_s = time.monotonic() - began
        cpu_s = seed.cpu_seconds(server.process.pid) - cpu_before
        feeds_cpu_s = seed.cpu_seconds(feeds_pid) - feeds_cpu_before
        stop.set()
        for feeder in feeders.values():
            feeder.join(timeout=5)
        time.sleep(1.0)  # the last events in flight
        with httpx.Client(
            base_url=server.base, headers={"Authorization": f"Bearer {tokens['az-med']}"}
        ) as client:
            feeds = client.get("/v1/tracks/feeds").json()
        listener.ws.close()
        rss_end, rss_peak = seed.rss_mib(server.process.pid)
    finally:
        stop.set()
        seed.stop_server(server)
    react_s = LoopConfig.from_env(os.environ).react_s or LoopConfig.react_s or 0.05
    costs = cycle_at_load(url, [f.traffic for f in feeders.values()], react_s)
    parse_us, take_us = intake_cpu_us()

    latencies: list[float] = []
    waits: list[float] = []  # send to the start of the cycle that raised it
    sent: list[float] = []  # seconds after the first encounter
    missing = 0
    for k in range(ENCOUNTERS):
        uid = f"enc-{k}"
        got = listener.raised.get((f"IL/{uid}", f"TR/{uid}"))
        sent_at = feeders["TR"].first_sent.get(uid)
        if got is None or sent_at is None:
            missing += 1
        else:
            latencies.append(got[0] - sent_at[0])
            waits.append(got[1] - sent_at[1])
            sent.append(sent_at[0] - began_pc)
    p50 = seed.quantile_ms(latencies, 0.5)
    p99 = seed.quantile_ms(latencies, 0.99)
    worst = 1e3 * max(latencies) if latencies else float("nan")
    slowest = sorted(zip(latencies, waits, sent, strict=True), reverse=True)[:5]
    events_sent = sum(f.sent for f in feeders.values())
    accepted = sum(f["accepted"] for f in feeds)
    dropped: dict[str, int] = {}
    for f in feeds:
        for reason, count in f["dropped"].items():
            dropped[reason] = dropped.get(reason, 0) + count
    verdict = "met" if p99 <= TARGET_P99_MS else "MISSED"
    seed.table(
        [
            ("tracks over CoT TCP (2 feeds, 1 Hz, 10 slices/s)", f"{TRACKS:,}"),
            ("server early cycles (DECONFLICTION_REACT_MS)", f"{react_ms} ms"),
            ("events sent / accepted by the feeds", f"{events_sent:,} / {accepted:,}"),
            ("events dropped by the feeds", json.dumps(dropped) if dropped else "0"),
            (
                "feeder slices sent late (client side)",
                str(sum(f.late_slices for f in feeders.values())),
            ),
            (
                f"planted encounters alerted / missing ({ENCOUNTERS})",
                f"{len(latencies)} / {missing}",
            ),
            ("CoT send -> alert.raised on /v1/stream p50", f"{p50:.0f} ms"),
            (
                "CoT send -> alert.raised on /v1/stream p99",
                f"{p99:.0f} ms (target <= {TARGET_P99_MS:.0f}: {verdict}, ratio "
                f"{p99 / TARGET_P99_MS:.2f})",
            ),
            ("... max", f"{worst:.0f} ms"),
            (
                "of which: send -> start of the cycle that raised it, p50 / p99",
                f"{seed.quantile_ms(waits, 0.5):.0f} / {seed.quantile_ms(waits, 0.99):.0f} ms",
            ),
            (
                "slowest five: sent at +s: ms (of which before the cycle)",
                ", ".join(f"+{at:.0f}: {1e3 * t:.0f} ({1e3 * w:.0f})" for t, w, at in slowest),
            ),
            ("stream events seen (all kinds)", json.dumps(dict(sorted(listener.kinds.items())))),
            (
                "server CPU during the measured phase: main process / feed process",
                f"{cpu_s / measured_s:.0%} / {feeds_cpu_s / measured_s:.0%} of a core",
            ),
            ("server RSS at the end / peak", f"{rss_end:,.0f} / {rss_peak:,.0f} MiB"),
            (
                f"CoT intake CPU per event: feed process (split, parse) / at {TRACKS:,} events/s",
                f"{parse_us:.0f} us / {parse_us * TRACKS / 1e6:.0%} of a core",
            ),
            (
                "... server process (take from the batch, rules, picture) / at that rate",
                f"{take_us:.1f} us / {take_us * TRACKS / 1e6:.0%} of a core",
            ),
            (
                f"early cycle at that load ({costs.tracks:,} tracks, in process, the "
                f"{react_s * 1e3:.0f} ms share reported): wall / CPU",
                f"{costs.early_wall:.1f} / {costs.early_cpu:.1f} ms",
            ),
            (
                "counted cycle (whole picture, alerts): wall / CPU",
                f"{costs.counted_wall:.0f} / {costs.counted_cpu:.0f} ms",
            ),
            (
                f"picture write of every track (every {LoopConfig.picture_every_s:.0f} s): "
                "wall / CPU / a piece",
                f"{costs.write_wall:.0f} / {costs.write_cpu:.0f} / {costs.piece_wall:.1f} ms",
            ),
        ]
    )
    print(f"\n(load average at the end: {' / '.join(f'{x:.1f}' for x in os.getloadavg())})")
    print(f"\n(server log: {server.log})")


if __name__ == "__main__":
    main()
