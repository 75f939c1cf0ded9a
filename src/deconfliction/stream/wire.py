"""Stream frames written straight to a WebSocket's socket, for the fan-out of one event to many.

Through ASGI a frame to one client costs a task wake-up, the middleware's `send` wrappers and
uvicorn's framing: ~75 µs of the one event loop, so a FLASH message to 1,000 clients queued
everything behind it for ~75 ms. The fan-out's frames are the same bytes for every reader alike,
so the hub frames them once and writes them to each connection's transport itself
(`FrameWriter.write`), with no task woken.

`deconfliction serve` runs uvicorn with `DirectFramesProtocol` (uvicorn's own sans-I/O
WebSocket protocol, which offers its connections' writers to the app as the ASGI extension
`FRAME_WRITER`). Only connections without per-message compression get one (the server turns it
off): their frames are plain. Elsewhere (another server, a test client) the extension is absent
and the stream sends through ASGI as before.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State

FRAME_WRITER = "deconfliction.frame_writer"
# Bytes a connection may have waiting in its transport before it counts as slow: it then stops
# taking direct frames and catches up from the table at its own pace (so it holds at most this
# and the one fan-out that crossed it: at most BATCH events).
SLOW_CLIENT_BYTES = 1 << 20


def text_frame(text: str) -> bytes:
    """One unmasked, uncompressed server text frame carrying `text`."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


class FrameWriter:
    """Whole frames onto one connection's transport, between the frames uvicorn writes itself
    (pings, close): everything runs on the one event loop, so frames never interleave."""

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol
        self._slow_bytes = SLOW_CLIENT_BYTES

    def write(self, frames: list[bytes]) -> bool:
        """Write them, or nothing and False when the connection is closing or slow."""
        protocol = self._protocol
        transport = protocol.transport
        if (
            protocol.close_sent
            or protocol.disconnected
            or protocol.conn.state is not State.OPEN
            or transport.is_closing()
            or transport.get_write_buffer_size() > self._slow_bytes
        ):
            return False
        transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
        return True


class DirectFramesProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, offering each uncompressed connection's `FrameWriter`."""

    async def run_asgi(self) -> None:
        if not self.conn.extensions:  # negotiated with the handshake, before the app runs
            extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
            extensions[FRAME_WRITER] = FrameWriter(self)
        await super().run_asgi()
