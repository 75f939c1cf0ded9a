"""The event stream at scale: 1,000 WebSocket clients on `deconfliction serve`, hotline messages
POSTed to it, and how long each takes to reach every client that may see it.

Starts the server as a real process (uvicorn) on a fresh database, connects CLIENTS WebSocket
clients (`GET /v1/stream`) from RECEIVERS load processes (asyncio + websockets, loopback only),
then, from this process (httpx):

- latency: LATENCY_COUNT FLASH messages TR -> IL, one every 1/LATENCY_RATE s (FLASH messages
  are rare; faster, the run measures a queue); each reaches the IL clients, the TR clients (the
  sender's party) and the AZ clients (the mediator). The delay is from just before the POST to
  the client's receipt of the frame, for every (message, client);
- throughput: SENDERS concurrent senders POST ROUTINE messages TR -> SY for SUSTAIN_S seconds
  (each answered 201 only after its transaction committed); messages/s accepted, and
  messages/s delivered: the messages every SY, TR and AZ client got, over the time until the
  last of them arrived.

The load processes compare the time a frame reached the client's socket (the kernel's receive
timestamp) with the send time carried in the message text, so client and server share this
machine's clock; the time the load process read the frame is reported too (`bench.wsclients`:
with hundreds of clients in one process, each read waits for the ones before it). A frame
holds one event or an array of the events ready together; the clients count frames and events
per phase, so the run reports frames per FLASH message and the server's CPU per frame (also net
of what the connected server costs idle, measured for IDLE_S seconds before the FLASH phase:
keep-alive pings, timers, background loops). Issue #5 anchors: p99 <= 100 ms with 1,000
clients, >= 500 messages/s; the poll-based stream measured ~712 ms p99 earlier.

Run: ``python -m bench stream``. BENCH_STREAM_CLIENTS, BENCH_STREAM_SUSTAIN_S,
BENCH_STREAM_DEFLATE=off (clients do not offer per-message compression, so the server does not
compress each client's frames) and BENCH_STREAM_BACKEND=postgresql (two servers on one
PostgreSQL, clients split between them, messages POSTed to the first: the cross-replica path)
change the set-up. The server CPU per message is the figure least bent by other load.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode

from bench import seed, serving, wsclients
from bench.areas import area_toml

CLIENTS = int(os.environ.get("BENCH_STREAM_CLIENTS", "1000"))
SUSTAIN_S = float(os.environ.get("BENCH_STREAM_SUSTAIN_S", "15"))
BACKEND = os.environ.get("BENCH_STREAM_BACKEND", "sqlite")
# Whether clients offer per-message compression, as browsers do; the server accepts it.
DEFLATE = os.environ.get("BENCH_STREAM_DEFLATE", "on") != "off"
RECEIVERS = 2
LATENCY_COUNT = 30
# Below saturation: with 1,000 clients a FLASH costs 1,000 frames (the message to 950 clients,
# its delivered receipt to the sender's 30 and the mediator's 20).
LATENCY_RATE = 2.0
SENDERS = 32
IDLE_S = 5.0  # how long the idle server's CPU is measured, once the clients are connected
DRAIN_S = 30.0  # at most this long after the last POST for the last deliveries
CONNECT_LIMIT_S = 120.0
# Shares of the clients: IL receives the FLASH messages, SY the sustained ones; TR (the
# sender's party) and AZ (the mediator) see both.
MIX = (("IL", 0.90), ("SY", 0.05), ("TR", 0.03), ("AZ", 0.02))
TARGET_P99_MS = 100.0
TARGET_RATE = 500.0
EARLIER_P99_MS = 712.0

AREA_TOML = area_toml("Stream benchmark area", ("tr-duty", "il-duty", "sy-duty", "az-med"))
SENT_KIND = '"kind": "message.sent"'
OFFICER = {"TR": "tr-duty", "IL": "il-duty", "SY": "sy-duty", "AZ": "az-med"}


def client_parties(count: int) -> list[str]:
    """The party of each client, by MIX (rounded, the rest to the first)."""
    parties = [p for p, share in MIX[1:] for _ in range(round(count * share))]
    return ["IL"] * (count - len(parties)) + parties


# -- the load processes: many WebSocket clients each ---------------------------------------


PHASES = ("connect", "flash", "sustained")


def receive(
    urls: list[str], ready: Any, stop: Any, phase: Any, out: str
) -> None:  # a process: runs its clients, then writes what they got to `out`
    # (phase, sequence) -> delays in seconds, one per client that got it: until the frame
    # reached the client's socket, and until this process read it (`bench.wsclients`)
    got: dict[str, list[float]] = defaultdict(list)
    read: dict[str, list[float]] = defaultdict(list)
    arrivals: list[float] = []
    failures: list[str] = []
    sample: list[str] = []  # one message frame as sent, for `framing_us`
    frames = [0] * len(PHASES)  # by the phase (index in PHASES) the run was in
    sent_kind = SENT_KIND.encode()

    def on_text(raw: bytes, arrived: float, now: float) -> None:
        frames[phase.value] += 1
        if sent_kind not in raw:  # receipts: not parsed, to spare the shared CPU
            return
        parsed = json.loads(raw)
        if not sample and not isinstance(parsed, list):
            sample.append(raw.decode())
        for event in parsed if isinstance(parsed, list) else [parsed]:
            if event["kind"] != "message.sent":
                continue
            text = event["payload"]["message"]["text"]["content"]
            kind, sequence, sent = text.split()[1:4]
            got[f"{kind} {sequence}"].append(arrived - float(sent))
            read[f"{kind} {sequence}"].append(now - float(sent))
            arrivals.append(arrived)

    clients = wsclients.Clients()
    for url in urls:
        try:
            clients.add(wsclients.connect(url, DEFLATE, CONNECT_LIMIT_S))
        except (OSError, wsclients.HandshakeFailed) as exc:  # a lost client is a finding
            failures.append(repr(exc))
    with ready.get_lock():
        ready.value += len(urls)
    while not stop.is_set():
        failures.extend(clients.poll(on_text, 0.2))
    clients.close()
    Path(out).write_text(
        json.dumps(
            {
                "got": got,
                "read": read,
                "last": max(arrivals, default=0.0),
                "failures": failures,
                "sample": sample[0] if sample else "",
                "frames": frames,
            }
        ),
        encoding="utf-8",
    )


def framing_us(frame: str, deflate: bool, count: int = 5000) -> float:
    """CPU microseconds to frame one server message as the server's WebSocket library does,
    with or without per-message compression (which runs once per client and frame)."""
    extensions = [PerMessageDeflate(False, False, 15, 15)] if deflate else []
    data = frame.encode()
    began = time.process_time()
    for _ in range(count):
        Frame(Opcode.TEXT, data).serialize(mask=False, extensions=extensions)
    return (time.process_time() - began) / count * 1e6


# -- the sender -------------------------------------------------------------------------------


@dataclass
class Sent:
    accepted: dict[str, float] = field(default_factory=dict)  # "phase seq" -> send time
    answer_s: list[float] = field(default_factory=list)
    answered: dict[str, float] = field(default_factory=dict)  # "phase seq" -> answer delay
    errors: list[str] = field(default_factory=list)


def message(phase: str, sequence: int, sent: float) -> dict[str, Any]:
    flash = phase == "flash"
    return {
        "type": "notice",
        "subject": f"bench {phase} {sequence}",
        "to": ["IL"] if flash else ["SY"],
        "priority": "FLASH" if flash else "ROUTINE",
        "text": f"bench {phase} {sequence} {sent:.6f}",
        "language": "en",
    }


async def post(http: httpx.AsyncClient, result: Sent, phase: str, sequence: int) -> None:
    sent = time.time()
    try:
        response = await http.post("/v1/hotline/messages", json=message(phase, sequence, sent))
    except httpx.HTTPError as exc:
        result.errors.append(repr(exc))
        return
    if response.status_code == 201:
        result.accepted[f"{phase} {sequence}"] = sent
        result.answer_s.append(time.time() - sent)
        result.answered[f"{phase} {sequence}"] = result.answer_s[-1]
    else:
        result.errors.append(f"{response.status_code} {response.text[:200]}")


async def warm_up(http: httpx.AsyncClient) -> None:
    """One untimed request first: a new client's first one also imports its async backend and
    connects (~60 ms here), which is this process's cost, not the server's answer."""
    (await http.get("/v1/me")).raise_for_status()


async def send_flash(base: str, token: str) -> Sent:
    result = Sent()
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=8)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=20.0, limits=limits
    ) as http:
        await warm_up(http)
        began = time.monotonic()
        posts = []
        for sequence in range(LATENCY_COUNT):
            await asyncio.sleep(max(0.0, began + sequence / LATENCY_RATE - time.monotonic()))
            posts.append(asyncio.create_task(post(http, result, "flash", sequence)))
        await asyncio.gather(*posts)
    return result


async def send_sustained(base: str, token: str) -> tuple[Sent, float]:
    result = Sent()
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=SENDERS)
    counter = iter(range(10**9))
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=20.0, limits=limits
    ) as http:
        await warm_up(http)
        began = time.monotonic()
        until = began + SUSTAIN_S

        async def sender() -> None:
            while time.monotonic() < until:
                await post(http, result, "rate", next(counter))

        await asyncio.gather(*(sender() for _ in range(SENDERS)))
        return result, time.monotonic() - began


# -- the run ----------------------------------------------------------------------------------


def system_seconds(pid: int) -> float:
    """The system (kernel) CPU seconds a process has used so far: on loopback, writing a frame
    to a socket runs the receiving side's TCP work in the sender's system time too."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return int(fields[12]) / os.sysconf("SC_CLK_TCK")


def wait_for(ready: Any, count: int, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while ready.value < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {ready.value} of {count} clients connected in {limit_s} s")
        time.sleep(0.2)


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    schema = None
    if BACKEND == "postgresql":
        url, schema = seed.pg_schema_url("dcf_stream")
        replicas = 2
    else:
        url = seed.sqlite_url(workdir / "stream.db")
        replicas = 1
    tokens = seed.init_database(url, AREA_TOML)
    servers = [
        serving.start_server(url, workdir / f"server{k}.log", timeout_s=120)
        for k in range(replicas)
    ]
    context = multiprocessing.get_context("spawn")
    ready = context.Value("i", 0)
    phase = context.RawValue("i", 0)  # the index in PHASES, set here, read by every frame
    stop = context.Event()
    parties = client_parties(CLIENTS)
    urls = [
        f"ws://127.0.0.1:{servers[i % replicas].port}/v1/stream?token={tokens[OFFICER[p]]}"
        for i, p in enumerate(parties)
    ]
    outputs = [workdir / f"receiver{k}.json" for k in range(RECEIVERS)]
    receivers = [
        context.Process(
            target=receive, args=(urls[k::RECEIVERS], ready, stop, phase, str(outputs[k]))
        )
        for k in range(RECEIVERS)
    ]
    try:
        began = time.perf_counter()
        for process in receivers:
            process.start()
        wait_for(ready, CLIENTS, CONNECT_LIMIT_S)
        connect_s = time.perf_counter() - began
        print(f"{CLIENTS} clients connected in {connect_s:.1f} s", flush=True)
        base = servers[0].base
        # What the connected, idle server costs (keep-alive pings, timers, the loops): not the
        # fan-out's cost, so a second FLASH figure per frame leaves it out.
        idle_before = sum(seed.cpu_seconds(s.process.pid) for s in servers)
        time.sleep(IDLE_S)
        idle_cpu_per_s = (
            sum(seed.cpu_seconds(s.process.pid) for s in servers) - idle_before
        ) / IDLE_S
        cpu_before = sum(seed.cpu_seconds(s.process.pid) for s in servers)
        flash_began = time.perf_counter()
        system_before = sum(system_seconds(s.process.pid) for s in servers)
        phase.value = PHASES.index("flash")
        flash = asyncio.run(send_flash(base, tokens["tr-duty"]))

        print(f"flash phase: {len(flash.accepted)} accepted", flush=True)
        time.sleep(2.0)  # the last FLASH frames land before the load changes
        flash_cpu_s = sum(seed.cpu_seconds(s.process.pid) for s in servers) - cpu_before
        flash_idle_s = idle_cpu_per_s * (time.perf_counter() - flash_began)
        flash_system_s = sum(system_seconds(s.process.pid) for s in servers) - system_before
        phase.value = PHASES.index("sustained")
        sustained, sustained_s = asyncio.run(send_sustained(base, tokens["tr-duty"]))
        print(f"sustained phase: {len(sustained.accepted)} accepted", flush=True)
        last_post = time.time()
        time.sleep(min(DRAIN_S, 5.0 + len(sustained.accepted) / 100))
        server_cpu_s = sum(seed.cpu_seconds(s.process.pid) for s in servers) - cpu_before
        sustained_cpu_s = server_cpu_s - flash_cpu_s
        stop.set()
        for process in receivers:
            process.join(timeout=60)
    finally:
        stop.set()
        for process in receivers:
            if process.is_alive():
                process.kill()
        for server in servers:
            server.stop()
        if schema is not None:
            seed.drop_pg_schema(schema)

    got: dict[str, list[float]] = defaultdict(list)
    read: dict[str, list[float]] = defaultdict(list)
    last_arrival = 0.0
    failures: list[str] = []
    frame = ""
    frames = [0] * len(PHASES)
    for path in outputs:
        part = json.loads(path.read_text(encoding="utf-8"))
        for key, delays in part["got"].items():
            got[key].extend(delays)
        for key, delays in part["read"].items():
            read[key].extend(delays)
        last_arrival = max(last_arrival, part["last"])
        failures.extend(part["failures"])
        frame = frame or part["sample"]
        frames = [a + b for a, b in zip(frames, part["frames"], strict=True)]

    flash_audience = sum(1 for p in parties if p in ("IL", "TR", "AZ"))
    rate_audience = sum(1 for p in parties if p in ("SY", "TR", "AZ"))
    flash_delays = [d for k in flash.accepted for d in got.get(k, [])]
    flash_read = [d for k in flash.accepted for d in read.get(k, [])]
    # What the stream adds: each frame's delay past its POST's answer (the commit's end, at most).
    flash_after_answer = [d - flash.answered[k] for k in flash.accepted for d in got.get(k, [])]
    flash_complete = sum(1 for k in flash.accepted if len(got.get(k, [])) >= flash_audience)
    rate_complete = [k for k in sustained.accepted if len(got.get(k, [])) >= rate_audience]
    rate_delays = [d for k in sustained.accepted for d in got.get(k, [])]
    first_sent = min(sustained.accepted.values(), default=last_post)
    delivered_rate = (
        len(rate_complete) / (last_arrival - first_sent) if last_arrival > first_sent else 0.0
    )
    accepted_rate = len(sustained.accepted) / sustained_s
    messages = len(flash.accepted) + len(sustained.accepted)
    flash_frames = frames[PHASES.index("flash")]
    flash_messages = max(1, len(flash.accepted))
    p50 = seed.quantile_ms(flash_delays, 0.5)
    p99 = seed.quantile_ms(flash_delays, 0.99)

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    where = "one server, SQLite" if replicas == 1 else "two servers, one PostgreSQL"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\n{CLIENTS} WebSocket clients ({where}; {RECEIVERS} load processes; compression "
        f"{'on' if DEFLATE else 'off'}), loopback; load average at the end {load}\n"
    )
    seed.table(
        [
            ("clients connected / lost", f"{CLIENTS} in {connect_s:.1f} s / {len(failures)}"),
            (
                f"FLASH TR->IL at {LATENCY_RATE:.0f}/s: accepted, delivered to all "
                f"{flash_audience} clients",
                f"{len(flash.accepted)} / {LATENCY_COUNT}, {flash_complete}",
            ),
            (
                "FLASH POST answer p50 / p99",
                f"{seed.quantile_ms(flash.answer_s, 0.5):.1f} / "
                f"{seed.quantile_ms(flash.answer_s, 0.99):.1f} ms",
            ),
            (
                f"FLASH POST -> frame at the client's socket p50 / p99 ({len(flash_delays):,} "
                "deliveries)",
                f"{p50:.1f} / {p99:.1f} ms",
            ),
            (
                "the same, until the load process read it (its 475 clients in turn) p50 / p99",
                f"{seed.quantile_ms(flash_read, 0.5):.1f} / "
                f"{seed.quantile_ms(flash_read, 0.99):.1f} ms",
            ),
            (
                "of which after the POST's answer (the stream's part) p50 / p99",
                f"{seed.quantile_ms(flash_after_answer, 0.5):.1f} / "
                f"{seed.quantile_ms(flash_after_answer, 0.99):.1f} ms",
            ),
            (
                "p99 vs target 100 ms (ratio, <= 1 meets it)",
                f"{p99 / TARGET_P99_MS:.2f}: {verdict(p99 <= TARGET_P99_MS)}",
            ),
            ("the poll-based stream's ~712 ms / this p99", f"{EARLIER_P99_MS / p99:.2f}"),
            (
                f"sustained TR->SY, {SENDERS} senders, {sustained_s:.0f} s: accepted",
                f"{len(sustained.accepted)} ({accepted_rate:.0f} /s), "
                f"{len(sustained.errors)} errors"
                + (f" (the first: {sustained.errors[0][:160]})" if sustained.errors else ""),
            ),
            (
                "sustained POST answer p50 / p99",
                f"{seed.quantile_ms(sustained.answer_s, 0.5):.1f} / "
                f"{seed.quantile_ms(sustained.answer_s, 0.99):.1f} ms",
            ),
            (
                f"delivered to all {rate_audience} of their clients",
                f"{len(rate_complete)} ({delivered_rate:.0f} /s)",
            ),
            (
                "sustained POST -> client frame p50 / p99",
                f"{seed.quantile_ms(rate_delays, 0.5):.1f} / "
                f"{seed.quantile_ms(rate_delays, 0.99):.1f} ms",
            ),
            (
                "messages/s vs target 500 (ratio, >= 1 meets it)",
                f"{min(accepted_rate, delivered_rate) / TARGET_RATE:.2f}: "
                f"{verdict(min(accepted_rate, delivered_rate) >= TARGET_RATE)}",
            ),
            (
                f"framing one {len(frame.encode()):,}-byte message frame (CPU), compressed / not",
                f"{framing_us(frame, True):.1f} / {framing_us(frame, False):.1f} µs"
                if frame
                else "no frame",
            ),
            (
                "FLASH phase: frames per message (all kinds) / server CPU per message, per frame",
                f"{flash_frames / flash_messages:,.0f} / {flash_cpu_s / flash_messages * 1e3:.1f}"
                f" ms, {flash_cpu_s / max(1, flash_frames) * 1e6:.0f} µs",
            ),
            (
                f"idle server with {CLIENTS} clients: CPU per second / FLASH phase: CPU per "
                "frame net of it",
                f"{idle_cpu_per_s * 1e3:.0f} ms / "
                f"{(flash_cpu_s - flash_idle_s) / max(1, flash_frames) * 1e6:.0f} µs",
            ),
            (
                "FLASH phase: server system (kernel) CPU per frame",
                f"{flash_system_s / max(1, flash_frames) * 1e6:.0f} µs",
            ),
            (
                "sustained phase: frames / messages delivered to their clients",
                f"{frames[PHASES.index('sustained')]:,} / {len(rate_delays):,}",
            ),
            (
                "sustained phase: server CPU per accepted message",
                f"{sustained_cpu_s * 1e3 / max(1, len(sustained.accepted)):.1f} ms",
            ),
            (
                "server CPU over both phases, per accepted message",
                f"{server_cpu_s:.1f} s, {server_cpu_s / max(1, messages) * 1e3:.1f} ms",
            ),
        ]
    )
    for error in (flash.errors + sustained.errors + failures)[:5]:
        print(f"  e.g. {error}")
    print(f"\n(server logs in {workdir})")


if __name__ == "__main__":
    main()
