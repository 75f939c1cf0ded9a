"""Reading the record: every party may check every entry's signature and place in the tree, but
reads a payload only where it may read what the entry is about (minimal disclosure). Hidden
payloads are redacted to their SHA-256, which the signature and the leaf hash commit to."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Row, select

from deconfliction.activities.visibility import readable_ids
from deconfliction.agreements.service import readable_violation_ids
from deconfliction.conflicts.service import list_conflicts
from deconfliction.hotline.service import readable_message_ids
from deconfliction.incidents.visibility import readable_incident_ids
from deconfliction.parties.models import Actor
from deconfliction.record.log import entry_json, export_records
from deconfliction.store import tables as t
from deconfliction.tracks.service import readable_alert_ids

PUBLIC_SUBJECTS = ("zone", "party", "round", "position", "commitment")


def readable_payloads(conn: Connection, actor: Actor, rows: Sequence[Any]) -> set[int]:
    """Indices of the entries among `rows` whose payload the actor may read."""
    if actor.sees_all_shared:
        return {int(r.idx) for r in rows}
    activities: dict[int, list[int]] = {}
    conflicts: dict[int, list[int]] = {}
    messages: dict[int, list[int]] = {}
    alerts: dict[int, list[int]] = {}
    agreed: dict[str, dict[int, list[int]]] = {"violation": {}, "incident": {}}
    shown: set[int] = set()
    for r in rows:
        kind, _, ident = str(r.subject).partition("/")
        if r.party == actor.party or kind in PUBLIC_SUBJECTS:
            shown.add(int(r.idx))
        elif kind == "activity" and ident.isdigit():
            activities.setdefault(int(ident), []).append(int(r.idx))
        elif kind == "conflict" and ident.isdigit():
            conflicts.setdefault(int(ident), []).append(int(r.idx))
        elif kind == "alert" and ident.isdigit():
            alerts.setdefault(int(ident), []).append(int(r.idx))
        elif kind == "message" and ident.isdigit():
            messages.setdefault(int(ident), []).append(int(r.idx))
        elif kind in agreed and ident.isdigit():
            agreed[kind].setdefault(int(ident), []).append(int(r.idx))
        elif kind == "channel" and actor.party in ident.split("-"):
            shown.add(int(r.idx))
    for aid in readable_ids(conn, actor, activities):
        shown.update(activities[aid])
    for mid in readable_message_ids(conn, actor, messages):
        shown.update(messages[mid])
    for aid in readable_alert_ids(conn, actor, alerts):
        shown.update(alerts[aid])
    for vid in readable_violation_ids(conn, actor, list(agreed["violation"])):
        shown.update(agreed["violation"][vid])
    for iid in readable_incident_ids(conn, actor, agreed["incident"]):
        shown.update(agreed["incident"][iid])
    if conflicts:
        for c in list_conflicts(conn, actor, conflict_ids=list(conflicts)):
            shown.update(conflicts[c.id])
    return shown


def entry_out(row: Row[Any], show_payload: bool) -> dict[str, Any]:
    entry = entry_json(row)
    if not show_payload:
        entry["payload"] = None
    return {
        "index": int(row.idx),
        "subject": row.subject,
        "integrated_at": row.integrated_at,
        "entry": entry,
    }


def list_entries(conn: Connection, actor: Actor, start: int, end: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(t.entries)
        .where(t.entries.c.idx >= start, t.entries.c.idx < end)
        .order_by(t.entries.c.idx)
    ).all()
    shown = readable_payloads(conn, actor, rows)
    return [entry_out(r, int(r.idx) in shown) for r in rows]


def export_for(conn: Connection, actor: Actor | None) -> Iterator[dict[str, Any]]:
    """The export records; with an actor, payloads it may not read are redacted."""
    batch: list[dict[str, Any]] = []
    for record in export_records(conn):
        if actor is None or record["type"] == "checkpoint":
            yield from _redacted(conn, actor, batch)
            batch = []
            yield record
            continue
        batch.append(record)
        if len(batch) >= 1000:
            yield from _redacted(conn, actor, batch)
            batch = []
    yield from _redacted(conn, actor, batch)


def _redacted(
    conn: Connection, actor: Actor | None, records: list[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    if not records or actor is None:
        yield from records
        return
    indices = [r["index"] for r in records]
    rows = conn.execute(
        select(t.entries.c.idx, t.entries.c.party, t.entries.c.subject).where(
            t.entries.c.idx.in_(indices)
        )
    ).all()
    shown = readable_payloads(conn, actor, rows)
    for record in records:
        if record["index"] not in shown:
            record = {**record, "entry": {**record["entry"], "payload": None}}
        yield record
