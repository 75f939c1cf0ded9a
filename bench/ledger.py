"""The signed record at scale: entry verification, Merkle proofs, offline export verification.

1. Verify + append: 100,000 signed entries (8 officers of 2 parties, a zone-like payload with
   float coordinates) already parsed in memory are replayed through the key ring (certificate
   lookup, Ed25519 verify), hashed into the leaf, appended to the tree and stored. Compared with
   bare ``cryptography`` Ed25519 verification of the same signed bytes, in the same run.
2. Proofs at 10,000,000 leaves: the complete-node levels are built in bulk with hashlib (leaf i
   is SHA-256 leaf hash of its 8-byte index), then 1,000 inclusion proofs and 1,000 consistency
   proofs at random indices and sizes are generated through ``get_node`` and verified.
   Then the same proofs as the API serves them: the nodes those levels hold are stored in a
   real ``ledger_nodes`` table (an SQLite file under the temporary folder, kept between runs
   keyed by size; a new PostgreSQL schema, dropped after) and ``record.log.root``,
   ``inclusion`` and ``consistency`` are timed at 1,000 random sizes in the upper half of the
   tree (the SQLite file read once first, so that it is in the page cache as on a server),
   every proof verified against the root the in-memory levels give.
3. Export: 1,000,000 entries as JSON Lines with a cosigned checkpoint every 1,000 entries,
   written to a file, are verified from the file by ``verify_export`` as `deconfliction ledger
   verify` does: one worker process per core reads byte ranges of the file and checks each
   entry (its form, payload hash, leaf hash and libsodium signature), the calling process folds
   what they found in log order (key ring, nonces, tree, checkpoints). Compared in the same run
   with bare single-core ``cryptography`` Ed25519 verify (the issue's anchor: 1,000,000 of them
   were the old floor) and bare libsodium.

Run: ``python -m bench ledger`` (``make bench``). ``BENCH_LEDGER_ENTRIES``,
``BENCH_LEDGER_TREE`` and ``BENCH_LEDGER_EXPORT`` shrink the three sizes;
``BENCH_LEDGER_STORED`` (default: the tree size; building the 10,000,000-leaf SQLite file
takes minutes the first time) and ``BENCH_LEDGER_STORED_PG`` (default 1,000,000; 0 skips
PostgreSQL, at ``DECONFLICTION_TEST_PG``) those of the stored proofs.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from nacl.bindings import crypto_sign, crypto_sign_open

from bench import seed
from deconfliction.ledger.canonical import canonical_number
from deconfliction.ledger.checkpoint import Checkpoint, NoteSigner, cosign
from deconfliction.ledger.entry import (
    KIND_CERTIFY,
    Entry,
    EntryFields,
    KeyRing,
    certify_payload,
    entry_bytes,
    officer_key_name,
    root_key_name,
    sign_entry,
    signing_bytes,
)
from deconfliction.ledger.merkle import (
    NodeStore,
    TreeState,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_at,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)
from deconfliction.ledger.signing import (
    generate_private_key,
    key_id,
    load_public_key,
    public_key_bytes,
)
from deconfliction.ledger.verify import verify_export
from deconfliction.record import log
from deconfliction.store import tables as t
from deconfliction.store.db import make_engine
from deconfliction.store.tables import metadata

PARTIES = ("TR", "IL")
OFFICERS = 4  # per party
ORIGIN = "log.deconfliction.example"


class _Writer:
    """Signs a synthetic log: certificates first, then officer entries round-robin."""

    def __init__(self) -> None:
        rng = random.Random(7)
        self.rng = rng
        self.roots = {p: generate_private_key() for p in PARTIES}
        self.officers = [
            (p, f"{p.lower()}-duty-{k}", generate_private_key())
            for p in PARTIES
            for k in range(OFFICERS)
        ]
        self.count = 0

    def _fields(
        self, party: str, author: str, kind: str, payload: dict[str, object], kid: str
    ) -> EntryFields:
        self.count += 1
        return EntryFields(
            kind=kind,
            party=party,
            author=author,
            payload=payload,
            client_time="2025-04-09T10:00:00Z",
            nonce=f"{self.count:032x}",
            key_id=kid,
        )

    def entries(self, n: int) -> Iterator[Entry]:
        for party, officer, key in self.officers:
            root = self.roots[party]
            rid = key_id(root_key_name(party), public_key_bytes(root)).hex()
            cert = certify_payload(officer, public_key_bytes(key), "2025-01-01T00:00:00Z")
            yield sign_entry(self._fields(party, "hq", KIND_CERTIFY, cert, rid), root)
        kids = [
            key_id(officer_key_name(p, o), public_key_bytes(k)).hex() for p, o, k in self.officers
        ]
        for i in range(n - len(self.officers)):
            party, officer, key = self.officers[i % len(self.officers)]
            lon, lat = 35 + self.rng.random() * 3, 32 + self.rng.random() * 5
            payload: dict[str, object] = {
                "rule": "notify",
                "lead_time_s": 3600,
                "footprint": {
                    "type": "Polygon",
                    "coordinates": [
                        [[lon, lat], [lon + 0.1, lat], [lon + 0.1, lat + 0.1], [lon, lat]]
                    ],
                },
                "band": {"lower_m": 0, "upper_m": 9144.0, "ref": "MSL"},
                "window": ["2025-04-10T06:00:00Z", "2025-04-10T08:00:00Z"],
                "name": f"Zone {i}",
            }
            fields = self._fields(party, officer, "zone.declare", payload, kids[i % len(kids)])
            yield sign_entry(fields, key)

    def party_roots(self) -> dict[str, bytes]:
        return {p: public_key_bytes(k) for p, k in self.roots.items()}


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s"


def bench_verify_append(n: int) -> list[tuple[str, str]]:
    writer = _Writer()
    entries = list(writer.entries(n))
    signed = [(signing_bytes(e), e) for e in entries]
    keys = {
        key_id(officer_key_name(p, o), public_key_bytes(k)).hex(): k.public_key()
        for p, o, k in writer.officers
    }
    keys |= {
        key_id(root_key_name(p), public_key_bytes(k)).hex(): k.public_key()
        for p, k in writer.roots.items()
    }
    raw = [(keys[e.key_id], base64.b64decode(e.signature), data) for data, e in signed]
    gc.collect()
    start = time.perf_counter()
    for public, signature, data in raw:
        public.verify(signature, data)
    bare = time.perf_counter() - start

    ring, state, store = KeyRing(writer.party_roots()), TreeState(), NodeStore()
    start = time.perf_counter()
    for index, entry in enumerate(entries):
        ring.replay(entry, index)
        store.put(state.append(leaf_hash(entry_bytes(entry))))
    ours = time.perf_counter() - start
    return [
        (f"verify + append, {n:,} entries in memory", _rate(n, ours)),
        ("bare `cryptography` Ed25519 verify, same signatures", _rate(n, bare)),
        ("ratio (ours / bare)", f"{bare / ours:.2f}"),
    ]


def _levels(n: int) -> list[bytes]:
    """All complete nodes of a tree of n leaves, one bytes object per level."""
    sha = hashlib.sha256
    levels = [b"".join(sha(b"\x00" + i.to_bytes(8, "big")).digest() for i in range(n))]
    while len(levels[-1]) >= 64:
        below = levels[-1]
        levels.append(
            b"".join(
                sha(b"\x01" + below[j : j + 64]).digest() for j in range(0, len(below) - 63, 64)
            )
        )
    return levels


def bench_proofs(levels: list[bytes], probes: int) -> list[tuple[str, str]]:
    n = len(levels[0]) // 32

    def get_node(level: int, index: int) -> bytes:
        return levels[level][index * 32 : index * 32 + 32]

    # The bulk levels must be the very nodes TreeState would store: check a prefix.
    prefix = [leaf_hash(i.to_bytes(8, "big")) for i in range(1000)]
    assert root_at(1000, get_node) == root_from_leaves(prefix)
    rng = random.Random(11)
    root = root_at(n, get_node)
    indices = [rng.randrange(n) for _ in range(probes)]
    olds = [rng.randrange(1, n) for _ in range(probes)]
    old_roots = [root_at(m, get_node) for m in olds]

    start = time.perf_counter()
    proofs = [inclusion_proof(i, n, get_node) for i in indices]
    gen_inc = time.perf_counter() - start
    start = time.perf_counter()
    for i, proof in zip(indices, proofs, strict=True):
        assert verify_inclusion(get_node(0, i), i, n, proof, root)
    ver_inc = time.perf_counter() - start
    start = time.perf_counter()
    cproofs = [consistency_proof(m, n, get_node) for m in olds]
    gen_con = time.perf_counter() - start
    start = time.perf_counter()
    for m, old_root, proof in zip(olds, old_roots, cproofs, strict=True):
        assert verify_consistency(m, n, old_root, root, proof)
    ver_con = time.perf_counter() - start
    us = 1e6 / probes
    length = sum(map(len, proofs)) / probes
    clength = sum(map(len, cproofs)) / probes
    return [
        (f"inclusion proof generate, {n:,} leaves", f"{gen_inc * us:.1f} µs ({length:.1f} hashes)"),
        ("inclusion proof verify", f"{ver_inc * us:.1f} µs"),
        (
            f"consistency proof generate, {n:,} leaves",
            f"{gen_con * us:.1f} µs ({clength:.1f} hashes)",
        ),
        ("consistency proof verify", f"{ver_con * us:.1f} µs"),
    ]


def _level_rows(levels: list[bytes], level: int, n: int) -> Iterator[tuple[int, int, bytes]]:
    """The complete nodes on ``level`` of the tree of the first ``n`` leaves: the rows
    `record.log` stores."""
    data = levels[level]
    for index in range(n >> level):
        yield level, index, data[index * 32 : index * 32 + 32]


def _sqlite_nodes(levels: list[bytes], n: int) -> Path:
    """An SQLite file holding the ``ledger_nodes`` table of an ``n``-leaf tree, kept under /tmp
    keyed by size: built once (minutes at 10,000,000) into a part file renamed when complete,
    so a run that dies leaves nothing a later run would trust."""
    path = Path(tempfile.gettempdir()) / f"deconfliction-bench-nodes-{n}.db"
    if path.exists():
        return path
    part = path.with_suffix(".part")
    part.unlink(missing_ok=True)
    try:
        engine = make_engine(f"sqlite:///{part}")
        metadata.create_all(engine, tables=[t.ledger_nodes])
        engine.dispose()
        db = sqlite3.connect(part, isolation_level=None)
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute("PRAGMA synchronous=OFF")  # a file that is only renamed once complete
        start = time.perf_counter()
        db.execute("BEGIN")
        for level in range(n.bit_length()):
            db.executemany(
                "INSERT INTO ledger_nodes (level, idx, hash) VALUES (?, ?, ?)",
                _level_rows(levels, level, n),
            )
            if n >> level >= 1_000_000:  # the big levels take the time
                print(
                    f"  sqlite nodes: level {level} ({n >> level:,} rows) stored, "
                    f"{time.perf_counter() - start:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
        db.execute("COMMIT")
        db.close()
        part.rename(path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return path


def _pg_nodes(levels: list[bytes], n: int) -> tuple[str, str]:
    """A new PostgreSQL schema holding the ``ledger_nodes`` table of an ``n``-leaf tree, loaded
    with COPY: (url that uses it, schema name)."""
    url, schema = seed.pg_schema_url("dcf_bench_nodes")
    engine = make_engine(url)
    try:
        metadata.create_all(engine, tables=[t.ledger_nodes])
        start = time.perf_counter()
        with engine.begin() as conn:
            driver = conn.connection.driver_connection
            assert driver is not None
            with driver.cursor().copy("COPY ledger_nodes (level, idx, hash) FROM STDIN") as copy:
                for level in range(n.bit_length()):
                    for row in _level_rows(levels, level, n):
                        copy.write_row(row)
            conn.exec_driver_sql("ANALYZE ledger_nodes")
        print(
            f"  postgresql nodes: {n:,}-leaf tree stored, {time.perf_counter() - start:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    except BaseException:
        engine.dispose()
        seed.drop_pg_schema(schema)
        raise
    engine.dispose()
    return url, schema


def _stored_timings(
    url: str, levels: list[bytes], n: int, probes: int
) -> tuple[list[float], list[float], list[float]]:
    """Seconds per call of `record.log.root`, `inclusion` and `consistency` (the functions the
    API serves proofs with) on the node table at ``url``, at random sizes up to ``n``; every
    proof is verified against the root the in-memory levels give."""

    def get_node(level: int, index: int) -> bytes:
        return levels[level][index * 32 : index * 32 + 32]

    rng = random.Random(13)
    sizes = [rng.randrange(n // 2, n + 1) for _ in range(probes)]
    indices = [rng.randrange(size) for size in sizes]
    olds = [rng.randrange(1, size) for size in sizes]
    roots = [root_at(size, get_node) for size in sizes]
    old_roots = [root_at(old, get_node) for old in olds]
    engine = make_engine(url)
    timings: tuple[list[float], list[float], list[float]] = ([], [], [])
    try:
        with engine.connect() as conn:
            clock = time.perf_counter
            for size, index, old, root, old_root in zip(
                sizes, indices, olds, roots, old_roots, strict=True
            ):
                start = clock()
                got = log.root(conn, size)
                middle = clock()
                inclusion = log.inclusion(conn, index, size)
                end = clock()
                consistency = log.consistency(conn, old, size)
                timings[0].append(middle - start)
                timings[1].append(end - middle)
                timings[2].append(clock() - end)
                assert got == root
                assert verify_inclusion(get_node(0, index), index, size, inclusion, root)
                assert verify_consistency(old, size, old_root, root, consistency)
    finally:
        engine.dispose()
    return timings


def _spread(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    median, p99 = (
        ordered[len(ordered) // 2],
        ordered[min(len(ordered) - 1, len(ordered) * 99 // 100)],
    )
    return f"median {median * 1e6:,.0f} µs, p99 {p99 * 1e6:,.0f} µs"


def bench_stored_proofs(
    levels: list[bytes], n: int, pg_n: int, probes: int
) -> list[tuple[str, str]]:
    """Proofs as the API serves them: from a real ``ledger_nodes`` table of an ``n``-leaf tree
    on SQLite and of a ``pg_n``-leaf tree on PostgreSQL (0 skips it)."""
    rows = []
    path = _sqlite_nodes(levels, n)
    # Read once, so that the file is in the page cache as on a server that has been serving it
    # (on this machine part of a 1.2 GB file is otherwise read from disk at random).
    with path.open("rb") as file:
        while file.read(1 << 24):
            pass
    try:
        timed = [("SQLite", n, _stored_timings(f"sqlite:///{path}", levels, n, probes))]
    except Exception:
        path.unlink()  # a kept file that gives a wrong proof must not be kept
        raise
    if pg_n:
        url, schema = _pg_nodes(levels, pg_n)
        try:
            timed.append(("PostgreSQL", pg_n, _stored_timings(url, levels, pg_n, probes)))
        finally:
            seed.drop_pg_schema(schema)
    for name, size, (root, inclusion, consistency) in timed:
        rows += [
            (
                f"stored inclusion proof, {name}, {size:,} leaves (`record.log.inclusion`)",
                _spread(inclusion),
            ),
            (
                f"stored consistency proof, {name}, {size:,} leaves (`record.log.consistency`)",
                _spread(consistency),
            ),
            (f"stored root, {name}, {size:,} leaves (`record.log.root`)", _spread(root)),
        ]
    return rows


def _export_lines(writer: _Writer, n: int, log: NoteSigner, cosigner: NoteSigner) -> Iterator[str]:
    """The export as `deconfliction ledger export` writes it, built fast enough for a million.

    Bulk entries are formatted from templates (payload already in RFC 8785 form, so it is
    hashed once as written) and signed with libsodium; the verifier below checks every byte,
    so a template that drifted from the entry format would fail the run, not flatter it.
    """
    state = TreeState()
    count = 0

    def emit(entry_json: str, member_bytes: bytes) -> Iterator[str]:
        nonlocal count
        yield f'{{"type":"entry","index":{count},"entry":{entry_json}}}'
        count += 1
        state.append(leaf_hash(member_bytes))
        if state.size % 1000 == 0 or state.size == n:
            note = cosign(Checkpoint(ORIGIN, state.size, state.root()).sign(log), cosigner)
            yield json.dumps({"type": "checkpoint", "note": note})

    certs = writer.entries(len(writer.officers))
    for entry in certs:
        yield from emit(json.dumps(entry.to_json(), separators=(",", ":")), entry_bytes(entry))
    officers = [
        (
            party,
            officer,
            key_id(officer_key_name(party, officer), public_key_bytes(key)).hex(),
            key.private_bytes_raw() + public_key_bytes(key),
        )
        for party, officer, key in writer.officers
    ]
    rng = random.Random(5)
    for i in range(n - len(officers)):
        party, officer, kid, secret = officers[i % len(officers)]
        x, y = round(35 + rng.random() * 3, 5), round(32 + rng.random() * 5, 5)
        lon, lat, lon2, lat2 = (canonical_number(v) for v in (x, y, x + 0.1, y + 0.1))
        ring = f"[[{lon},{lat}],[{lon2},{lat}],[{lon2},{lat2}],[{lon},{lat}]]"
        payload = (
            '{"band":{"lower_m":0,"ref":"MSL","upper_m":9144},'
            f'"footprint":{{"coordinates":[{ring}],"type":"Polygon"}},"lead_time_s":3600,'
            f'"name":"Zone {i}","rule":"notify",'
            '"window":["2025-04-10T06:00:00Z","2025-04-10T08:00:00Z"]}'
        )
        digest = hashlib.sha256(payload.encode()).hexdigest()
        head = (
            f'{{"author":"{officer}","client_time":"2025-04-09T10:00:00Z","key_id":"{kid}",'
            f'"kind":"zone.declare","nonce":"{i + 1_000_000:032x}","party":"{party}"'
        )
        tail = f',"payload_sha256":"{digest}","server_held_key":false'
        signed = (head + tail + ',"supersedes":null}').encode()
        signature = base64.b64encode(crypto_sign(signed, secret)[:64]).decode()
        member_bytes = f'{head}{tail},"signature":"{signature}","supersedes":null}}'.encode()
        entry_json = (
            f'{head},"payload":{payload}{tail},"signature":"{signature}","supersedes":null}}'
        )
        yield from emit(entry_json, member_bytes)


def bench_export(n: int) -> list[tuple[str, str]]:
    writer = _Writer()
    log = NoteSigner(ORIGIN, generate_private_key())
    mediator = NoteSigner("mediator.example", generate_private_key())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "export.jsonl"
        start = time.perf_counter()
        with path.open("w", encoding="utf-8") as out:
            for line in _export_lines(writer, n, log, mediator):
                out.write(line + "\n")
        written = time.perf_counter() - start
        size_mb = path.stat().st_size / 1e6
        bare, sodium = _bare_rates(path, writer, min(n, 50_000))
        gc.collect()
        start = time.perf_counter()
        with path.open("rb") as lines:
            result = verify_export(
                lines,
                party_roots=writer.party_roots(),
                log_key=log.verifier(),
                cosigners=[mediator.verifier()],
                required_cosigners=[mediator.name],
            )
        took = time.perf_counter() - start
    assert result.ok and result.entries == n, result
    return [
        (
            f"write + sign export of {n:,} entries ({size_mb:,.0f} MB JSON Lines)",
            f"{written:.1f} s",
        ),
        (
            f"verify export of {n:,} entries, {result.checkpoints:,} checkpoints "
            f"({os.cpu_count()} cores)",
            f"{took:.1f} s ({_rate(n, took)})",
        ),
        ("bare `cryptography` Ed25519 verify, one core, same signatures", _rate(1, 1 / bare)),
        (
            "ratio (export verify rate / bare `cryptography` rate)",
            f"{n / took / bare:.2f}",
        ),
        (
            f"bare `cryptography` verify of {n:,} signatures, one core (the old floor)",
            f"{n / bare:.1f} s",
        ),
        ("bare libsodium (PyNaCl) Ed25519 verify, one core", _rate(1, 1 / sodium)),
        (
            f"target: ≤ 60 s per 1,000,000 entries ({60 * n / 1e6:.0f} s for {n:,})",
            "met" if took <= 60 * n / 1e6 else "NOT met",
        ),
    ]


def _bare_rates(path: Path, writer: _Writer, sample: int) -> tuple[float, float]:
    """Signatures per second of bare `cryptography` and libsodium over the first ``sample``
    entries of the export (officer keys only, looked up once)."""
    keys = {
        key_id(officer_key_name(p, o), public_key_bytes(k)).hex(): public_key_bytes(k)
        for p, o, k in writer.officers
    }
    jobs = []
    with path.open("rb") as lines:
        for line in lines:
            record = json.loads(line)
            entry = record.get("entry")
            if entry is None or entry["kind"] != "zone.declare":
                continue
            parsed = Entry.from_json(entry)
            jobs.append(
                (keys[parsed.key_id], base64.b64decode(parsed.signature), signing_bytes(parsed))
            )
            if len(jobs) == sample:
                break
    loaded = {raw: load_public_key(raw) for raw in keys.values()}
    gc.collect()
    start = time.perf_counter()
    for raw, signature, data in jobs:
        loaded[raw].verify(signature, data)
    bare = len(jobs) / (time.perf_counter() - start)
    start = time.perf_counter()
    for raw, signature, data in jobs:
        crypto_sign_open(signature + data, raw)
    sodium = len(jobs) / (time.perf_counter() - start)
    return bare, sodium


def main() -> None:
    entries = int(os.environ.get("BENCH_LEDGER_ENTRIES", "100000"))
    tree = int(os.environ.get("BENCH_LEDGER_TREE", "10000000"))
    export = int(os.environ.get("BENCH_LEDGER_EXPORT", "1000000"))
    stored = min(int(os.environ.get("BENCH_LEDGER_STORED", str(tree))), tree)
    stored_pg = min(int(os.environ.get("BENCH_LEDGER_STORED_PG", "1000000")), tree)
    rows = bench_verify_append(entries)
    start = time.perf_counter()
    levels = _levels(tree)
    rows.append(
        (
            f"build {tree:,}-leaf node levels (bulk hashlib, once)",
            f"{time.perf_counter() - start:.1f} s",
        )
    )
    rows += bench_proofs(levels, 1000)
    rows += bench_stored_proofs(levels, stored, stored_pg, 1000)
    del levels
    rows += bench_export(export)
    print("| measure | value |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
