"""What a feed is: its kind, port, party and options (:class:`FeedConfig`), as the
DECONFLICTION_FEEDS variable spells them. No sockets here: the server and its feed process
both read it, and the feed process imports no more than it needs."""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, get_args

FeedKind = Literal["cot", "cot-tcp", "cot-udp", "sbs1"]
FEED_KINDS: tuple[str, ...] = get_args(FeedKind)
DEFAULT_PORTS = {"cot": 8087, "cot-tcp": 8087, "cot-udp": 8087, "sbs1": 30003}
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
