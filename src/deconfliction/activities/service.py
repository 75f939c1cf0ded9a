"""Activity use cases: notify, amend, cancel, acknowledge, get, list.

A party sees its own activities in full and another party's activities notified to it; the
mediator sees every activity notified to anyone; an observer sees those notified to it.
Acknowledging means "read", not "approved". Amending makes a new version and the old ones stay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, insert, select, update

from deconfliction import geo
from deconfliction.activities.models import (
    AcknowledgementOut,
    ActivityIn,
    ActivityOut,
    ActivityVersionOut,
    FiledOut,
)
from deconfliction.activities.visibility import readable
from deconfliction.agreements.checks import check_plan
from deconfliction.conflicts import service as conflicts
from deconfliction.conflicts.detection import (
    CellIndex,
    Finding,
    find_conflicts,
    index_volumes,
    lock_cells,
    policy_for,
    retire_volumes,
)
from deconfliction.conflicts.models import ProposedConflict
from deconfliction.errors import Conflict, Forbidden, Invalid, NotFound
from deconfliction.parties.models import Actor
from deconfliction.parties.service import area_minima, party_kinds, require_acting
from deconfliction.record.service import record
from deconfliction.store import tables as t
from deconfliction.store.db import insert_row, run_rows
from deconfliction.volumes import iso, volume_json
from deconfliction.zones.service import list_zones

SQL_INDEX = CellIndex()
# The statements of every filing, built once: building one costs more than running it on SQLite.
_INSERT_ACTIVITY = insert(t.activities)
_INSERT_VERSION = insert(t.activity_versions)
_INSERT_RECIPIENT = insert(t.activity_recipients)
_ACKS_OF = (
    select(t.activity_acks)
    .where(t.activity_acks.c.activity_id == bindparam("activity_id"))
    .order_by(t.activity_acks.c.at)
)


def notify(
    conn: Connection,
    actor: Actor,
    activity: ActivityIn,
    now: datetime,
    index: CellIndex = SQL_INDEX,
) -> FiledOut:
    require_acting(actor)
    volumes = _future_volumes(activity, now)
    recipients = _recipients(conn, actor, activity.notified_to)
    findings, late_zones = _detect(conn, actor, volumes, now, index)
    aid = insert_row(
        conn,
        _INSERT_ACTIVITY,
        {
            "party": actor.party,
            "kind": activity.kind,
            "title": activity.title,
            "callsign": activity.callsign,
            "state": "notified",
            "version": 1,
            "plan_version": 1,
            "start": min(v.start for v in volumes),
            "end": max(v.end for v in volumes),
            "late": bool(late_zones),
            "created_at": now,
            "updated_at": now,
        },
    )
    record(
        conn,
        actor,
        "activity.notified",
        f"activity/{aid}",
        {"activity": aid, "version": 1, "notified_to": recipients, "late_zones": late_zones},
        now,
    )
    filed = _Filing(aid, 1, recipients, findings, late_zones, created_at=now, acknowledgements=[])
    return _file_plan(conn, actor, activity, volumes, filed, now)


def amend(
    conn: Connection,
    actor: Actor,
    activity_id: int,
    activity: ActivityIn,
    expected_version: int,
    now: datetime,
    index: CellIndex = SQL_INDEX,
) -> FiledOut:
    row = _own_open_activity(conn, actor, activity_id, expected_version)
    volumes = _future_volumes(activity, now)
    recipients = _recipients(conn, actor, activity.notified_to)
    version = row.version + 1
    retire_volumes(conn, activity_id)
    conflicts.resolve_for_activity(conn, actor, activity_id, "amended", now)
    findings, late_zones = _detect(conn, actor, volumes, now, index)
    conn.execute(
        update(t.activities)
        .where(t.activities.c.id == activity_id)
        .values(
            kind=activity.kind,
            title=activity.title,
            callsign=activity.callsign,
            state="notified",
            version=version,
            plan_version=version,
            start=min(v.start for v in volumes),
            end=max(v.end for v in volumes),
            late=bool(late_zones),
            updated_at=now,
        )
    )
    conn.execute(
        t.activity_recipients.delete().where(t.activity_recipients.c.activity_id == activity_id)
    )
    record(
        conn,
        actor,
        "activity.amended",
        f"activity/{activity_id}",
        {
            "activity": activity_id,
            "version": version,
            "notified_to": recipients,
            "late_zones": late_zones,
        },
        now,
    )
    acknowledgements = [
        AcknowledgementOut(party=a.party, officer=a.officer, version=a.version, at=a.at)
        for a in conn.execute(_ACKS_OF, {"activity_id": activity_id})
    ]
    filed = _Filing(
        activity_id, version, recipients, findings, late_zones, row.created_at, acknowledgements
    )
    return _file_plan(conn, actor, activity, volumes, filed, now)


def check(
    conn: Connection,
    actor: Actor,
    activity: ActivityIn,
    now: datetime,
    index: CellIndex = SQL_INDEX,
) -> list[ProposedConflict]:
    """The conflicts a plan would create, without filing it (a dry run)."""
    volumes = _future_volumes(activity, now)
    findings, _ = _detect(conn, actor, volumes, now, index)
    return [
        ProposedConflict(
            kind=f.kind,
            severity=f.severity,
            b=f.other,
            overlap=f.overlap(),
            volumes=sorted(f.volume_indices),
        )
        for f in findings
    ]


def _detect(
    conn: Connection, actor: Actor, volumes: list[geo.Volume4D], now: datetime, index: CellIndex
) -> tuple[list[Finding], list[int]]:
    """Conflicts of a plan with other parties' activities and zones, and the late zones."""
    zones = list_zones(conn, actor)
    policy = policy_for(area_minima(conn), zones)
    lock_cells(conn, volumes, policy.reach.horizontal_m)
    findings = find_conflicts(conn, index, actor.party, volumes, zones, policy, now)
    notify_zones = {z.id for z in zones if z.rule == "notify"}
    late = sorted(
        f.other.zone for f in findings if f.other.zone is not None and f.other.zone in notify_zones
    )
    return findings, late


@dataclass(frozen=True)
class _Filing:
    """What notify or amend decided about the plan version being filed."""

    activity_id: int
    version: int
    recipients: list[str]
    findings: list[Finding]
    late_zones: list[int]
    created_at: datetime
    acknowledgements: list[AcknowledgementOut]


def _file_plan(
    conn: Connection,
    actor: Actor,
    activity: ActivityIn,
    volumes: list[geo.Volume4D],
    filed: _Filing,
    now: datetime,
) -> FiledOut:
    """Store a plan version, its recipients, its index entries and the conflicts it creates,
    and answer with what was stored: built from the values written, not read back (the answer
    is on every notification's path; tests hold it equal to what a read returns)."""
    geometries = [volume_json(v) for v in volumes]
    route = activity.route.model_dump(mode="json") if activity.route else None
    run_rows(
        conn,
        _INSERT_VERSION,
        [
            {
                "activity_id": filed.activity_id,
                "version": filed.version,
                "volumes": geometries,
                "route": route,
                "late_zones": filed.late_zones,
                "author": actor.officer,
                "created_at": now,
            }
        ],
    )
    run_rows(
        conn,
        _INSERT_RECIPIENT,
        [{"activity_id": filed.activity_id, "party": code} for code in filed.recipients],
    )
    index_volumes(conn, filed.activity_id, filed.version, actor.party, volumes, geometries)
    created = conflicts.record_findings(
        conn, actor, filed.activity_id, filed.version, filed.findings, now
    )
    check_plan(conn, actor, filed.activity_id, now)  # binding commitments: violations on record
    start, end = min(v.start for v in volumes), max(v.end for v in volumes)
    return FiledOut(
        id=filed.activity_id,
        party=actor.party,
        kind=activity.kind,
        title=activity.title,
        callsign=activity.callsign,
        state=_state("notified", start, end, now),
        version=filed.version,
        start=start,
        end=end,
        late=bool(filed.late_zones),
        late_zones=filed.late_zones,
        notified_to=filed.recipients,
        volumes=geometries,
        route=route,
        acknowledgements=filed.acknowledgements,
        created_at=filed.created_at.astimezone(UTC),
        updated_at=now.astimezone(UTC),
        conflicts=created,
    )


def cancel(
    conn: Connection, actor: Actor, activity_id: int, expected_version: int, now: datetime
) -> ActivityOut:
    row = _own_open_activity(conn, actor, activity_id, expected_version)
    conn.execute(
        update(t.activities)
        .where(t.activities.c.id == activity_id)
        .values(state="cancelled", version=row.version + 1, updated_at=now)
    )
    retire_volumes(conn, activity_id)
    conflicts.resolve_for_activity(conn, actor, activity_id, "cancelled", now)
    record(
        conn,
        actor,
        "activity.cancelled",
        f"activity/{activity_id}",
        {"activity": activity_id, "version": row.version + 1},
        now,
    )
    return get(conn, actor, activity_id, now)


def acknowledge(conn: Connection, actor: Actor, activity_id: int, now: datetime) -> ActivityOut:
    require_acting(actor)
    row = _visible_row(conn, actor, activity_id)
    if row.party == actor.party:
        raise Forbidden("a party does not acknowledge its own activity")
    recipients = _recipient_codes(conn, activity_id)
    if actor.party not in recipients:
        raise Forbidden(f"activity {activity_id} was not notified to {actor.party}")
    if row.state == "cancelled":
        raise Conflict(f"activity {activity_id} was cancelled")
    done = (
        conn.execute(
            select(t.activity_acks.c.party).where(
                t.activity_acks.c.activity_id == activity_id,
                t.activity_acks.c.version == row.version,
            )
        )
        .scalars()
        .all()
    )
    if actor.party in done:
        raise Conflict(
            f"{actor.party} already acknowledged version {row.version} of activity {activity_id}"
        )
    conn.execute(
        insert(t.activity_acks).values(
            activity_id=activity_id,
            version=row.version,
            party=actor.party,
            officer=actor.officer,
            at=now,
        )
    )
    kinds = party_kinds(conn)
    waiting = {p for p in recipients if kinds[p] == "participant"} - {*done, actor.party}
    if not waiting:
        conn.execute(
            update(t.activities)
            .where(t.activities.c.id == activity_id)
            .values(state="acknowledged")
        )
    record(
        conn,
        actor,
        "activity.acknowledged",
        f"activity/{activity_id}",
        {"activity": activity_id, "version": row.version, "party": actor.party},
        now,
    )
    return get(conn, actor, activity_id, now)


def _future_volumes(activity: ActivityIn, now: datetime) -> list[geo.Volume4D]:
    volumes = activity.to_volumes()
    for i, volume in enumerate(volumes):
        if volume.end <= now:
            raise Invalid(f"volume {i} ends at {iso(volume.end)}, which is already past")
    return volumes


def _recipients(conn: Connection, actor: Actor, asked: list[str] | None) -> list[str]:
    kinds = party_kinds(conn)
    if asked is None:
        return sorted(c for c, k in kinds.items() if k == "participant" and c != actor.party)
    for code in asked:
        if code not in kinds:
            raise Invalid(f"unknown party {code} in notified_to")
        if code == actor.party:
            raise Invalid("notified_to lists the notifying party itself")
    return sorted(asked)


def _own_open_activity(
    conn: Connection, actor: Actor, activity_id: int, expected_version: int
) -> Row[Any]:
    require_acting(actor)
    row = _visible_row(conn, actor, activity_id)
    if row.party != actor.party:
        raise Forbidden(f"activity {activity_id} belongs to {row.party}")
    if row.state == "cancelled":
        raise Conflict(f"activity {activity_id} was cancelled")
    if row.version != expected_version:
        raise Conflict(
            f"activity {activity_id} is at version {row.version}, not "
            f"{expected_version}: someone changed it first",
            current_version=row.version,
        )
    return row


def _visible_row(conn: Connection, actor: Actor, activity_id: int) -> Row[Any]:
    row = conn.execute(
        select(t.activities).where(t.activities.c.id == activity_id, readable(actor))
    ).first()
    if row is None:
        # The same answer whether it does not exist or is not shared: no probing.
        raise NotFound(f"no activity {activity_id} visible to {actor.party}")
    return row


def _recipient_codes(conn: Connection, activity_id: int) -> list[str]:
    return list(
        conn.execute(
            select(t.activity_recipients.c.party)
            .where(t.activity_recipients.c.activity_id == activity_id)
            .order_by(t.activity_recipients.c.party)
        ).scalars()
    )


def get(conn: Connection, actor: Actor, activity_id: int, now: datetime) -> ActivityOut:
    _visible_row(conn, actor, activity_id)
    return list_activities(conn, actor, now, activity_ids=[activity_id])[0]


def list_activities(
    conn: Connection,
    actor: Actor,
    now: datetime,
    *,
    activity_ids: list[int] | None = None,
    party: str | None = None,
    state: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 1000,
    after: int = 0,
) -> list[ActivityOut]:
    query = (
        select(
            t.activities,
            t.activity_versions.c.volumes,
            t.activity_versions.c.route,
            t.activity_versions.c.late_zones,
        )
        .join(
            t.activity_versions,
            and_(
                t.activity_versions.c.activity_id == t.activities.c.id,
                t.activity_versions.c.version == t.activities.c.plan_version,
            ),
        )
        .where(readable(actor), t.activities.c.id > after)
        .order_by(t.activities.c.id)
    )
    if activity_ids is not None:
        query = query.where(t.activities.c.id.in_(activity_ids))
    if party is not None:
        query = query.where(t.activities.c.party == party)
    if start is not None:
        query = query.where(t.activities.c.end > start)
    if end is not None:
        query = query.where(t.activities.c.start < end)
    rows = conn.execute(query).all()
    ids = [r.id for r in rows]
    recipients: dict[int, list[str]] = {}
    acks: dict[int, list[AcknowledgementOut]] = {}
    if ids:
        for r in conn.execute(
            select(t.activity_recipients)
            .where(t.activity_recipients.c.activity_id.in_(ids))
            .order_by(t.activity_recipients.c.party)
        ):
            recipients.setdefault(r.activity_id, []).append(r.party)
        for a in conn.execute(
            select(t.activity_acks)
            .where(t.activity_acks.c.activity_id.in_(ids))
            .order_by(t.activity_acks.c.at)
        ):
            acks.setdefault(a.activity_id, []).append(
                AcknowledgementOut(party=a.party, officer=a.officer, version=a.version, at=a.at)
            )
    out = [_out(r, recipients.get(r.id, []), acks.get(r.id, []), now) for r in rows]
    if state is not None:
        out = [a for a in out if a.state == state]
    return out[:limit]


def versions(conn: Connection, actor: Actor, activity_id: int) -> list[ActivityVersionOut]:
    _visible_row(conn, actor, activity_id)
    rows = conn.execute(
        select(t.activity_versions)
        .where(t.activity_versions.c.activity_id == activity_id)
        .order_by(t.activity_versions.c.version)
    ).all()
    return [
        ActivityVersionOut(
            version=r.version,
            author=r.author,
            created_at=r.created_at,
            volumes=r.volumes,
            route=r.route,
            late_zones=r.late_zones,
        )
        for r in rows
    ]


def _state(stored: str, start: datetime, end: datetime, now: datetime) -> str:
    """Stored states are notified/acknowledged/cancelled; active and completed follow the clock."""
    if stored == "cancelled":
        return "cancelled"
    if now >= end:
        return "completed"
    if now >= start:
        return "active"
    return stored


def _out(
    row: Row[Any], recipients: list[str], acks: list[AcknowledgementOut], now: datetime
) -> ActivityOut:
    return ActivityOut(
        id=row.id,
        party=row.party,
        kind=row.kind,
        title=row.title,
        callsign=row.callsign,
        state=_state(row.state, row.start, row.end, now),
        version=row.version,
        start=row.start,
        end=row.end,
        late=row.late,
        late_zones=row.late_zones,
        notified_to=recipients,
        volumes=row.volumes,
        route=row.route,
        acknowledgements=acks,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
