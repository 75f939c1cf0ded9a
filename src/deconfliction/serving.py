"""How `deconfliction serve` and `demo` run the app under uvicorn: its settings, a shutdown that
ends the event streams at once, and access logs that never carry a token.

A browser's EventSource cannot send headers, so stream clients may pass their token in the query
(`?token=`); uvicorn logs every request's path and query, and logs are copied and kept far from
the server. Every `token=` value in uvicorn's log lines is replaced by `REDACTED`.

On SIGTERM uvicorn waits for open responses to finish, and an SSE stream never does: the server
hung until its last dashboard went away. The shutdown first ends every stream (WebSockets get
1012 from uvicorn, SSE responses end), so a restart takes as long as the writes in flight;
anything still running after STOP_GRACE_S is cancelled.
"""

from __future__ import annotations

import gc
import logging
import re
import socket
from typing import Any

import uvicorn
from starlette.applications import Starlette

from deconfliction.stream.routes import end_streams
from deconfliction.stream.wire import DirectFramesProtocol

# How long an idle keep-alive connection stays open: longer than the clients and proxies in
# front keep theirs (httpx 5 s, nginx's upstream keep-alive 60 s, most load balancers 60 s).
# Closing first races their reuse of it: their request is cut (uvicorn's default is 5 s).
KEEP_ALIVE_S = 75
# How long a stopping server lets requests in flight finish (a write takes milliseconds).
STOP_GRACE_S = 10

_TOKEN_IN_QUERY = re.compile(r"((?:^|[?&])token=)[^&\s\"]*")


def uvicorn_settings() -> dict[str, Any]:
    """How `serve` and `demo` run uvicorn. Stream frames go to many clients: compressing each
    frame once per client (per-message deflate) cost more server CPU than the bytes it saves on
    loopback and LAN links, and uncompressed frames are what the hub writes to every client
    itself (`stream.wire`)."""
    return {
        "ws_per_message_deflate": False,
        "ws": DirectFramesProtocol,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "timeout_graceful_shutdown": STOP_GRACE_S,
    }


def redact_tokens(text: str) -> str:
    """`text` with the value of every `token=` query parameter replaced."""
    return _TOKEN_IN_QUERY.sub(r"\1REDACTED", text)


class RedactTokens(logging.Filter):
    """Redacts query tokens in a log record's arguments (uvicorn passes the path as one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_tokens(a) if isinstance(a, str) and "token=" in a else a for a in record.args
            )
        return True


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: Starlette) -> None:
        super().__init__(config)
        self.app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        end_streams(self.app)
        await super().shutdown(sockets)


def freeze_start_up_objects() -> None:
    """Keep what start-up built (the index, the app) out of the collector's full passes: they
    stopped a 5,000-track server for 120-200 ms once or twice a minute."""
    gc.collect()
    gc.freeze()


def serve_app(app: Starlette, host: str, port: int, log_level: str) -> None:
    """Serve `app` until SIGINT or SIGTERM."""
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, **uvicorn_settings())
    # After the Config: it configures uvicorn's loggers.
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addFilter(RedactTokens())
    freeze_start_up_objects()
    _Server(config, app).run()
