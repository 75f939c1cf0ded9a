"""Offline verification of a ledger export: a pure function from records and keys to a verdict.

Export format: JSON Lines (UTF-8, one JSON object per line) in log order, two record types::

    {"type": "entry", "index": 0, "entry": {<entry object, see deconfliction.ledger.entry>}}
    {"type": "checkpoint", "note": "<C2SP signed note whose text is a C2SP tlog-checkpoint>"}

- Entry records carry indices 0, 1, 2, ... in order, each exactly once.
- An entry may be redacted: ``"payload": null`` with its ``payload_sha256`` kept, for a reader
  who may not see that payload. Signatures and leaf hashes cover ``payload_sha256``, not the
  payload, so a redacted entry verifies like a full one; a payload that is present must match
  its hash. Key entries (``key.certify``, ``key.revoke``) must not be redacted.
- Checkpoint records come in the order the log signed them, so their sizes never decrease.
  The natural place of a checkpoint is right after the entry that brings the tree to its size;
  one written earlier is checked once the entries reach its size. Its note carries the log's
  signature and the cosignatures gathered (mediator, parties).
- Records have exactly the members shown; duplicate JSON member names, NaN and Infinity are
  refused.

``verify_export`` is given the trusted party root keys, the log's note key, further known
cosigner keys and which of them must sign every checkpoint, and checkpoints the reader
remembers from earlier (a party's last cosigned checkpoint). It checks, streaming:

1. every record is well formed and entry indices run 0, 1, 2, ... (a jump is a deleted row; an
   index that turns up later means swapped rows; a repeat is a duplicated row);
2. every entry is signed by a key its party's root certified earlier in the log and had not
   revoked, from the key's not_before, with the server-held flag its certificate allows; the
   entries of party ``_log`` (statements of the log itself) by the log's note key;
3. no author's nonce appears twice (a replayed entry), and a correction supersedes an earlier
   entry of the same party;
4. the Merkle tree recomputed from the entries has, at each checkpoint's size, that checkpoint's
   root (otherwise the log forked); each checkpoint is signed by the log key and the required
   cosigners and names the log as origin; successive checkpoints are linked by a verified
   consistency proof; no checkpoint is smaller than one signed before it (a roll back); and no
   checkpoint, exported or remembered, covers entries the export does not hold.

It stops at the first problem and returns the first bad entry index (or, for a bad checkpoint,
the record number) with the reason. Memory grows with the entries (tree nodes, leaf hashes for
``supersedes``, nonce keys): about 400 bytes an entry, 400 MB for a million. A malformed trusted
key passed in raises ``LedgerError``; everything about the export is reported in the result.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from deconfliction.ledger.canonical import parse_json
from deconfliction.ledger.checkpoint import Checkpoint, NoteVerifier, open_checkpoint
from deconfliction.ledger.entry import Entry, KeyRing, entry_bytes
from deconfliction.ledger.errors import LedgerError, Reason
from deconfliction.ledger.merkle import (
    NodeStore,
    TreeState,
    consistency_proof,
    leaf_hash,
    root_at,
    verify_consistency,
)
from deconfliction.ledger.signing import load_public_key

Record = str | bytes | Mapping[str, Any]


@dataclass(frozen=True)
class VerifyResult:
    """The verdict on an export."""

    ok: bool
    entries: int  # entries accepted (all of them when ok)
    root: bytes  # Merkle root of the accepted entries
    checkpoints: int  # checkpoints whose signatures and roots verified
    checkpointed_size: int  # size of the largest verified checkpoint
    signers: tuple[str, ...]  # key names that signed that checkpoint
    first_bad_index: int | None = None  # first entry index that is bad, missing or disowned
    record: int | None = None  # 0-based line of the offending record, None for end of export
    reason: Reason | None = None
    detail: str = ""


def verify_export(
    records: Iterable[Record],
    *,
    party_roots: Mapping[str, bytes],
    log_key: NoteVerifier,
    cosigners: Iterable[NoteVerifier] = (),
    required_cosigners: Collection[str] = (),
    remembered: Iterable[str] = (),
) -> VerifyResult:
    """Verify an export; see the module docstring for the format and every check.

    ``party_roots`` maps a party id to its raw 32-byte root public key; ``log_key`` verifies
    the log's checkpoint signatures and its own ``_log`` entries, and its name is the expected
    checkpoint origin;
    ``cosigners`` are other known note keys (reported when they signed), of which the names in
    ``required_cosigners`` must sign every checkpoint; ``remembered`` are signed checkpoint notes
    the reader saw before, which the export must still contain.
    """
    run = _Run(party_roots, log_key, list(cosigners), frozenset(required_cosigners))
    try:
        for note in remembered:
            run.checkpoint(note, None)
        stream = iter(records)
        for number, raw in enumerate(stream):
            run.record(number, raw, stream)
        run.finish()
    except _Stop as stop:
        return run.result(stop)
    return run.result(None)


class _Stop(Exception):
    def __init__(self, reason: Reason, detail: str, index: int | None, record: int | None) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.index, self.record = reason, detail, index, record


@dataclass
class _Signed:
    checkpoint: Checkpoint
    signers: tuple[str, ...]
    record: int | None  # None: remembered by the reader, not in the export


@dataclass
class _Run:
    party_roots: Mapping[str, bytes]
    log_key: NoteVerifier
    cosigners: list[NoteVerifier]
    required: frozenset[str]
    state: TreeState = field(default_factory=TreeState)
    store: NodeStore = field(default_factory=NodeStore)
    nonces: dict[str, int] = field(default_factory=dict)
    leaves: dict[bytes, tuple[int, str]] = field(default_factory=dict)
    pending: dict[int, list[_Signed]] = field(default_factory=dict)
    matched: list[_Signed] = field(default_factory=list)  # checkpoints whose root matched
    last_signed: int = 0  # largest size signed so far in export order
    previous: Checkpoint | None = None
    verified: int = 0
    best: _Signed | None = None

    def __post_init__(self) -> None:
        log_key = (self.log_key.name, load_public_key(self.log_key.public_key))
        self.keyring = KeyRing(self.party_roots, log_key=log_key)
        self.known = [self.log_key, *self.cosigners]

    def record(self, number: int, raw: Record, rest: Iterator[Record]) -> None:
        expected = self.state.size
        try:
            obj = _parse(raw)
        except LedgerError as exc:
            raise _Stop(Reason.MALFORMED, f"record {number}: {exc}", expected, number) from exc
        if obj["type"] == "checkpoint":
            self.checkpoint(obj["note"], number)
            return
        index = obj["index"]
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise _Stop(Reason.MALFORMED, f"record {number}: index {index!r}", expected, number)
        if index != expected:
            self._misplaced(index, expected, number, rest)
        try:
            entry = Entry.from_json(obj["entry"])
            self.keyring.replay(entry, index)
        except LedgerError as exc:
            raise _Stop(exc.reason, f"entry {index}: {exc}", index, number) from exc
        nonce = f"{entry.party}\x00{entry.author}\x00{entry.nonce}"
        first_use = self.nonces.setdefault(nonce, index)
        if first_use != index:
            raise _Stop(
                Reason.REPLAYED_NONCE,
                f"entry {index}: {entry.party}/{entry.author} reuses the nonce of entry "
                f"{first_use}: a replayed entry",
                index,
                number,
            )
        if entry.supersedes is not None:
            target = self.leaves.get(bytes.fromhex(entry.supersedes))
            if target is None or target[1] != entry.party:
                whose = (
                    "no earlier entry" if target is None else f"entry {target[0]} of {target[1]}"
                )
                raise _Stop(
                    Reason.BAD_SUPERSEDES,
                    f"entry {index}: supersedes {entry.supersedes[:16]}..., which is {whose}",
                    index,
                    number,
                )
        leaf = leaf_hash(entry_bytes(entry))
        self.leaves[leaf] = (index, sys.intern(entry.party))
        self.store.put(self.state.append(leaf))
        for signed in self.pending.pop(self.state.size, []):
            self._match(signed)

    def checkpoint(self, note: object, number: int | None) -> None:
        where = "remembered checkpoint" if number is None else f"checkpoint at record {number}"
        if not isinstance(note, str):
            raise _Stop(Reason.MALFORMED, f"{where}: note is not text", None, number)
        try:
            cp, opened = open_checkpoint(note, self.known)
        except LedgerError as exc:
            raise _Stop(exc.reason, f"{where}: {exc}", None, number) from exc
        missing = sorted(({self.log_key.name} | self.required) - set(opened.signers))
        if missing:
            raise _Stop(
                Reason.CHECKPOINT_SIGNATURE,
                f"{where} (size {cp.size}) lacks the signatures of {', '.join(missing)}",
                None,
                number,
            )
        if cp.origin != self.log_key.name:
            raise _Stop(
                Reason.MALFORMED,
                f"{where} is for origin {cp.origin!r}, not {self.log_key.name!r}",
                None,
                number,
            )
        if number is not None:
            if cp.size < self.last_signed:
                raise _Stop(
                    Reason.ROLLBACK,
                    f"{where} has size {cp.size} after one of size {self.last_signed}: the log "
                    f"rolled back and disowns entries from {cp.size}",
                    cp.size,
                    number,
                )
            self.last_signed = cp.size
        signed = _Signed(cp, opened.signers, number)
        if cp.size <= self.state.size:
            self._match(signed)
        else:
            self.pending.setdefault(cp.size, []).append(signed)

    def finish(self) -> None:
        for size in sorted(self.pending):
            signed = self.pending[size][0]
            have = self.state.size
            if signed.record is None:
                raise _Stop(
                    Reason.ROLLBACK,
                    f"a remembered checkpoint covers {size} entries but the export holds "
                    f"{have}: the log was rolled back",
                    have,
                    None,
                )
            raise _Stop(
                Reason.TRUNCATED,
                f"checkpoint at record {signed.record} covers {size} entries but the export "
                f"ends after {have}: entries {have}..{size - 1} were deleted",
                have,
                None,
            )

    def result(self, stop: _Stop | None) -> VerifyResult:
        best = self.best
        return VerifyResult(
            ok=stop is None,
            entries=self.state.size,
            root=self.state.root(),
            checkpoints=self.verified,
            checkpointed_size=0 if best is None else best.checkpoint.size,
            signers=() if best is None else best.signers,
            first_bad_index=None if stop is None else stop.index,
            record=None if stop is None else stop.record,
            reason=None if stop is None else stop.reason,
            detail="" if stop is None else stop.detail,
        )

    def _match(self, signed: _Signed) -> None:
        cp = signed.checkpoint
        where = (
            "remembered checkpoint"
            if signed.record is None
            else f"checkpoint at record {signed.record}"
        )
        if root_at(cp.size, self.store.get) != cp.root:
            first = self._fork_floor(signed)
            raise _Stop(
                Reason.FORK,
                f"{where} signs root {cp.root.hex()[:16]}... for size {cp.size}, but the entries "
                f"give another root: the first difference lies in entries {first}..{cp.size - 1}",
                first,
                signed.record,
            )
        previous = self.previous
        if previous is not None:
            # Both roots match the recomputed tree already; this is the check a light client
            # holding only checkpoints makes, run here on every pair of successive checkpoints.
            old, new = sorted((previous, cp), key=lambda c: c.size)
            proof = consistency_proof(old.size, new.size, self.store.get)
            if not verify_consistency(old.size, new.size, old.root, new.root, proof):
                raise _Stop(
                    Reason.FORK,
                    f"{where} is not consistent with the checkpoint of size {previous.size}",
                    old.size,
                    signed.record,
                )
        self.previous = cp
        self.matched.append(signed)
        self.verified += 1
        if self.best is None or cp.size >= self.best.checkpoint.size:
            self.best = signed

    def _fork_floor(self, signed: _Signed) -> int:
        """Where the first difference can start: the largest size at which every key that
        signed the mismatching checkpoint also signed a checkpoint that matches the entries.

        Cosigners check consistency before they sign, so what they saw at that size is what the
        export holds. A checkpoint signed by fewer keys (say, re-signed by the log alone) proves
        nothing about what the others saw.
        """
        signers = set(signed.signers)
        sizes = [
            m.checkpoint.size
            for m in self.matched
            if m.checkpoint.size <= signed.checkpoint.size and signers <= set(m.signers)
        ]
        return max(sizes, default=0)

    def _misplaced(
        self, index: int, expected: int, number: int, rest: Iterator[Record]
    ) -> NoReturn:
        if index < expected:
            raise _Stop(
                Reason.ORDER,
                f"record {number} has index {index} after index {expected - 1}: a duplicated "
                "or moved row",
                expected,
                number,
            )
        if any(_entry_index(raw) == expected for raw in rest):
            raise _Stop(
                Reason.ORDER,
                f"index {expected} comes after index {index} (record {number}): rows are out "
                "of order",
                expected,
                number,
            )
        raise _Stop(
            Reason.GAP,
            f"index {expected} is missing, record {number} has index {index}: a deleted row",
            expected,
            number,
        )


_SHAPES = {
    "entry": frozenset({"type", "index", "entry"}),
    "checkpoint": frozenset({"type", "note"}),
}


def _parse(raw: Record) -> Mapping[str, Any]:
    obj = parse_json(raw) if isinstance(raw, str | bytes) else raw
    if not isinstance(obj, Mapping):
        raise LedgerError("not a JSON object")
    kind = obj.get("type")
    shape = _SHAPES.get(kind) if isinstance(kind, str) else None
    if shape is None or set(obj) != shape:
        raise LedgerError(f"unknown record shape with members {sorted(obj)}")
    return obj


def _entry_index(raw: Record) -> object:
    try:
        obj = _parse(raw)
    except LedgerError:
        return None
    return obj.get("index")
