"""Binding commitments against behaviour: load what the pure rules need, store the breaches.

Called from the notify path (each filed plan, in its transaction), when a commitment starts to
bind (every current plan), and from the tactical loop (the live picture). A breach is stored once
(by its key) as a violation and a fact of the record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, insert, select

from deconfliction.agreements.models import ViolationOut
from deconfliction.agreements.rules import (
    Area,
    Binding,
    Breach,
    NotificationRequiredRule,
    Planned,
    SeparationRule,
    Track,
    check_plans,
    check_tracks,
    parse_rule,
)
from deconfliction.parties.models import Actor
from deconfliction.record.service import record
from deconfliction.store import tables as t
from deconfliction.store.db import fetch_rows, transaction
from deconfliction.volumes import footprint_from_json, volume_from_json

# The longest time buffer a separation rule may carry: plans further apart never matter.
_DAY = timedelta(days=1)


# Every filed plan reads the binding commitments: the statement is built once (building and
# looking up a new one cost more than running it).
_BINDING = (
    select(t.commitments).where(t.commitments.c.status == "binding").order_by(t.commitments.c.id)
)


def bindings(conn: Connection) -> list[Binding]:
    rows = fetch_rows(conn, _BINDING)
    if not rows:
        return []
    parties: dict[int, list[str]] = {}
    for p in conn.execute(
        select(t.commitment_parties).where(
            t.commitment_parties.c.commitment_id.in_([r.id for r in rows])
        )
    ):
        parties.setdefault(p.commitment_id, []).append(p.party)
    return [Binding(r.id, tuple(sorted(parties[r.id])), parse_rule(r.rule)) for r in rows]


def areas(conn: Connection, zone_ids: Iterable[int]) -> dict[int, Area]:
    wanted = set(zone_ids)
    if not wanted:
        return {}
    return {
        r.id: Area(r.id, r.name, footprint_from_json(r.geometry), r.lower_m, r.upper_m)
        for r in conn.execute(select(t.zones).where(t.zones.c.id.in_(wanted)))
    }


def plans(
    conn: Connection,
    *,
    activity_ids: Sequence[int] | None = None,
    ending_after: datetime | None = None,
    starting_before: datetime | None = None,
) -> list[Planned]:
    """Current plans of activities not cancelled (all parties: detection sees everything)."""
    query = (
        select(
            t.activities.c.id,
            t.activities.c.party,
            t.activities.c.kind,
            t.activities.c.plan_version,
            t.activity_versions.c.volumes,
            t.activity_versions.c.created_at,
        )
        .join(
            t.activity_versions,
            and_(
                t.activity_versions.c.activity_id == t.activities.c.id,
                t.activity_versions.c.version == t.activities.c.plan_version,
            ),
        )
        .where(t.activities.c.state != "cancelled")
        .order_by(t.activities.c.id)
    )
    if activity_ids is not None:
        query = query.where(t.activities.c.id.in_(list(activity_ids)))
    if ending_after is not None:
        query = query.where(t.activities.c.end > ending_after)
    if starting_before is not None:
        query = query.where(t.activities.c.start < starting_before)
    return [
        Planned(
            r.id,
            r.plan_version,
            r.party,
            r.kind,
            r.created_at,
            tuple(volume_from_json(v) for v in r.volumes),
        )
        for r in conn.execute(query)
    ]


def _zones_of(found: list[Binding]) -> set[int]:
    return {z for b in found for z in b.rule.zone_ids()}


def check_plan(conn: Connection, actor: Actor, activity_id: int, now: datetime) -> list[int]:
    """The filed plan against every binding commitment; returns the new violations' ids."""
    found = bindings(conn)
    if not found:
        return []
    (plan,) = plans(conn, activity_ids=[activity_id])
    others: list[Planned] = []
    if any(isinstance(b.rule, SeparationRule) for b in found):
        # Separation needs the plans around it: those near its time (a day's buffer at most).
        start = min(v.start for v in plan.volumes)
        end = max(v.end for v in plan.volumes)
        others = [
            p
            for p in plans(conn, ending_after=start - _DAY, starting_before=end + _DAY)
            if p.activity_id != activity_id
        ]
    breaches = check_plans(found, areas(conn, _zones_of(found)), [plan], others)
    return store(conn, actor, breaches, "plan", now)


def check_all_plans(conn: Connection, actor: Actor, now: datetime) -> list[int]:
    """Every current plan against the binding commitments (when one starts to bind)."""
    found = bindings(conn)
    if not found:
        return []
    current = plans(conn, ending_after=now)
    return store(
        conn, actor, check_plans(found, areas(conn, _zones_of(found)), current), "plan", now
    )


def check_picture(engine: Engine, tracks: Sequence[Any], now: datetime) -> list[int]:
    """The live picture (track states with party, id, lon, lat, alt_m, time) against the
    binding commitments, in a transaction of its own; nothing is read when none binds."""
    if not tracks:
        return []
    with transaction(engine, write=False) as conn:
        found = bindings(conn)
    if not found:
        return []
    with transaction(engine, write=True) as conn:
        needs_plans = any(isinstance(b.rule, NotificationRequiredRule) for b in found)
        current = plans(conn, ending_after=now, starting_before=now) if needs_plans else []
        picture = [Track(s.party, s.id, s.lon, s.lat, s.alt_m, s.time) for s in tracks]
        breaches = check_tracks(found, areas(conn, _zones_of(found)), picture, current, now)
        return store(conn, None, breaches, "tracks", now)


def store(
    conn: Connection, actor: Actor | None, breaches: list[Breach], source: str, now: datetime
) -> list[int]:
    """Store the breaches not stored yet (by key) as violations and facts of the record."""
    if not breaches:
        return []
    keys = {b.key for b in breaches}
    seen = set(
        conn.execute(select(t.violations.c.key).where(t.violations.c.key.in_(keys))).scalars()
    )
    made: list[int] = []
    for breach in breaches:
        if breach.key in seen:
            continue
        seen.add(breach.key)
        inserted = conn.execute(
            insert(t.violations).values(
                commitment_id=breach.commitment_id,
                rule_kind=breach.rule_kind,
                party=breach.party,
                at=breach.at,
                source=source,
                description=breach.description,
                evidence=breach.evidence(),
                key=breach.key,
                detected_at=now,
            )
        ).inserted_primary_key
        assert inserted is not None
        vid = int(inserted[0])
        made.append(vid)
        record(
            conn,
            actor,
            "violation.detected",
            f"violation/{vid}",
            {"violation": vid, "commitment": breach.commitment_id, "party": breach.party},
            now,
        )
    return made


def violation_out(row: Any) -> ViolationOut:
    return ViolationOut(
        id=row.id,
        commitment_id=row.commitment_id,
        rule_kind=row.rule_kind,
        party=row.party,
        at=row.at,
        source=row.source,
        description=row.description,
        evidence=row.evidence,
        detected_at=row.detected_at,
    )
