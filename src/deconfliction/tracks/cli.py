"""Commands for the live picture, merged into ``deconfliction tracks``: list alerts, print them
as CoT, send a file of CoT events to a feed (for integrators), print simulated tracks.

Like the rest of the CLI, commands that read the database act with an officer's token and show
what that officer's party may see; bad input prints one line and exits with code 2.
"""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from deconfliction.activities.service import list_activities
from deconfliction.cli_support import (
    DbOption,
    JsonFlag,
    TokenOption,
    acting,
    fail,
    guarded,
    open_engine,
)
from deconfliction.feeds.cot import MAX_EVENT_BYTES, CotSplitter, alert_cot
from deconfliction.tracks import service
from deconfliction.tracks.simulate import simulate_tracks

app = typer.Typer(help="Live picture: alerts, CoT, simulation.", no_args_is_help=True)


@app.command("alerts")
def alerts(
    db: DbOption = None,
    token: TokenOption = None,
    all_: Annotated[bool, typer.Option("--all", help="Cleared alerts too.")] = False,
    cot: Annotated[bool, typer.Option("--cot", help="As CoT events (XML).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Tactical alerts your party is in (the mediator: all), active unless --all."""
    with acting(guarded(lambda: open_engine(db)), token, write=False) as (conn, actor):
        found = service.list_alerts(conn, actor, active=None if all_ else True)
    now = datetime.now(UTC)
    for alert in found:
        if cot:
            typer.echo(alert_cot(alert, now))
        elif as_json:
            typer.echo(json.dumps(alert.model_dump(mode="json"), ensure_ascii=False))
        else:
            other = alert.b if alert.kind == "pair" else f"zone {alert.zone}"
            closest = (
                f", closest {alert.dcpa_m:.0f} m in {alert.tcpa_s:.0f} s"
                if alert.dcpa_m is not None and alert.tcpa_s is not None
                else ""
            )
            typer.echo(
                f"#{alert.id}\t{alert.state}\t{alert.a} x {other}\t"
                f"in {alert.t_in_s:.0f} s{closest}\t{'/'.join(alert.parties)}"
            )


def _events(path: Path) -> list[bytes]:
    splitter = CotSplitter()
    found = [e for e in splitter.feed(path.read_bytes()) if isinstance(e, bytes)]
    if splitter.close() is not None:
        fail(f"{path}: the last event is not closed with </event>")
    return found


@app.command("send-cot")
def send_cot(
    file: Path,
    port: Annotated[int, typer.Option("--port", help="The feed's port.")] = 8087,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    udp: Annotated[bool, typer.Option("--udp", help="One datagram per event.")] = False,
    every_s: Annotated[float, typer.Option("--every-s", help="Pause between events.")] = 0.0,
) -> None:
    """Send the CoT events of FILE (events back to back, as a TAK stream) to a CoT feed."""
    events = guarded(lambda: _events(file))
    too_big = [i for i, e in enumerate(events) if len(e) > MAX_EVENT_BYTES]
    if too_big:
        fail(f"event {too_big[0] + 1} is over {MAX_EVENT_BYTES} bytes")

    def send() -> None:
        if udp:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for event in events:
                    sock.sendto(event, (host, port))
                    time.sleep(every_s)
            return
        with socket.create_connection((host, port), timeout=10) as sock:
            for event in events:
                sock.sendall(event + b"\n")
                time.sleep(every_s)

    guarded(send)
    typer.echo(f"sent {len(events)} events to {host}:{port} ({'UDP' if udp else 'TCP'})")


@app.command("simulate")
def simulate(
    at: Annotated[datetime, typer.Option("--at", help="The instant (UTC unless it says).")],
    db: DbOption = None,
    token: TokenOption = None,
    start: Annotated[
        datetime | None, typer.Option("--start", help="Where the orbits' phases count from.")
    ] = None,
) -> None:
    """The simulated tracks of the activities you may read at --at, one JSON object a line."""
    moment = at if at.tzinfo else at.replace(tzinfo=UTC)
    origin = start if start is not None else moment.replace(minute=0, second=0, microsecond=0)
    origin = origin if origin.tzinfo else origin.replace(tzinfo=UTC)
    with acting(guarded(lambda: open_engine(db)), token, write=False) as (conn, actor):
        activities = list_activities(conn, actor, moment)
    for state in simulate_tracks(activities, origin, moment):
        typer.echo(json.dumps(service.track_out(state).model_dump(mode="json")))
