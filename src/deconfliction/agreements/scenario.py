"""The demo's talks: rounds 1 and 2 in Baku with the parties' positions as the sources report
them, the commitments under negotiation, and the day's incident, each as the officer's statement.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection, select

from deconfliction.agreements import service as agreements
from deconfliction.agreements.models import CommitmentIn, PositionIn, RoundIn
from deconfliction.incidents import service as incidents
from deconfliction.incidents.models import IncidentIn
from deconfliction.parties.models import Actor
from deconfliction.record.service import Statement, say
from deconfliction.sim import syria
from deconfliction.store import tables as t


def record_talks(
    conn: Connection, host: Actor, actors: dict[str, Actor], now: datetime
) -> list[str]:
    """The host records the rounds, each party its positions, the proposers their commitments
    and the other parties the consents given so far. Returns a line per item for the summary."""
    lines: list[str] = []
    zone_ids = {r.name: r.id for r in conn.execute(select(t.zones.c.id, t.zones.c.name))}
    round_ids: dict[int, int] = {}
    for talks in syria.ROUNDS:
        body: dict[str, Any] = {
            "number": talks.number,
            "held_on": talks.date.isoformat(),
            "venue": talks.venue,
            "host": talks.host,
            "delegations": [{"party": "TR"}, {"party": "IL"}],
            "outcome": syria.ROUND_OUTCOMES[talks.number],
            "summary": f"{talks.outcome} Date: {talks.date_basis}.",
        }
        recorded, _ = say(
            conn,
            host,
            Statement("round.record", body=body),
            partial(agreements.record_round, conn, host, RoundIn.model_validate(body), now),
            "round",
            now,
        )
        round_ids[talks.number] = recorded.id
        lines.append(
            f"round {recorded.number} {recorded.held_on} {recorded.venue}: {recorded.outcome}"
        )
        for position in talks.positions:
            actor = actors[position.party]
            # The sources report the positions in Arabic; the English is the party's rendering.
            stated = {
                "language": "ar",
                "text": position.wording,
                "english": position.text,
                "source": position.source,
            }
            say(
                conn,
                actor,
                Statement("position.state", target=recorded.id, body=stated),
                partial(
                    agreements.state_position,
                    conn,
                    actor,
                    recorded.id,
                    PositionIn.model_validate(stated),
                    now,
                ),
                "position",
                now,
            )
    for proposal in syria.PROPOSALS:
        rule = {k: v for k, v in proposal.rule.items() if k != "zone"}
        rule["zone_id"] = zone_ids[proposal.rule["zone"]]
        body = {
            "title": proposal.title,
            "round_id": round_ids[proposal.round],
            "parties": ["IL", "TR"],
            "rule": rule,
        }
        proposer = actors[proposal.proposer]
        made, _ = say(
            conn,
            proposer,
            Statement("commitment.propose", body=body),
            partial(agreements.propose, conn, proposer, CommitmentIn.model_validate(body), now),
            "commitment",
            now,
        )
        for party in proposal.consented:
            if party == proposal.proposer:
                continue
            actor = actors[party]
            made, _ = say(
                conn,
                actor,
                Statement("commitment.consent", target=made.id),
                partial(agreements.consent, conn, actor, made.id, now),
                "commitment",
                now,
            )
        lines.append(f"commitment {made.id} ({made.status}) {made.title}; {proposal.basis}")
    return lines


def the_day(
    conn: Connection, actors: dict[str, Actor], occurred_at: datetime, now: datetime
) -> list[str]:
    """After the day is filed: the violations its plans caused, then Türkiye reports the T4
    crossing with its own activity and the conflict as evidence, and Israel acknowledges it.
    Returns the summary lines."""
    lines = [
        f"violation {v.id} of commitment {v.commitment_id} by {v.party}: {v.description}"
        for v in agreements.list_violations(conn, actors["TR"])
    ]
    reporter = actors["TR"]
    activity = conn.execute(
        select(t.activities.c.id).where(
            t.activities.c.party == "TR", t.activities.c.title == syria.TR_UAV_T4
        )
    ).scalar_one()
    conflict = (
        conn.execute(
            select(t.conflicts.c.id).where(
                (t.conflicts.c.activity_a == activity) | (t.conflicts.c.activity_b == activity)
            )
        )
        .scalars()
        .first()
    )
    evidence = [{"kind": "activity", "ref": str(activity)}]
    if conflict is not None:
        evidence.append({"kind": "conflict", "ref": str(conflict)})
    body = {
        **syria.INCIDENT,
        "occurred_at": occurred_at.isoformat().replace("+00:00", "Z"),
        "evidence": evidence,
    }
    made, _ = say(
        conn,
        reporter,
        Statement("incident.report", body=body),
        partial(incidents.report, conn, reporter, IncidentIn.model_validate(body), now),
        "incident",
        now,
    )
    other = actors["IL"]
    made, _ = say(
        conn,
        other,
        Statement("incident.acknowledge", target=made.id),
        partial(incidents.acknowledge, conn, other, made.id, None, now),
        "incident",
        now,
    )
    return [*lines, f"incident {made.id} {made.kind} reported by {made.reported_by}: {made.state}"]
