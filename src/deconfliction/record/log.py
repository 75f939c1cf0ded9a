"""The Merkle log in the database: append entries, sign receipts and checkpoints, answer proofs.

Appending takes the one `ledger_state` row (FOR UPDATE on PostgreSQL; SQLite has one writer
anyway), so the log has a single order however many servers write. A write transaction takes it
at its very end (`record.service` buffers a write's entries until then), so the log's order
does not serialise the rest of the work of concurrent writes. Complete subtree hashes are
stored as they are made, so the tree state and any proof need O(log n) node reads.
"""

from __future__ import annotations

import base64
import functools
import secrets
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from deconfliction.errors import NotFound
from deconfliction.ledger.canonical import canonical_json
from deconfliction.ledger.checkpoint import Checkpoint, NoteSigner, NoteVerifier
from deconfliction.ledger.entry import LOG_AUTHOR, LOG_PARTY, Entry, EntryFields, sign_log_entry
from deconfliction.ledger.merkle import (
    EMPTY_ROOT,
    GetNode,
    TreeState,
    border_coordinates,
    consistency_proof,
    inclusion_proof,
    root_at,
)
from deconfliction.ledger.signing import key_id, private_key_from_seed, public_key_bytes, sign
from deconfliction.store import tables as t
from deconfliction.store.db import fetch_rows, first_in_transaction, run_rows

T = TypeVar("T")


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def new_nonce() -> str:
    return secrets.token_hex(16)


class LogKey:
    """The server's own key: signs checkpoints, receipts and the log's derived entries."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self.name = name
        self.private_key = private_key
        self.signer = NoteSigner(name, private_key)
        self.key_id = key_id(name, public_key_bytes(private_key)).hex()

    @property
    def verifier(self) -> NoteVerifier:
        return self.signer.verifier()


# The statements of every write, built once: building one costs more than running it on SQLite.
_LOG_KEY_SETTING = select(t.settings.c.value).where(t.settings.c.key == "log_key")
_LAST = t.entries.alias("last")
_LOCK_END = (
    select(t.ledger_state.c.size, _LAST.c.leaf_hash)
    .outerjoin(_LAST, _LAST.c.idx == t.ledger_state.c.size - 1)
    .where(t.ledger_state.c.id == 1)
    .with_for_update(of=t.ledger_state)
)
_LOCK = select(t.ledger_state.c.size).where(t.ledger_state.c.id == 1).with_for_update()
_LOCK_HELD = "deconfliction.log_lock_held_by"
_INSERT_NODES = insert(t.ledger_nodes)
_INSERT_ENTRIES = insert(t.entries)
_SET_SIZE = (
    update(t.ledger_state).where(t.ledger_state.c.id == 1).values(size=bindparam("new_size"))
)

# The log key of each database, once read: a stored log key never changes (init writes it once),
# and every write signs with it.
_LOG_KEYS: weakref.WeakKeyDictionary[Engine, LogKey] = weakref.WeakKeyDictionary()


def log_key(conn: Connection) -> LogKey:
    found = _LOG_KEYS.get(conn.engine)
    if found is not None:
        return found
    value = conn.execute(_LOG_KEY_SETTING).scalar()
    if value is None:
        raise NotFound("this database has no log key; run `deconfliction init` first")
    made = LogKey(value["name"], private_key_from_seed(base64.b64decode(value["seed"])))
    _LOG_KEYS[conn.engine] = made
    return made


def store_log_key(conn: Connection, name: str, private_key: Ed25519PrivateKey) -> LogKey:
    seed = base64.b64encode(private_key.private_bytes_raw()).decode()
    conn.execute(insert(t.settings).values(key="log_key", value={"name": name, "seed": seed}))
    return LogKey(name, private_key)


# The node reads of proofs and appends go to the driver with a statement text fixed per node
# count (SQLite) or fixed outright (PostgreSQL, prepared after a few uses): an SQLAlchemy
# expression of a new shape is compiled on every call, which cost more than the read itself.
_PG_NODES = (
    "SELECT n.level, n.idx, n.hash FROM unnest(%s::integer[], %s::bigint[]) AS wanted(level, idx)"
    " JOIN ledger_nodes AS n ON n.level = wanted.level AND n.idx = wanted.idx"
)


@functools.cache
def _sqlite_nodes(count: int) -> str:
    # One primary-key lookup per term; SQLite plans `(level, idx) IN (VALUES ...)` as a scan.
    return "SELECT level, idx, hash FROM ledger_nodes WHERE " + " OR ".join(
        ["(level = ? AND idx = ?)"] * count
    )


def _nodes(conn: Connection, coordinates: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """Stored node hashes by (level, index), in one query that uses the primary key."""
    wanted = sorted(set(coordinates))
    if not wanted:
        return {}
    driver = conn.connection.driver_connection
    assert driver is not None  # an open Connection holds its driver's connection
    if conn.dialect.name == "postgresql":
        levels, indices = [level for level, _ in wanted], [index for _, index in wanted]
        rows = driver.execute(_PG_NODES, (levels, indices)).fetchall()
    else:
        params = [value for coordinate in wanted for value in coordinate]
        rows = driver.execute(_sqlite_nodes(len(wanted)), params).fetchall()
    return {(level, index): bytes(value) for level, index, value in rows}


def _prefetched(conn: Connection, compute: Callable[[GetNode], T]) -> T:
    """Run a proof computation with all its node reads in one query.

    Which nodes a proof reads depends only on the sizes and indices, never on hash values, so a
    dry run with placeholder hashes names them all.
    """
    asked: list[tuple[int, int]] = []

    def record(level: int, index: int) -> bytes:
        asked.append((level, index))
        return EMPTY_ROOT

    compute(record)
    found = _nodes(conn, asked)

    def get(level: int, index: int) -> bytes:
        if (level, index) not in found:
            raise NotFound(f"no tree node ({level}, {index})")
        return found[(level, index)]

    return compute(get)


def _tree(conn: Connection, size: int) -> TreeState:
    """The right border of the stored tree, read in one query."""
    wanted = border_coordinates(size)
    rows = _nodes(conn, wanted)
    return TreeState(size=size, border=[rows[key] for key in wanted])


# The right border after the last append of this process, per database, with the last leaf:
# reused when the log still ends on that leaf (no other writer, no roll back since), otherwise
# read again. Saves reading O(log n) nodes on every append.
_BORDERS: dict[str, tuple[int, bytes, list[bytes]]] = {}


def _database(conn: Connection) -> str:
    return conn.engine.url.render_as_string(hide_password=True)


def lock(conn: Connection) -> None:
    """Take the log's lock (held by every write until it commits): changes are serialised.

    On SQLite a write transaction already holds the database's one write lock (BEGIN
    IMMEDIATE), which serialises the same, so there is nothing more to take."""
    # Held until the transaction ends: a write that publishes and posts takes it once, not once
    # per step (a round trip each, under its cell locks).
    if conn.dialect.name != "sqlite" and first_in_transaction(conn, _LOCK_HELD):
        conn.execute(_LOCK)


@dataclass(frozen=True)
class LogEnd:
    """The log's size and its last leaf (hex), read with the log's lock held."""

    size: int
    last_leaf: str | None


def lock_end(conn: Connection) -> LogEnd:
    """Take the log's lock, the one `ledger_state` row (FOR UPDATE on PostgreSQL; SQLite has one
    writer), and read the log's size and last leaf in the same query. The lock is held until
    the transaction ends, so writers take it as late as they can: just before they commit."""
    [row] = fetch_rows(conn, _LOCK_END)
    return LogEnd(int(row.size), row.leaf_hash)


def _border_after(conn: Connection, end: LogEnd) -> TreeState:
    cached = _BORDERS.get(_database(conn))
    if cached is not None and cached[0] == end.size and end.last_leaf == cached[1].hex():
        return TreeState(size=end.size, border=list(cached[2]))
    return _tree(conn, end.size)


def append_at(
    conn: Connection, end: LogEnd, items: Sequence[tuple[Entry, str]], now: datetime
) -> list[int]:
    """Add signed entries (with their subjects) at the `end` of the log, whose lock this
    transaction holds: the tree's nodes, the entries and the size in three statements however
    many entries. Returns their indices."""
    if not items:
        return []
    size = end.size
    state = _border_after(conn, end)
    nodes: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    leaf = b""
    for index, (entry, subject) in enumerate(items, start=size):
        leaf = entry.leaf_hash
        nodes.extend(
            {"level": level, "idx": at, "hash": value} for level, at, value in state.append(leaf)
        )
        rows.append(
            {
                "idx": index,
                "kind": entry.kind,
                "party": entry.party,
                "author": entry.author,
                "subject": subject,
                "payload": entry.payload,
                "payload_sha256": entry.payload_sha256,
                "client_time": entry.client_time,
                "nonce": entry.nonce,
                "key_id": entry.key_id,
                "supersedes": entry.supersedes,
                "server_held_key": entry.server_held_key,
                "signature": entry.signature,
                "leaf_hash": leaf.hex(),
                "integrated_at": now,
            }
        )
    _BORDERS[_database(conn)] = (state.size, leaf, list(state.border))
    run_rows(conn, _INSERT_NODES, nodes)
    run_rows(conn, _INSERT_ENTRIES, rows)
    run_rows(conn, _SET_SIZE, [{"new_size": state.size}])
    return list(range(size, state.size))


def append(conn: Connection, entry: Entry, subject: str, now: datetime) -> int:
    """Add one signed entry at the end of the log now; return its index."""
    return append_at(conn, lock_end(conn), [(entry, subject)], now)[0]


def sign_fact(key: LogKey, kind: str, payload: dict[str, Any], now: datetime) -> Entry:
    """An entry of the log itself: a fact the server derived, signed with the log key."""
    return sign_log_entry(
        EntryFields(
            kind=kind,
            party=LOG_PARTY,
            author=LOG_AUTHOR,
            payload=payload,
            client_time=rfc3339(now),
            nonce=new_nonce(),
            key_id=key.key_id,
        ),
        key.name,
        key.private_key,
    )


def append_log_entry(
    conn: Connection, kind: str, subject: str, payload: dict[str, Any], now: datetime
) -> int:
    """Append a fact the server derived now, signed with the log key; return its index."""
    return append(conn, sign_fact(log_key(conn), kind, payload, now), subject, now)


def sign_receipt(key: LogKey, index: int, leaf: bytes, integrated_at: datetime) -> dict[str, Any]:
    """The log's signed promise that entry `index` is in the log (like an RFC 6962 SCT)."""
    body = {
        "log": key.name,
        "index": index,
        "leaf_hash": leaf.hex(),
        "integrated_time": rfc3339(integrated_at),
    }
    signature = base64.b64encode(sign(key.private_key, canonical_json(body))).decode()
    return {**body, "key_id": key.key_id, "signature": signature}


def receipt(conn: Connection, index: int) -> dict[str, Any]:
    """The signed receipt of a stored entry."""
    row = conn.execute(
        select(t.entries.c.leaf_hash, t.entries.c.integrated_at).where(t.entries.c.idx == index)
    ).one()
    return sign_receipt(log_key(conn), index, bytes.fromhex(row.leaf_hash), row.integrated_at)


def size(conn: Connection) -> int:
    return int(
        conn.execute(select(t.ledger_state.c.size).where(t.ledger_state.c.id == 1)).scalar_one()
    )


def root(conn: Connection, tree_size: int) -> bytes:
    if tree_size == 0:
        return EMPTY_ROOT
    return _prefetched(conn, lambda get: root_at(tree_size, get))


def checkpoint(conn: Connection, now: datetime) -> str:
    """Sign a checkpoint of the current tree unless the newest one already covers it."""
    current = size(conn)
    last = conn.execute(
        select(t.checkpoints).order_by(t.checkpoints.c.size.desc()).limit(1)
    ).first()
    if last is not None and last.size == current:
        return str(last.note)
    key = log_key(conn)
    note = Checkpoint(key.name, current, root(conn, current)).sign(key.signer)
    conn.execute(insert(t.checkpoints).values(size=current, note=note, created_at=now))
    return note


def inclusion(conn: Connection, index: int, tree_size: int) -> list[bytes]:
    return _prefetched(conn, lambda get: inclusion_proof(index, tree_size, get))


def consistency(conn: Connection, old_size: int, new_size: int) -> list[bytes]:
    return _prefetched(conn, lambda get: consistency_proof(old_size, new_size, get))


ENTRY_MEMBERS = (
    "author",
    "client_time",
    "key_id",
    "kind",
    "nonce",
    "party",
    "payload",
    "payload_sha256",
    "server_held_key",
    "signature",
    "supersedes",
)


def entry_json(row: Any) -> dict[str, Any]:
    """A stored entry as the JSON it was signed as, read as it is: a row that was tampered with
    is shown as found, for a verifier to name, never refused here."""
    return {name: getattr(row, name) for name in ENTRY_MEMBERS}


def stored_entry(row: Any) -> Entry:
    """A stored entry, checked well formed (raises LedgerError when a row was tampered with)."""
    return Entry.from_json(entry_json(row))


def export_records(conn: Connection) -> Iterator[dict[str, Any]]:
    """The whole log as export records: entries in order, each checkpoint after its last entry."""
    notes = {r.size: r.note for r in conn.execute(select(t.checkpoints))}
    if 0 in notes:
        yield {"type": "checkpoint", "note": notes[0]}
    for row in conn.execute(select(t.entries).order_by(t.entries.c.idx)).yield_per(1000):
        yield {"type": "entry", "index": int(row.idx), "entry": entry_json(row)}
        if row.idx + 1 in notes:
            yield {"type": "checkpoint", "note": notes.pop(row.idx + 1)}
    notes.pop(0, None)
    # Checkpoints past the last entry (its rows are gone): the verifier must see them.
    for size in sorted(notes):
        yield {"type": "checkpoint", "note": notes[size]}
