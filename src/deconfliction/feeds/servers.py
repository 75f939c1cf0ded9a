"""The feed servers: CoT over TCP and UDP, SBS-1 over TCP, each bound to one party.

A feed is a :class:`FeedConfig`: its kind, port and party, and for SBS-1 the receiver's UTC
offset. The party of every state a feed makes is the feed's, whatever the data says. Servers
listen on ``host`` (127.0.0.1 unless configured); an SBS-1 feed can instead dial a receiver
(``connect``, e.g. dump1090's port 30003) and redial when the connection drops. A CoT TCP feed
can take TLS (``tls_cert`` and ``tls_key``, PEM files, as TAK servers do on port 8089), and with
``tls_ca`` it admits only clients whose certificate that CA signed: on a feed that speaks for a
party, the certificate says who is allowed to.

The sockets, the splitting and the parsing run in one feed process beside the server
(``feeds.process``), out of the interpreter that runs the tactical loop and writes the alerts;
:class:`FeedServers` starts it, takes its batches of parsed states, gives each state its feed's
party, checks it against the clock (:class:`IntakeRules`) and keeps it in the picture. The
process ends when the server's end of their socket pair closes, so it never outlives the
server; if it dies, :class:`FeedServers` starts another on the same ports.

Nothing a client sends can stop a server: every input is parsed on its own and a failure is a
counted drop (:class:`FeedCounters`, shown at ``GET /v1/tracks/feeds``). Memory per connection is
bounded: a CoT event and the bytes awaiting ``</event>`` are capped at 64 KiB, an SBS-1 line at
1 KiB, connections per feed at ``max_connections``, and a connection silent for ``idle_s`` is
closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from deconfliction.feeds.config import FeedConfig, feeds_from_text, parse_offset
from deconfliction.feeds.process import (
    BUFFER,
    HEADER,
    Setup,
    frame,
    loads_plain,
    state_of_wire,
)
from deconfliction.tracks.models import FeedOut
from deconfliction.tracks.picture import IntakeRules, TrackPicture, TrackState

# What a feed is (feeds.config) is also read from here, where the server's side of feeds is.
__all__ = ["FeedConfig", "FeedCounters", "FeedServers", "Intake", "feeds_from_text", "parse_offset"]
START_TIMEOUT_S = 60.0  # the feed process imports numpy and pyproj: seconds on a busy machine
STOP_TIMEOUT_S = 5.0
RESTART_MAX_S = 30.0
log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


class FeedCounters:
    """What one feed received, accepted, ignored and dropped (by reason)."""

    def __init__(self, name: str, kind: str, party: str, port: int | None = None) -> None:
        self.name = name
        self.kind = kind
        self.party = party
        self.port = port
        self.listening = False
        self._lock = threading.Lock()
        self.connections = 0
        self.received = 0
        self.accepted = 0
        self.ignored = 0
        self.dropped: Counter[str] = Counter()
        self.last_received_at: datetime | None = None

    def seen(self, now: datetime) -> None:
        with self._lock:
            self.received += 1
            self.last_received_at = now

    def accept(self) -> None:
        with self._lock:
            self.accepted += 1

    def ignore(self) -> None:
        with self._lock:
            self.ignored += 1

    def drop(self, reason: str) -> None:
        with self._lock:
            self.dropped[reason] += 1

    def add(self, received: int, ignored: int, dropped: Mapping[str, int], now: datetime) -> None:
        """Counts from the feed process, taken together."""
        with self._lock:
            if received:
                self.received += received
                self.last_received_at = now
            self.ignored += ignored
            self.dropped.update(dropped)

    def out(self) -> FeedOut:
        with self._lock:
            return FeedOut(
                name=self.name,
                kind=self.kind,
                port=self.port,
                party=self.party,
                listening=self.listening,
                connections=self.connections,
                received=self.received,
                accepted=self.accepted,
                ignored=self.ignored,
                dropped=dict(sorted(self.dropped.items())),
                last_received_at=self.last_received_at,
            )


class Intake:
    """Where every source hands its states: the rules, then the picture, counted per source."""

    def __init__(self, picture: TrackPicture, rules: IntakeRules, clock: Clock) -> None:
        self.picture = picture
        self.rules = rules
        self.clock = clock

    def offer(self, state: TrackState, counters: FeedCounters) -> str | None:
        """Check ``state`` and keep it; returns the drop reason (counted) or None."""
        reason = self.rules.check(state, self.clock()) or self.picture.update(state)
        if reason is None:
            counters.accept()
        else:
            counters.drop(reason)
        return reason


@dataclass(frozen=True)
class Feed:
    """One feed as the server sees it: its configuration and its counters."""

    config: FeedConfig
    counters: FeedCounters


class _Running:
    """A started feed process and the server's end of its socket pair."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.process = process
        self.reader = reader
        self.writer = writer

    async def frame(self) -> bytes:
        header = await self.reader.readexactly(HEADER.size)
        return await self.reader.readexactly(HEADER.unpack(header)[0])

    async def end(self) -> None:
        """Close the server's end (the process stops when it reads that) and reap it."""
        with contextlib.suppress(Exception):
            self.writer.close()
        await asyncio.to_thread(_reap, self.process)


def _reap(process: subprocess.Popen[bytes]) -> None:
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        log.warning("feed process %d did not stop; killing it", process.pid)
        process.kill()
        process.wait()


class FeedServers:
    """Every configured feed, started and stopped together in one feed process; their
    counters by name."""

    def __init__(
        self,
        configs: list[FeedConfig],
        picture: TrackPicture,
        rules: IntakeRules,
        clock: Clock,
        *,
        max_connections: int = 64,
        idle_s: float = 600.0,
    ) -> None:
        names = [c.label for c in configs]
        if len(set(names)) != len(names):
            raise ValueError("two feeds have the same name; give one a name")
        self.intake = Intake(picture, rules, clock)
        self._feeds = [Feed(c, FeedCounters(c.label, c.kind, c.party, c.port)) for c in configs]
        self._setup = Setup(tuple(configs), rules, max_connections, idle_s)
        self._running: _Running | None = None
        self._supervising: asyncio.Task[None] | None = None
        self._stopping = False

    def __iter__(self) -> Iterator[Feed]:
        return iter(self._feeds)

    @property
    def pid(self) -> int | None:
        """The feed process's id while it runs."""
        return self._running.process.pid if self._running is not None else None

    async def start(self) -> None:
        """Start the feed process (none without feeds) and return once every feed listens;
        raises ValueError (bad TLS files) or OSError (a port taken) if one cannot."""
        if not self._feeds:
            return
        self._running = await self._spawn()
        # A restarted process listens on the ports this one took (port 0: whatever was free).
        ports = [feed.counters.port for feed in self._feeds]
        configs = [
            config if config.connect is not None or port is None else replace(config, port=port)
            for config, port in zip(self._setup.feeds, ports, strict=True)
        ]
        self._setup = replace(self._setup, feeds=tuple(configs))
        self._supervising = asyncio.create_task(self._supervise())

    async def _spawn(self) -> _Running:
        ours, theirs = socket.socketpair()
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "deconfliction.feeds", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.sendall(frame(self._setup))
        reader, writer = await asyncio.open_unix_connection(sock=ours, limit=BUFFER)
        running = _Running(process, reader, writer)
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                first = loads_plain(await running.frame())
        except (TimeoutError, asyncio.IncompleteReadError) as exc:
            await running.end()
            raise RuntimeError(f"the feed process did not start ({exc!r})") from None
        except BaseException:
            await running.end()
            raise
        if first[0] != "started":
            _, kind, message = first
            await running.end()
            raise (ValueError if kind == "ValueError" else OSError)(message)
        for feed, (port, listening) in zip(self._feeds, first[1], strict=True):
            feed.counters.port = port
            feed.counters.listening = listening
        return running

    async def _supervise(self) -> None:
        """Take the batches of the feed process until it ends; unless the server stops, start
        another (after a pause that doubles while starting fails)."""
        delay = 1.0
        while True:
            running = self._running
            if running is not None:
                await self._take_batches(running)
                await running.end()
                self._running = None
                self._unlisten()
                if self._stopping:
                    return
                log.error(
                    "the feed process ended (exit code %s); starting another in %.0f s",
                    running.process.returncode,
                    delay,
                )
            await asyncio.sleep(delay)
            try:
                self._running = await self._spawn()
                delay = 1.0
            except (OSError, ValueError, RuntimeError) as exc:
                log.error("the feed process could not start again: %s", exc)
                delay = min(2 * delay, RESTART_MAX_S)

    async def _take_batches(self, running: _Running) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                data = await running.frame()
                try:
                    self._apply(loads_plain(data))
                except Exception:
                    log.exception("feed process: a batch could not be taken")

    def _apply(self, batch: Any) -> None:
        """A batch from the feed process: each state becomes its feed's party's and goes
        through the intake (checked at the server's clock), then the feeds' counts."""
        states, tallies = batch
        feeds = self._feeds
        offer = self.intake.offer
        for wire in states:
            feed = feeds[wire[0]]
            state = state_of_wire(feed.config.party, wire)  # the binding's, not the data's
            offer(state, feed.counters)
        if tallies:
            now = self.intake.clock()
            for feed_no, received, ignored, dropped, connections, listening in tallies:
                counters = feeds[feed_no].counters
                counters.add(received, ignored, dropped, now)
                counters.connections = connections
                counters.listening = listening

    def _unlisten(self) -> None:
        for feed in self._feeds:
            feed.counters.listening = False
            feed.counters.connections = 0

    async def stop(self) -> None:
        """Stop the feed process: it closes its sockets and sends its last counts when it
        reads the end of our stream, then exits and is reaped."""
        self._stopping = True
        supervising, self._supervising = self._supervising, None
        running = self._running
        if running is not None:
            with contextlib.suppress(OSError):
                running.writer.write_eof()
        if supervising is not None:
            if running is None:  # between two processes: nothing to wait for
                supervising.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await supervising
        if self._running is not None:  # the wait above timed out
            await self._running.end()
            self._running = None
        self._unlisten()
        self._stopping = False

    def counters(self, name: str) -> FeedCounters:
        for feed in self._feeds:
            if feed.counters.name == name:
                return feed.counters
        raise KeyError(name)

    def status(self) -> list[FeedOut]:
        return [feed.counters.out() for feed in self._feeds]

    def port(self, name: str) -> int:
        port = self.counters(name).port
        assert port is not None
        return port
