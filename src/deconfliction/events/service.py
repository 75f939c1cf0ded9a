"""The one write path: every change of state is recorded here as an event, in its transaction.

`perform_write` wraps a use case in a write transaction with idempotency: a retry that carries the
same Idempotency-Key gets the first answer back and writes nothing twice. The signed ledger hangs
off `record`, so no service writes state without calling it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import IntegrityError

from deconfliction.errors import Conflict, Invalid
from deconfliction.parties.models import Actor
from deconfliction.store import tables as t
from deconfliction.store.db import transaction

WriteResult = tuple[int, dict[str, Any]]


class EventOut(BaseModel):
    id: int
    at: datetime
    party: str
    officer: str
    kind: str
    subject: str
    payload: dict[str, Any]


def record(
    conn: Connection, actor: Actor, kind: str, subject: str, payload: dict[str, Any], now: datetime
) -> int:
    result = conn.execute(
        insert(t.events).values(
            at=now,
            party=actor.party,
            officer=actor.officer,
            kind=kind,
            subject=subject,
            payload=payload,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def request_fingerprint(request: Any) -> str:
    return hashlib.sha256(
        json.dumps(request, sort_keys=True, default=str, separators=(",", ":")).encode()
    ).hexdigest()


def perform_write(
    engine: Engine,
    actor: Actor,
    idempotency_key: str | None,
    request: Any,
    use_case: Callable[[Connection], WriteResult],
    now: datetime,
) -> WriteResult:
    """Run one write use case; with an Idempotency-Key, at most once."""
    if idempotency_key is None:
        with transaction(engine, write=True) as conn:
            return use_case(conn)
    if not 1 <= len(idempotency_key) <= 200:
        raise Invalid("Idempotency-Key must be 1 to 200 characters")
    fingerprint = request_fingerprint(request)
    try:
        with transaction(engine, write=True) as conn:
            earlier = _earlier_answer(conn, actor, idempotency_key, fingerprint)
            if earlier is not None:
                return earlier
            status, body = use_case(conn)
            conn.execute(
                insert(t.idempotency).values(
                    officer=actor.officer,
                    key=idempotency_key,
                    request_hash=fingerprint,
                    status=status,
                    response=json.loads(json.dumps(body, default=str)),
                    created_at=now,
                )
            )
            return status, body
    except IntegrityError:
        # A concurrent request with the same key committed first: its answer is ours.
        with transaction(engine, write=False) as conn:
            earlier = _earlier_answer(conn, actor, idempotency_key, fingerprint)
        if earlier is None:
            raise
        return earlier


def _earlier_answer(
    conn: Connection, actor: Actor, key: str, fingerprint: str
) -> WriteResult | None:
    row = conn.execute(
        select(t.idempotency).where(
            t.idempotency.c.officer == actor.officer,
            t.idempotency.c.key == key,
        )
    ).first()
    if row is None:
        return None
    if row.request_hash != fingerprint:
        raise Conflict("this Idempotency-Key was already used for a different request")
    return int(row.status), dict(row.response)


def list_events(conn: Connection, actor: Actor, after: int, limit: int) -> list[EventOut]:
    """A party reads its own events; the mediator reads every party's."""
    query = select(t.events).where(t.events.c.id > after).order_by(t.events.c.id).limit(limit)
    if not actor.sees_all_shared:
        query = query.where(t.events.c.party == actor.party)
    return [EventOut.model_validate(r._mapping) for r in conn.execute(query)]
