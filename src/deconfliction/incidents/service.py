"""Incident use cases: report, acknowledge, joint review, findings, close, duplicate, evidence.

The life of an incident: reported -> acknowledged (by the other party) -> joint_review ->
agreed_findings | disputed -> closed, once both parties consented to close. A duplicate links to
its original and leaves the lifecycle. Nothing is deleted: every step stays in the history.
Evidence is a reference to something on record that the caller may read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from deconfliction.activities.visibility import readable_ids
from deconfliction.conflicts.service import list_conflicts
from deconfliction.errors import Conflict, Forbidden, Invalid, NotFound
from deconfliction.hotline.service import readable_message_ids
from deconfliction.incidents.models import (
    DuplicateIn,
    EvidenceIn,
    FindingsIn,
    IncidentIn,
    IncidentOut,
    PlaceIn,
    StepOut,
)
from deconfliction.incidents.visibility import readable
from deconfliction.parties.models import Actor
from deconfliction.parties.service import party_kinds, require_acting
from deconfliction.record.reading import readable_payloads
from deconfliction.record.service import record
from deconfliction.store import tables as t
from deconfliction.tracks.service import readable_alert_ids

FINAL = ("closed", "duplicate")


def _hidden(item: EvidenceIn, actor: Actor) -> Invalid:
    # One answer for "absent" and "not yours to see": the reply must not reveal what exists.
    return Invalid(
        f"evidence {item.kind} {item.ref}: not found, or not visible to {actor.party}",
        evidence={"kind": item.kind, "ref": item.ref},
    )


def check_evidence(conn: Connection, actor: Actor, evidence: Sequence[EvidenceIn]) -> None:
    """Every reference exists and the caller may read it, or the request fails whole."""
    for item in evidence:
        numeric = item.ref.isdigit() and len(item.ref) <= 12
        if item.kind == "track_state":
            party, _, track = item.ref.partition("/")
            visible = (actor.sees_all_shared or party == actor.party) and (
                conn.execute(
                    select(t.track_states.c.party).where(
                        t.track_states.c.party == party, t.track_states.c.track_id == track
                    )
                ).first()
                is not None
            )
        elif not numeric:
            raise _hidden(item, actor)
        elif item.kind == "activity":
            visible = bool(readable_ids(conn, actor, [int(item.ref)]))
        elif item.kind == "conflict":
            visible = bool(list_conflicts(conn, actor, conflict_ids=[int(item.ref)]))
        elif item.kind == "alert":
            visible = bool(readable_alert_ids(conn, actor, [int(item.ref)]))
        elif item.kind == "message":
            visible = bool(readable_message_ids(conn, actor, [int(item.ref)]))
        else:
            rows = conn.execute(
                select(t.entries.c.idx, t.entries.c.party, t.entries.c.subject).where(
                    t.entries.c.idx == int(item.ref)
                )
            ).all()
            visible = bool(rows) and int(item.ref) in readable_payloads(conn, actor, rows)
        if not visible:
            raise _hidden(item, actor)


def report(conn: Connection, actor: Actor, incident: IncidentIn, now: datetime) -> IncidentOut:
    require_acting(actor)
    if incident.other_party == actor.party:
        raise Invalid("other_party is the reporting party itself")
    if party_kinds(conn).get(incident.other_party) != "participant":
        raise Invalid(f"other_party: {incident.other_party} is not a participant party")
    check_evidence(conn, actor, incident.evidence)
    made = conn.execute(
        insert(t.incidents).values(
            kind=incident.kind,
            reported_by=actor.party,
            reporter=actor.officer,
            other_party=incident.other_party,
            occurred_at=incident.occurred_at,
            place=incident.place.model_dump(mode="json"),
            description=incident.description,
            state="reported",
            version=1,
            created_at=now,
            updated_at=now,
        )
    ).inserted_primary_key
    assert made is not None
    incident_id = int(made[0])
    _add_evidence(conn, actor, incident_id, incident.evidence, now)
    _step(conn, actor, incident_id, "report", "reported", None, now)
    return get(conn, actor, incident_id)


def _add_evidence(
    conn: Connection, actor: Actor, incident_id: int, evidence: Sequence[EvidenceIn], now: datetime
) -> None:
    have = {
        (r.kind, r.ref)
        for r in conn.execute(
            select(t.incident_evidence).where(t.incident_evidence.c.incident_id == incident_id)
        )
    }
    new = {(e.kind, e.ref) for e in evidence} - have
    if new:
        conn.execute(
            insert(t.incident_evidence),
            [
                {
                    "incident_id": incident_id,
                    "kind": kind,
                    "ref": ref,
                    "added_by": actor.party,
                    "added_at": now,
                }
                for kind, ref in sorted(new)
            ],
        )


def _step(
    conn: Connection,
    actor: Actor,
    incident_id: int,
    action: str,
    state: str,
    note: str | None,
    now: datetime,
) -> None:
    conn.execute(
        insert(t.incident_steps).values(
            incident_id=incident_id,
            action=action,
            state=state,
            party=actor.party,
            officer=actor.officer,
            note=note,
            at=now,
        )
    )
    conn.execute(
        update(t.incidents)
        .where(t.incidents.c.id == incident_id)
        .values(state=state, version=t.incidents.c.version + 1, updated_at=now)
    )
    record(
        conn,
        actor,
        f"incident.{action}",
        f"incident/{incident_id}",
        {"incident": incident_id, "state": state},
        now,
    )


def _party_row(conn: Connection, actor: Actor, incident_id: int, *states: str) -> Row[Any]:
    """The incident, for a change by one of its two parties, in one of `states`."""
    require_acting(actor)
    row = _visible_row(conn, actor, incident_id)
    if actor.party not in (row.reported_by, row.other_party):
        raise Forbidden(f"only {row.reported_by} and {row.other_party} act on incident {row.id}")
    if states and row.state not in states:
        raise Conflict(
            f"incident {incident_id} is {row.state}; this step needs it {' or '.join(states)}",
            state=row.state,
        )
    return row


def acknowledge(
    conn: Connection, actor: Actor, incident_id: int, note: str | None, now: datetime
) -> IncidentOut:
    row = _party_row(conn, actor, incident_id, "reported")
    if actor.party != row.other_party:
        raise Forbidden(
            f"incident {incident_id} is acknowledged by {row.other_party}, not its reporter"
        )
    _step(conn, actor, incident_id, "acknowledge", "acknowledged", note, now)
    return get(conn, actor, incident_id)


def start_review(
    conn: Connection, actor: Actor, incident_id: int, note: str | None, now: datetime
) -> IncidentOut:
    _party_row(conn, actor, incident_id, "acknowledged")
    _step(conn, actor, incident_id, "review", "joint_review", note, now)
    return get(conn, actor, incident_id)


def record_findings(
    conn: Connection, actor: Actor, incident_id: int, findings: FindingsIn, now: datetime
) -> IncidentOut:
    _party_row(conn, actor, incident_id, "joint_review")
    conn.execute(
        update(t.incidents).where(t.incidents.c.id == incident_id).values(findings=findings.text)
    )
    state = "agreed_findings" if findings.outcome == "agreed" else "disputed"
    _step(conn, actor, incident_id, "findings", state, findings.text, now)
    return get(conn, actor, incident_id)


def close(
    conn: Connection, actor: Actor, incident_id: int, note: str | None, now: datetime
) -> IncidentOut:
    """A party consents to close; the incident closes with the second party's consent. A party
    that already consented cannot close alone: it is refused and nothing is written."""
    row = _party_row(conn, actor, incident_id, "agreed_findings", "disputed")
    consents = _close_consents(conn, incident_id)
    if actor.party in consents:
        other = row.other_party if actor.party == row.reported_by else row.reported_by
        raise Conflict(
            f"closing needs both parties: {actor.party} already consented, waiting for {other}"
        )
    if consents:
        _step(conn, actor, incident_id, "close", "closed", note, now)
    else:
        _step(conn, actor, incident_id, "close", row.state, note, now)
    return get(conn, actor, incident_id)


def mark_duplicate(
    conn: Connection, actor: Actor, incident_id: int, duplicate: DuplicateIn, now: datetime
) -> IncidentOut:
    row = _party_row(conn, actor, incident_id)
    if row.state in FINAL:
        raise Conflict(f"incident {incident_id} is {row.state}", state=row.state)
    if duplicate.of == incident_id:
        raise Invalid("an incident is not a duplicate of itself")
    original = conn.execute(
        select(t.incidents).where(t.incidents.c.id == duplicate.of, readable(actor))
    ).first()
    if original is None:
        raise Invalid(f"of: no incident {duplicate.of} visible to {actor.party}")
    if original.state == "duplicate":
        raise Invalid(
            f"incident {duplicate.of} is itself a duplicate of {original.duplicate_of}: "
            "link to that one"
        )
    conn.execute(
        update(t.incidents).where(t.incidents.c.id == incident_id).values(duplicate_of=duplicate.of)
    )
    _step(conn, actor, incident_id, "duplicate", "duplicate", f"duplicate of {duplicate.of}", now)
    return get(conn, actor, incident_id)


def add_evidence(
    conn: Connection, actor: Actor, incident_id: int, evidence: list[EvidenceIn], now: datetime
) -> IncidentOut:
    row = _party_row(conn, actor, incident_id)
    if row.state in FINAL:
        raise Conflict(f"incident {incident_id} is {row.state}", state=row.state)
    if not evidence:
        raise Invalid("no evidence given")
    check_evidence(conn, actor, evidence)
    _add_evidence(conn, actor, incident_id, evidence, now)
    conn.execute(
        update(t.incidents)
        .where(t.incidents.c.id == incident_id)
        .values(version=t.incidents.c.version + 1, updated_at=now)
    )
    record(
        conn,
        actor,
        "incident.evidence",
        f"incident/{incident_id}",
        {"incident": incident_id, "evidence": [e.model_dump() for e in evidence]},
        now,
    )
    return get(conn, actor, incident_id)


def _close_consents(conn: Connection, incident_id: int) -> list[str]:
    return sorted(
        set(
            conn.execute(
                select(t.incident_steps.c.party).where(
                    t.incident_steps.c.incident_id == incident_id,
                    t.incident_steps.c.action == "close",
                )
            ).scalars()
        )
    )


def _visible_row(conn: Connection, actor: Actor, incident_id: int) -> Row[Any]:
    row = conn.execute(
        select(t.incidents).where(t.incidents.c.id == incident_id, readable(actor))
    ).first()
    if row is None:
        raise NotFound(f"no incident {incident_id}")
    return row


def get(conn: Connection, actor: Actor, incident_id: int) -> IncidentOut:
    _visible_row(conn, actor, incident_id)
    return list_incidents(conn, actor, incident_ids=[incident_id])[0]


def list_incidents(
    conn: Connection,
    actor: Actor,
    *,
    incident_ids: list[int] | None = None,
    state: str | None = None,
    party: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[IncidentOut]:
    query = select(t.incidents).where(readable(actor)).order_by(t.incidents.c.id)
    if incident_ids is not None:
        query = query.where(t.incidents.c.id.in_(incident_ids))
    if state is not None:
        query = query.where(t.incidents.c.state == state)
    if party is not None:
        query = query.where(
            (t.incidents.c.reported_by == party) | (t.incidents.c.other_party == party)
        )
    if start is not None:
        query = query.where(t.incidents.c.occurred_at >= start)
    if end is not None:
        query = query.where(t.incidents.c.occurred_at < end)
    rows = conn.execute(query).all()
    ids = [r.id for r in rows]
    evidence: dict[int, list[EvidenceIn]] = {}
    steps: dict[int, list[StepOut]] = {}
    if ids:
        for e in conn.execute(
            select(t.incident_evidence)
            .where(t.incident_evidence.c.incident_id.in_(ids))
            .order_by(t.incident_evidence.c.added_at, t.incident_evidence.c.kind)
        ):
            evidence.setdefault(e.incident_id, []).append(EvidenceIn(kind=e.kind, ref=e.ref))
        for s in conn.execute(
            select(t.incident_steps)
            .where(t.incident_steps.c.incident_id.in_(ids))
            .order_by(t.incident_steps.c.id)
        ):
            steps.setdefault(s.incident_id, []).append(
                StepOut(
                    action=s.action,
                    state=s.state,
                    party=s.party,
                    officer=s.officer,
                    note=s.note,
                    at=s.at,
                )
            )
    return [
        IncidentOut(
            id=r.id,
            kind=r.kind,
            reported_by=r.reported_by,
            reporter=r.reporter,
            other_party=r.other_party,
            occurred_at=r.occurred_at,
            place=PlaceIn.model_validate(r.place),
            description=r.description,
            state=r.state,
            findings=r.findings,
            duplicate_of=r.duplicate_of,
            evidence=evidence.get(r.id, []),
            close_consents=sorted({s.party for s in steps.get(r.id, []) if s.action == "close"}),
            history=steps.get(r.id, []),
            version=r.version,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r in rows
    ]
