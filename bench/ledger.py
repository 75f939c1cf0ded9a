"""The signed record at scale: entry verification, Merkle proofs, offline export verification.

1. Verify + append: 100,000 signed entries (8 officers of 2 parties, a zone-like payload with
   float coordinates) already parsed in memory are replayed through the key ring (certificate
   lookup, Ed25519 verify), hashed into the leaf, appended to the tree and stored. Compared with
   bare ``cryptography`` Ed25519 verification of the same signed bytes, in the same run.
2. Proofs at 10,000,000 leaves: the complete-node levels are built in bulk with hashlib (leaf i
   is SHA-256 leaf hash of its 8-byte index), then 1,000 inclusion proofs and 1,000 consistency
   proofs at random indices and sizes are generated through ``get_node`` and verified.
3. Export: 1,000,000 entries as JSON Lines with a cosigned checkpoint every 1,000 entries are
   verified from the text by ``verify_export`` (JSON parse, every check, tree, checkpoints).

Run: ``python -m bench ledger`` (``make bench``). ``BENCH_LEDGER_ENTRIES``,
``BENCH_LEDGER_TREE`` and ``BENCH_LEDGER_EXPORT`` shrink the three sizes.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import json
import os
import random
import time
from collections.abc import Iterator

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
from deconfliction.ledger.signing import generate_private_key, key_id, public_key_bytes
from deconfliction.ledger.verify import verify_export

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


def bench_proofs(n: int, probes: int) -> list[tuple[str, str]]:
    start = time.perf_counter()
    levels = _levels(n)
    built = time.perf_counter() - start

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
        (f"build {n:,}-leaf node levels (bulk hashlib, once)", f"{built:.1f} s"),
        (f"inclusion proof generate, {n:,} leaves", f"{gen_inc * us:.1f} µs ({length:.1f} hashes)"),
        ("inclusion proof verify", f"{ver_inc * us:.1f} µs"),
        (
            f"consistency proof generate, {n:,} leaves",
            f"{gen_con * us:.1f} µs ({clength:.1f} hashes)",
        ),
        ("consistency proof verify", f"{ver_con * us:.1f} µs"),
    ]


def bench_export(n: int) -> list[tuple[str, str]]:
    start = time.perf_counter()
    writer = _Writer()
    log = NoteSigner(ORIGIN, generate_private_key())
    mediator = NoteSigner("mediator.example", generate_private_key())
    state = TreeState()
    lines = []
    for index, entry in enumerate(writer.entries(n)):
        record = {"type": "entry", "index": index, "entry": entry.to_json()}
        lines.append(json.dumps(record, ensure_ascii=False))
        state.append(leaf_hash(entry_bytes(entry)))
        if state.size % 1000 == 0 or state.size == n:
            note = cosign(Checkpoint(ORIGIN, state.size, state.root()).sign(log), mediator)
            lines.append(json.dumps({"type": "checkpoint", "note": note}))
    written = time.perf_counter() - start
    size_mb = sum(len(line.encode()) + 1 for line in lines) / 1e6
    gc.collect()
    start = time.perf_counter()
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
            f"verify export of {n:,} entries, {result.checkpoints:,} checkpoints",
            f"{took:.1f} s ({_rate(n, took)})",
        ),
    ]


def main() -> None:
    entries = int(os.environ.get("BENCH_LEDGER_ENTRIES", "100000"))
    tree = int(os.environ.get("BENCH_LEDGER_TREE", "10000000"))
    export = int(os.environ.get("BENCH_LEDGER_EXPORT", "1000000"))
    rows = bench_verify_append(entries)
    rows += bench_proofs(tree, 1000)
    rows += bench_export(export)
    print("| measure | value |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
