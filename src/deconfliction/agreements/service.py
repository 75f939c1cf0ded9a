"""Agreement use cases: record rounds and positions, propose commitments, consent, read.

The register is shared with every party of the area (the talks' record is common ground).
Violations are read by the parties named in the broken commitment and by the mediator.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from deconfliction.agreements import checks
from deconfliction.agreements.models import (
    CommitmentIn,
    CommitmentOut,
    ConsentOut,
    DelegationIn,
    PositionIn,
    PositionOut,
    RoundIn,
    RoundOut,
    ViolationOut,
)
from deconfliction.errors import Conflict, Forbidden, Invalid, NotFound
from deconfliction.parties.models import Actor
from deconfliction.parties.service import party_kinds, require_acting
from deconfliction.record.service import record
from deconfliction.store import tables as t


def record_round(conn: Connection, actor: Actor, round_in: RoundIn, now: datetime) -> RoundOut:
    if not (actor.acts_for_party or actor.sees_all_shared):
        raise Forbidden("only a party's officers or the mediator record a round of talks")
    kinds = party_kinds(conn)
    for code in [round_in.host, *(d.party for d in round_in.delegations)]:
        if code not in kinds:
            raise Invalid(f"unknown party {code}")
    taken = conn.execute(
        select(t.agreement_rounds.c.id).where(t.agreement_rounds.c.number == round_in.number)
    ).first()
    if taken is not None:
        raise Conflict(f"round {round_in.number} is already recorded (round id {taken.id})")
    made = conn.execute(
        insert(t.agreement_rounds).values(
            number=round_in.number,
            held_on=round_in.held_on,
            venue=round_in.venue,
            host=round_in.host,
            delegations=[d.model_dump() for d in round_in.delegations],
            outcome=round_in.outcome,
            summary=round_in.summary,
            recorded_by=actor.party,
            created_at=now,
        )
    ).inserted_primary_key
    assert made is not None
    round_id = int(made[0])
    record(conn, actor, "round.recorded", f"round/{round_id}", {"round": round_id}, now)
    return get_round(conn, round_id)


def state_position(
    conn: Connection, actor: Actor, round_id: int, position: PositionIn, now: datetime
) -> PositionOut:
    """A party states its own position (the party is the caller's, never the body's)."""
    require_acting(actor)
    row = _round_row(conn, round_id)
    delegations = {d["party"] for d in row.delegations}
    if actor.party not in delegations:
        raise Forbidden(f"party {actor.party} had no delegation at round {row.number}")
    made = conn.execute(
        insert(t.agreement_positions).values(
            round_id=round_id, party=actor.party, created_at=now, **position.model_dump()
        )
    ).inserted_primary_key
    assert made is not None
    pid = int(made[0])
    record(conn, actor, "position.stated", f"round/{round_id}", {"position": pid}, now)
    return next(p for p in get_round(conn, round_id).positions if p.id == pid)


def _round_row(conn: Connection, round_id: int) -> Row[Any]:
    row = conn.execute(
        select(t.agreement_rounds).where(t.agreement_rounds.c.id == round_id)
    ).first()
    if row is None:
        raise NotFound(f"no round {round_id}")
    return row


def get_round(conn: Connection, round_id: int) -> RoundOut:
    _round_row(conn, round_id)
    return list_rounds(conn, round_ids=[round_id])[0]


def list_rounds(conn: Connection, round_ids: list[int] | None = None) -> list[RoundOut]:
    query = select(t.agreement_rounds).order_by(t.agreement_rounds.c.number)
    if round_ids is not None:
        query = query.where(t.agreement_rounds.c.id.in_(round_ids))
    rows = conn.execute(query).all()
    positions: dict[int, list[PositionOut]] = {}
    if rows:
        for p in conn.execute(
            select(t.agreement_positions)
            .where(t.agreement_positions.c.round_id.in_([r.id for r in rows]))
            .order_by(t.agreement_positions.c.id)
        ):
            positions.setdefault(p.round_id, []).append(
                PositionOut(
                    id=p.id,
                    round_id=p.round_id,
                    party=p.party,
                    language=p.language,
                    text=p.text,
                    english=p.english,
                    source=p.source,
                    created_at=p.created_at,
                )
            )
    return [
        RoundOut(
            id=r.id,
            number=r.number,
            held_on=r.held_on,
            venue=r.venue,
            host=r.host,
            delegations=[DelegationIn.model_validate(d) for d in r.delegations],
            outcome=r.outcome,
            summary=r.summary,
            recorded_by=r.recorded_by,
            created_at=r.created_at,
            positions=positions.get(r.id, []),
        )
        for r in rows
    ]


def propose(
    conn: Connection, actor: Actor, commitment: CommitmentIn, now: datetime
) -> CommitmentOut:
    if not (actor.acts_for_party or actor.sees_all_shared):
        raise Forbidden("only a party's officers or the mediator propose a commitment")
    kinds = party_kinds(conn)
    for code in commitment.parties:
        if kinds.get(code) != "participant":
            raise Invalid(f"parties: {code} is not a participant party of the area")
    if commitment.round_id is not None:
        _round_row(conn, commitment.round_id)
    for zone_id in commitment.rule.zone_ids():
        zone = conn.execute(select(t.zones.c.status).where(t.zones.c.id == zone_id)).first()
        if zone is None or zone.status == "withdrawn":
            raise Invalid(f"rule.zone_id: unknown or withdrawn zone {zone_id}")
    made = conn.execute(
        insert(t.commitments).values(
            round_id=commitment.round_id,
            title=commitment.title,
            rule_kind=commitment.rule.kind,
            rule=commitment.rule.model_dump(mode="json"),
            status="proposed",
            proposed_by=actor.party,
            version=1,
            created_at=now,
        )
    ).inserted_primary_key
    assert made is not None
    cid = int(made[0])
    conn.execute(
        insert(t.commitment_parties),
        [
            {
                "commitment_id": cid,
                "party": code,
                # The proposing party's proposal is its consent.
                "consented_at": now if code == actor.party else None,
                "consented_by": actor.officer if code == actor.party else None,
            }
            for code in commitment.parties
        ],
    )
    record(conn, actor, "commitment.proposed", f"commitment/{cid}", {"commitment": cid}, now)
    _bind_if_complete(conn, actor, cid, now)
    return get_commitment(conn, cid)


def consent(conn: Connection, actor: Actor, commitment_id: int, now: datetime) -> CommitmentOut:
    require_acting(actor)
    _commitment_row(conn, commitment_id)
    named = conn.execute(
        select(t.commitment_parties).where(
            t.commitment_parties.c.commitment_id == commitment_id,
            t.commitment_parties.c.party == actor.party,
        )
    ).first()
    if named is None:
        raise Forbidden(f"party {actor.party} is not named in commitment {commitment_id}")
    if named.consented_at is not None:
        raise Conflict(f"party {actor.party} already consented to commitment {commitment_id}")
    conn.execute(
        update(t.commitment_parties)
        .where(
            t.commitment_parties.c.commitment_id == commitment_id,
            t.commitment_parties.c.party == actor.party,
        )
        .values(consented_at=now, consented_by=actor.officer)
    )
    record(
        conn,
        actor,
        "commitment.consented",
        f"commitment/{commitment_id}",
        {"commitment": commitment_id},
        now,
    )
    _bind_if_complete(conn, actor, commitment_id, now)
    return get_commitment(conn, commitment_id)


def _bind_if_complete(conn: Connection, actor: Actor, commitment_id: int, now: datetime) -> None:
    pending = conn.execute(
        select(t.commitment_parties.c.party).where(
            t.commitment_parties.c.commitment_id == commitment_id,
            t.commitment_parties.c.consented_at.is_(None),
        )
    ).first()
    if pending is not None:
        return
    row = _commitment_row(conn, commitment_id)
    conn.execute(
        update(t.commitments)
        .where(t.commitments.c.id == commitment_id)
        .values(status="binding", bound_at=now, version=row.version + 1)
    )
    record(
        conn,
        actor,
        "commitment.binding",
        f"commitment/{commitment_id}",
        {"commitment": commitment_id},
        now,
    )
    # From now on it is checked: the plans already filed first.
    checks.check_all_plans(conn, actor, now)


def _commitment_row(conn: Connection, commitment_id: int) -> Row[Any]:
    row = conn.execute(select(t.commitments).where(t.commitments.c.id == commitment_id)).first()
    if row is None:
        raise NotFound(f"no commitment {commitment_id}")
    return row


def get_commitment(conn: Connection, commitment_id: int) -> CommitmentOut:
    _commitment_row(conn, commitment_id)
    return list_commitments(conn, commitment_ids=[commitment_id])[0]


def list_commitments(
    conn: Connection, commitment_ids: list[int] | None = None, status: str | None = None
) -> list[CommitmentOut]:
    query = select(t.commitments).order_by(t.commitments.c.id)
    if commitment_ids is not None:
        query = query.where(t.commitments.c.id.in_(commitment_ids))
    if status is not None:
        query = query.where(t.commitments.c.status == status)
    rows = conn.execute(query).all()
    consents: dict[int, list[ConsentOut]] = {}
    if rows:
        for c in conn.execute(
            select(t.commitment_parties)
            .where(t.commitment_parties.c.commitment_id.in_([r.id for r in rows]))
            .order_by(t.commitment_parties.c.party)
        ):
            consents.setdefault(c.commitment_id, []).append(
                ConsentOut(party=c.party, consented_at=c.consented_at, consented_by=c.consented_by)
            )
    return [
        CommitmentOut(
            id=r.id,
            round_id=r.round_id,
            title=r.title,
            rule=r.rule,
            status=r.status,
            proposed_by=r.proposed_by,
            parties=consents.get(r.id, []),
            version=r.version,
            created_at=r.created_at,
            bound_at=r.bound_at,
        )
        for r in rows
    ]


def _violation_visibility(actor: Actor) -> Any:
    if actor.sees_all_shared:
        return t.violations.c.id.is_not(None)
    named = select(t.commitment_parties.c.commitment_id).where(
        t.commitment_parties.c.party == actor.party
    )
    return t.violations.c.commitment_id.in_(named)


def list_violations(
    conn: Connection,
    actor: Actor,
    *,
    party: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    commitment_id: int | None = None,
    violation_ids: list[int] | None = None,
) -> list[ViolationOut]:
    query = select(t.violations).where(_violation_visibility(actor)).order_by(t.violations.c.id)
    if party is not None:
        query = query.where(t.violations.c.party == party)
    if start is not None:
        query = query.where(t.violations.c.at >= start)
    if end is not None:
        query = query.where(t.violations.c.at < end)
    if commitment_id is not None:
        query = query.where(t.violations.c.commitment_id == commitment_id)
    if violation_ids is not None:
        query = query.where(t.violations.c.id.in_(violation_ids))
    return [checks.violation_out(r) for r in conn.execute(query)]


def readable_violation_ids(conn: Connection, actor: Actor, ids: list[int]) -> set[int]:
    """Which of these violations the actor may read (the record's payload visibility)."""
    if not ids:
        return set()
    return {v.id for v in list_violations(conn, actor, violation_ids=ids)}
