"""The feed process: every feed's sockets, splitting and parsing, in a process of its own.

Parsing a CoT event with defusedxml (a pure-Python ElementTree parser) costs tens of
microseconds: at thousands of events a second, in the server's process, it would take the
interpreter from the tactical loop and the alert writes. So the server starts one feed process
(``python -m deconfliction.feeds FD``, FD its end of a socket pair) that listens (or, for
SBS-1, dials), splits, parses, and hands the server batches of parsed states with the counts of
what it received, ignored and dropped. The server checks the states against its clock and keeps
them (:class:`~deconfliction.feeds.servers.FeedServers`).

The pair carries frames: a 4-byte big-endian length, then a pickle.

- server to process: one :class:`Setup`, then nothing: the end of that stream (the server
  stopped, or died however it died) stops the process, so it never outlives the server;
- process to server: ``("started", [(port, listening), ...])`` or ``("failed", kind, message)``,
  then batches ``(states, tallies)``: each state a :data:`WireState` (no party: the server
  gives each state its feed's binding), each tally ``(feed, received, ignored, dropped,
  connections, listening)``. A batch goes at the end of each turn of the event loop with
  whatever arrived in it: a single event when quiet, every read's events under load. Only plain
  values cross: the server unpickles them loading no class (:func:`loads_plain`).

The process never waits for the server: while a batch is still being written (the server is
busy: a cycle, a picture write), what arrives is gathered for the next one, the latest state of
each track only (the others are counted as ``superseded``: the picture would keep only the
latest anyway). A server that falls behind so catches up with one state per track, the newest,
instead of replaying every second it missed, and the process's memory stays bounded by the
number of tracks (``IntakeRules.max_tracks``; more are dropped as ``too_many_tracks``).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import pickle
import signal
import socket
import struct
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from deconfliction.feeds.config import FeedConfig
from deconfliction.feeds.cot import MAX_EVENT_BYTES, CotSplitter, Dropped, event_state
from deconfliction.feeds.sbs1 import LineSplitter, Sbs1Decoder
from deconfliction.tracks.picture import (
    OVERSIZED,
    SUPERSEDED,
    TOO_MANY,
    IntakeRules,
    TrackState,
)

READ_BYTES = 16 * 1024
TOO_MANY_CONNECTIONS = "too_many_connections"
INTERNAL_ERROR = "internal_error"
HEADER = struct.Struct("!I")
# What waits for a busy server in buffers, unconflated: the kernel's (it doubles this) and the
# server's reader's (``BUFFER`` too). Together about 700 states, a seventh of a second of 5,000
# tracks at 1 Hz; the rest waits here, the latest state of each track only.
BUFFER = 16 * 1024
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
log = logging.getLogger(__name__)

# feed (its index in Setup.feeds), id, lat, lon, alt_m, gs_mps, course_deg, vs_mps, time and
# stale_at (integer microseconds since 1970: exact), source, callsign, type
WireState = tuple[
    int, str, float, float, float, float, float, float, int, int, str, str | None, str | None
]
# feed, received, ignored, dropped by reason (all since the last batch), connections, listening
WireTally = tuple[int, int, int, dict[str, int], int, bool]


@dataclass(frozen=True)
class Setup:
    """What the server tells its feed process: the feeds, the rules a state's stale time
    follows, and the limits per connection."""

    feeds: tuple[FeedConfig, ...]
    rules: IntakeRules
    max_connections: int
    idle_s: float


def frame(value: object) -> bytes:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"the feed process may send plain values only: {name}")


def loads_plain(data: bytes) -> Any:
    """A frame from the feed process: tuples, lists, dicts, strings and numbers, nothing that
    names a class (the process reads the network; what it sends must not run code here)."""
    return _PlainUnpickler(io.BytesIO(data)).load()


def wire_state(feed: int, state: TrackState) -> WireState:
    return (
        feed,
        state.id,
        state.lat,
        state.lon,
        state.alt_m,
        state.gs_mps,
        state.course_deg,
        state.vs_mps,
        (state.time - EPOCH) // MICROSECOND,
        (state.stale_at - EPOCH) // MICROSECOND,
        state.source,
        state.callsign,
        state.type,
    )


def state_of_wire(party: str, wire: Any) -> TrackState:
    """The state a :data:`WireState` carries, as a track of ``party`` (the feed's binding)."""
    return TrackState(
        party,
        wire[1],
        wire[2],
        wire[3],
        wire[4],
        wire[5],
        wire[6],
        wire[7],
        EPOCH + timedelta(microseconds=wire[8]),
        EPOCH + timedelta(microseconds=wire[9]),
        wire[10],
        wire[11],
        wire[12],
    )


class Outgoing:
    """The batch being gathered: states by track (the latest of each) and the feeds' tallies,
    written to the server at the end of the event loop's turn, or once the batch before it is
    written."""

    def __init__(
        self, sock: socket.socket, feeds: int, max_pending: int, done: asyncio.Event
    ) -> None:
        self.sock = sock
        self.max_pending = max_pending
        self.done = done
        self.pending: dict[tuple[int, str], WireState] = {}
        self.tallies = [Tally(self, k) for k in range(feeds)]
        self._unsent = memoryview(b"")
        self._open = self._due = self._waiting = False

    def open(self) -> None:
        """Start sending batches (after the ``started`` frame), without blocking."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)
        self.sock.setblocking(False)
        self._open = True
        self.schedule()

    def keep(self, feed: int, state: TrackState, tally: Tally) -> None:
        wire = wire_state(feed, state)
        key = (feed, state.id)
        held = self.pending.get(key)
        if held is not None:
            tally.drop(SUPERSEDED)
            if held[8] > wire[8]:  # the one waiting is the newer
                return
        elif len(self.pending) >= self.max_pending:
            tally.drop(TOO_MANY)
            return
        self.pending[key] = wire
        self.schedule()

    def schedule(self) -> None:
        if not self._due:
            self._due = True
            asyncio.get_running_loop().call_soon(self.send)

    def _take(self) -> bytes | None:
        tallies = [tally.take() for tally in self.tallies if tally.changed]
        states = list(self.pending.values())
        self.pending.clear()
        return frame((states, tallies)) if states or tallies else None

    def send(self) -> None:
        self._due = False
        if not self._open or self._unsent:
            return  # not yet, or the last batch is still being written: gather meanwhile
        data = self._take()
        if data is not None:
            self._unsent = memoryview(data)
            self._write()

    def _write(self) -> None:
        try:
            while self._unsent:
                self._unsent = self._unsent[self.sock.send(self._unsent) :]
        except BlockingIOError:
            if not self._waiting:
                self._waiting = True
                asyncio.get_running_loop().add_writer(self.sock.fileno(), self._write)
            return
        except OSError:  # the server is gone
            self._unsent = memoryview(b"")
            self.done.set()
            return
        if self._waiting:
            self._waiting = False
            asyncio.get_running_loop().remove_writer(self.sock.fileno())
        self.schedule()  # what gathered while this batch was written

    def close(self) -> None:
        """Write what is left, the last counts with it, waiting for the server if need be
        (a server that stopped reading: up to a few seconds)."""
        if self._waiting:
            asyncio.get_running_loop().remove_writer(self.sock.fileno())
        last = self._take()
        with contextlib.suppress(OSError):
            self.sock.settimeout(5.0)
            self.sock.sendall(bytes(self._unsent) + (last or b""))


class Tally:
    """One feed's counts since the last batch, and its connections and listening state."""

    def __init__(self, out: Outgoing, feed: int) -> None:
        self.out = out
        self.feed = feed
        self.received = 0
        self.ignored = 0
        self.dropped: Counter[str] = Counter()
        self.connections = 0
        self.listening = False
        self.changed = False

    def _touch(self) -> None:
        self.changed = True
        self.out.schedule()

    def seen(self) -> None:
        self.received += 1
        self._touch()

    def ignore(self) -> None:
        self.ignored += 1
        self._touch()

    def drop(self, reason: str) -> None:
        self.dropped[reason] += 1
        self._touch()

    def keep(self, state: TrackState) -> None:
        self.out.keep(self.feed, state, self)

    def connected(self, change: int) -> None:
        self.connections += change
        self._touch()

    def listen(self, listening: bool) -> None:
        self.listening = listening
        self._touch()

    def take(self) -> WireTally:
        taken = (
            self.feed,
            self.received,
            self.ignored,
            dict(self.dropped),
            self.connections,
            self.listening,
        )
        self.received = self.ignored = 0
        self.dropped = Counter()
        self.changed = False
        return taken


class _CotDatagrams(asyncio.DatagramProtocol):
    def __init__(self, feed: _Feed) -> None:
        self.feed = feed

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(data) > MAX_EVENT_BYTES:
            self.feed.tally.seen()
            self.feed.tally.drop(OVERSIZED)
            return
        self.feed.cot_event(data.strip())

    def error_received(self, exc: Exception) -> None:
        log.warning("feed %s: UDP error %s", self.feed.config.label, exc)


class _Feed:
    """One running feed: its servers or dialer, its decoder and its tally."""

    def __init__(self, config: FeedConfig, setup: Setup, tally: Tally) -> None:
        self.config = config
        self.rules = setup.rules
        self.max_connections = setup.max_connections
        self.idle_s = setup.idle_s
        self.tally = tally
        self.port = config.port
        self.sbs1 = Sbs1Decoder(config.party, setup.rules, config.utc_offset)
        self._servers: list[asyncio.AbstractServer] = []
        self._transports: list[asyncio.BaseTransport] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._dialer: asyncio.Task[None] | None = None

    # -- input -----------------------------------------------------------------------------

    def cot_event(self, data: bytes) -> None:
        tally = self.tally
        tally.seen()
        try:
            state = event_state(data, self.config.party, self.rules)
        except Dropped as exc:
            tally.drop(exc.reason)
            return
        except Exception:  # never let one event take the feeds down
            log.exception("feed %s: unexpected error on an event", self.config.label)
            tally.drop(INTERNAL_ERROR)
            return
        tally.keep(state)

    def sbs1_line(self, line: bytes | None) -> None:
        tally = self.tally
        tally.seen()
        if line is None:
            tally.drop(OVERSIZED)
            return
        try:
            state = self.sbs1.line(line)
        except Dropped as exc:
            tally.drop(exc.reason)
            return
        except Exception:
            log.exception("feed %s: unexpected error on a line", self.config.label)
            tally.drop(INTERNAL_ERROR)
            return
        if state is None:
            tally.ignore()
        else:
            tally.keep(state)

    async def _read(self, reader: asyncio.StreamReader) -> bytes:
        async with asyncio.timeout(self.idle_s):
            return await reader.read(READ_BYTES)

    async def _cot_stream(self, reader: asyncio.StreamReader) -> None:
        splitter = CotSplitter()
        while data := await self._read(reader):
            for item in splitter.feed(data):
                if isinstance(item, str):
                    self.tally.seen()
                    self.tally.drop(item)
                else:
                    self.cot_event(item)
        reason = splitter.close()
        if reason is not None:
            self.tally.seen()
            self.tally.drop(reason)

    async def _sbs1_stream(self, reader: asyncio.StreamReader) -> None:
        splitter = LineSplitter()
        while data := await self._read(reader):
            for line in splitter.feed(data):
                self.sbs1_line(line)
        rest = splitter.close()
        if rest is not None:
            self.sbs1_line(rest)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tally = self.tally
        if tally.connections >= self.max_connections:
            tally.drop(TOO_MANY_CONNECTIONS)
            writer.close()
            return
        tally.connected(+1)
        try:
            if self.config.kind == "sbs1":
                await self._sbs1_stream(reader)
            else:
                await self._cot_stream(reader)
        except (TimeoutError, ConnectionError, OSError):
            pass
        except Exception:
            log.exception("feed %s: connection failed", self.config.label)
        finally:
            tally.connected(-1)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._connection(reader, writer)
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _dial(self) -> None:
        """SBS-1 client mode: connect to the receiver, read, redial with backoff."""
        assert self.config.connect is not None
        delay = 1.0
        while True:
            try:
                reader, writer = await asyncio.open_connection(
                    self.config.connect, self.config.port
                )
            except OSError as exc:
                log.warning("feed %s: cannot connect (%s); retrying", self.config.label, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 1.0
            self.tally.listen(True)
            await self._connection(reader, writer)
            self.tally.listen(False)
            await asyncio.sleep(delay)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        if cfg.connect is not None:
            self._dialer = asyncio.create_task(self._dial())
            return
        port = cfg.port
        if cfg.kind in ("cot", "cot-tcp", "sbs1"):
            server = await asyncio.start_server(
                self._on_connection, cfg.host, port, limit=MAX_EVENT_BYTES, ssl=cfg.ssl_context()
            )
            self._servers.append(server)
            port = server.sockets[0].getsockname()[1]
        if cfg.kind in ("cot", "cot-udp"):
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _CotDatagrams(self), local_addr=(cfg.host, port)
            )
            self._transports.append(transport)
            port = transport.get_extra_info("sockname")[1]
        self.port = port
        self.tally.listening = True

    async def stop(self) -> None:
        self.tally.listen(False)
        if self._dialer is not None:
            self._dialer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._dialer
        for server in self._servers:
            server.close()
        for transport in self._transports:
            transport.close()
        for task in list(self._tasks):
            task.cancel()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()
        self._transports.clear()


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _watch_server(sock: socket.socket, done: asyncio.Event) -> None:
    """The server sends nothing after the setup: readable means it closed its end (or died)."""
    try:
        if sock.recv(4096):
            return
    except BlockingIOError:
        return
    except OSError:
        pass
    done.set()


async def serve(sock: socket.socket, setup: Setup) -> None:
    """Run the feeds of ``setup`` until the server closes its end of ``sock``."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    out = Outgoing(sock, len(setup.feeds), setup.rules.max_tracks, done)
    feeds = [_Feed(config, setup, out.tallies[k]) for k, config in enumerate(setup.feeds)]
    started: list[_Feed] = []
    try:
        for feed in feeds:
            await feed.start()
            started.append(feed)
    except (OSError, ValueError) as exc:
        for feed in started:
            await feed.stop()
        kind = "ValueError" if isinstance(exc, ValueError) else "OSError"
        sock.sendall(frame(("failed", kind, f"feed {feed.config.label}: {exc}")))
        return
    sock.sendall(frame(("started", [(feed.port, feed.tally.listening) for feed in feeds])))
    out.open()
    loop.add_reader(sock.fileno(), _watch_server, sock, done)
    try:
        await done.wait()
    finally:
        loop.remove_reader(sock.fileno())
        for feed in feeds:
            await feed.stop()
        out.close()  # the last states and counts, if the server still reads


def main(argv: list[str] | None = None) -> None:
    """``python -m deconfliction.feeds FD``: serve the feeds the server sends on FD."""
    fd = int((sys.argv[1:] if argv is None else argv)[0])
    # Ctrl-C reaches the server's whole process group: the server stops this process itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="feeds %(levelname)s %(name)s: %(message)s")
    with socket.socket(fileno=fd) as sock:
        header = _recv_exactly(sock, HEADER.size)
        data = header and _recv_exactly(sock, HEADER.unpack(header)[0])
        if not data:
            return  # the server went before telling what to serve
        setup = pickle.loads(data)  # from the server that started this process
        assert isinstance(setup, Setup)
        asyncio.run(serve(sock, setup))
