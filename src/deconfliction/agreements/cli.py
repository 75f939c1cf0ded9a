"""`deconfliction agreements ...`, `deconfliction incidents ...` and `deconfliction report`.

Like the rest of the CLI these work on the database directly as the officer of the token
(`--token` or DECONFLICTION_TOKEN); writes are the officer's statements, signed here with `--key`
or else by a server-held key. Bad input prints one line and exits with code 2, writing nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel
from sqlalchemy import Connection

from deconfliction.agreements import service as agreements
from deconfliction.agreements.models import CommitmentIn, PositionIn, RoundIn
from deconfliction.cli_support import (
    DbOption,
    JsonFlag,
    KeyOption,
    TokenOption,
    acting,
    fail,
    guarded,
    open_engine,
    read_json,
    said,
    say_and_show,
    show_list,
)
from deconfliction.http import utc_now
from deconfliction.incidents import service as incidents
from deconfliction.incidents.models import (
    DuplicateIn,
    EvidenceIn,
    FindingsIn,
    IncidentIn,
    IncidentOut,
)
from deconfliction.parties.models import Actor
from deconfliction.record.service import Statement
from deconfliction.reports import render
from deconfliction.reports.service import compliance

agreements_app = typer.Typer(
    help="Rounds of talks, stated positions, commitments (checked rules), violations.",
    no_args_is_help=True,
)
incidents_app = typer.Typer(
    help="Incidents: report, acknowledge, joint review, findings, close.", no_args_is_help=True
)

NoteOption = Annotated[str | None, typer.Option("--note", help="A note for the record.")]


def _show(model: BaseModel) -> None:
    typer.echo(model.model_dump_json(indent=2))


# --- agreements ---------------------------------------------------------------------------------


@agreements_app.command("rounds")
def rounds(db: DbOption = None, token: TokenOption = None, as_json: JsonFlag = False) -> None:
    """The rounds of talks with the positions stated at each."""
    show_list(
        db,
        token,
        as_json,
        lambda conn, _actor: agreements.list_rounds(conn),
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
    say_and_show(
        db,
        token,
        key,
        "round.record",
        lambda: read_json(file),
        RoundIn.model_validate,
        agreements.record_round,
    )


@agreements_app.command("position")
def position(
    round_id: int,
    file: Path,
    db: DbOption = None,
    token: TokenOption = None,
    key: KeyOption = None,
) -> None:
    """State your party's position at ROUND_ID (JSON: language, text, english, source)."""
    say_and_show(
        db,
        token,
        key,
        "position.state",
        lambda: read_json(file),
        PositionIn.model_validate,
        lambda conn, actor, stated, now: agreements.state_position(
            conn, actor, round_id, stated, now
        ),
        target=round_id,
    )


@agreements_app.command("commitments")
def commitments(db: DbOption = None, token: TokenOption = None, as_json: JsonFlag = False) -> None:
    """Commitments, proposed and binding, with who consented."""
    show_list(
        db,
        token,
        as_json,
        lambda conn, _actor: agreements.list_commitments(conn),
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
    say_and_show(
        db,
        token,
        key,
        "commitment.propose",
        lambda: read_json(file),
        CommitmentIn.model_validate,
        agreements.propose,
    )


@agreements_app.command("consent")
def consent(
    commitment_id: int, db: DbOption = None, token: TokenOption = None, key: KeyOption = None
) -> None:
    """Your party consents to a commitment; it binds once every named party has."""
    made = guarded(
        lambda: said(
            open_engine(db),
            token,
            key,
            Statement("commitment.consent", target=commitment_id),
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
    show_list(
        db,
        token,
        as_json,
        lambda conn, actor: agreements.list_violations(conn, actor, party=party),
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
    say_and_show(
        db,
        token,
        key,
        "incident.report",
        lambda: read_json(file),
        IncidentIn.model_validate,
        incidents.report,
    )


@incidents_app.command("list")
def incidents_list(
    db: DbOption = None, token: TokenOption = None, as_json: JsonFlag = False
) -> None:
    """Incidents your party is in (the mediator: all)."""
    show_list(
        db,
        token,
        as_json,
        incidents.list_incidents,
        lambda i: (
            f"{i.id}\t{i.state}\t{i.kind}\t{i.reported_by}->{i.other_party}\t"
            f"{i.occurred_at:%Y-%m-%d %H:%MZ}\t{i.description[:60]}"
        ),
    )


@incidents_app.command("show")
def incidents_show(incident_id: int, db: DbOption = None, token: TokenOption = None) -> None:
    """One incident with its evidence and history."""
    with acting(open_engine(db), token, write=False) as (conn, actor):
        found = guarded(lambda: incidents.get(conn, actor, incident_id))
    _show(found)


StepUseCase = Callable[[Connection, Actor, int, str | None, datetime], IncidentOut]

# The steps of an incident's life, one command each: `incidents ACTION INCIDENT_ID [--note]`.
INCIDENT_STEPS: dict[str, tuple[str, StepUseCase]] = {
    "acknowledge": ("The other party acknowledges a reported incident.", incidents.acknowledge),
    "review": ("Start the joint review of an acknowledged incident.", incidents.start_review),
    "close": (
        "Consent to close; the incident closes once both parties consented.",
        incidents.close,
    ),
}


def _step_command(action: str, use_case: StepUseCase) -> Callable[..., None]:
    def step(
        incident_id: int,
        note: NoteOption = None,
        db: DbOption = None,
        token: TokenOption = None,
        key: KeyOption = None,
    ) -> None:
        statement = Statement(
            f"incident.{action}", target=incident_id, body={"note": note} if note else None
        )
        made = guarded(
            lambda: said(
                open_engine(db),
                token,
                key,
                statement,
                lambda conn, actor, now: use_case(conn, actor, incident_id, note, now),
            )
        )
        typer.echo(f"incident {made.id}: {made.state}")

    return step


for action, (summary, use_case) in INCIDENT_STEPS.items():
    incidents_app.command(action, help=summary)(_step_command(action, use_case))


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
    say_and_show(
        db,
        token,
        key,
        "incident.findings",
        lambda: {"outcome": outcome, "text": text},
        FindingsIn.model_validate,
        lambda conn, actor, found, now: incidents.record_findings(
            conn, actor, incident_id, found, now
        ),
        target=incident_id,
    )


@incidents_app.command("duplicate")
def incidents_duplicate(
    incident_id: int,
    of: Annotated[int, typer.Option("--of", help="The original incident.")],
    db: DbOption = None,
    token: TokenOption = None,
    key: KeyOption = None,
) -> None:
    """Mark an incident as a duplicate of its original (it stays on record)."""
    say_and_show(
        db,
        token,
        key,
        "incident.duplicate",
        lambda: {"of": of},
        DuplicateIn.model_validate,
        lambda conn, actor, original, now: incidents.mark_duplicate(
            conn, actor, incident_id, original, now
        ),
        target=incident_id,
    )


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
    say_and_show(
        db,
        token,
        key,
        "incident.evidence",
        lambda: [{"kind": kind, "ref": ref}],
        lambda body: [EvidenceIn.model_validate(e) for e in body],
        lambda conn, actor, evidence, now: incidents.add_evidence(
            conn, actor, incident_id, evidence, now
        ),
        target=incident_id,
    )


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
    with acting(open_engine(db), token, write=False) as (conn, actor):
        made = guarded(lambda: compliance(conn, actor, party, start, end, utc_now()))
    text = render.RENDERERS[format](made)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)
