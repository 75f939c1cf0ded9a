"""RFC 6962 tree: published vectors, a brute-force reference from the RFC text, mutated proofs."""

from __future__ import annotations

import hashlib
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deconfliction.ledger.merkle import (
    EMPTY_ROOT,
    NodeStore,
    TreeState,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_at,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)

# The eight leaves and the roots of the trees of sizes 1..8 used by the certificate-transparency
# and transparency-dev/merkle tests (proof/verify_test.go).
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]


def _h(text: str) -> bytes:
    return bytes.fromhex(text)


# (leaf index, tree size, proof) from the same tests, with 0-based leaf indices.
INCLUSION = [
    (
        0,
        8,
        [
            _h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            _h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            _h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            _h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            _h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [_h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            _h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            _h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            _h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            _h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            _h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            _h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            _h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            _h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            _h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            _h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            _h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

SOME_HASH = _h("abacaba000000000000000000000000000000000000000000060061e00123456")


def _store(leaves: list[bytes]) -> tuple[TreeState, NodeStore]:
    state, store = TreeState(), NodeStore()
    for leaf in leaves:
        store.put(state.append(leaf_hash(leaf)))
    return state, store


# ---- brute-force reference, transcribed from RFC 9162 section 2.1 --------------------------------


def _k(n: int) -> int:
    """The largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(hashes: tuple[bytes, ...]) -> bytes:
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = _k(len(hashes))
    return node_hash(ref_mth(hashes[:k]), ref_mth(hashes[k:]))


def ref_path(m: int, hashes: tuple[bytes, ...]) -> list[bytes]:
    n = len(hashes)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, hashes[:k]), ref_mth(hashes[k:])]
    return [*ref_path(m - k, hashes[k:]), ref_mth(hashes[:k])]


def ref_subproof(m: int, hashes: tuple[bytes, ...], b: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if b else [ref_mth(hashes)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, hashes[:k], b), ref_mth(hashes[k:])]
    return [*ref_subproof(m - k, hashes[k:], False), ref_mth(hashes[:k])]


MAX = 300
ALL_LEAVES = [i.to_bytes(4, "big") for i in range(MAX)]
ALL_HASHES = tuple(leaf_hash(x) for x in ALL_LEAVES)
STATE, STORE = _store(ALL_LEAVES)


@cache
def ref_root(n: int) -> bytes:
    return ref_mth(ALL_HASHES[:n])


# ---- published vectors ---------------------------------------------------------------------------


def test_empty_tree_and_single_empty_leaf() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root_from_leaves([]) == EMPTY_ROOT
    assert leaf_hash(b"").hex() == ROOTS[0].hex()
    assert TreeState().root() == EMPTY_ROOT


def test_roots_of_sizes_one_to_eight() -> None:
    state, store = _store(LEAVES)
    for size in range(1, 9):
        assert root_from_leaves(leaf_hash(x) for x in LEAVES[:size]) == ROOTS[size - 1]
        assert root_at(size, store.get) == ROOTS[size - 1]
        assert TreeState.load(size, store.get).root() == ROOTS[size - 1]
    assert state.root() == ROOTS[7]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_published_inclusion_proofs(index: int, size: int, proof: list[bytes]) -> None:
    _, store = _store(LEAVES)
    assert inclusion_proof(index, size, store.get) == proof
    leaf = leaf_hash(LEAVES[index])
    assert verify_inclusion(leaf, index, size, proof, ROOTS[size - 1])
    for probe in _corrupt_inclusion(leaf, index, size, proof, ROOTS[size - 1]):
        assert not verify_inclusion(*probe)


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_published_consistency_proofs(old: int, new: int, proof: list[bytes]) -> None:
    _, store = _store(LEAVES)
    assert consistency_proof(old, new, store.get) == proof
    assert verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof)
    if proof:
        for probe in _corrupt_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof):
            assert not verify_consistency(*probe)


def test_consistency_edge_cases() -> None:
    root1, root2 = ROOTS[0], ROOTS[1]
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 5, EMPTY_ROOT, ROOTS[4], [])
    assert not verify_consistency(0, 5, SOME_HASH, ROOTS[4], [])  # the empty tree has one hash
    assert verify_consistency(1, 1, root1, root1, [])
    assert not verify_consistency(1, 1, root1, root2, [])
    assert not verify_consistency(1, 0, root1, root2, [])  # time travel
    assert not verify_consistency(2, 1, root2, root1, [])
    assert not verify_consistency(1, 2, root1, root2, [])  # empty proof
    assert not verify_consistency(1, 1, root1, root1, [EMPTY_ROOT])  # proof must be empty
    assert not verify_consistency(0, 1, EMPTY_ROOT, root1, [EMPTY_ROOT])


def test_inclusion_edge_cases() -> None:
    leaf = leaf_hash(b"data")
    assert verify_inclusion(leaf, 0, 1, [], leaf)
    assert not verify_inclusion(leaf, 0, 1, [], b"")
    assert not verify_inclusion(b"", 0, 1, [], leaf)
    for index, size in ((0, 0), (1, 0), (2, 1), (-1, 4)):
        assert not verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)
    with pytest.raises(ValueError):
        inclusion_proof(3, 3, STORE.get)
    with pytest.raises(ValueError):
        consistency_proof(4, 3, STORE.get)


# ---- the node-addressed tree against the brute-force reference ---------------------------------


def test_append_reports_the_complete_nodes_it_creates() -> None:
    state = TreeState()
    assert state.append(ALL_HASHES[0]) == [(0, 0, ALL_HASHES[0])]
    state.append(ALL_HASHES[1])
    state.append(ALL_HASHES[2])
    created = state.append(ALL_HASHES[3])
    assert [(level, index) for level, index, _ in created] == [(0, 3), (1, 1), (2, 0)]
    assert created[-1][2] == ref_root(4) == state.root()
    assert len(state.border) == 1
    with pytest.raises(ValueError):
        state.append(b"short")


def test_node_store_refuses_gaps_and_unknown_nodes() -> None:
    store = NodeStore()
    with pytest.raises(ValueError):
        store.put([(0, 1, ALL_HASHES[0])])
    with pytest.raises(KeyError):
        store.get(0, 0)
    with pytest.raises(KeyError):
        STORE.get(0, MAX)
    with pytest.raises(KeyError):
        STORE.get(40, 0)
    with pytest.raises(ValueError):
        TreeState.load(-1, STORE.get)


def test_every_size_index_and_prefix_up_to_64_matches_the_reference() -> None:
    for n in range(1, 65):
        hashes = ALL_HASHES[:n]
        root = ref_root(n)
        assert root_at(n, STORE.get) == root
        for i in range(n):
            proof = inclusion_proof(i, n, STORE.get)
            assert proof == ref_path(i, hashes)
            assert verify_inclusion(hashes[i], i, n, proof, root)
        for m in range(1, n + 1):
            proof = consistency_proof(m, n, STORE.get)
            assert proof == ref_subproof(m, hashes, True)
            assert verify_consistency(m, n, ref_root(m), root, proof)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_proofs_match_the_reference_up_to_300_leaves(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, MAX), label="size")
    i = data.draw(st.integers(0, n - 1), label="index")
    m = data.draw(st.integers(1, n), label="old size")
    hashes = ALL_HASHES[:n]
    assert root_at(n, STORE.get) == ref_root(n)
    inc = inclusion_proof(i, n, STORE.get)
    assert inc == ref_path(i, hashes)
    assert verify_inclusion(hashes[i], i, n, inc, ref_root(n))
    con = consistency_proof(m, n, STORE.get)
    assert con == ref_subproof(m, hashes, True)
    assert verify_consistency(m, n, ref_root(m), ref_root(n), con)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, MAX), st.data())
def test_every_mutation_of_a_proof_is_rejected(n: int, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, n - 1), label="index")
    m = data.draw(st.integers(1, n - 1), label="old size")
    root = ref_root(n)
    inc = inclusion_proof(i, n, STORE.get)
    for probe in _corrupt_inclusion(ALL_HASHES[i], i, n, inc, root):
        assert not verify_inclusion(*probe)
    con = consistency_proof(m, n, STORE.get)
    for cprobe in _corrupt_consistency(m, n, ref_root(m), root, con):
        assert not verify_consistency(*cprobe)


# ---- mutations ---------------------------------------------------------------------------------


def _flips(proof: list[bytes]) -> list[list[bytes]]:
    """Every proof with exactly one bit flipped."""
    out = []
    for k, node in enumerate(proof):
        for bit in range(len(node) * 8):
            changed = bytearray(node)
            changed[bit // 8] ^= 1 << (bit % 8)
            out.append([*proof[:k], bytes(changed), *proof[k + 1 :]])
    return out


def _corrupt_inclusion(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes
) -> list[tuple[bytes, int, int, list[bytes], bytes]]:
    probes = [
        (leaf, index - 1, size, proof, root),
        (leaf, index + 1, size, proof, root),
        (leaf, index ^ 2, size, proof, root),
        (leaf, index, size * 2, proof, root),
        (leaf, index, size // 2, proof, root),
        (leaf_hash(b"WrongLeaf"), index, size, proof, root),
        (leaf, index, size, proof, EMPTY_ROOT),
        (leaf, index, size, proof, SOME_HASH),
        (leaf, index, size, [*proof, b""], root),
        (leaf, index, size, [*proof, root], root),
        (leaf, index, size, [b"", *proof], root),
        (leaf, index, size, [root, *proof], root),
    ]
    probes += [(leaf, index, size, p, root) for p in _flips(proof)]
    if proof:
        probes.append((leaf, index, size, proof[:-1], root))
    if len(proof) > 1:
        probes.append((leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], root))
    return probes


def _corrupt_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> list[tuple[int, int, bytes, bytes, list[bytes]]]:
    probes = [
        (old - 1, new, old_root, new_root, proof),
        (old + 1, new, old_root, new_root, proof),
        (old ^ 2, new, old_root, new_root, proof),
        (old, new * 2, old_root, new_root, proof),
        (old, new // 2, old_root, new_root, proof),
        (old, new, b"WrongRoot", new_root, proof),
        (old, new, old_root, b"WrongRoot", proof),
        (old, new, SOME_HASH, new_root, proof),
        (old, new, new_root, old_root, proof),
        (old, new, old_root, new_root, []),
        (old, new, old_root, new_root, [*proof, b""]),
        (old, new, old_root, new_root, [*proof, old_root]),
        (old, new, old_root, new_root, [*proof, new_root]),
        (old, new, old_root, new_root, [b"", *proof]),
        (old, new, old_root, new_root, [old_root, *proof]),
        (old, new, old_root, new_root, [new_root, *proof]),
        (old, new, old_root, new_root, [proof[0], *proof]),
        (old, new, old_root, new_root, proof[:-1]),
    ]
    probes += [(old, new, old_root, new_root, p) for p in _flips(proof)]
    return probes
