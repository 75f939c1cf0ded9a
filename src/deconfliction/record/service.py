"""The one write path: every write is an officer's signed statement in the record, in the same
transaction as the change it makes, and the facts the server derives are the log's own entries.

`perform_write` runs a use case in one write transaction with idempotency (a retry with the same
Idempotency-Key gets the first answer back and writes nothing twice). Before the use case it
appends the officer's statement: signed by the officer's own key on the client
(`Deconfliction-Signature`), or, for officers set up with server-held keys, by the server with
that key, marked as such. `record` appends what the use case derived (an activity filed, a
conflict detected) as an entry of the log, which points back at the statement.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from deconfliction.errors import Conflict, Forbidden, Invalid, Unauthorized
from deconfliction.ledger.entry import Entry, EntryFields, sign_entry, verify_entry
from deconfliction.ledger.errors import LedgerError
from deconfliction.ledger.signing import load_public_key
from deconfliction.parties.models import Actor
from deconfliction.record import log
from deconfliction.record.keys import officer_key
from deconfliction.store import tables as t
from deconfliction.store.db import transaction

WriteResult = tuple[int, dict[str, Any]]
# A signed request older or newer than this is refused: it bounds how long nonces matter.
CLOCK_SKEW = timedelta(minutes=5)
STATEMENT = "statement"  # conn.info key: the index of this transaction's officer statement
SYSTEM = "system"  # who a fact is by when no officer caused it


@dataclass(frozen=True)
class ClientSignature:
    """The `Deconfliction-Signature` header: how an officer signed a statement on its machine."""

    key_id: str
    nonce: str
    client_time: str
    signature: str

    @classmethod
    def parse(cls, header: str) -> ClientSignature:
        parts = dict(p.strip().split("=", 1) for p in header.split(";") if "=" in p)
        try:
            return cls(parts["keyid"], parts["nonce"], parts["time"], parts["sig"])
        except KeyError as exc:
            raise Invalid("Deconfliction-Signature needs keyid=, nonce=, time= and sig=") from exc

    def header(self) -> str:
        return (
            f"keyid={self.key_id};nonce={self.nonce};time={self.client_time};sig={self.signature}"
        )


@dataclass(frozen=True)
class Statement:
    """What an officer says with one write: the operation, its target and the request body."""

    kind: str
    target: int | None = None
    version: int | None = None
    body: Any = None
    signed: ClientSignature | None = None

    @property
    def payload(self) -> dict[str, Any]:
        return statement_payload(self.target, self.version, self.body)


def statement_payload(target: int | None, version: int | None, body: Any) -> dict[str, Any]:
    """The payload an officer signs: the same on the client and on the server."""
    return {"target": target, "version": version, "body": body}


def sign_statement(
    statement: Statement,
    actor_party: str,
    officer: str,
    key_id: str,
    private_key: Any,
    now: datetime,
    nonce: str | None = None,
) -> ClientSignature:
    """Sign a statement as the officer's client does."""
    entry = sign_entry(
        EntryFields(
            kind=statement.kind,
            party=actor_party,
            author=officer,
            payload=statement.payload,
            client_time=log.rfc3339(now),
            nonce=nonce or log.new_nonce(),
            key_id=key_id,
        ),
        private_key,
    )
    return ClientSignature(entry.key_id, entry.nonce, entry.client_time, entry.signature)


def append_statement(conn: Connection, actor: Actor, statement: Statement, now: datetime) -> int:
    """Check and append the officer's statement; it is the first entry of its transaction."""
    if actor.role == "observer":
        raise Forbidden("an observer reads; it does not write")
    signed = statement.signed
    if signed is None:
        key = officer_key(conn, actor.officer)
        if key.private_key is None:
            raise Unauthorized(
                f"officer {actor.officer} signs its own writes: send a "
                "Deconfliction-Signature header (see the client)"
            )
        entry = sign_entry(
            EntryFields(
                kind=statement.kind,
                party=actor.party,
                author=actor.officer,
                payload=statement.payload,
                client_time=log.rfc3339(now),
                nonce=log.new_nonce(),
                key_id=key.key_id,
                server_held_key=True,
            ),
            key.private_key,
        )
    else:
        key = officer_key(conn, actor.officer, signed.key_id)
        try:
            entry = Entry(
                kind=statement.kind,
                party=actor.party,
                author=actor.officer,
                payload=statement.payload,
                client_time=signed.client_time,
                nonce=signed.nonce,
                key_id=signed.key_id,
                signature=signed.signature,
            )
            verify_entry(entry, load_public_key(key.public_key))
        except LedgerError as exc:
            raise Unauthorized(f"bad statement signature: {exc}") from exc
        said_at = datetime.fromisoformat(entry.client_time.replace("Z", "+00:00"))
        if abs(said_at - now) > CLOCK_SKEW:
            raise Unauthorized(
                f"signed at {entry.client_time}, more than "
                f"{CLOCK_SKEW.total_seconds():.0f} s from the server's clock"
            )
        if (
            conn.execute(
                select(t.entries.c.idx).where(
                    t.entries.c.party == actor.party,
                    t.entries.c.author == actor.officer,
                    t.entries.c.nonce == signed.nonce,
                )
            ).first()
            is not None
        ):
            raise Conflict("this signed statement was already recorded (a replay)")
    index = log.append(conn, entry, f"{statement.kind.split('.')[0]}/pending", now)
    conn.info[STATEMENT] = index
    return index


def record(
    conn: Connection,
    actor: Actor | None,
    kind: str,
    subject: str,
    payload: dict[str, Any],
    now: datetime,
) -> int:
    """A fact the server derived, as the log's own entry pointing at its cause: by the officer
    whose write caused it, or by the system (a timer, the tactical loop) when `actor` is None."""
    by = SYSTEM if actor is None else f"{actor.party}/{actor.officer}"
    fact = {**payload, "by": by}
    statement = conn.info.get(STATEMENT)
    if statement is not None:
        fact["statement"] = statement
    return log.append_log_entry(conn, kind, subject, fact, now)


def request_fingerprint(request: Any) -> str:
    return hashlib.sha256(
        json.dumps(request, sort_keys=True, default=str, separators=(",", ":")).encode()
    ).hexdigest()


def perform_write(
    engine: Engine,
    actor: Actor,
    idempotency_key: str | None,
    statement: Statement,
    use_case: Callable[[Connection], WriteResult],
    subject: Callable[[dict[str, Any]], str],
    now: datetime,
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """Run one write use case (with an Idempotency-Key, at most once).

    Returns the status, the body and the log's receipt for the officer's statement.
    """
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
        raise Invalid("Idempotency-Key must be 1 to 200 characters")
    fingerprint = request_fingerprint(
        [statement.kind, statement.target, statement.version, statement.body]
    )
    try:
        with transaction(engine, write=True) as conn:
            if idempotency_key is not None:
                earlier = _earlier_answer(conn, actor, idempotency_key, fingerprint)
                if earlier is not None:
                    return earlier
            status, body, receipt = run_statement(conn, actor, statement, use_case, subject, now)
            if idempotency_key is not None:
                conn.execute(
                    insert(t.idempotency).values(
                        officer=actor.officer,
                        key=idempotency_key,
                        request_hash=fingerprint,
                        status=status,
                        response={"body": _jsonable(body), "receipt": receipt},
                        created_at=now,
                    )
                )
            return status, body, receipt
    except IntegrityError:
        if idempotency_key is None:
            raise
        # A concurrent request with the same key committed first: its answer is ours.
        with transaction(engine, write=False) as conn:
            earlier = _earlier_answer(conn, actor, idempotency_key, fingerprint)
        if earlier is None:
            raise
        return earlier


def run_statement(
    conn: Connection,
    actor: Actor,
    statement: Statement,
    use_case: Callable[[Connection], WriteResult],
    subject: Callable[[dict[str, Any]], str],
    now: datetime,
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """Inside a write transaction: the statement, then the use case, then the receipt."""
    index = append_statement(conn, actor, statement, now)
    try:
        status, body = use_case(conn)
    finally:
        conn.info.pop(STATEMENT, None)
    # The statement's subject is known once the use case made it (a new activity's id).
    conn.execute(update(t.entries).where(t.entries.c.idx == index).values(subject=subject(body)))
    return status, body, log.receipt(conn, index)


def _jsonable(body: dict[str, Any]) -> Any:
    return json.loads(json.dumps(body, default=str))


def _earlier_answer(
    conn: Connection, actor: Actor, key: str, fingerprint: str
) -> tuple[int, dict[str, Any], dict[str, Any]] | None:
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
    return int(row.status), dict(row.response["body"]), dict(row.response["receipt"])


def receipt_header(receipt: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(receipt, separators=(",", ":")).encode()).decode()


M = TypeVar("M", bound=BaseModel)


def say(
    conn: Connection,
    actor: Actor,
    statement: Statement,
    use_case: Callable[[], M],
    subject: str,
    now: datetime,
) -> tuple[M, dict[str, Any]]:
    """For callers with their own transaction (the CLI, the demo): statement, change, receipt."""
    made: list[M] = []

    def run(_conn: Connection) -> WriteResult:
        made.append(use_case())
        return 200, made[0].model_dump(mode="json")

    _, _, receipt = run_statement(
        conn, actor, statement, run, lambda b: f"{subject}/{b['id']}", now
    )
    return made[0], receipt
