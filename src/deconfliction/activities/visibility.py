"""Which activities a caller may read (shared by activities and conflicts).

A party reads its own activities and those notified to it; the mediator reads every activity
notified to anyone; an observer reads those notified to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, exists, or_, select

from deconfliction.parties.models import Actor
from deconfliction.store import tables as t


def readable(actor: Actor) -> Any:
    """A WHERE clause over `activities` for what the actor may read."""
    shared = exists().where(t.activity_recipients.c.activity_id == t.activities.c.id)
    if actor.sees_all_shared:
        return or_(t.activities.c.party == actor.party, shared)
    return or_(
        t.activities.c.party == actor.party,
        shared.where(t.activity_recipients.c.party == actor.party),
    )


def readable_ids(conn: Connection, actor: Actor, ids: Iterable[int]) -> set[int]:
    wanted = set(ids)
    if not wanted:
        return set()
    return set(
        conn.execute(
            select(t.activities.c.id).where(t.activities.c.id.in_(wanted), readable(actor))
        ).scalars()
    )
