"""`deconfliction agreements ...`, `deconfliction incidents ...` and `deconfliction report`.

Like the rest of the CLI these work on the database directly as the officer of the token
(`--token` or DECONFLICTION_TOKEN); writes are the officer's statements, signed here with `--key`
or else by a server-held key. Bad input prints one line and exits with code 2, writing nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Engine

from deconfliction.agreements import service as agreements
from deconfliction.agreements.models import CommitmentIn, PositionIn, RoundIn
from deconfliction.errors import Problem
from deconfliction.http import utc_now
from deconfliction.incidents import service as incidents
from deconfliction.incidents.models import DuplicateIn, EvidenceIn, FindingsIn, IncidentIn
from deconfliction.ledger.entry import officer_key_name
from deconfliction.ledger.errors import LedgerError
from deconfliction.ledger.signing import key_id, public_key_bytes
from deconfliction.parties.models import Actor
from deconfliction.parties.service import authenticate
from deconfliction.record.keys import read_private
from deconfliction.record.service import Statement, say, sign_statement
from deconfliction.reports import render
from deconfliction.reports.service import compliance
from deconfliction.store.db import database_url, make_engine, migrate, transaction

agreements_app = typer.Typer(
    help="Rounds of talks, stated positions, commitments (checked rules), violations.",
    no_args_is_help=True,
)
incidents_app = typer.Typer(
    help="Incidents: report, acknowledge, joint review, findings, close.", no_args_is_help=True
)

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
NoteOption = Annotated[str | None, typer.Option("--note", help="A note for the record.")]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def guarded(action: Callable[[], T]) -> T:
    try:
        return action()
    except Problem as exc:
        fail(exc.detail)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        fail(f"{where}: {message}" if where else message)
    except (ValueError, LedgerError, OSError) as exc:
        fail(str(exc))


def _engine(db: str | None) -> Engine:
    engine = make_engine(database_url(db))
    migrate(engine)
    return engine


@contextmanager
def _acting(
    db: str | None, token: str | None, *, write: bool
) -> Iterator[tuple[Connection, Actor]]:
    if not token:
        fail("no token: pass --token or set DECONFLICTION_TOKEN")
    with transaction(_engine(db), write=write) as conn:
        yield conn, authenticate(conn, token, utc_now())


def _said(
    db: str | None,
    token: str | None,
    key_file: Path | None,
    statement: Statement,
    subject: str,
    use_case: Callable[[Connection, Actor, datetime], M],
) -> M:
    """One write as the officer: the signed statement, the change and the log's receipt."""
    with _acting(db, token, write=True) as (conn, actor):
        now = utc_now()
        if key_file is not None:
            private = read_private(key_file)
            kid = key_id(
                officer_key_name(actor.party, actor.officer), public_key_bytes(private)
            ).hex()
            signed = sign_statement(statement, actor.party, actor.officer, kid, private, now)
            statement = replace(statement, signed=signed)
        made, receipt = say(
            conn, actor, statement, lambda: use_case(conn, actor, now), subject, now
        )
        typer.echo(f"recorded as entry {receipt['index']} ({receipt['leaf_hash']})", err=True)
        return made


def _body(file: Path) -> Any:
    return json.loads(file.read_text(encoding="utf-8"))


def _show(model: BaseModel) -> None:
    typer.echo(model.model_dump_json(indent=2))


def _emit(items: list[M], as_json: bool, line: Callable[[M], str]) -> None:
    if as_json:
        typer.echo(
            json.dumps([i.model_dump(mode="json") for i in items], indent=2, ensure_ascii=False)
        )
        return
    for item in items:
        typer.echo(line(item))


# --- agreements ---------------------------------------------------------------------------------


@agreements_app.command("rounds")
def rounds(db: DbOption = None, token: TokenOption = None, as_json: JsonFlag = False) -> None:
    """The rounds of talks with the positions stated at each."""
    with _acting(db, token, write=False) as (conn, _actor):
        found = agreements.list_rounds(conn)
    _emit(
        found,
        as_json,
        lambda r: (
            f"{r.id}\tround {r.number}\t{r.held_on}\t{r.venue}\thost {r.host}\t"
            f"{r.outcome}\t{len(r.positions)} positions"
        ),
    )


@agreements_app.command("record-round")
def record_round(
    file: Path, db: DbOption = None, token: TokenOption = None, key: KeyOption = None
) -> None:
    """Record the round of talks in FILE (JSON: number, held_on, venue, host, delegations,
    outcome, summary)."""

    def run() -> BaseModel:
        body = _body(file)
        round_in = RoundIn.model_validate(body)
        return _said(
            db,
            token,
            key,
            Statement("round.record", body=body),
            "round",
            lambda conn, actor, now: agreements.record_round(conn, actor, round_in, now),
        )

    _show(guarded(run))


@agreements_app.command("position")
def position(
    round_id: int,
    file: Path,
    db: DbOption = None,
    token: TokenOption = None,
    key: KeyOption = None,
) -> None:
    """State your party's position at ROUND_ID (JSON: language, text, english, source)."""

    def run() -> BaseModel:
        body = _body(file)
        stated = PositionIn.model_validate(body)
        return _said(
            db,
            token,
            key,
            Statement("position.state", target=round_id, body=body),
            "position",
            lambda conn, actor, now: agreements.state_position(conn, actor, round_id, stated, now),
        )

    _show(guarded(run))


@agreements_app.command("commitments")
def commitments(db: DbOption = None, token: TokenOption = None, as_json: JsonFlag = False) -> None:
    """Commitments, proposed and binding, with who consented."""
    with _acting(db, token, write=False) as (conn, _actor):
        found = agreements.list_commitments(conn)
    _emit(
        found,
        as_json,
        lambda c: (
            f"{c.id}\t{c.status}\t{c.rule['kind']}\t"
            + " ".join(f"{p.party}:{'yes' if p.consented_at else 'no'}" for p in c.parties)
            + f"\t{c.title}"
        ),
    )


@agreements_app.command("propose")
def propose(
    file: Path, db: DbOption = None, token: TokenOption = None, key: KeyOption = None
) -> None:
    """Propose the commitment in FILE (JSON: title, round_id, parties, rule)."""

    def run() -> BaseModel:
        body = _body(file)
        commitment = CommitmentIn.model_validate(body)
        return _said(
            db,
            token,
            key,
            Statement("commitment.propose", body=body),
            "commitment",
            lambda conn, actor, now: agreements.propose(conn, actor, commitment, now),
        )

    _show(guarded(run))


@agreements_app.command("consent")
def consent(
    commitment_id: int, db: DbOption = None, token: TokenOption = None, key: KeyOption = None
) -> None:
    """Your party consents to a commitment; it binds once every named party has."""
    made = guarded(
        lambda: _said(
            db,
            token,
            key,
            Statement("commitment.consent", target=commitment_id),
            "commitment",
            lambda conn, actor, now: agreements.consent(conn, actor, commitment_id, now),
        )
    )
    _show(made)


@agreements_app.command("violations")
def violations(
    party: Annotated[str | None, typer.Option("--party")] = None,
    db: DbOption = None,
    token: TokenOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Violations of binding commitments you may read, with their evidence."""
    with _acting(db, token, write=False) as (conn, actor):
        found = agreements.list_violations(conn, actor, party=party)
    _emit(
        found,
        as_json,
        lambda v: (
            f"{v.id}\t{v.at:%Y-%m-%d %H:%MZ}\t{v.party}\tcommitment {v.commitment_id}\t"
            f"{v.rule_kind}\t{v.description}"
        ),
    )


# --- incidents ----------------------------------------------------------------------------------


@incidents_app.command("report")
def incidents_report(
    file: Path, db: DbOption = None, token: TokenOption = None, key: KeyOption = None
) -> None:
    """Report the incident in FILE (JSON: kind, other_party, occurred_at, place, description,
    evidence)."""

    def run() -> BaseModel:
        body = _body(file)
        incident = IncidentIn.model_validate(body)
        return _said(
            db,
            token,
            key,
            Statement("incident.report", body=body),
            "incident",
            lambda conn, actor, now: incidents.report(conn, actor, incident, now),
        )

    _show(guarded(run))


@incidents_app.command("list")
def incidents_list(
    db: DbOption = None, token: TokenOption = None, as_json: JsonFlag = False
) -> None:
    """Incidents your party is in (the mediator: all)."""
    with _acting(db, token, write=False) as (conn, actor):
        found = incidents.list_incidents(conn, actor)
    _emit(
        found,
        as_json,
        lambda i: (
            f"{i.id}\t{i.state}\t{i.kind}\t{i.reported_by}->{i.other_party}\t"
            f"{i.occurred_at:%Y-%m-%d %H:%MZ}\t{i.description[:60]}"
        ),
    )


@incidents_app.command("show")
def incidents_show(incident_id: int, db: DbOption = None, token: TokenOption = None) -> None:
    """One incident with its evidence and history."""
    with _acting(db, token, write=False) as (conn, actor):
        found = guarded(lambda: incidents.get(conn, actor, incident_id))
    _show(found)


Step = Literal["acknowledge", "review", "close"]


def _step(
    action: Step,
    incident_id: int,
    note: str | None,
    db: str | None,
    token: str | None,
    key: Path | None,
) -> None:
    use_cases = {
        "acknowledge": incidents.acknowledge,
        "review": incidents.start_review,
        "close": incidents.close,
    }
    made = guarded(
        lambda: _said(
            db,
            token,
            key,
            Statement(
                f"incident.{action}", target=incident_id, body={"note": note} if note else None
            ),
            "incident",
            lambda conn, actor, now: use_cases[action](conn, actor, incident_id, note, now),
        )
    )
    typer.echo(f"incident {made.id}: {made.state}")


@incidents_app.command("acknowledge")
def incidents_acknowledge(
    incident_id: int,
    note: NoteOption = None,
    db: DbOption = None,
    token: TokenOption = None,
    key: KeyOption = None,
) -> None:
    """The other party acknowledges a reported incident."""
    _step("acknowledge", incident_id, note, db, token, key)


@incidents_app.command("review")
def incidents_review(
    incident_id: int,
    note: NoteOption = None,
    db: DbOption = None,
    token: TokenOption = None,
    key: KeyOption = None,
) -> None:
    """Start the joint review of an acknowledged incident."""
    _step("review", incident_id, note, db, token, key)


@incidents_app.command("close")
def incidents_close(
    incident_id: int,
    note: NoteOption = None,
    db: DbOption = None,
    token: TokenOption = None,
    key: KeyOption = None,
) -> None:
    """Consent to close; the incident closes once both parties consented."""
    _step("close", incident_id, note, db, token, key)


@incidents_app.command("findings")
def incidents_findings(
    incident_id: int,
    outcome: Annotated[str, typer.Option("--outcome", help="agreed or disputed")],
    text: Annotated[str, typer.Option("--text", help="The findings, as worded.")],
    db: DbOption = None,
    token: TokenOption = None,
    key: KeyOption = None,
) -> None:
    """Record the joint review's findings: agreed or disputed."""

    def run() -> BaseModel:
        body = {"outcome": outcome, "text": text}
        found = FindingsIn.model_validate(body)
        return _said(
            db,
            token,
            key,
            Statement("incident.findings", target=incident_id, body=body),
            "incident",
            lambda conn, actor, now: incidents.record_findings(
                conn, actor, incident_id, found, now
            ),
        )

    _show(guarded(run))


@incidents_app.command("duplicate")
def incidents_duplicate(
    incident_id: int,
    of: Annotated[int, typer.Option("--of", help="The original incident.")],
    db: DbOption = None,
    token: TokenOption = None,
    key: KeyOption = None,
) -> None:
    """Mark an incident as a duplicate of its original (it stays on record)."""

    def run() -> BaseModel:
        body = {"of": of}
        original = DuplicateIn.model_validate(body)
        return _said(
            db,
            token,
            key,
            Statement("incident.duplicate", target=incident_id, body=body),
            "incident",
            lambda conn, actor, now: incidents.mark_duplicate(
                conn, actor, incident_id, original, now
            ),
        )

    _show(guarded(run))


@incidents_app.command("evidence")
def incidents_evidence(
    incident_id: int,
    kind: Annotated[
        str,
        typer.Option("--kind", help="activity, conflict, alert, track_state, message or ledger"),
    ],
    ref: Annotated[str, typer.Option("--ref", help="Its id, PARTY/track or ledger index.")],
    db: DbOption = None,
    token: TokenOption = None,
    key: KeyOption = None,
) -> None:
    """Add evidence (a reference you may read) to an incident."""

    def run() -> BaseModel:
        body = [{"kind": kind, "ref": ref}]
        evidence = [EvidenceIn.model_validate(e) for e in body]
        return _said(
            db,
            token,
            key,
            Statement("incident.evidence", target=incident_id, body=body),
            "incident",
            lambda conn, actor, now: incidents.add_evidence(
                conn, actor, incident_id, evidence, now
            ),
        )

    _show(guarded(run))


# --- the compliance report ----------------------------------------------------------------------


def report(
    party: Annotated[str, typer.Option("--party", help="The party reported on, e.g. TR.")],
    start: Annotated[datetime, typer.Option("--from", help="Start of the period (UTC).")],
    end: Annotated[datetime, typer.Option("--to", help="End of the period (UTC).")],
    format: Annotated[str, typer.Option("--format", help="md, json or html")] = "md",
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file.")] = None,
    db: DbOption = None,
    token: TokenOption = None,
) -> None:
    """The compliance report of a party over a period: notifications, late ones, violations per
    commitment, hotline acknowledgement times, incidents (what your party may read)."""
    if format not in render.RENDERERS:
        fail(f"--format must be md, json or html, not {format!r}")
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    with _acting(db, token, write=False) as (conn, actor):
        made = guarded(lambda: compliance(conn, actor, party, start, end, utc_now()))
    text = render.RENDERERS[format](made)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)
