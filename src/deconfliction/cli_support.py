"""What every `deconfliction` subcommand shares: the --db, --token, --key and --json options,
acting as the token's officer, one write as the officer's signed statement, and bad input as one
line on standard error with exit code 2.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Engine

from deconfliction.errors import Problem
from deconfliction.http import utc_now
from deconfliction.ledger.entry import officer_key_name
from deconfliction.ledger.errors import LedgerError
from deconfliction.ledger.signing import key_id, public_key_bytes
from deconfliction.parties.models import Actor
from deconfliction.parties.service import authenticate
from deconfliction.record.keys import read_private
from deconfliction.record.service import Statement, say, sign_statement
from deconfliction.store.db import database_url, make_engine, migrate, transaction

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
KeyOption = Annotated[
    Path | None,
    typer.Option(
        "--key",
        envvar="DECONFLICTION_KEY",
        help="The officer's private key file: sign the write here (else a server-held key signs).",
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
P = TypeVar("P")


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
        message = str(first["msg"]).removeprefix("Value error, ")
        fail(f"{where}: {message}" if where else message)
    except (ValueError, LedgerError, OSError, tomllib.TOMLDecodeError) as exc:
        fail(str(exc))


def open_engine(db: str | None) -> Engine:
    engine = make_engine(database_url(db))
    migrate(engine)
    return engine


@contextmanager
def acting(engine: Engine, token: str | None, *, write: bool) -> Iterator[tuple[Connection, Actor]]:
    """A transaction as the officer of the token (an unknown token fails like bad input)."""
    if not token:
        fail("no token: pass --token or set DECONFLICTION_TOKEN")
    with transaction(engine, write=write) as conn:
        yield conn, guarded(lambda: authenticate(conn, token, utc_now()))


def signed_here(
    statement: Statement, actor: Actor, key_file: Path | None, now: datetime
) -> Statement:
    """The statement signed with the officer's key file, or as it is when there is none (then a
    server-held key signs)."""
    if key_file is None:
        return statement
    private = read_private(key_file)
    kid = key_id(officer_key_name(actor.party, actor.officer), public_key_bytes(private)).hex()
    signed = sign_statement(statement, actor.party, actor.officer, kid, private, now)
    return replace(statement, signed=signed)


def echo_receipt(receipt: dict[str, Any]) -> None:
    typer.echo(f"recorded as entry {receipt['index']} ({receipt['leaf_hash']})", err=True)


def said(
    engine: Engine,
    token: str | None,
    key_file: Path | None,
    statement: Statement,
    use_case: Callable[[Connection, Actor, datetime], M],
) -> M:
    """One write as the officer: the signed statement, the change and the log's receipt. The
    write is about the noun of the statement's kind (`activity` of `activity.notify`)."""
    with acting(engine, token, write=True) as (conn, actor):
        now = utc_now()
        made, receipt = say(
            conn,
            actor,
            signed_here(statement, actor, key_file, now),
            lambda: use_case(conn, actor, now),
            statement.kind.partition(".")[0],
            now,
        )
        echo_receipt(receipt)
        return made


def say_and_show(
    db: str | None,
    token: str | None,
    key_file: Path | None,
    kind: str,
    load: Callable[[], Any],
    parse: Callable[[Any], P],
    use_case: Callable[[Connection, Actor, P, datetime], BaseModel],
    *,
    target: int | None = None,
) -> None:
    """One write whose statement carries the JSON body `load` gives, checked by `parse` before
    anything is written; prints what the write made as JSON."""

    def run() -> BaseModel:
        body = load()
        parsed = parse(body)
        return said(
            open_engine(db),
            token,
            key_file,
            Statement(kind, target=target, body=body),
            lambda conn, actor, now: use_case(conn, actor, parsed, now),
        )

    typer.echo(guarded(run).model_dump_json(indent=2))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def show_list(
    db: str | None,
    token: str | None,
    as_json: bool,
    read: Callable[[Connection, Actor], Sequence[M]],
    line: Callable[[M], str],
) -> None:
    """What the officer reads, as a JSON array or one line each."""

    def run() -> Sequence[M]:
        with acting(open_engine(db), token, write=False) as (conn, actor):
            return read(conn, actor)

    found = guarded(run)
    if as_json:
        typer.echo(
            json.dumps([i.model_dump(mode="json") for i in found], indent=2, ensure_ascii=False)
        )
        return
    for item in found:
        typer.echo(line(item))
