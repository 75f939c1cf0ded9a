"""Keys of the record: the log's key, each party's root key, each officer's certified key.

A party's root key certifies and revokes its officers' keys, in the log. The server keeps the
public keys it needs to check signatures, and a private officer key only for officers created
with server-held keys: an explicit convenience mode, marked in every entry such a key signs.
Root private keys and officer-held private keys are handed out once and never stored.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, bindparam, insert, select, update

from deconfliction.errors import Conflict, Forbidden, Invalid, NotFound
from deconfliction.ledger.entry import (
    KIND_CERTIFY,
    KIND_REVOKE,
    EntryFields,
    certify_payload,
    officer_key_name,
    revoke_payload,
    root_key_name,
    sign_entry,
)
from deconfliction.ledger.signing import (
    generate_private_key,
    key_id,
    private_key_from_seed,
    public_key_b64,
    public_key_bytes,
)
from deconfliction.record.log import LogKey, append, log_key, new_nonce, rfc3339, store_log_key
from deconfliction.store import tables as t
from deconfliction.store.db import fetch_first

ROOT_AUTHOR = "root"


@dataclass
class KeyMaterial:
    """Private keys made at set-up, for their holders to take away."""

    log: LogKey
    roots: dict[str, Ed25519PrivateKey] = field(default_factory=dict)
    officers: dict[str, Ed25519PrivateKey] = field(default_factory=dict)  # officer-held only

    def trust(self) -> dict[str, Any]:
        """What a verifier trusts out of band: the log's note key and the parties' root keys."""
        return {
            "log": self.log.verifier.vkey(),
            "parties": {p: public_key_b64(k) for p, k in sorted(self.roots.items())},
        }

    def write(self, folder: Path) -> list[Path]:
        """One file per private key (mode 0600), and trust.json with the public anchors."""
        folder.mkdir(parents=True, exist_ok=True)
        anchors = folder / "trust.json"
        anchors.write_text(json.dumps(self.trust(), indent=2) + "\n", encoding="utf-8")
        written: list[Path] = [anchors]
        for name, key in [
            *((f"{p}.root", k) for p, k in self.roots.items()),
            *self.officers.items(),
        ]:
            path = folder / f"{name}.key"
            path.write_text(encode_private(key) + "\n", encoding="ascii")
            path.chmod(0o600)
            written.append(path)
        return written


def encode_private(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.private_bytes_raw()).decode("ascii")


def read_private(path: Path) -> Ed25519PrivateKey:
    try:
        return private_key_from_seed(
            base64.b64decode(path.read_text(encoding="ascii").strip(), validate=True)
        )
    except ValueError as exc:
        raise Invalid(f"{path} is not a private key file: {exc}") from exc


def init_keys(
    conn: Connection,
    log_name: str,
    officers: dict[str, list[str]],
    now: datetime,
    *,
    server_held: bool,
) -> KeyMaterial:
    """Make the log key, a root key per party and a certified key per officer."""
    material = KeyMaterial(log=store_log_key(conn, log_name, generate_private_key()))
    for party, officer_ids in officers.items():
        root = generate_private_key()
        material.roots[party] = root
        conn.execute(
            insert(t.keys).values(
                key_id=key_id(root_key_name(party), public_key_bytes(root)).hex(),
                party=party,
                officer=None,
                public_key=public_key_b64(root),
            )
        )
        for officer in officer_ids:
            key = generate_private_key()
            certify(conn, party, root, officer, public_key_bytes(key), now, server_held=server_held)
            if server_held:
                conn.execute(
                    update(t.keys)
                    .where(
                        t.keys.c.key_id
                        == key_id(officer_key_name(party, officer), public_key_bytes(key)).hex()
                    )
                    .values(private_key=encode_private(key))
                )
            else:
                material.officers[officer] = key
    return material


def root_key_id(conn: Connection, party: str) -> str:
    kid = conn.execute(
        select(t.keys.c.key_id).where(t.keys.c.party == party, t.keys.c.officer.is_(None))
    ).scalar()
    if kid is None:
        raise NotFound(f"party {party} has no root key")
    return str(kid)


def _root_entry(
    conn: Connection,
    party: str,
    root: Ed25519PrivateKey,
    kind: str,
    payload: dict[str, object],
    now: datetime,
) -> int:
    kid = root_key_id(conn, party)
    if key_id(root_key_name(party), public_key_bytes(root)).hex() != kid:
        raise Forbidden(f"that is not the root key of {party}")
    entry = sign_entry(
        EntryFields(
            kind=kind,
            party=party,
            author=ROOT_AUTHOR,
            payload=payload,
            client_time=rfc3339(now),
            nonce=new_nonce(),
            key_id=kid,
        ),
        root,
    )
    return append(conn, entry, f"party/{party}", now)


def certify(
    conn: Connection,
    party: str,
    root: Ed25519PrivateKey,
    officer: str,
    public_key: bytes,
    now: datetime,
    *,
    server_held: bool = False,
) -> str:
    """Certify an officer's key with the party root key (a signed entry); return its key id."""
    kid = key_id(officer_key_name(party, officer), public_key).hex()
    if conn.execute(select(t.keys.c.key_id).where(t.keys.c.key_id == kid)).first():
        raise Conflict(f"key {kid} is already certified")
    index = _root_entry(
        conn,
        party,
        root,
        KIND_CERTIFY,
        certify_payload(officer, public_key, rfc3339(now), server_held=server_held),
        now,
    )
    conn.execute(
        insert(t.keys).values(
            key_id=kid,
            party=party,
            officer=officer,
            public_key=base64.b64encode(public_key).decode("ascii"),
            certified_idx=index,
        )
    )
    return kid


def revoke(
    conn: Connection, party: str, root: Ed25519PrivateKey, officer: str, now: datetime
) -> list[str]:
    """Revoke every valid key of an officer (a signed entry each)."""
    rows = conn.execute(
        select(t.keys).where(
            t.keys.c.party == party,
            t.keys.c.officer == officer,
            t.keys.c.revoked_idx.is_(None),
        )
    ).all()
    if not rows:
        raise NotFound(f"{party}/{officer} has no valid key")
    for row in rows:
        index = _root_entry(
            conn,
            party,
            root,
            KIND_REVOKE,
            revoke_payload(officer, base64.b64decode(row.public_key)),
            now,
        )
        conn.execute(
            update(t.keys)
            .where(t.keys.c.key_id == row.key_id)
            .values(revoked_idx=index, private_key=None)
        )
    return [r.key_id for r in rows]


@dataclass(frozen=True)
class OfficerKey:
    key_id: str
    public_key: bytes
    private_key: Ed25519PrivateKey | None  # only when server-held


# Every write reads its officer's key: the statements are built once, not per write.
_VALID_KEYS = select(t.keys).where(
    t.keys.c.officer == bindparam("officer"), t.keys.c.revoked_idx.is_(None)
)
_NEWEST_KEY = _VALID_KEYS.order_by(t.keys.c.certified_idx.desc()).limit(1)
_NAMED_KEY = _VALID_KEYS.where(t.keys.c.key_id == bindparam("kid"))
# Keys as read, by (key id, stored public key, stored seed): the row is still read on every write
# (a revoked key is never used), but the key objects are made once.
_MADE_KEYS: dict[tuple[str, str, str | None], OfficerKey] = {}
_MADE_KEYS_MAX = 10_000


def officer_key(conn: Connection, officer: str, kid: str | None = None) -> OfficerKey:
    """The officer's valid key: the one named by `kid`, else the newest."""
    if kid is None:
        row = fetch_first(conn, _NEWEST_KEY, {"officer": officer})
    else:
        row = fetch_first(conn, _NAMED_KEY, {"officer": officer, "kid": kid})
    if row is None:
        what = f"key {kid}" if kid else "key"
        raise Forbidden(f"officer {officer} has no valid certified {what}")
    stored = (row.key_id, row.public_key, row.private_key)
    made = _MADE_KEYS.get(stored)
    if made is None:
        seed = row.private_key
        private = private_key_from_seed(base64.b64decode(seed)) if seed else None
        made = OfficerKey(row.key_id, base64.b64decode(row.public_key), private)
        if len(_MADE_KEYS) >= _MADE_KEYS_MAX:
            _MADE_KEYS.clear()
        _MADE_KEYS[stored] = made
    return made


def trust(conn: Connection) -> dict[str, object]:
    """What a verifier trusts out of band: the log's note key and every party's root key."""
    roots = {
        r.party: r.public_key
        for r in conn.execute(
            select(t.keys.c.party, t.keys.c.public_key).where(t.keys.c.officer.is_(None))
        )
    }
    return {"log": log_key(conn).verifier.vkey(), "parties": dict(sorted(roots.items()))}
