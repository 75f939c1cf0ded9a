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

Speed. Ed25519 verification is most of the cost, so it runs in a process pool (``workers``,
default every core) in chunks of ``chunk`` entries, while this process parses each line once
(orjson), rebuilds the tree and checks keys, nonces and checkpoints. A worker re-reads its lines
strictly (duplicate members, NaN), checks each payload against ``payload_sha256`` (hashing the
payload text as written when the export is canonical, as ``ledger export`` writes it, else
re-canonicalising it) and verifies the signature with libsodium, whose checks are the stricter
(it also refuses small-order keys); before calling a signature bad it asks ``cryptography``
(the library the server signs and verifies with), so the verdict is the one it gives.
Chunk results are read in log order and a failure in a chunk wins over any later one, so the
first bad entry named is the one a purely sequential check would name. An export
smaller than one chunk never starts a pool.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import sys
from collections import deque
from collections.abc import Collection, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any, NamedTuple, NoReturn

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from deconfliction.ledger.canonical import parse_json
from deconfliction.ledger.checkpoint import Checkpoint, NoteVerifier, open_checkpoint
from deconfliction.ledger.entry import (
    KIND_CERTIFY,
    KIND_REVOKE,
    Entry,
    KeyRing,
    entry_bytes,
    payload_sha256,
    signing_bytes,
    verify_entry,
)
from deconfliction.ledger.errors import LedgerError, Reason
from deconfliction.ledger.merkle import (
    EMPTY_ROOT,
    NodeStore,
    TreeState,
    consistency_proof,
    leaf_hash,
    root_at,
    verify_consistency,
)
from deconfliction.ledger.signing import b64decode, load_public_key, public_key_bytes

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
    workers: int | None = None,
    chunk: int = 4000,
) -> VerifyResult:
    """Verify an export; see the module docstring for the format and every check.

    ``party_roots`` maps a party id to its raw 32-byte root public key; ``log_key`` verifies
    the log's checkpoint signatures and its own ``_log`` entries, and its name is the expected
    checkpoint origin;
    ``cosigners`` are other known note keys (reported when they signed), of which the names in
    ``required_cosigners`` must sign every checkpoint; ``remembered`` are signed checkpoint notes
    the reader saw before, which the export must still contain. ``workers`` processes (default:
    one per core; 0 checks in this process) verify signatures in chunks of ``chunk`` entries.
    """
    checks = _Checks(os.cpu_count() or 1 if workers is None else workers, max(chunk, 1))
    run = _Run(party_roots, log_key, list(cosigners), frozenset(required_cosigners), checks)
    try:
        for note in remembered:
            run.checkpoint(note, None)
        stream = iter(records)
        for number, raw in enumerate(stream):
            run.record(number, raw, stream)
        checks.drain()
        run.finish()
    except _Stop as stop:
        return run.result(checks.earlier(run.recheck(stop)))
    finally:
        checks.close()
    return run.result(None)


class _Stop(Exception):
    def __init__(
        self,
        reason: Reason,
        detail: str,
        index: int | None,
        record: int | None,
        *,
        deferred: bool = False,
    ) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.index, self.record = reason, detail, index, record
        self.deferred = deferred  # found by a chunk check: the tree had gone past the entry


class _Job(NamedTuple):
    """What a worker checks of one entry: the record as read (strictly re-parsed there for
    duplicate members and the payload), the payload hash the entry states ("" if redacted),
    the key the log order says must have signed, and the signed bytes."""

    record: int
    entry_index: int
    source: Record
    digest: str
    public_key: bytes
    message: bytes
    signature: bytes


# Where a payload value may end: before the next entry member, or at the end of the record.
_NEXT_MEMBER = re.compile(
    rb',\s*"(?:author|client_time|key_id|kind|nonce|party|payload_sha256|server_held_key'
    rb'|signature|supersedes)"\s*:'
)
_PAYLOAD = b'"payload"'


@dataclass(frozen=True)
class _Failure:
    record: int
    index: int
    reason: Reason
    detail: str


def _check_chunk(jobs: list[_Job]) -> _Failure | None:
    """The first failing entry of a chunk, in log order (runs in a worker process)."""
    for job in jobs:
        if not _passes(job):
            failure = _exact(job)
            if failure is not None:
                return failure
    return None


def _passes(job: _Job) -> bool:
    try:
        source = job.source
        if isinstance(source, str):
            source = source.encode("utf-8")
        if not (isinstance(source, bytes) and job.digest and _hashed_as_written(source, job)):
            entry = _parse(source, strict=True)["entry"]
            payload = entry["payload"]
            if payload is not None and payload_sha256(payload) != entry["payload_sha256"]:
                return False
        crypto_sign_open(job.signature + job.message, job.public_key)
    except (BadSignatureError, LedgerError, KeyError, TypeError, ValueError):
        return False
    return True


def _hashed_as_written(line: bytes, job: _Job) -> bool:
    """Whether the payload text in ``line`` is the very text its ``payload_sha256`` hashes
    (an export written in canonical form), so it need not be parsed and re-canonicalised.

    The payload text is a span whose SHA-256 is the stated hash, so it is the signer's own
    RFC 8785 text (one JSON value, no duplicate members). The line with that span replaced by
    ``null`` must read strictly as an entry record with a null payload and the same hash: then
    the span sat exactly at the payload's place, and the rest of the line is well formed.
    """
    member = line.find(_PAYLOAD)
    if member < 0:
        return False
    colon = line.find(b":", member + len(_PAYLOAD))
    if colon < 0 or line[member + len(_PAYLOAD) : colon].strip():
        return False
    start = colon + 1
    while line[start : start + 1].isspace():
        start += 1
    target = bytes.fromhex(job.digest)
    ends = itertools.chain(
        (len(line[: m.start()].rstrip()) for m in _NEXT_MEMBER.finditer(line, start)),
        (len(line.rstrip()) - 2,),
    )
    for end in ends:
        if end > start and hashlib.sha256(line[start:end]).digest() == target:
            entry = _parse(line[:start] + b"null" + line[end:], strict=True)["entry"]
            return (
                isinstance(entry, dict)
                and entry.get("payload", 0) is None
                and entry.get("payload_sha256") == job.digest
            )
    return False


def _exact(job: _Job) -> _Failure | None:
    """The sequential checks of one entry, with their messages; ``cryptography`` decides the
    signature, as it does on the server."""
    try:
        obj = _parse(job.source, strict=True)
    except LedgerError as exc:
        return _Failure(
            job.record, job.entry_index, Reason.MALFORMED, f"record {job.record}: {exc}"
        )
    try:
        verify_entry(Entry.from_json(obj["entry"]), load_public_key(job.public_key))
    except LedgerError as exc:
        return _Failure(job.record, job.entry_index, exc.reason, f"entry {job.entry_index}: {exc}")
    return None


@dataclass
class _Checks:
    """Entry checks in flight: a pool of ``workers`` processes fed chunks, read back in order."""

    workers: int
    chunk: int
    batch: list[_Job] = field(default_factory=list)
    flight: deque[Future[_Failure | None]] = field(default_factory=deque)
    pool: ProcessPoolExecutor | None = None

    def add(self, job: _Job) -> None:
        self.batch.append(job)
        if len(self.batch) >= self.chunk:
            self._submit()

    def drain(self) -> None:
        """Raise the first failure of every entry queued."""
        self._submit()
        while self.flight:
            self._raise(self.flight.popleft().result())

    def earlier(self, stop: _Stop) -> _Stop:
        """The first failure among entries at or before ``stop``'s record, else ``stop``.

        An entry whose checks were queued passed everything this process checks before the
        signature; its parse, payload and signature come first in sequential order."""
        if stop.deferred:
            return stop
        last = sys.maxsize if stop.record is None else stop.record
        while self.flight:
            failure = self.flight.popleft().result()
            if failure is not None:
                return _deferred(failure) if failure.record <= last else stop
        failure = _check_chunk([job for job in self.batch if job.record <= last])
        self.batch.clear()
        return stop if failure is None else _deferred(failure)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def _submit(self) -> None:
        jobs, self.batch = self.batch, []
        if not jobs:
            return
        if self.workers <= 0:
            self._raise(_check_chunk(jobs))
            return
        if self.pool is None:
            # forkserver: a clean child even when the caller runs threads (a server, a test).
            self.pool = ProcessPoolExecutor(self.workers, mp_context=get_context("forkserver"))
        self.flight.append(self.pool.submit(_check_chunk, jobs))
        # Bounded read-ahead: memory stays a few chunks, failures surface early.
        while len(self.flight) > 2 * self.workers:
            self._raise(self.flight.popleft().result())

    @staticmethod
    def _raise(failure: _Failure | None) -> None:
        if failure is not None:
            raise _deferred(failure)


def _deferred(failure: _Failure) -> _Stop:
    return _Stop(failure.reason, failure.detail, failure.index, failure.record, deferred=True)


class _Ring(KeyRing):
    """The key ring with the signature check split off, to run in a worker."""

    def apply(self, entry: Entry, index: int) -> None:
        """The key changes of an entry whose signing key ``signing_key`` found."""
        if entry.kind == KIND_CERTIFY:
            self._certify(entry, index)
        elif entry.kind == KIND_REVOKE:
            self._revoke(entry, index)
        self._next = index + 1


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
    checks: _Checks
    state: TreeState = field(default_factory=TreeState)
    store: NodeStore = field(default_factory=NodeStore)
    nonces: dict[str, int] = field(default_factory=dict)
    leaves: dict[bytes, tuple[int, str]] = field(default_factory=dict)
    pending: dict[int, list[_Signed]] = field(default_factory=dict)
    matched: list[_Signed] = field(default_factory=list)  # checkpoints whose root matched
    # (record being read when it matched, checkpoint): what counts if a later-found bad entry
    # ends the run earlier
    history: list[tuple[int, _Signed]] = field(default_factory=list)
    last_signed: int = 0  # largest size signed so far in export order
    previous: Checkpoint | None = None
    number: int = -1  # record being read
    raw: Record | None = None
    expected: int = 0  # index the record being read must have
    queued: int = -1  # last record whose entry checks were queued
    raw_keys: dict[int, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        log_key = (self.log_key.name, load_public_key(self.log_key.public_key))
        self.keyring = _Ring(self.party_roots, log_key=log_key)
        self.known = [self.log_key, *self.cosigners]

    def record(self, number: int, raw: Record, rest: Iterator[Record]) -> None:
        self.number, self.raw = number, raw
        expected = self.expected = self.state.size
        try:
            obj = _parse(raw, strict=False)
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
            entry = _entry(obj["entry"])
            public = self.keyring.signing_key(entry, index)
            self._queue(number, index, raw, entry, public)
            self.keyring.apply(entry, index)
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

    def _queue(
        self, number: int, index: int, raw: Record, entry: Entry, public: Ed25519PublicKey
    ) -> None:
        raw_key = self.raw_keys.get(id(public))
        if raw_key is None:
            raw_key = self.raw_keys[id(public)] = public_key_bytes(public)
        signature = b64decode(entry.signature, "signature")
        self.checks.add(
            _Job(number, index, raw, entry.payload_sha256, raw_key, signing_bytes(entry), signature)
        )
        self.queued = number

    def recheck(self, stop: _Stop) -> _Stop:
        """A stop at a line read fast and not queued: a strict read of that line comes first
        (the fast reader lets duplicate members through)."""
        raw = self.raw
        if stop.deferred or stop.record != self.number or self.queued == self.number:
            return stop
        if raw is None or isinstance(raw, Mapping):
            return stop
        try:
            parse_json(raw)
        except LedgerError as exc:
            return _Stop(
                Reason.MALFORMED, f"record {self.number}: {exc}", self.expected, self.number
            )
        return stop

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
        entries, root, history = self.state.size, self.state.root(), self.history
        if stop is not None and stop.deferred and stop.index is not None:
            # The tree ran ahead of the bad entry: report it as it stood just before.
            entries = stop.index
            root = root_at(entries, self.store.get) if entries else EMPTY_ROOT
            history = [(at, signed) for at, signed in history if at < (stop.record or 0)]
        best: _Signed | None = None
        for _, signed in history:
            if best is None or signed.checkpoint.size >= best.checkpoint.size:
                best = signed
        return VerifyResult(
            ok=stop is None,
            entries=entries,
            root=root,
            checkpoints=len(history),
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
        self.history.append((self.number, signed))

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


def _parse(raw: Record, *, strict: bool) -> Mapping[str, Any]:
    """A record's object. Not ``strict``: orjson, which lets duplicate members through (the
    worker that re-reads the line strictly catches them), except for checkpoints, which no
    worker re-reads, and for what orjson refuses (read strictly for the exact error)."""
    obj = raw
    if isinstance(raw, str | bytes):
        obj = parse_json(raw) if strict else _fast_json(raw)
    if not isinstance(obj, Mapping):
        raise LedgerError("not a JSON object")
    kind = obj.get("type")
    shape = _SHAPES.get(kind) if isinstance(kind, str) else None
    if shape is None or set(obj) != shape:
        raise LedgerError(f"unknown record shape with members {sorted(obj)}")
    if kind == "checkpoint" and not strict and isinstance(raw, str | bytes):
        return _parse(raw, strict=True)
    return obj


def _fast_json(raw: str | bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return parse_json(raw)


def _entry(obj: Any) -> Entry:
    """The entry of a record, without hashing its payload (a worker checks it) unless the key
    ring needs that payload."""
    redact = isinstance(obj, dict) and obj.get("kind") not in (KIND_CERTIFY, KIND_REVOKE)
    if redact and obj.get("payload") is not None:
        return Entry.from_json({**obj, "payload": None})
    return Entry.from_json(obj)


def _entry_index(raw: Record) -> object:
    try:
        obj = _parse(raw, strict=False)
    except LedgerError:
        return None
    return obj.get("index")
