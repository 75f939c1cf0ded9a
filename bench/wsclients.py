"""Many WebSocket clients in one load process, on plain non-blocking sockets, each frame stamped
with the time the kernel received it.

A real deployment has one client per officer's machine; a benchmark packs hundreds into one
Python process, and there each frame cost ~140 µs of a general-purpose client library (task
wake-up, queue, parsing): a FLASH message's 475 frames then waited ~70 ms in the load process
itself before the last client "got" its frame, so the load process, not the server, set the p99.
Here a frame costs a header parse and a slice, and `SO_TIMESTAMPNS` gives, for each read, when
its bytes reached this client's socket (on loopback: when the server wrote them). Both times are
recorded: reached the socket (the server's delivery) and read by this process.

RFC 6455 client side: the opening handshake (with per-message deflate offered when asked, as
browsers do, and inflated if the server takes it), masked frames to the server, pongs for pings.
"""

from __future__ import annotations

import base64
import hashlib
import os
import selectors
import socket
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# Linux: SO_TIMESTAMPNS (not in Python's socket module); its control message has the same type.
SO_TIMESTAMPNS = 35
TIMESPEC = struct.Struct("@qq")
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
READ_BYTES = 1 << 18

# (text of a whole message, when its last byte reached the socket, when it was read) -> None
OnText = Callable[[bytes, float, float], None]


class HandshakeFailed(Exception):
    """The server refused the opening handshake or answered it wrongly."""


@dataclass(eq=False)
class Client:
    sock: socket.socket
    inflate: zlib._Decompress | None  # set when the server took per-message deflate
    buffer: bytearray = field(default_factory=bytearray)
    closed: str | None = None  # why, once the server closed it


def connect(url: str, deflate: bool, timeout_s: float) -> Client:
    """Open one client: TCP, the HTTP upgrade, then non-blocking with kernel timestamps."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout_s)
    key = base64.b64encode(os.urandom(16)).decode()
    extension = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    request = (
        f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"{extension if deflate else ''}\r\n"
    )
    sock.sendall(request.encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            raise HandshakeFailed(f"closed during the handshake: {answer[:200]!r}")
        answer += chunk
    head, _, rest = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1.1 101"):
        raise HandshakeFailed(f"{lines[0]}: {rest[:200]!r}")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    if headers.get("sec-websocket-accept") != accept:
        raise HandshakeFailed("wrong Sec-WebSocket-Accept")
    taken = "permessage-deflate" in headers.get("sec-websocket-extensions", "")
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setblocking(False)
    client = Client(sock, zlib.decompressobj(-15) if taken else None)
    client.buffer += rest
    return client


def masked(opcode: int, payload: bytes) -> bytes:
    """A client frame (clients must mask); control payloads only, so under 126 bytes."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


def read(client: Client, on_text: OnText) -> None:
    """Take what the socket has and hand on each whole text message it completes."""
    try:
        data, ancillary, _, _ = client.sock.recvmsg(READ_BYTES, 64)
    except (BlockingIOError, InterruptedError):
        return
    except OSError as exc:
        client.closed = repr(exc)
        return
    now = time.time()
    if not data:
        client.closed = "the server closed the connection"
        return
    arrived = now
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            seconds, nanoseconds = TIMESPEC.unpack(value[: TIMESPEC.size])
            arrived = seconds + nanoseconds / 1e9
    buffer = client.buffer
    buffer += data
    while len(buffer) >= 2:
        first, second = buffer[0], buffer[1]
        size, start = second & 0x7F, 2
        if size == 126:
            if len(buffer) < 4:
                return
            size, start = struct.unpack_from("!H", buffer, 2)[0], 4
        elif size == 127:
            if len(buffer) < 10:
                return
            size, start = struct.unpack_from("!Q", buffer, 2)[0], 10
        if len(buffer) < start + size:
            return
        payload = bytes(buffer[start : start + size])
        del buffer[: start + size]
        opcode = first & 0x0F
        if opcode == 0x1:
            if first & 0x40 and client.inflate is not None:
                payload = client.inflate.decompress(payload + b"\x00\x00\xff\xff")
            on_text(payload, arrived, now)
        elif opcode == 0x9:
            client.sock.send(masked(0xA, payload))
        elif opcode == 0x8:
            client.closed = f"closed by the server: {payload[:2].hex()} {payload[2:]!r}"
            return


class Clients:
    """A process's clients, read as their sockets become readable."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.clients: list[Client] = []

    def add(self, client: Client) -> None:
        self.clients.append(client)
        self.selector.register(client.sock, selectors.EVENT_READ, client)

    def poll(self, on_text: OnText, timeout_s: float) -> list[str]:
        """Read whatever is ready within `timeout_s`; the reasons of clients closed since."""
        lost = []
        for key, _ in self.selector.select(timeout_s):
            client: Client = key.data
            read(client, on_text)
            if client.closed is not None:
                self.selector.unregister(client.sock)
                client.sock.close()
                lost.append(client.closed)
        return lost

    def close(self) -> None:
        for client in self.clients:
            if client.closed is None:
                client.sock.close()
        self.selector.close()
