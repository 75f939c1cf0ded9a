"""The one write path: every write is an officer's signed statement in the record, in the same
transaction as the change it makes, and the facts the server derives are the log's own entries.

`perform_write` runs a use case in one write transaction with idempotency (a retry with the same
Idempotency-Key gets the first answer back and writes nothing twice). Before the use case it
checks the officer's statement: signed by the officer's own key on the client
(`Deconfliction-Signature`), or, for officers set up with server-held keys, by the server with
that key, marked as such. `record` adds what the use case derived (an activity filed, a
conflict detected) as an entry of the log, which points back at the statement.

The statement and its facts are appended when the use case is done, just before the commit: the
log's lock (which orders every write of every server) is then held only for the append and the
commit, and what serialises concurrent writes is what must (detection's per-cell locks).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import orjson
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError
from pydantic import BaseModel
from sqlalchemy import Connection, Engine, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from deconfliction.errors import Conflict, Forbidden, Invalid, Unauthorized
from deconfliction.ledger.entry import Entry, EntryFields, sign_entry, signing_bytes
from deconfliction.ledger.errors import LedgerError
from deconfliction.ledger.signing import b64decode, load_public_key
from deconfliction.parties.models import Actor
from deconfliction.record import log
from deconfliction.record.keys import officer_key
from deconfliction.store import tables as t
from deconfliction.store.db import JSON_OPTIONS, transaction, write_transaction

WriteResult = tuple[int, dict[str, Any]]
# A signed request older or newer than this is refused: it bounds how long nonces matter.
CLOCK_SKEW = timedelta(minutes=5)
PENDING = "pending_entries"  # conn.info key: the entries of the write running on a connection
SYSTEM = "system"  # who a fact is by when no officer caused it

# The statements of every write, built once (building one costs more than running it on SQLite).
_SEEN_NONCES = select(t.entries.c.idx).where(
    t.entries.c.party == bindparam("party"),
    t.entries.c.author == bindparam("author"),
    t.entries.c.nonce.in_(bindparam("nonces", expanding=True)),
)
_EARLIER_ANSWER = select(t.idempotency).where(
    t.idempotency.c.officer == bindparam("officer"), t.idempotency.c.key == bindparam("key")
)
_INSERT_ANSWER = insert(t.idempotency)


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


def statement_entry(
    conn: Connection,
    actor: Actor,
    statement: Statement,
    now: datetime,
    keys: dict[tuple[str, str], bytes] | None = None,
) -> Entry:
    """The officer's statement as a checked, signed entry (not yet in the log): signed on the
    officer's machine and verified here, or signed here with a server-held key. `keys` caches
    the officers' public keys (raw bytes) across the statements of one batch."""
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
        return sign_entry(
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
    public = None if keys is None else keys.get((actor.officer, signed.key_id))
    try:
        if public is None:
            public = officer_key(conn, actor.officer, signed.key_id).public_key
            load_public_key(public)  # a well-formed Ed25519 key, or LedgerError
            if keys is not None:
                keys[(actor.officer, signed.key_id)] = public
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
        # libsodium, as `ledger verify` checks an export: what it accepts here verifies there,
        # and it verifies twice as fast as `cryptography` on this machine.
        crypto_sign_open(b64decode(entry.signature, "signature") + signing_bytes(entry), public)
    except LedgerError as exc:
        raise Unauthorized(f"bad statement signature: {exc}") from exc
    except (BadSignatureError, ValueError) as exc:
        raise Unauthorized(
            f"bad statement signature: the {statement.kind} statement by {actor.party}/"
            f"{actor.officer} (key {signed.key_id}) does not verify: the signed bytes were "
            "changed or another key signed them"
        ) from exc
    said_at = datetime.fromisoformat(entry.client_time.replace("Z", "+00:00"))
    if abs(said_at - now) > CLOCK_SKEW:
        raise Unauthorized(
            f"signed at {entry.client_time}, more than "
            f"{CLOCK_SKEW.total_seconds():.0f} s from the server's clock"
        )
    return entry


def refuse_replays(conn: Connection, actor: Actor, entries: list[Entry]) -> None:
    """Refuse client-signed statements whose nonce the officer already used (one query)."""
    nonces = [e.nonce for e in entries if not e.server_held_key]
    if len(set(nonces)) != len(nonces):
        raise Conflict("this signed statement was already recorded (a replay)")
    if not nonces:
        return
    seen = conn.execute(
        _SEEN_NONCES, {"party": actor.party, "author": actor.officer, "nonces": nonces}
    ).first()
    if seen is not None:
        raise Conflict("this signed statement was already recorded (a replay)")


def append_statements(
    conn: Connection, actor: Actor, statements: list[Statement], now: datetime
) -> list[int]:
    """Check a batch of one officer's statements and append them to the log at once: the
    signatures verified one by one, the replays refused in one query, the tree updated once."""
    keys: dict[tuple[str, str], bytes] = {}
    entries = [statement_entry(conn, actor, s, now, keys) for s in statements]
    refuse_replays(conn, actor, entries)
    subjects = [f"{s.kind.split('.')[0]}/pending" for s in statements]
    return log.append_at(conn, log.lock_end(conn), list(zip(entries, subjects, strict=True)), now)


@dataclass
class _Pending:
    """A write's entries, held until the write ends: its statement and the facts it derived,
    and the log key that signs them (read before the write's locks)."""

    statement: Entry
    key: log.LogKey
    facts: list[tuple[str, str, dict[str, Any], datetime]] = field(default_factory=list)

    def append(self, conn: Connection, subject: str, now: datetime) -> dict[str, Any]:
        """Take the log's lock, append the statement and then its facts (each pointing at the
        statement's index, so signed only now), and return the statement's receipt."""
        end = log.lock_end(conn)
        index = end.size
        items = [(self.statement, subject)]
        items.extend(
            (log.sign_fact(self.key, kind, {**payload, "statement": index}, at), about)
            for kind, about, payload, at in self.facts
        )
        log.append_at(conn, end, items, now)
        return log.sign_receipt(self.key, index, self.statement.leaf_hash, now)


def record(
    conn: Connection,
    actor: Actor | None,
    kind: str,
    subject: str,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """A fact the server derived, as the log's own entry pointing at its cause: by the officer
    whose write caused it, or by the system (a timer, the tactical loop) when `actor` is None.

    Inside an officer's write the fact joins the log when the write ends, after its statement;
    outside one it is appended at once."""
    by = SYSTEM if actor is None else f"{actor.party}/{actor.officer}"
    fact = {**payload, "by": by}
    pending: _Pending | None = conn.info.get(PENDING)
    if pending is None:
        log.append_log_entry(conn, kind, subject, fact, now)
    else:
        pending.facts.append((kind, subject, fact, now))


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
    if idempotency_key is None:
        return write_transaction(
            engine, lambda conn: run_statement(conn, actor, statement, use_case, subject, now)
        )
    if not 1 <= len(idempotency_key) <= 200:
        raise Invalid("Idempotency-Key must be 1 to 200 characters")
    fingerprint = request_fingerprint(
        [statement.kind, statement.target, statement.version, statement.body]
    )

    def work(conn: Connection) -> tuple[int, dict[str, Any], dict[str, Any]]:
        earlier = _earlier_answer(conn, actor, idempotency_key, fingerprint)
        if earlier is not None:
            return earlier
        status, body, receipt = run_statement(conn, actor, statement, use_case, subject, now)
        conn.execute(
            _INSERT_ANSWER,
            {
                "officer": actor.officer,
                "key": idempotency_key,
                "request_hash": fingerprint,
                "status": status,
                "response": {"body": _answer_json(body), "receipt": receipt},
                "created_at": now,
            },
        )
        return status, body, receipt

    try:
        return write_transaction(engine, work)
    except IntegrityError:
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
    """Inside a write transaction: the statement checked, the use case, then the statement and
    the facts appended to the log (taking the log's lock only now) and the receipt."""
    entry = statement_entry(conn, actor, statement, now)
    refuse_replays(conn, actor, [entry])
    pending = _Pending(entry, log.log_key(conn))
    conn.info[PENDING] = pending
    try:
        status, body = use_case(conn)
    finally:
        conn.info.pop(PENDING, None)
    # The statement's subject is known once the use case made it (a new activity's id).
    return status, body, pending.append(conn, subject(body), now)


def _answer_json(body: dict[str, Any]) -> orjson.Fragment:
    """The answer as JSON text once, embedded as it is in the stored answer (the engine's JSON
    columns are written by orjson); what is not JSON (a datetime) is written as its str()."""
    return orjson.Fragment(orjson.dumps(body, default=str, option=JSON_OPTIONS))


def _earlier_answer(
    conn: Connection, actor: Actor, key: str, fingerprint: str
) -> tuple[int, dict[str, Any], dict[str, Any]] | None:
    row = conn.execute(_EARLIER_ANSWER, {"officer": actor.officer, "key": key}).first()
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
