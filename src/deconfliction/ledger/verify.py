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

Speed. Ed25519 verification is most of the cost, so worker processes (``workers``, default
every core) check each record by itself: a strict read (duplicate members, NaN), the entry's
form, its payload against ``payload_sha256`` (hashing the payload text as written when the export
is canonical, as ``ledger export`` writes it, else re-canonicalising it), its leaf hash, and its
signature, verified with libsodium against the keys that could have signed it (the party root,
the log key, or the officer keys certified anywhere in the export, found by a quick first scan).
Given a binary file open on the export, the workers open the file themselves and each reads a
byte range cut at line boundaries (``chunk`` KiB); given records, they get ``chunk`` records at a
time. This process folds what they found, in log order, into the checks that depend on order:
which key was valid at that index, nonces, supersedes, the tree and the checkpoints. A
signature libsodium did not accept with the key the log order requires is decided here by
``cryptography`` (the library the server signs and verifies with; libsodium is the stricter),
so the verdict is the one it gives. Every record passes the checks in the order a purely
sequential verifier makes them, so the first bad entry named is the same with any number of
workers. An export smaller than one chunk never starts a pool.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import itertools
import os
import re
import stat
import sys
from collections import deque
from collections.abc import Collection, Generator, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from typing import Any, NamedTuple, NoReturn, cast

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from deconfliction.ledger.canonical import parse_json
from deconfliction.ledger.checkpoint import Checkpoint, NoteVerifier, open_checkpoint
from deconfliction.ledger.entry import (
    KIND_CERTIFY,
    KIND_REVOKE,
    LOG_PARTY,
    Entry,
    KeyRing,
    entry_bytes,
    officer_key_name,
    parse_rfc3339,
    verify_entry,
)
from deconfliction.ledger.errors import LedgerError, Reason
from deconfliction.ledger.merkle import (
    NodeStore,
    TreeState,
    consistency_proof,
    leaf_hash,
    root_at,
    verify_consistency,
)
from deconfliction.ledger.signing import b64decode, key_id, load_public_key, public_key_bytes

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

    ``records`` are the export's records, or a binary file open on it (``open(path, "rb")``),
    which the workers then read in byte ranges themselves, from its current position.
    ``party_roots`` maps a party id to its raw 32-byte root public key; ``log_key`` verifies
    the log's checkpoint signatures and its own ``_log`` entries, and its name is the expected
    checkpoint origin;
    ``cosigners`` are other known note keys (reported when they signed), of which the names in
    ``required_cosigners`` must sign every checkpoint; ``remembered`` are signed checkpoint notes
    the reader saw before, which the export must still contain. ``workers`` processes (default:
    one per core; 0 checks in this process) read the records, ``chunk`` records (or KiB of a
    file) at a time.
    """
    run = _Run(party_roots, log_key, list(cosigners), frozenset(required_cosigners))
    keys = _Keys(log_key.public_key, dict(party_roots), {})
    reads = _reads(
        records, keys, os.cpu_count() or 1 if workers is None else workers, max(chunk, 1)
    )
    try:
        for note in remembered:
            run.checkpoint(note, None)
        for number, read in enumerate(reads):
            run.record(number, read, reads)
        run.finish()
    except _Stop as stop:
        return run.result(stop)
    finally:
        reads.close()
    return run.result(None)


class _Stop(Exception):
    def __init__(self, reason: Reason, detail: str, index: int | None, record: int | None) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.index, self.record = reason, detail, index, record


# ---- reading one record (in a worker) ----


class _Read(NamedTuple):
    """What reading one record found: what the checks that follow log order need, and little
    more, for it crosses a process boundary a million times. An entry that passed every check
    of its own comes as its head: the members the key ring, the nonce and ``supersedes``
    checks read."""

    record: str  # "entry", "checkpoint", or "" for a record that does not read
    index: Any  # an entry record's index as written (what a scan for a moved row looks for)
    problem: str = ""  # why the record does not read
    note: Any = None  # a checkpoint's note
    entry_error: tuple[Reason, str] | None = None  # the entry's form is refused
    payload_error: str = ""  # the payload does not match payload_sha256
    leaf: bytes = b""
    signers: tuple[bytes, ...] = ()  # the keys tried that libsodium accepted the signature of
    # The whole entry (its payload dropped unless a key entry) when more than its head is
    # needed: a key entry, or a signature libsodium refused with a key it tried (or had none).
    entry: Entry | None = None
    party: str = ""
    author: str = ""
    key_id: str = ""
    kind: str = ""
    client_time: str = ""
    server_held_key: bool = False
    nonce: str = ""
    supersedes: str | None = None


@dataclass(frozen=True)
class _Keys:
    """Raw public keys that may have signed an entry: a worker verifies a signature with these,
    and this process checks afterwards that the one that did is the one the log order allows."""

    log: bytes
    roots: dict[str, bytes]
    officers: dict[tuple[str, str, str], tuple[bytes, ...]]  # (party, officer, key id) -> keys

    def candidates(self, party: str, author: str, key_id: str, kind: str) -> tuple[bytes, ...]:
        if party == LOG_PARTY:
            return (self.log,)
        if kind.startswith("key."):
            root = self.roots.get(party)
            return () if root is None else (root,)
        return self.officers.get((party, author, key_id), ())

    def with_officers(self, found: Iterable[tuple[tuple[str, str, str], bytes]]) -> _Keys:
        officers = dict(self.officers)
        for slot, raw in found:
            if raw not in officers.get(slot, ()):
                officers[slot] = (*officers.get(slot, ()), raw)
        return self if officers == self.officers else replace(self, officers=officers)


_SHAPES = {
    "entry": frozenset({"type", "index", "entry"}),
    "checkpoint": frozenset({"type", "note"}),
}
_KEY_KINDS = (KIND_CERTIFY, KIND_REVOKE)
# An entry record as `ledger export` writes it: canonical JSON, or the same entry after "type"
# and "index". Every member value is in a form that needs no JSON escape and that the entry
# format accepts (the patterns of ``deconfliction.ledger.entry``), so a line that matches holds
# each member once, and the entry's leaf bytes are its own text without the payload member.
_NAME = rb"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}"
_HEX64 = rb"[0-9a-f]{64}"
_ENTRY = (
    rb'(?P<head>\{"author":"(?P<author>' + _NAME + rb')"'
    rb',"client_time":"(?P<client_time>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}'
    rb'(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:[0-9]{2}))"'
    rb',"key_id":"(?P<key_id>[0-9a-f]{8})"'
    rb',"kind":"(?P<kind>[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*)"'
    rb',"nonce":"(?P<nonce>(?:[0-9a-f]{2}){16,64})"'
    rb',"party":"(?P<party>_log|' + _NAME + rb')",)'
    rb'"payload":(?P<payload>\{.*\}),'
    rb'(?P<tail>"payload_sha256":"(?P<digest>' + _HEX64 + rb')"'
    rb',"server_held_key":(?P<held>true|false)'
    # 64 bytes in canonical base64: the last character holds 2 bits and 4 zero bits
    rb'(?P<member>,"signature":"(?P<signature>[A-Za-z0-9+/]{85}[AQgw]==)")'
    rb',"supersedes":(?:null|"(?P<supersedes>' + _HEX64 + rb')")\})'
)
_INDEX = rb"(?P<index>0|[1-9][0-9]{0,14})"  # below 2**53, read exactly as an int
_EXPORTED = (
    re.compile(rb'\{"entry":' + _ENTRY + rb',"index":' + _INDEX + rb',"type":"entry"\}\r?\n?'),
    re.compile(rb'\{"type":"entry","index":' + _INDEX + rb',"entry":' + _ENTRY + rb"\}\r?\n?"),
)


def _read(raw: Record, keys: _Keys) -> _Read:
    """Every check of one record that needs no other record, in the order a sequential
    verifier makes them; what depends on log order is left to ``_Run.record``."""
    if isinstance(raw, bytes | str):
        line = raw.encode("utf-8") if isinstance(raw, str) else raw
        read = _read_canonical(line, keys)
        if read is not None:
            return read
    try:
        obj = raw if isinstance(raw, Mapping) else parse_json(raw)
        if not isinstance(obj, Mapping):
            raise LedgerError("not a JSON object")
        kind = obj.get("type")
        shape = _SHAPES.get(kind) if isinstance(kind, str) else None
        if shape is None or set(obj) != shape:
            raise LedgerError(f"unknown record shape with members {sorted(obj)}")
    except LedgerError as exc:
        return _Read("", _entry_index(raw), problem=str(exc))
    if kind == "checkpoint":
        return _Read("checkpoint", None, note=obj["note"])
    index, member = obj["index"], obj["entry"]
    key_entry = isinstance(member, dict) and member.get("kind") in _KEY_KINDS
    try:
        if key_entry or not isinstance(member, dict) or member.get("payload") is None:
            entry = Entry.from_json(member)
        else:
            # The key ring never reads other payloads: check the form first, the payload after
            # the signing key, as a reader that may not see payloads would.
            entry = Entry.from_json({**member, "payload": None})
    except LedgerError as exc:
        return _Read("entry", index, entry_error=(exc.reason, str(exc)))
    payload_error = ""
    if not key_entry and member["payload"] is not None:
        try:
            Entry.from_json(member)
        except LedgerError as exc:
            payload_error = str(exc)
    return _entry_read(index, entry, keys, payload_error)


def _read_canonical(line: bytes, keys: _Keys) -> _Read | None:
    """The read of an entry line written as ``ledger export`` writes it, without parsing the
    line or its payload; None for any other line (it is then read the long way, which also
    names whatever is wrong with it).

    The line must match ``_EXPORTED``; its payload text must be the very text its
    ``payload_sha256`` hashes, so it is the signer's own RFC 8785 text, and must read as a JSON
    object. Key entries are read the long way: the key ring reads their payloads.
    """
    match = _EXPORTED[0 if line.startswith(b'{"entry"') else 1].fullmatch(line)
    if match is None:
        return None
    # The regex allows only ASCII in these members, so each decodes as it is.
    party, author, key_id_hex, kind, client_time, nonce, digest = map(
        bytes.decode,
        match.group("party", "author", "key_id", "kind", "client_time", "nonce", "digest"),
    )
    if kind in _KEY_KINDS:
        return None
    payload = match["payload"]
    if hashlib.sha256(payload).hexdigest() != digest:
        return None
    try:
        if type(orjson.loads(payload)) is not dict:
            return None
        parse_rfc3339(client_time, "client_time")
    except (orjson.JSONDecodeError, LedgerError):
        return None
    head, tail = match["head"], match["tail"]
    member_start, member_end = match.span("member")
    tail_start, tail_end = match.span("tail")
    supersedes = match["supersedes"]
    return _signed_read(
        int(match["index"]),
        keys,
        head=(
            party,
            author,
            key_id_hex,
            kind,
            client_time,
            match["held"] == b"true",
            nonce,
            None if supersedes is None else supersedes.decode(),
        ),
        leaf=head + tail,
        # The signature, then the signed bytes: the leaf bytes without the signature member.
        signed=b"".join(
            (
                binascii.a2b_base64(match["signature"]),
                head,
                line[tail_start:member_start],
                line[member_end:tail_end],
            )
        ),
        signature=match["signature"].decode(),
        digest=digest,
    )


_Head = tuple[str, str, str, str, str, bool, str, str | None]
"""party, author, key_id, kind, client_time, server_held_key, nonce, supersedes"""


def _entry_read(index: Any, entry: Entry, keys: _Keys, payload_error: str) -> _Read:
    leaf = entry_bytes(entry)
    # The signed bytes are the leaf bytes without the ``signature`` member: canonical JSON of
    # the other members (no other member's name or value holds those characters).
    member = b',"signature":"' + entry.signature.encode("ascii") + b'"'
    head = (
        entry.party,
        entry.author,
        entry.key_id,
        entry.kind,
        entry.client_time,
        entry.server_held_key,
        entry.nonce,
        entry.supersedes,
    )
    return _signed_read(
        index,
        keys,
        head=head,
        leaf=leaf,
        signed=base64.b64decode(entry.signature) + leaf.replace(member, b"", 1),
        signature=entry.signature,
        digest=entry.payload_sha256,
        entry=entry,
        payload_error=payload_error,
    )


def _signed_read(
    index: Any,
    keys: _Keys,
    *,
    head: _Head,
    leaf: bytes,
    signed: bytes,
    signature: str,
    digest: str,
    entry: Entry | None = None,
    payload_error: str = "",
) -> _Read:
    """An entry's read with its leaf hash and the keys libsodium accepted its signature with
    (``signed`` is the signature followed by the signed bytes, as libsodium takes them)."""
    party, author, key_id_hex, kind, client_time, held, nonce, supersedes = head
    candidates = keys.candidates(party, author, key_id_hex, kind)
    signers = []
    for candidate in candidates:
        try:
            crypto_sign_open(signed, candidate)
        except (BadSignatureError, ValueError, TypeError):
            continue
        signers.append(candidate)
    if kind in _KEY_KINDS or not candidates or len(signers) < len(candidates):
        if entry is None:
            entry = Entry(
                kind=kind,
                party=party,
                author=author,
                payload=None,
                client_time=client_time,
                nonce=nonce,
                key_id=key_id_hex,
                supersedes=supersedes,
                server_held_key=held,
                payload_sha256=digest,
                signature=signature,
            )
    else:
        entry = None
    intern = sys.intern  # the same few names in every entry: pickled once a chunk
    # Positional: this runs a million times, and keywords cost more.
    return _Read(
        "entry",
        index,
        "",
        None,
        None,
        payload_error,
        leaf_hash(leaf),
        tuple(signers),
        entry,
        intern(party),
        intern(author),
        intern(key_id_hex),
        intern(kind),
        intern(client_time),
        held,
        nonce,
        supersedes,
    )


def _entry_index(raw: Record) -> object:
    """The index of an entry record as a lenient reader sees it (None if it has none)."""
    try:
        obj = raw if isinstance(raw, Mapping) else orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, Mapping) or set(obj) != _SHAPES["entry"]:
        return None
    return obj.get("index")


def _certified(raw: Record) -> list[tuple[tuple[str, str, str], bytes]]:
    """The officer keys a ``key.certify`` record names, read leniently: a hint of which keys
    to try, checked later against the key ring."""
    if isinstance(raw, Mapping):
        obj: Any = raw
    else:
        if isinstance(raw, bytes) and b"certify" not in raw:
            return []
        if isinstance(raw, str) and "certify" not in raw:
            return []
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return []
    entry = obj.get("entry") if isinstance(obj, dict) else None
    if not isinstance(entry, dict) or entry.get("kind") != KIND_CERTIFY:
        return []
    party, payload = entry.get("party"), entry.get("payload")
    if not isinstance(party, str) or not isinstance(payload, dict):
        return []
    officer, public = payload.get("officer"), payload.get("public_key")
    if not isinstance(officer, str) or not isinstance(public, str):
        return []
    try:
        raw_key = b64decode(public, "public_key")
    except LedgerError:
        return []
    slot = (party, officer, key_id(officer_key_name(party, officer), raw_key).hex())
    return [(slot, raw_key)]


# ---- where the records come from: this process, or workers over chunks or byte ranges ----


@dataclass(frozen=True)
class _Range:
    """Lines ``[start, end)`` of an export file, ``end`` just after a newline or at the end."""

    path: str
    identity: tuple[int, int]  # (device, inode): the worker opens the file the caller opened
    start: int
    end: int

    def data(self) -> bytes:
        with open(self.path, "rb") as file:
            status = os.fstat(file.fileno())
            if (status.st_dev, status.st_ino) != self.identity:
                raise OSError(f"{self.path} was replaced while it was being verified")
            file.seek(self.start)
            return file.read(self.end - self.start)

    def lines(self) -> list[bytes]:
        lines = self.data().split(b"\n")
        if lines[-1] == b"":
            lines.pop()  # the newline that ends the last line, not an empty record
        return lines


def _scan_range(part: _Range) -> list[tuple[tuple[str, str, str], bytes]]:
    """The officer keys certified in a range: a substring search, then a read of those lines."""
    data, found, at = part.data(), [], 0
    while (at := data.find(b"certify", at)) >= 0:
        start, end = data.rfind(b"\n", 0, at) + 1, data.find(b"\n", at)
        end = len(data) if end < 0 else end
        found += _certified(data[start:end])
        at = end
    return found


# A worker sends its reads back as plain tuples (``_Pool.ordered`` makes them reads again):
# pickle writes and reads those in C, a named tuple through its Python constructor.
_Sent = list[tuple[Any, ...]]


def _read_range(part: _Range, keys: _Keys) -> _Sent:
    return [tuple(_read(line, keys)) for line in part.lines()]


def _read_records(records: list[Record], keys: _Keys) -> _Sent:
    return [tuple(_read(raw, keys)) for raw in records]


def _reads(
    records: Iterable[Record], keys: _Keys, workers: int, chunk: int
) -> Generator[_Read, None, None]:
    """Each record read, in export order."""
    ranges = _file_ranges(records, chunk * 1024)
    if ranges is not None:
        # The first pass finds the certified keys, so that every signature can be checked
        # where its record is read; it costs a substring search over the file.
        if workers <= 0 or len(ranges) <= 1:
            for part in ranges:
                keys = keys.with_officers(_scan_range(part))
            for part in ranges:
                yield from (_read(line, keys) for line in part.lines())
            return
        with _Pool(workers) as pool:
            for found in pool.executor.map(_scan_range, ranges):
                keys = keys.with_officers(found)
            yield from pool.ordered(
                pool.executor.submit(_read_range, part, keys) for part in ranges
            )
        return
    stream = iter(records)
    first = list(itertools.islice(stream, chunk))
    if workers <= 0 or len(first) < chunk:
        for raw in itertools.chain(first, stream):
            keys = keys.with_officers(_certified(raw))
            yield _read(raw, keys)
        return

    def submitted(pool: _Pool) -> Iterator[Future[_Sent]]:
        nonlocal keys
        batch = first
        while batch:
            # Certificates come before the entries their keys sign, so the keys of a batch are
            # known when it is read.
            keys = keys.with_officers(found for raw in batch for found in _certified(raw))
            yield pool.executor.submit(_read_records, batch, keys)
            batch = list(itertools.islice(stream, chunk))

    with _Pool(workers) as pool:
        yield from pool.ordered(submitted(pool))


class _Pool:
    """Worker processes, and results read back in order with a bounded read-ahead."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        # forkserver: a clean child even when the caller runs threads (a server, a test).
        self.executor = ProcessPoolExecutor(workers, mp_context=get_context("forkserver"))

    def __enter__(self) -> _Pool:
        return self

    def __exit__(self, *_: object) -> None:
        self.executor.shutdown(cancel_futures=True)

    def ordered(self, tasks: Iterable[Future[_Sent]]) -> Iterator[_Read]:
        flight: deque[Future[_Sent]] = deque()
        for task in tasks:
            flight.append(task)
            # Memory stays a few chunks; a bad record early stops the run early.
            while len(flight) > 2 * self.workers:
                yield from map(_Read._make, flight.popleft().result())
        while flight:
            yield from map(_Read._make, flight.popleft().result())


def _file_ranges(records: Iterable[Record], size: int) -> list[_Range] | None:
    """Byte ranges of about ``size`` bytes cut at line boundaries, when ``records`` is a binary
    file open on a regular file; None for any other source of records."""
    if not isinstance(records, io.BufferedReader | io.FileIO) or not isinstance(records.name, str):
        return None
    try:
        status = os.fstat(records.fileno())
        position = records.tell()
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(status.st_mode):
        return None
    path, identity = os.path.abspath(records.name), (status.st_dev, status.st_ino)
    cuts = [position]
    while cuts[-1] + size < status.st_size:
        records.seek(cuts[-1] + size - 1)
        records.readline()  # to just after the newline that ends the line holding that byte
        cuts.append(records.tell())
    if cuts[-1] < status.st_size:
        cuts.append(status.st_size)
    return [_Range(path, identity, a, b) for a, b in itertools.pairwise(cuts) if b > a]


# ---- the checks that follow log order (this process) ----


@dataclass
class _Signed:
    checkpoint: Checkpoint
    signers: tuple[str, ...]
    record: int | None  # None: remembered by the reader, not in the export


class _Ring(KeyRing):
    """The key ring with the signature check split off: a worker made it, this process
    checks it was made with the key ``signing_key`` finds."""

    def apply(self, entry: Entry, index: int) -> None:
        """The key changes of an entry whose signing key ``signing_key`` found."""
        if entry.kind == KIND_CERTIFY:
            self._certify(entry, index)
        elif entry.kind == KIND_REVOKE:
            self._revoke(entry, index)


def _head(read: _Read) -> Entry:
    # ``KeyRing.signing_key`` reads only the head of an entry (party, author, key_id, kind,
    # client_time, server_held_key), which a read carries under the same names.
    return cast(Entry, read)


@dataclass
class _Run:
    party_roots: Mapping[str, bytes]
    log_key: NoteVerifier
    cosigners: list[NoteVerifier]
    required: frozenset[str]
    state: TreeState = field(default_factory=TreeState)
    store: NodeStore = field(default_factory=NodeStore)
    nonces: dict[str, int] = field(default_factory=dict)
    # Leaf hash -> entry index, and the party of each entry: what ``supersedes`` looks up
    # (no tuple an entry, so the garbage collector has a million objects fewer to walk).
    leaves: dict[bytes, int] = field(default_factory=dict)
    parties: list[str] = field(default_factory=list)
    pending: dict[int, list[_Signed]] = field(default_factory=dict)
    matched: list[_Signed] = field(default_factory=list)  # checkpoints whose root matched
    last_signed: int = 0  # largest size signed so far in export order
    previous: Checkpoint | None = None
    raw_keys: dict[int, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        log_key = (self.log_key.name, load_public_key(self.log_key.public_key))
        self.keyring = _Ring(self.party_roots, log_key=log_key)
        self.known = [self.log_key, *self.cosigners]

    def record(self, number: int, read: _Read, rest: Iterator[_Read]) -> None:
        expected = self.state.size
        if read.problem:
            raise _Stop(Reason.MALFORMED, f"record {number}: {read.problem}", expected, number)
        if read.record == "checkpoint":
            self.checkpoint(read.note, number)
            return
        index = read.index
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise _Stop(Reason.MALFORMED, f"record {number}: index {index!r}", expected, number)
        if index != expected:
            self._misplaced(index, expected, number, rest)
        try:
            if read.entry_error is not None:
                raise LedgerError(read.entry_error[1], read.entry_error[0])
            public = self.keyring.signing_key(read.entry or _head(read), index)
            if read.payload_error:
                raise LedgerError(read.payload_error)
            if self._raw(public) not in read.signers:
                assert read.entry is not None  # sent whenever libsodium refused a key
                verify_entry(read.entry, public)  # libsodium refused: `cryptography` decides
            if read.entry is not None:
                self.keyring.apply(read.entry, index)
        except LedgerError as exc:
            raise _Stop(exc.reason, f"entry {index}: {exc}", index, number) from exc
        nonce = f"{read.party}\x00{read.author}\x00{read.nonce}"
        first_use = self.nonces.setdefault(nonce, index)
        if first_use != index:
            raise _Stop(
                Reason.REPLAYED_NONCE,
                f"entry {index}: {read.party}/{read.author} reuses the nonce of entry "
                f"{first_use}: a replayed entry",
                index,
                number,
            )
        party = sys.intern(read.party)
        if read.supersedes is not None:
            target = self.leaves.get(bytes.fromhex(read.supersedes))
            if target is None or self.parties[target] != party:
                whose = (
                    "no earlier entry"
                    if target is None
                    else f"entry {target} of {self.parties[target]}"
                )
                raise _Stop(
                    Reason.BAD_SUPERSEDES,
                    f"entry {index}: supersedes {read.supersedes[:16]}..., which is {whose}",
                    index,
                    number,
                )
        self.leaves[read.leaf] = index
        self.parties.append(party)
        self.store.put(self.state.append(read.leaf))
        for signed in self.pending.pop(self.state.size, []):
            self._match(signed)

    def _raw(self, public: Ed25519PublicKey) -> bytes:
        raw = self.raw_keys.get(id(public))
        if raw is None:
            raw = self.raw_keys[id(public)] = public_key_bytes(public)
        return raw

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
        best: _Signed | None = None
        for signed in self.matched:
            if best is None or signed.checkpoint.size >= best.checkpoint.size:
                best = signed
        return VerifyResult(
            ok=stop is None,
            entries=self.state.size,
            root=self.state.root(),
            checkpoints=len(self.matched),
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

    def _misplaced(self, index: int, expected: int, number: int, rest: Iterator[_Read]) -> NoReturn:
        if index < expected:
            raise _Stop(
                Reason.ORDER,
                f"record {number} has index {index} after index {expected - 1}: a duplicated "
                "or moved row",
                expected,
                number,
            )
        if any(read.index == expected for read in rest):
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
