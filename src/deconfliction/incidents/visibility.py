"""Who reads an incident: the reporting party, the other party, and the mediator."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, or_, select

from deconfliction.parties.models import Actor
from deconfliction.store import tables as t


def readable(actor: Actor) -> Any:
    """A WHERE clause over `incidents` for what the actor may read."""
    if actor.sees_all_shared:
        return t.incidents.c.id.is_not(None)
    return or_(t.incidents.c.reported_by == actor.party, t.incidents.c.other_party == actor.party)


def readable_incident_ids(conn: Connection, actor: Actor, ids: Iterable[int]) -> set[int]:
    wanted = set(ids)
    if not wanted:
        return set()
    return set(
        conn.execute(
            select(t.incidents.c.id).where(t.incidents.c.id.in_(wanted), readable(actor))
        ).scalars()
    )
