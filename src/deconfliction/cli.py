"""The `deconfliction` command: set up an area, run the server and the demo, work with zones and
activities from a terminal.

The CLI works on the database directly (like datasette) but acts with an officer's token, so the
party is always the token's: `--token` or DECONFLICTION_TOKEN. Bad input prints one line and
exits with code 2; nothing is written.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url

from deconfliction import geo
from deconfliction.activities import service as activities
from deconfliction.activities.models import ActivityIn
from deconfliction.conflicts import service as conflicts
from deconfliction.conflicts.models import ProposedConflict, SideOut
from deconfliction.errors import Problem
from deconfliction.http import utc_now
from deconfliction.parties.models import Actor, AreaConfig
from deconfliction.parties.service import authenticate, init_area, issue_token
from deconfliction.store.db import database_url, make_engine, migrate, transaction
from deconfliction.zones import service as zones
from deconfliction.zones.models import ZoneIn

app = typer.Typer(
    help="Deconfliction of notified activity between parties sharing an area.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
zones_app = typer.Typer(help="Declared zones.", no_args_is_help=True)
activities_app = typer.Typer(help="Notified activities.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens of officers.", no_args_is_help=True)
conflicts_app = typer.Typer(help="Detected conflicts.", no_args_is_help=True)
app.add_typer(zones_app, name="zones")
app.add_typer(conflicts_app, name="conflicts")
app.add_typer(activities_app, name="activities")
app.add_typer(tokens_app, name="tokens")

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db", help="Database URL (default: DECONFLICTION_DB or sqlite:///deconfliction.db)."
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="DECONFLICTION_TOKEN", help="The acting officer's API token."),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]

T = TypeVar("T")


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def guarded(action: Callable[[], T]) -> T:
    """Turn every expected failure into one line and exit code 2."""
    try:
        return action()
    except Problem as exc:
        fail(exc.detail)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        fail(
            f"{where}: {str(first['msg']).removeprefix('Value error, ')}"
            if where
            else str(first["msg"])
        )
    except (geo.GeoError, OSError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        fail(str(exc))


def open_engine(db: str | None) -> Engine:
    engine = make_engine(database_url(db))
    migrate(engine)
    return engine


@contextmanager
def acting(db: str | None, token: str | None, *, write: bool) -> Iterator[tuple[Connection, Actor]]:
    if not token:
        fail("no token: pass --token or set DECONFLICTION_TOKEN")
    engine = open_engine(db)
    with transaction(engine, write=write) as conn:
        yield conn, authenticate(conn, token, utc_now())


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def emit(items: list[BaseModel], as_json: bool, line: Callable[[Any], str]) -> None:
    if as_json:
        typer.echo(
            json.dumps([i.model_dump(mode="json") for i in items], indent=2, ensure_ascii=False)
        )
    else:
        for item in items:
            typer.echo(line(item))


@app.command()
def init(
    config: Annotated[Path, typer.Option("--config", help="parties.toml")], db: DbOption = None
) -> None:
    """Create the database, the parties and officers; print each officer's token once."""

    def run() -> dict[str, str]:
        area = AreaConfig.model_validate(tomllib.loads(config.read_text(encoding="utf-8")))
        engine = open_engine(db)
        with transaction(engine, write=True) as conn:
            return init_area(conn, area, utc_now())

    for officer, token in guarded(run).items():
        typer.echo(f"{officer}\t{token}")


@tokens_app.command("issue")
def tokens_issue(officer: str, db: DbOption = None) -> None:
    """Issue a new token for an officer (needs access to the database itself)."""

    def run() -> str:
        engine = open_engine(db)
        with transaction(engine, write=True) as conn:
            return issue_token(conn, officer, utc_now())

    typer.echo(guarded(run))


@app.command()
def serve(db: DbOption = None, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the API (and the web UI) on HOST:PORT."""
    import uvicorn

    from deconfliction.api import create_app

    engine = guarded(lambda: open_engine(db))
    uvicorn.run(create_app(engine), host=host, port=port, log_level="info")


@app.command()
def demo(
    db: DbOption = None,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the API after loading the day.")
    ] = True,
    reset: Annotated[
        bool, typer.Option("--reset", help="Start from an empty database (SQLite files only).")
    ] = False,
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """Load the Syria scenario and its simulated day, print a summary, then serve."""
    from deconfliction.sim.demo import load_demo

    url = database_url(db)
    if reset:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or not parsed.database:
            fail("--reset only removes SQLite database files")
        for suffix in ("", "-wal", "-shm"):
            Path(parsed.database + suffix).unlink(missing_ok=True)
    engine = guarded(lambda: open_engine(url))
    summary = guarded(lambda: load_demo(engine, utc_now()))
    typer.echo(summary.render())
    if serve_after:
        import uvicorn

        from deconfliction.api import create_app

        typer.echo(f"Serving http://{host}:{port}/ (API docs at /docs). Ctrl-C to stop.")
        uvicorn.run(create_app(engine), host=host, port=port, log_level="warning")


@zones_app.command("list")
def zones_list(
    db: DbOption = None,
    token: TokenOption = None,
    as_json: JsonFlag = False,
    include_withdrawn: bool = False,
) -> None:
    """List zones."""

    def run() -> list[BaseModel]:
        with acting(db, token, write=False) as (conn, actor):
            return list(zones.list_zones(conn, actor, include_withdrawn=include_withdrawn))

    emit(
        guarded(run),
        as_json,
        lambda z: (
            f"{z.id}\t{z.owner}\t{z.rule}\t{z.status}\t{z.altitude['lower_m']:.0f}-"
            f"{z.altitude['upper_m']:.0f} m\t{z.name}"
        ),
    )


@zones_app.command("declare")
def zones_declare(file: Path, db: DbOption = None, token: TokenOption = None) -> None:
    """Declare the zone in FILE (JSON, see docs/formats.md)."""

    def run() -> BaseModel:
        zone = ZoneIn.model_validate(read_json(file))
        with acting(db, token, write=True) as (conn, actor):
            return zones.declare(conn, actor, zone, utc_now())

    typer.echo(guarded(run).model_dump_json(indent=2))


@activities_app.command("list")
def activities_list(
    db: DbOption = None, token: TokenOption = None, as_json: JsonFlag = False
) -> None:
    """List the activities this officer's party may see."""

    def run() -> list[BaseModel]:
        with acting(db, token, write=False) as (conn, actor):
            return list(activities.list_activities(conn, actor, utc_now()))

    emit(
        guarded(run),
        as_json,
        lambda a: (
            f"{a.id}\t{a.party}\t{a.kind}\t{a.state}{' LATE' if a.late else ''}\t"
            f"{a.start:%Y-%m-%d %H:%M}-{a.end:%H:%M}Z\t{a.title}"
        ),
    )


@activities_app.command("notify")
def activities_notify(file: Path, db: DbOption = None, token: TokenOption = None) -> None:
    """Notify the activity in FILE (JSON, see docs/formats.md)."""

    def run() -> BaseModel:
        activity = ActivityIn.model_validate(read_json(file))
        with acting(db, token, write=True) as (conn, actor):
            return activities.notify(conn, actor, activity, utc_now())

    typer.echo(guarded(run).model_dump_json(indent=2))


@activities_app.command("cancel")
def activities_cancel(activity_id: int, db: DbOption = None, token: TokenOption = None) -> None:
    """Cancel one of your party's activities (its current version)."""

    def run() -> BaseModel:
        with acting(db, token, write=True) as (conn, actor):
            now = utc_now()
            current = activities.get(conn, actor, activity_id, now)
            return activities.cancel(conn, actor, activity_id, current.version, now)

    typer.echo(guarded(run).model_dump_json(indent=2))


@app.command()
def check(
    file: Path, db: DbOption = None, token: TokenOption = None, as_json: JsonFlag = False
) -> None:
    """Check the activity in FILE against the database without filing it (a dry run)."""

    def run() -> list[ProposedConflict]:
        activity = ActivityIn.model_validate(read_json(file))
        with acting(db, token, write=False) as (conn, actor):
            return activities.check(conn, actor, activity, utc_now())

    found = guarded(run)
    if as_json:
        typer.echo(
            json.dumps([f.model_dump(mode="json") for f in found], indent=2, ensure_ascii=False)
        )
        return
    if not found:
        typer.echo("no conflicts")
    for f in found:
        o = f.overlap
        typer.echo(
            f"{f.severity}\t{side_label(f.b)}\t"
            f"volumes {','.join(map(str, f.volumes))}\t{o.lower_m:.0f}-{o.upper_m:.0f} m\t"
            f"{o.start:%Y-%m-%d %H:%M}-{o.end:%H:%M}Z\t{o.distance_m:.0f} m apart"
        )


def side_label(side: SideOut) -> str:
    what = f"zone {side.zone}" if side.zone is not None else f"activity {side.activity}"
    return f"{side.party} {what}" + (f" {side.title}" if side.title else "")


@conflicts_app.command("list")
def conflicts_list(
    db: DbOption = None,
    token: TokenOption = None,
    as_json: JsonFlag = False,
    state: str | None = None,
) -> None:
    """List the conflicts this officer's party may see."""

    def run() -> list[BaseModel]:
        with acting(db, token, write=False) as (conn, actor):
            return list(conflicts.list_conflicts(conn, actor, state=state))

    emit(
        guarded(run),
        as_json,
        lambda c: (
            f"{c.id}\t{c.state}\t{c.severity}\t{c.a.party} activity {c.a.activity}\t"
            f"{side_label(c.b)}"
            f"\t{c.overlap.start:%Y-%m-%d %H:%M}-{c.overlap.end:%H:%M}Z"
        ),
    )


def main() -> None:
    app(prog_name="deconfliction")


if __name__ == "__main__":
    main()
