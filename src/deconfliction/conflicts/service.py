"""Conflict use cases: record what detection found, list, get, acknowledge, accept, resolve.

States: open -> acknowledged (once every party involved acknowledged) -> resolved (an activity was
amended or cancelled; detection re-runs on the new plan) or accepted (every party involved
accepts the risk, on record). Involved parties and the mediator read a conflict; an observer reads
it when every activity in it was notified to the observer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, exists, insert, or_, select, update

from deconfliction.activities.visibility import readable
from deconfliction.conflicts.detection import (
    CellIndex,
    Finding,
    find_zone_conflicts,
    lock_cells,
    policy_for,
)
from deconfliction.conflicts.models import ConflictOut, OverlapOut, PartyStanceOut, SideOut
from deconfliction.errors import Conflict, Forbidden, NotFound
from deconfliction.hotline.service import NewConflict, open_threads_for_conflicts
from deconfliction.parties.models import Actor
from deconfliction.parties.service import area_minima, require_acting
from deconfliction.record.service import record
from deconfliction.store import tables as t
from deconfliction.store.db import insert_returning_ids, run_rows
from deconfliction.stream.service import publish_many
from deconfliction.zones.models import ZoneOut
from deconfliction.zones.service import list_zones, zone_volume

OPEN_STATES = ("open", "acknowledged")
# The statements of every filing that finds conflicts, built once (see `_record`).
_INSERT_STANCES = insert(t.conflict_parties)
_ZONE_TITLES = select(t.zones.c.id, t.zones.c.name, t.zones.c.rule).where(
    t.zones.c.id.in_(bindparam("ids", expanding=True))
)
# Per kind of reader: every party sees its own, the mediator every shared activity.
_ACTIVITY_TITLES: dict[tuple[str, bool], Any] = {}


def record_findings(
    conn: Connection,
    actor: Actor,
    activity_id: int,
    version: int,
    findings: list[Finding],
    now: datetime,
) -> list[ConflictOut]:
    """Store the conflicts a plan (``activity_id`` at ``version``) of the caller creates; they
    are answered as the caller reads them, built from the rows written."""
    sides = [
        (
            (actor.party, activity_id, version),
            (f.other.party, f.other.activity, f.other.version, f.other.zone),
        )
        for f in findings
    ]
    others = [f.other.model_dump(exclude_none=True) for f in findings]
    rows = _record(conn, actor, sides, findings, others, now)
    if not rows:
        return []
    titles = _readable_titles(
        conn,
        actor,
        {activity_id} | {r["activity_b"] for r in rows if r["activity_b"] is not None},
        {r["zone_id"] for r in rows if r["zone_id"] is not None},
    )
    return [_out(row, _fresh_stances(row), titles) for row in rows]


def _fresh_stances(row: Mapping[str, Any]) -> list[PartyStanceOut]:
    return [
        PartyStanceOut(
            party=p, acknowledged_at=None, acknowledged_by=None, accepted_at=None, accepted_by=None
        )
        for p in sorted({row["party_a"], row["party_b"]})
    ]


def record_zone_findings(
    conn: Connection, actor: Actor, zone_id: int, findings: list[Finding], now: datetime
) -> list[int]:
    """Store the conflicts a zone the caller declared has with stored activities of other
    parties (each finding's ``other`` is the activity): stored as activity x zone, the same as
    when the activity meets the zone."""
    sides: list[tuple[tuple[str, int, int], tuple[str, int | None, int | None, int | None]]] = [
        (
            (f.other.party, f.other.activity or 0, f.other.version or 0),
            (actor.party, None, None, zone_id),
        )
        for f in findings
    ]
    others: list[dict[str, Any]] = [{"party": actor.party, "zone": zone_id} for _ in findings]
    return [row["id"] for row in _record(conn, actor, sides, findings, others, now)]


def _record(
    conn: Connection,
    actor: Actor,
    sides: Sequence[tuple[tuple[str, int, int], tuple[str, int | None, int | None, int | None]]],
    findings: list[Finding],
    others: list[dict[str, Any]],
    now: datetime,
) -> list[dict[str, Any]]:
    """Insert the conflicts and their parties in one statement each, record and publish each,
    then open their hotline threads in one batch. Returns the rows written, with their ids."""
    if not findings:
        return []
    overlaps = [f.overlap() for f in findings]
    rows: list[dict[str, Any]] = [
        {
            "kind": finding.kind,
            "severity": finding.severity,
            "state": "open",
            "activity_a": a_activity,
            "version_a": a_version,
            "party_a": a_party,
            "activity_b": b_activity,
            "version_b": b_version,
            "zone_id": b_zone,
            "party_b": b_party,
            "region": overlap.region,
            "lower_m": overlap.lower_m,
            "upper_m": overlap.upper_m,
            "start": overlap.start,
            "end": overlap.end,
            "distance_m": overlap.distance_m,
            "created_at": now,
            "updated_at": now,
        }
        for finding, overlap, (
            (a_party, a_activity, a_version),
            (b_party, b_activity, b_version, b_zone),
        ) in zip(findings, overlaps, sides, strict=True)
    ]
    ids = insert_returning_ids(conn, t.conflicts, rows)
    run_rows(
        conn,
        _INSERT_STANCES,
        [
            {
                "conflict_id": cid,
                "party": p,
                "acknowledged_at": None,
                "acknowledged_by": None,
                "accepted_at": None,
                "accepted_by": None,
            }
            for cid, row in zip(ids, rows, strict=True)
            for p in sorted({row["party_a"], row["party_b"]})
        ],
    )
    for cid, row, finding, overlap, other in zip(
        ids, rows, findings, overlaps, others, strict=True
    ):
        facts = {
            "conflict": cid,
            "kind": finding.kind,
            "severity": finding.severity,
            "activity": row["activity_a"],
            "version": row["version_a"],
            "other": other,
            # The region is JSON already: dumping it again would copy every vertex.
            "overlap": {
                "region": overlap.region,
                **overlap.model_dump(mode="json", exclude={"region"}),
            },
        }
        record(conn, actor, "conflict.detected", f"conflict/{cid}", facts, now)
    publish_many(
        conn,
        [
            (
                [row["party_a"], row["party_b"]],
                "conflict.detected",
                {"conflict": cid, "kind": finding.kind, "severity": finding.severity},
            )
            for cid, row, finding in zip(ids, rows, findings, strict=True)
        ],
        now,
    )
    open_threads_for_conflicts(
        conn,
        [
            NewConflict(
                cid,
                row["party_a"],
                row["party_b"],
                row["severity"],
                row["lower_m"],
                row["upper_m"],
                row["start"],
                row["end"],
            )
            for cid, row in zip(ids, rows, strict=True)
        ],
        now,
    )
    return [{"id": cid, "resolution": None, **row} for cid, row in zip(ids, rows, strict=True)]


def detect_for_zone(conn: Connection, actor: Actor, zone: ZoneOut, now: datetime) -> list[int]:
    """A zone just declared by ``actor`` meets the stored activities of other parties: record
    the conflicts by the rules of a plan meeting a zone (``no_entry`` a conflict, ``notify`` a
    conflict when entered before its lead time, ``caution`` an advisory). Serialised with
    crossing writers by the same cell locks; candidates from the SQL cell index (correct on
    every database; a declaration is rare)."""
    policy = policy_for(area_minima(conn), list_zones(conn, actor))
    lock_cells(conn, [zone_volume(zone)], policy.reach.horizontal_m)
    findings = find_zone_conflicts(conn, CellIndex(), zone, policy, now)
    return record_zone_findings(conn, actor, zone.id, findings, now)


def resolve_for_activity(
    conn: Connection, actor: Actor, activity_id: int, resolution: str, now: datetime
) -> None:
    """The plan changed: its open conflicts are resolved (detection runs again on the new one)."""
    rows = (
        conn.execute(
            select(t.conflicts.c.id).where(
                or_(
                    t.conflicts.c.activity_a == activity_id, t.conflicts.c.activity_b == activity_id
                ),
                t.conflicts.c.state.in_(OPEN_STATES),
            )
        )
        .scalars()
        .all()
    )
    if not rows:
        return
    conn.execute(
        update(t.conflicts)
        .where(t.conflicts.c.id.in_(rows))
        .values(state="resolved", resolution=resolution, updated_at=now)
    )
    for cid in rows:
        record(
            conn,
            actor,
            "conflict.resolved",
            f"conflict/{cid}",
            {"conflict": cid, "resolution": resolution},
            now,
        )


def acknowledge(conn: Connection, actor: Actor, conflict_id: int, now: datetime) -> ConflictOut:
    stance = _own_stance(conn, actor, conflict_id)
    if stance.acknowledged_at is not None:
        raise Conflict(f"{actor.party} already acknowledged conflict {conflict_id}")
    _set_stance(conn, actor, conflict_id, acknowledged_at=now, acknowledged_by=actor.officer)
    if _all_parties(conn, conflict_id, t.conflict_parties.c.acknowledged_at):
        _move(conn, conflict_id, "acknowledged", now, only_from="open")
    record(
        conn,
        actor,
        "conflict.acknowledged",
        f"conflict/{conflict_id}",
        {"conflict": conflict_id},
        now,
    )
    return get(conn, actor, conflict_id)


def accept(conn: Connection, actor: Actor, conflict_id: int, now: datetime) -> ConflictOut:
    stance = _own_stance(conn, actor, conflict_id)
    if stance.accepted_at is not None:
        raise Conflict(f"{actor.party} already accepted conflict {conflict_id}")
    _set_stance(conn, actor, conflict_id, accepted_at=now, accepted_by=actor.officer)
    if _all_parties(conn, conflict_id, t.conflict_parties.c.accepted_at):
        _move(conn, conflict_id, "accepted", now)
    record(
        conn, actor, "conflict.accepted", f"conflict/{conflict_id}", {"conflict": conflict_id}, now
    )
    return get(conn, actor, conflict_id)


def _own_stance(conn: Connection, actor: Actor, conflict_id: int) -> Row[Any]:
    require_acting(actor)
    row = _visible_row(conn, actor, conflict_id)
    if row.state not in OPEN_STATES:
        raise Conflict(f"conflict {conflict_id} is {row.state}")
    stance = conn.execute(
        select(t.conflict_parties).where(
            t.conflict_parties.c.conflict_id == conflict_id,
            t.conflict_parties.c.party == actor.party,
        )
    ).first()
    if stance is None:
        raise Forbidden(f"{actor.party} is not a party to conflict {conflict_id}")
    return stance


def _set_stance(conn: Connection, actor: Actor, conflict_id: int, **values: Any) -> None:
    conn.execute(
        update(t.conflict_parties)
        .where(
            t.conflict_parties.c.conflict_id == conflict_id,
            t.conflict_parties.c.party == actor.party,
        )
        .values(**values)
    )


def _all_parties(conn: Connection, conflict_id: int, column: Any) -> bool:
    missing = conn.execute(
        select(t.conflict_parties.c.party).where(
            t.conflict_parties.c.conflict_id == conflict_id, column.is_(None)
        )
    ).first()
    return missing is None


def _move(
    conn: Connection, conflict_id: int, state: str, now: datetime, only_from: str | None = None
) -> None:
    query = update(t.conflicts).where(t.conflicts.c.id == conflict_id)
    if only_from is not None:
        query = query.where(t.conflicts.c.state == only_from)
    conn.execute(query.values(state=state, updated_at=now))


def _visibility(actor: Actor) -> Any:
    if actor.sees_all_shared:
        return t.conflicts.c.id.is_not(None)
    involved = exists().where(
        and_(
            t.conflict_parties.c.conflict_id == t.conflicts.c.id,
            t.conflict_parties.c.party == actor.party,
        )
    )

    def notified(activity: Any) -> Any:
        return exists().where(
            and_(
                t.activity_recipients.c.activity_id == activity,
                t.activity_recipients.c.party == actor.party,
            )
        )

    shared_with_me = and_(
        notified(t.conflicts.c.activity_a),
        or_(t.conflicts.c.activity_b.is_(None), notified(t.conflicts.c.activity_b)),
    )
    return or_(involved, shared_with_me)


def _visible_row(conn: Connection, actor: Actor, conflict_id: int) -> Row[Any]:
    row = conn.execute(
        select(t.conflicts).where(t.conflicts.c.id == conflict_id, _visibility(actor))
    ).first()
    if row is None:
        raise NotFound(f"no conflict {conflict_id} visible to {actor.party}")
    return row


def get(conn: Connection, actor: Actor, conflict_id: int) -> ConflictOut:
    _visible_row(conn, actor, conflict_id)
    return list_conflicts(conn, actor, conflict_ids=[conflict_id])[0]


def list_conflicts(
    conn: Connection,
    actor: Actor,
    *,
    conflict_ids: list[int] | None = None,
    state: str | None = None,
    party: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    activity: int | None = None,
    limit: int = 1000,
    after: int = 0,
) -> list[ConflictOut]:
    query = (
        select(t.conflicts)
        .where(_visibility(actor), t.conflicts.c.id > after)
        .order_by(t.conflicts.c.id)
        .limit(limit)
    )
    if conflict_ids is not None:
        query = query.where(t.conflicts.c.id.in_(conflict_ids))
    if state is not None:
        query = query.where(t.conflicts.c.state == state)
    if party is not None:
        query = query.where(or_(t.conflicts.c.party_a == party, t.conflicts.c.party_b == party))
    if activity is not None:
        query = query.where(
            or_(t.conflicts.c.activity_a == activity, t.conflicts.c.activity_b == activity)
        )
    if start is not None:
        query = query.where(t.conflicts.c.end > start)
    if end is not None:
        query = query.where(t.conflicts.c.start < end)
    rows = conn.execute(query).all()
    if not rows:
        return []
    ids = [r.id for r in rows]
    stances: dict[int, list[PartyStanceOut]] = {}
    for s in conn.execute(
        select(t.conflict_parties)
        .where(t.conflict_parties.c.conflict_id.in_(ids))
        .order_by(t.conflict_parties.c.party)
    ):
        stances.setdefault(s.conflict_id, []).append(
            PartyStanceOut(
                party=s.party,
                acknowledged_at=s.acknowledged_at,
                acknowledged_by=s.acknowledged_by,
                accepted_at=s.accepted_at,
                accepted_by=s.accepted_by,
            )
        )
    titles = _readable_titles(
        conn,
        actor,
        {r.activity_a for r in rows} | {r.activity_b for r in rows if r.activity_b},
        {r.zone_id for r in rows if r.zone_id},
    )
    return [_out(r._mapping, stances.get(r.id, []), titles) for r in rows]


def _readable_titles(
    conn: Connection, actor: Actor, activity_ids: Iterable[int], zone_ids: Iterable[int]
) -> dict[tuple[str, int], tuple[str, str]]:
    """Titles of these activities that the caller may read, and of these zones."""
    titles: dict[tuple[str, int], tuple[str, str]] = {}
    wanted = sorted(set(activity_ids))
    if wanted:
        for a in conn.execute(_activity_titles(actor), {"ids": wanted}):
            titles[("activity", a.id)] = (a.title, a.kind)
    zones = sorted(set(zone_ids))
    if zones:
        for z in conn.execute(_ZONE_TITLES, {"ids": zones}):
            titles[("zone", z.id)] = (z.name, z.rule)
    return titles


def _activity_titles(actor: Actor) -> Any:
    """Titles of the activities of ``ids`` the actor may read: one statement per kind of
    reader, built once (a statement built anew costs more than it takes to run)."""
    key = (actor.party, actor.sees_all_shared)
    statement = _ACTIVITY_TITLES.get(key)
    if statement is None:
        statement = _ACTIVITY_TITLES[key] = select(
            t.activities.c.id, t.activities.c.title, t.activities.c.kind
        ).where(t.activities.c.id.in_(bindparam("ids", expanding=True)), readable(actor))
    return statement


def _side(
    party: str,
    titles: dict[tuple[str, int], tuple[str, str]],
    *,
    activity: int | None = None,
    version: int | None = None,
    zone: int | None = None,
) -> SideOut:
    key = ("activity", activity) if activity is not None else ("zone", zone or 0)
    title, kind = titles.get(key, (None, None))
    return SideOut(
        party=party, activity=activity, version=version, zone=zone, title=title, kind=kind
    )


def _out(
    row: Mapping[Any, Any],  # a RowMapping, or the dict of a row just written
    stances: list[PartyStanceOut],
    titles: dict[tuple[str, int], tuple[str, str]],
) -> ConflictOut:
    """A conflict as read (a stored row) or as just written (the values inserted)."""
    return ConflictOut(
        id=row["id"],
        kind=row["kind"],
        severity=row["severity"],
        state=row["state"],
        a=_side(row["party_a"], titles, activity=row["activity_a"], version=row["version_a"]),
        b=_side(
            row["party_b"],
            titles,
            activity=row["activity_b"],
            version=row["version_b"],
            zone=row["zone_id"],
        ),
        overlap=OverlapOut(
            region=row["region"],
            lower_m=row["lower_m"],
            upper_m=row["upper_m"],
            start=row["start"].astimezone(UTC),
            end=row["end"].astimezone(UTC),
            distance_m=row["distance_m"],
        ),
        parties=stances,
        resolution=row["resolution"],
        created_at=row["created_at"].astimezone(UTC),
        updated_at=row["updated_at"].astimezone(UTC),
    )
