"""Cosigning checkpoints: a party (by its root key) or the mediator adds its signature line to a
checkpoint after its client checked consistency with the last checkpoint it cosigned."""

from __future__ import annotations

import base64
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, select, update

from deconfliction.errors import Conflict, Forbidden, Invalid, NotFound
from deconfliction.ledger.checkpoint import Checkpoint, NoteSigner, NoteVerifier, parse_note
from deconfliction.ledger.errors import LedgerError
from deconfliction.ledger.merkle import verify_consistency
from deconfliction.parties.models import Actor
from deconfliction.record import log
from deconfliction.store import tables as t


def latest(conn: Connection) -> str:
    """The newest stored checkpoint with the cosignatures it has; signing is the leader's
    periodic job (or a POST that asks for one now), so that reading never writes."""
    note = conn.execute(
        select(t.checkpoints.c.note).order_by(t.checkpoints.c.size.desc()).limit(1)
    ).scalar()
    if note is None:
        raise NotFound("no checkpoint signed yet: the server signs one within seconds of a write")
    return str(note)


def add_cosignature(conn: Connection, actor: Actor, size: int, line: str) -> str:
    row = conn.execute(select(t.checkpoints).where(t.checkpoints.c.size == size)).first()
    if row is None:
        raise NotFound(f"no checkpoint of size {size}")
    root = conn.execute(
        select(t.keys.c.public_key).where(t.keys.c.party == actor.party, t.keys.c.officer.is_(None))
    ).scalar()
    if root is None:
        raise Forbidden(f"party {actor.party} has no root key to cosign with")
    verifier = NoteVerifier(actor.party, base64.b64decode(root))
    note = parse_note(row.note)
    try:
        signature = parse_note(f"{note.text}\n{line.strip()}\n").signatures[0]
    except (LedgerError, IndexError) as exc:
        raise Invalid(f"not a signed-note signature line: {exc}") from exc
    if signature.name != actor.party or not verifier.verify(note.text, signature):
        raise Invalid(
            f"the line is not a valid signature of this checkpoint by {actor.party}'s root key"
        )
    if any(s.name == signature.name for s in note.signatures):
        return str(row.note)
    cosigned = row.note + signature.line()
    conn.execute(update(t.checkpoints).where(t.checkpoints.c.size == size).values(note=cosigned))
    return str(cosigned)


def cosign_latest(conn: Connection, actor: Actor, root: Ed25519PrivateKey, now: datetime) -> str:
    """What a party's client does: take the newest checkpoint, check that it extends the last one
    the party cosigned (consistency proof), then cosign it with the party root key."""
    note = log.checkpoint(conn, now)
    newest = Checkpoint.parse(parse_note(note).text)
    for row in conn.execute(select(t.checkpoints).order_by(t.checkpoints.c.size.desc())):
        earlier = parse_note(row.note)
        if not any(s.name == actor.party for s in earlier.signatures):
            continue
        old = Checkpoint.parse(earlier.text)
        if old.size > newest.size or (old.size == newest.size and old.root != newest.root):
            raise Conflict(
                f"the log is back at size {newest.size} after {actor.party} cosigned "
                f"size {old.size}: it was rolled back or rewritten"
            )
        proof = log.consistency(conn, old.size, newest.size)
        if not verify_consistency(old.size, newest.size, old.root, newest.root, proof):
            raise Conflict(
                f"checkpoint {newest.size} does not extend checkpoint {old.size} "
                f"that {actor.party} cosigned: the log forked or was rewritten"
            )
        break
    line = NoteSigner(actor.party, root).sign(parse_note(note).text).line()
    return add_cosignature(conn, actor, newest.size, line)
