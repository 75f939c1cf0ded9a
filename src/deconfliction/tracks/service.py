"""Live picture use cases: take track states from officers, persist the picture, store and read
alerts.

Who sees what: a party sees its own tracks and the alerts it is in; the mediator sees every track
and every alert; an observer sees neither (live positions are not shared with it). Feed counters:
a party sees the feeds bound to it, the mediator all of them.

Posted track states are not entries of the signed record: they are telemetry, many a second, and
the record would grow by a signed entry per track per second. What the record holds is what the
states led to: every alert raised and cleared (``alert.raised``, ``alert.cleared``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    delete,
    false,
    insert,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from deconfliction.errors import NotFound
from deconfliction.feeds.servers import FeedCounters, Intake
from deconfliction.parties.models import Actor
from deconfliction.parties.service import require_acting
from deconfliction.record.service import record
from deconfliction.store import tables as t
from deconfliction.store.db import transaction
from deconfliction.tracks.alerting import Finding
from deconfliction.tracks.models import (
    AlertOut,
    DroppedOut,
    FeedOut,
    IngestOut,
    TrackOut,
    TracksIn,
)
from deconfliction.tracks.picture import TrackPicture, TrackState

API_SOURCE = "api"
ACTIVE_STATES = ("raised", "updated")
PIECE_ROWS = 250  # rows a statement, and a transaction of the picture's writes
PIECE_PAUSE_S = 0.002


# --- intake from officers -----------------------------------------------------------------


def states_from_body(
    body: TracksIn, party: str, stale_at: Callable[[datetime, datetime | None], datetime]
) -> list[TrackState]:
    """The posted states as states of ``party`` (the token's)."""
    return [
        TrackState(
            party=party,
            id=s.id,
            lat=s.lat,
            lon=s.lon,
            alt_m=s.alt_m,
            gs_mps=s.gs_mps,
            course_deg=0.0 if s.course_deg == 360.0 else s.course_deg,
            vs_mps=s.vs_mps,
            time=s.time,
            stale_at=stale_at(s.time, s.stale),
            source=API_SOURCE,
            callsign=s.callsign,
            type=s.type,
        )
        for s in body.states
    ]


def ingest(intake: Intake, counters: FeedCounters, actor: Actor, body: TracksIn) -> IngestOut:
    """Offer the posted states to the picture, counted under the party's API counters.
    Returns how many were kept and why the others were not."""
    require_acting(actor)
    states = states_from_body(body, actor.party, intake.rules.stale_at)
    dropped: list[DroppedOut] = []
    accepted = 0
    for index, state in enumerate(states):
        counters.seen(intake.clock())
        reason = intake.offer(state, counters)
        if reason is None:
            accepted += 1
        else:
            dropped.append(DroppedOut(index=index, id=state.id, reason=reason))
    return IngestOut(accepted=accepted, dropped=dropped)


def track_out(state: TrackState) -> TrackOut:
    return TrackOut(
        key=state.key,
        party=state.party,
        id=state.id,
        lat=state.lat,
        lon=state.lon,
        alt_m=state.alt_m,
        gs_mps=state.gs_mps,
        course_deg=state.course_deg,
        vs_mps=state.vs_mps,
        time=state.time,
        stale=state.stale_at,
        source=state.source,
        callsign=state.callsign,
        type=state.type,
    )


def visible_tracks(
    picture: TrackPicture, actor: Actor, now: datetime, party: str | None = None
) -> list[TrackOut]:
    states = picture.snapshot(now)
    if not actor.sees_all_shared:
        if actor.role == "observer":
            return []
        states = [s for s in states if s.party == actor.party]
    if party is not None:
        states = [s for s in states if s.party == party]
    return [track_out(s) for s in states]


def visible_feeds(feeds: Sequence[FeedOut], actor: Actor) -> list[FeedOut]:
    if actor.sees_all_shared:
        return list(feeds)
    if actor.role == "observer":
        return []
    return [f for f in feeds if f.party == actor.party]


# --- the picture in storage ---------------------------------------------------------------


def _state_row(state: TrackState) -> dict[str, Any]:
    return {
        "party": state.party,
        "track_id": state.id,
        "source": state.source,
        "callsign": state.callsign,
        "type": state.type,
        "lat": state.lat,
        "lon": state.lon,
        "alt_m": state.alt_m,
        "gs_mps": state.gs_mps,
        "course_deg": state.course_deg,
        "vs_mps": state.vs_mps,
        "time": state.time,
        "stale_at": state.stale_at,
    }


def _row_state(row: Row[Any]) -> TrackState:
    return TrackState(
        party=row.party,
        id=row.track_id,
        lat=row.lat,
        lon=row.lon,
        alt_m=row.alt_m,
        gs_mps=row.gs_mps,
        course_deg=row.course_deg,
        vs_mps=row.vs_mps,
        time=row.time,
        stale_at=row.stale_at,
        source=row.source,
        callsign=row.callsign,
        type=row.type,
    )


def _upsert(conn: Connection, rows: list[dict[str, Any]]) -> None:
    table = t.track_states
    if conn.dialect.name == "postgresql":
        stmt: Any = postgresql.insert(table)
    elif conn.dialect.name == "sqlite":
        stmt = sqlite.insert(table)
    else:  # portable fallback: delete then insert
        keys = [(r["party"], r["track_id"]) for r in rows]
        conn.execute(delete(table).where(tuple_(table.c.party, table.c.track_id).in_(keys)))
        conn.execute(insert(table), rows)
        return
    columns = [c.name for c in table.columns if c.name not in ("party", "track_id")]
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.party, table.c.track_id],
        set_={name: stmt.excluded[name] for name in columns},
    )
    conn.execute(stmt, rows)


def write_changes(conn: Connection, upserts: list[TrackState], deletes: list[str]) -> None:
    table = t.track_states
    for start in range(0, len(deletes), PIECE_ROWS):
        keys = [tuple(k.split("/", 1)) for k in deletes[start : start + PIECE_ROWS]]
        conn.execute(delete(table).where(tuple_(table.c.party, table.c.track_id).in_(keys)))
    for start in range(0, len(upserts), PIECE_ROWS):
        _upsert(conn, [_state_row(s) for s in upserts[start : start + PIECE_ROWS]])


def flush_picture(
    engine: Engine, picture: TrackPicture, piece: int = PIECE_ROWS, pause_s: float = PIECE_PAUSE_S
) -> int:
    """Write what changed in the picture since the last flush, ``piece`` rows a transaction, so
    that no piece holds the database writer long in front of an alert (each row is a whole
    state: a restart between pieces finds every stored track at one of its reported states).
    Between pieces it pauses ``pause_s``: a lock is not handed over to the thread waiting for
    it, and without the pause this thread would take the writer again before an alert's
    transaction woke up. On failure the rows not yet written go back to the picture for the
    next flush."""
    upserts, deletes = picture.take_changes()
    pieces: list[tuple[list[TrackState], list[str]]] = [
        ([], deletes[k : k + piece]) for k in range(0, len(deletes), piece)
    ] + [(upserts[k : k + piece], []) for k in range(0, len(upserts), piece)]
    for done, (ups, dels) in enumerate(pieces):
        if done:
            time.sleep(pause_s)
        try:
            with transaction(engine, write=True) as conn:
                write_changes(conn, ups, dels)
        except Exception:
            rest = pieces[done:]
            picture.give_back([s for u, _ in rest for s in u], [k for _, d in rest for k in d])
            raise
    return len(upserts) + len(deletes)


def load_picture(engine: Engine, picture: TrackPicture, now: datetime) -> int:
    """Put the stored states that are not yet stale back into the picture (after a restart),
    and delete the stale ones."""
    with transaction(engine, write=True) as conn:
        conn.execute(delete(t.track_states).where(t.track_states.c.stale_at <= now))
        rows = conn.execute(select(t.track_states)).all()
    return picture.load(_row_state(r) for r in rows)


# --- alerts ---------------------------------------------------------------------------------


def _figures(finding: Finding) -> dict[str, Any]:
    (lon_a, lat_a), (lon_b, lat_b) = finding.segment
    return {
        "tcpa_s": finding.tcpa_s,
        "dcpa_m": finding.dcpa_m,
        "t_in_s": finding.t_in_s,
        "t_out_s": finding.t_out_s,
        "segment": {"type": "LineString", "coordinates": [[lon_a, lat_a], [lon_b, lat_b]]},
        "altitudes_m": list(finding.altitudes_m),
    }


def alert_out(row: Row[Any]) -> AlertOut:
    return AlertOut(
        id=row.id,
        kind=row.kind,
        a=row.a,
        b=row.b,
        zone=row.zone_id,
        parties=row.parties,
        tcpa_s=row.tcpa_s,
        dcpa_m=row.dcpa_m,
        t_in_s=row.t_in_s,
        t_out_s=row.t_out_s,
        segment=row.segment,
        altitudes_m=row.altitudes_m,
        state=row.state,
        raised_at=row.raised_at,
        updated_at=row.updated_at,
        cleared_at=row.cleared_at,
    )


def finding_of(row: Row[Any]) -> Finding:
    """The finding an alert row was last updated with (to resume after a restart)."""
    (lon_a, lat_a), (lon_b, lat_b) = row.segment["coordinates"]
    alt_a, alt_b = row.altitudes_m
    return Finding(
        kind=row.kind,
        a=row.a,
        b=row.b,
        zone=row.zone_id,
        party_a=row.party_a,
        party_b=row.party_b,
        tcpa_s=row.tcpa_s,
        dcpa_m=row.dcpa_m,
        t_in_s=row.t_in_s,
        t_out_s=row.t_out_s,
        segment=((lon_a, lat_a), (lon_b, lat_b)),
        altitudes_m=(alt_a, alt_b),
    )


def _fact(conn: Connection, kind: str, alert: AlertOut, now: datetime) -> None:
    payload: dict[str, Any] = {
        "alert": alert.id,
        "kind": alert.kind,
        "a": alert.a,
        "parties": alert.parties,
        "t_in_s": round(alert.t_in_s, 1),
    }
    if alert.b is not None:
        payload["b"] = alert.b
    if alert.zone is not None:
        payload["zone"] = alert.zone
    if alert.tcpa_s is not None and alert.dcpa_m is not None:
        payload["tcpa_s"] = round(alert.tcpa_s, 1)
        payload["dcpa_m"] = round(alert.dcpa_m, 1)
    record(conn, None, kind, f"alert/{alert.id}", payload, now)


def raise_alert(conn: Connection, finding: Finding, now: datetime) -> AlertOut:
    # RETURNING: the stored row in the same statement (alerts are written many a second).
    row = conn.execute(
        insert(t.alerts)
        .values(
            kind=finding.kind,
            a=finding.a,
            b=finding.b,
            zone_id=finding.zone,
            party_a=finding.party_a,
            party_b=finding.party_b,
            parties=finding.parties,
            state="raised",
            raised_at=now,
            updated_at=now,
            cleared_at=None,
            **_figures(finding),
        )
        .returning(t.alerts)
    ).one()
    alert = alert_out(row)
    _fact(conn, "alert.raised", alert, now)
    return alert


def update_alert(
    conn: Connection, alert_id: int, finding: Finding, now: datetime
) -> AlertOut | None:
    """The alert with ``finding``'s figures at ``now``; None (nothing changed) if it was
    already updated after ``now`` (an update stored late must not undo a newer one) or does
    not exist."""
    row = conn.execute(
        update(t.alerts)
        .where(t.alerts.c.id == alert_id, t.alerts.c.updated_at <= now)
        .values(state="updated", updated_at=now, **_figures(finding))
        .returning(t.alerts)
    ).first()
    return None if row is None else alert_out(row)


def clear_alert(conn: Connection, alert_id: int, now: datetime) -> AlertOut:
    row = conn.execute(
        update(t.alerts)
        .where(t.alerts.c.id == alert_id)
        .values(state="cleared", updated_at=now, cleared_at=now)
        .returning(t.alerts)
    ).first()
    if row is None:
        raise NotFound(f"no alert {alert_id}")
    alert = alert_out(row)
    _fact(conn, "alert.cleared", alert, now)
    return alert


def open_alerts(conn: Connection) -> list[tuple[int, Finding]]:
    rows = conn.execute(
        select(t.alerts).where(t.alerts.c.state.in_(ACTIVE_STATES)).order_by(t.alerts.c.id)
    ).all()
    return [(int(r.id), finding_of(r)) for r in rows]


def _visible(actor: Actor) -> Any:
    if actor.sees_all_shared:
        return true()
    if actor.role == "observer":
        return false()
    return or_(t.alerts.c.party_a == actor.party, t.alerts.c.party_b == actor.party)


def list_alerts(
    conn: Connection,
    actor: Actor,
    *,
    active: bool | None = True,
    party: str | None = None,
    limit: int = 1000,
    after: int = 0,
) -> list[AlertOut]:
    """Alerts the actor may read: the parties in it and the mediator."""
    query = (
        select(t.alerts)
        .where(_visible(actor), t.alerts.c.id > after)
        .order_by(t.alerts.c.id)
        .limit(limit)
    )
    if active is True:
        query = query.where(t.alerts.c.state.in_(ACTIVE_STATES))
    elif active is False:
        query = query.where(t.alerts.c.state == "cleared")
    if party is not None:
        query = query.where(or_(t.alerts.c.party_a == party, t.alerts.c.party_b == party))
    return [alert_out(r) for r in conn.execute(query).all()]


def get_alert(conn: Connection, actor: Actor, alert_id: int) -> AlertOut:
    row = conn.execute(select(t.alerts).where(t.alerts.c.id == alert_id, _visible(actor))).first()
    if row is None:
        raise NotFound(f"no alert {alert_id}")
    return alert_out(row)


def readable_alert_ids(conn: Connection, actor: Actor, ids: Iterable[int]) -> set[int]:
    """Which of the alerts ``ids`` the actor may read (for the record's payload visibility of
    ``alert/<id>`` entries)."""
    wanted = set(ids)
    if not wanted:
        return set()
    return set(
        conn.execute(
            select(t.alerts.c.id).where(t.alerts.c.id.in_(wanted), _visible(actor))
        ).scalars()
    )
