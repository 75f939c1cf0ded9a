"""The compliance report of one party over a period: notifications, late ones, violations per
rule, hotline acknowledgement times and incidents, as far as the caller may read them."""

from __future__ import annotations

import statistics
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import Connection, select

from deconfliction.activities.service import list_activities
from deconfliction.agreements.models import ViolationOut
from deconfliction.agreements.service import list_commitments, list_violations
from deconfliction.errors import Invalid
from deconfliction.hotline.service import readable_message_ids
from deconfliction.incidents.service import list_incidents
from deconfliction.parties.models import Actor
from deconfliction.parties.service import party_kinds
from deconfliction.store import tables as t


class LateOut(BaseModel):
    activity_id: int
    title: str
    notified_at: datetime
    start: datetime


class NotificationsOut(BaseModel):
    made: int
    late: int
    acknowledged: int
    late_ones: list[LateOut]


class RuleRowOut(BaseModel):
    commitment_id: int
    title: str
    kind: str
    status: str
    violations: int


class AckTimeOut(BaseModel):
    message_id: int
    priority: str
    sent_at: datetime
    acknowledged_after_s: float | None  # None: not acknowledged


class HotlineOut(BaseModel):
    messages: int
    acknowledged: int
    unacknowledged: int
    median_ack_s: float | None
    max_ack_s: float | None
    times: list[AckTimeOut]


class IncidentsOut(BaseModel):
    reported: int
    reported_against: int
    open: int


class ComplianceReport(BaseModel):
    party: str
    start: datetime
    end: datetime
    generated_at: datetime
    generated_for: str
    notifications: NotificationsOut
    rules: list[RuleRowOut]
    violations: list[ViolationOut]
    hotline: HotlineOut
    incidents: IncidentsOut


def compliance(
    conn: Connection, actor: Actor, party: str, start: datetime, end: datetime, now: datetime
) -> ComplianceReport:
    if end <= start:
        raise Invalid(f"period inverted or empty: to {end.isoformat()} <= from {start.isoformat()}")
    if party not in party_kinds(conn):
        raise Invalid(f"unknown party {party}")
    notified = [
        a
        for a in list_activities(conn, actor, now, party=party, limit=1_000_000)
        if start <= a.created_at < end
    ]
    late = [a for a in notified if a.late]
    violations = list_violations(conn, actor, party=party, start=start, end=end)
    per_commitment: dict[int, int] = {}
    for v in violations:
        per_commitment[v.commitment_id] = per_commitment.get(v.commitment_id, 0) + 1
    rules = [
        RuleRowOut(
            commitment_id=c.id,
            title=c.title,
            kind=str(c.rule["kind"]),
            status=c.status,
            violations=per_commitment.get(c.id, 0),
        )
        for c in list_commitments(conn)
        if party in c.rule["applies_to"]
    ]
    incidents = list_incidents(conn, actor, party=party, start=start, end=end)
    return ComplianceReport(
        party=party,
        start=start,
        end=end,
        generated_at=now,
        generated_for=actor.party,
        notifications=NotificationsOut(
            made=len(notified),
            late=len(late),
            acknowledged=sum(1 for a in notified if a.acknowledgements),
            late_ones=[
                LateOut(activity_id=a.id, title=a.title, notified_at=a.created_at, start=a.start)
                for a in late
            ],
        ),
        rules=rules,
        violations=violations,
        hotline=_hotline(conn, actor, party, start, end),
        incidents=IncidentsOut(
            reported=sum(1 for i in incidents if i.reported_by == party),
            reported_against=sum(1 for i in incidents if i.other_party == party),
            open=sum(1 for i in incidents if i.state not in ("closed", "duplicate")),
        ),
    )


def _hotline(
    conn: Connection, actor: Actor, party: str, start: datetime, end: datetime
) -> HotlineOut:
    """How fast the party acknowledged the messages sent to it in the period."""
    rows = conn.execute(
        select(
            t.hotline_messages.c.id,
            t.hotline_messages.c.priority,
            t.hotline_messages.c.created_at,
            t.hotline_recipients.c.acknowledged_at,
        )
        .join(t.hotline_recipients, t.hotline_recipients.c.message_id == t.hotline_messages.c.id)
        .where(
            t.hotline_recipients.c.party == party,
            t.hotline_messages.c.created_at >= start,
            t.hotline_messages.c.created_at < end,
        )
        .order_by(t.hotline_messages.c.id)
    ).all()
    visible = readable_message_ids(conn, actor, [r.id for r in rows])
    times = [
        AckTimeOut(
            message_id=r.id,
            priority=r.priority,
            sent_at=r.created_at,
            acknowledged_after_s=None
            if r.acknowledged_at is None
            else (r.acknowledged_at - r.created_at).total_seconds(),
        )
        for r in rows
        if r.id in visible
    ]
    acked = [x.acknowledged_after_s for x in times if x.acknowledged_after_s is not None]
    return HotlineOut(
        messages=len(times),
        acknowledged=len(acked),
        unacknowledged=len(times) - len(acked),
        median_ack_s=statistics.median(acked) if acked else None,
        max_ack_s=max(acked) if acked else None,
        times=times,
    )
