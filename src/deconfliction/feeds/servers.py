"""The feed servers (asyncio): CoT over TCP and UDP, SBS-1 over TCP, each bound to one party.

A feed is a :class:`FeedConfig`: its kind, port and party, and for SBS-1 the receiver's UTC
offset. The party of every state a feed makes is the feed's, whatever the data says. Servers
listen on ``host`` (127.0.0.1 unless configured); an SBS-1 feed can instead dial a receiver
(``connect``, e.g. dump1090's port 30003) and redial when the connection drops. A CoT TCP feed
can take TLS (``tls_cert`` and ``tls_key``, PEM files, as TAK servers do on port 8089), and with
``tls_ca`` it admits only clients whose certificate that CA signed: on a feed that speaks for a
party, the certificate says who is allowed to.

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
import re
import ssl
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from deconfliction.feeds.cot import MAX_EVENT_BYTES, CotSplitter, Dropped, event_state
from deconfliction.feeds.sbs1 import LineSplitter, Sbs1Decoder
from deconfliction.tracks.models import FeedOut
from deconfliction.tracks.picture import OVERSIZED, IntakeRules, TrackPicture, TrackState

FeedKind = Literal["cot", "cot-tcp", "cot-udp", "sbs1"]
FEED_KINDS: tuple[str, ...] = get_args(FeedKind)
DEFAULT_PORTS = {"cot": 8087, "cot-tcp": 8087, "cot-udp": 8087, "sbs1": 30003}
READ_BYTES = 16 * 1024
TOO_MANY_CONNECTIONS = "too_many_connections"
INTERNAL_ERROR = "internal_error"
log = logging.getLogger(__name__)
Clock = Callable[[], datetime]

_OFFSET = re.compile(r"^([+-])(\d{1,2})(?::?(\d{2}))?$")


def parse_offset(text: str) -> timedelta:
    """A UTC offset such as +03:00, -0530, +3 or Z."""
    text = text.strip()
    if text in ("Z", "z", "0"):
        return timedelta(0)
    found = _OFFSET.match(text)
    if found is None:
        raise ValueError(f"not a UTC offset: {text!r} (use e.g. +03:00)")
    sign, hours, minutes = found.groups()
    value = timedelta(hours=int(hours), minutes=int(minutes or 0))
    if value > timedelta(hours=14):
        raise ValueError(f"UTC offset out of range: {text!r}")
    return -value if sign == "-" else value


@dataclass(frozen=True)
class FeedConfig:
    """One feed: ``kind`` (``cot``: TCP and UDP on the same port, ``cot-tcp``, ``cot-udp``,
    ``sbs1``), ``port`` (0: any free port), the ``party`` it is bound to, and for SBS-1 the
    receiver's ``utc_offset`` (local time minus UTC)."""

    kind: FeedKind
    port: int
    party: str
    utc_offset: timedelta = timedelta(0)
    host: str = "127.0.0.1"
    connect: str | None = None  # sbs1: dial this host at `port` instead of listening
    name: str | None = None
    tls_cert: str | None = None  # cot-tcp: PEM certificate (chain) and key: serve TLS
    tls_key: str | None = None
    tls_ca: str | None = None  # and admit only clients with a certificate this CA signed

    def __post_init__(self) -> None:
        if self.kind not in FEED_KINDS:
            raise ValueError(f"unknown feed kind {self.kind!r} (use {', '.join(FEED_KINDS)})")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} out of range")
        if re.fullmatch(r"^[A-Z][A-Z0-9_]{1,15}$", self.party) is None:
            raise ValueError(f"not a party code: {self.party!r}")
        if self.connect is not None and self.kind != "sbs1":
            raise ValueError("only an sbs1 feed dials out (connect=)")
        tls = (self.tls_cert, self.tls_key, self.tls_ca)
        if any(tls) and self.kind != "cot-tcp":
            raise ValueError("TLS is for cot-tcp feeds (cert=, key=, ca=)")
        if any(tls) and not (self.tls_cert and self.tls_key):
            raise ValueError("a TLS feed needs both cert= and key=")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server's TLS context (None: plain TCP); raises ValueError on unreadable files."""
        if self.tls_cert is None or self.tls_key is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.tls_cert, self.tls_key)
            if self.tls_ca is not None:
                context.load_verify_locations(self.tls_ca)
                context.verify_mode = ssl.CERT_REQUIRED
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"feed {self.label}: TLS files: {exc}") from exc
        return context

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        where = f"@{self.connect}" if self.connect else ""
        return f"{self.kind}{where}:{self.port}:{self.party}"

    @classmethod
    def parse(cls, text: str) -> FeedConfig:
        """``KIND[@HOST]:PORT:PARTY[:UTC_OFFSET][:cert=PATH:key=PATH[:ca=PATH]]``, e.g.
        ``cot:8087:IL``, ``sbs1:30003:TR:+03:00`` (listen), ``sbs1@10.0.0.5:30003:TR:+03:00``
        (dial dump1090), ``cot-tcp:8089:IL:cert=/etc/dcf/feed.pem:key=/etc/dcf/feed.key``
        (TLS). A listening feed binds 127.0.0.1 unless KIND is followed by ``/BIND``, e.g.
        ``cot/0.0.0.0:8087:IL``."""
        head, _, rest = text.strip().partition(":")
        parts = rest.split(":") if rest else []
        if len(parts) < 2:
            raise ValueError(f"feed {text!r}: use KIND[@HOST]:PORT:PARTY[:UTC_OFFSET]")
        kind, _, connect = head.partition("@")
        kind, _, bind = kind.partition("/")
        if not parts[0].isdigit():
            raise ValueError(f"feed {text!r}: port {parts[0]!r} is not a number")
        options: dict[str, str] = {}
        for item in parts[2:]:
            name, sep, value = item.partition("=")
            if sep:
                if name not in ("cert", "key", "ca") or not value:
                    raise ValueError(f"feed {text!r}: unknown option {item!r} (cert, key, ca)")
                options[name] = value
        offset_text = ":".join(p for p in parts[2:] if "=" not in p)
        offset = parse_offset(offset_text) if offset_text else timedelta(0)
        return cls(
            kind=kind,  # type: ignore[arg-type]  # checked in __post_init__
            port=int(parts[0]),
            party=parts[1],
            utc_offset=offset,
            host=bind or "127.0.0.1",
            connect=connect or None,
            tls_cert=options.get("cert"),
            tls_key=options.get("key"),
            tls_ca=options.get("ca"),
        )


def feeds_from_text(text: str | None) -> list[FeedConfig]:
    """Feeds from a comma-separated list (e.g. the DECONFLICTION_FEEDS variable)."""
    if not text or not text.strip():
        return []
    return [FeedConfig.parse(item) for item in text.split(",") if item.strip()]


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


class _CotDatagrams(asyncio.DatagramProtocol):
    def __init__(self, feed: _Feed) -> None:
        self.feed = feed

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(data) > MAX_EVENT_BYTES:
            self.feed.counters.seen(self.feed.intake.clock())
            self.feed.counters.drop(OVERSIZED)
            return
        self.feed.cot_event(data.strip())

    def error_received(self, exc: Exception) -> None:
        log.warning("feed %s: UDP error %s", self.feed.counters.name, exc)


class _Feed:
    """One running feed: its servers or dialer, its decoder and its counters."""

    def __init__(
        self,
        config: FeedConfig,
        intake: Intake,
        max_connections: int,
        idle_s: float,
    ) -> None:
        self.config = config
        self.intake = intake
        self.max_connections = max_connections
        self.idle_s = idle_s
        self.counters = FeedCounters(config.label, config.kind, config.party, config.port)
        self.sbs1 = Sbs1Decoder(config.party, intake.rules, config.utc_offset)
        self._servers: list[asyncio.AbstractServer] = []
        self._transports: list[asyncio.BaseTransport] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._dialer: asyncio.Task[None] | None = None

    # -- input -----------------------------------------------------------------------------

    def cot_event(self, data: bytes) -> None:
        counters = self.counters
        counters.seen(self.intake.clock())
        try:
            state = event_state(data, self.config.party, self.intake.rules)
        except Dropped as exc:
            counters.drop(exc.reason)
            return
        except Exception:  # never let one event take the server down
            log.exception("feed %s: unexpected error on an event", counters.name)
            counters.drop(INTERNAL_ERROR)
            return
        self.intake.offer(state, counters)

    def sbs1_line(self, line: bytes | None) -> None:
        counters = self.counters
        counters.seen(self.intake.clock())
        if line is None:
            counters.drop(OVERSIZED)
            return
        try:
            state = self.sbs1.line(line)
        except Dropped as exc:
            counters.drop(exc.reason)
            return
        except Exception:
            log.exception("feed %s: unexpected error on a line", counters.name)
            counters.drop(INTERNAL_ERROR)
            return
        if state is None:
            counters.ignore()
        else:
            self.intake.offer(state, counters)

    async def _read(self, reader: asyncio.StreamReader) -> bytes:
        return await asyncio.wait_for(reader.read(READ_BYTES), self.idle_s)

    async def _cot_stream(self, reader: asyncio.StreamReader) -> None:
        splitter = CotSplitter()
        while data := await self._read(reader):
            for item in splitter.feed(data):
                if isinstance(item, str):
                    self.counters.seen(self.intake.clock())
                    self.counters.drop(item)
                else:
                    self.cot_event(item)
        reason = splitter.close()
        if reason is not None:
            self.counters.seen(self.intake.clock())
            self.counters.drop(reason)

    async def _sbs1_stream(self, reader: asyncio.StreamReader) -> None:
        splitter = LineSplitter()
        while data := await self._read(reader):
            for line in splitter.feed(data):
                self.sbs1_line(line)
        rest = splitter.close()
        if rest is not None:
            self.sbs1_line(rest)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counters = self.counters
        if counters.connections >= self.max_connections:
            counters.drop(TOO_MANY_CONNECTIONS)
            writer.close()
            return
        counters.connections += 1
        try:
            if self.config.kind == "sbs1":
                await self._sbs1_stream(reader)
            else:
                await self._cot_stream(reader)
        except (TimeoutError, ConnectionError, OSError):
            pass
        except Exception:
            log.exception("feed %s: connection failed", counters.name)
        finally:
            counters.connections -= 1
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
                log.warning("feed %s: cannot connect (%s); retrying", self.counters.name, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 1.0
            self.counters.listening = True
            await self._connection(reader, writer)
            self.counters.listening = False
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
        self.counters.port = port
        self.counters.listening = True

    async def stop(self) -> None:
        self.counters.listening = False
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


class FeedServers:
    """Every configured feed, started and stopped together; their counters by name."""

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
        self._feeds = [_Feed(c, self.intake, max_connections, idle_s) for c in configs]

    def __iter__(self) -> Any:
        return iter(self._feeds)

    async def start(self) -> None:
        started: list[_Feed] = []
        try:
            for feed in self._feeds:
                await feed.start()
                started.append(feed)
        except BaseException:
            for feed in started:
                await feed.stop()
            raise

    async def stop(self) -> None:
        for feed in self._feeds:
            await feed.stop()

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
