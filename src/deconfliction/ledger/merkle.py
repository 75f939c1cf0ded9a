"""RFC 6962 / RFC 9162 Merkle tree hashing, a compact-range append state, and proofs.

Hashes: ``leaf = SHA-256(0x00 || entry)``, ``node = SHA-256(0x01 || left || right)``, and the
empty tree hashes to ``SHA-256("")``.

Storage model. A node is addressed by ``(level, index)``: it covers the leaves
``[index * 2**level, (index + 1) * 2**level)``. Only *complete* nodes (perfect subtrees) are
stored; they never change once written, so a database keeps them in an insert-only table keyed
by ``(level, index)``. ``TreeState`` is the right border of such nodes (one per set bit of the
size, as in transparency-dev/merkle's compact ranges): ``append`` returns the complete nodes a
new leaf creates, to be stored, and ``root`` folds the border. Proof generators read complete
nodes through a ``get_node(level, index)`` callable and compute the one ephemeral node on the
right edge (a node whose range sticks out past the tree size) from at most ``log2(n)`` stored
ones, so an inclusion or consistency proof costs ``O(log n)`` node reads.

Verifiers follow RFC 9162 sections 2.1.3.2 and 2.1.4.2 and return ``False`` on any malformed
input rather than raising, so callers can treat "bad proof" and "wrong proof" alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

GetNode = Callable[[int, int], bytes]
"""Reads the stored hash of the complete node ``(level, index)``."""

StoredNode = tuple[int, int, bytes]
"""A complete node to store: ``(level, index, hash)``."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 hash of one leaf entry."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 hash of an interior node from its two children."""
    return hashlib.sha256(b"\x01" + left + right).digest()


@dataclass
class TreeState:
    """The compact range ``[0, size)``: hashes of the perfect subtrees on the right border.

    ``border[0]`` is the largest (leftmost) subtree, ``border[-1]`` the smallest; there is one
    per set bit of ``size``.
    """

    size: int = 0
    border: list[bytes] = field(default_factory=list)

    @classmethod
    def load(cls, size: int, get_node: GetNode) -> TreeState:
        """Rebuild the state of a stored tree of ``size`` leaves from its border nodes."""
        if size < 0:
            raise ValueError(f"tree size {size} is negative")
        return cls(size=size, border=[get_node(level, ix) for level, ix in _decompose(0, size)])

    def append(self, leaf: bytes) -> list[StoredNode]:
        """Add one leaf hash; return the complete nodes it creates, leaf first, root-most last."""
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"leaf hash has {len(leaf)} bytes, expected {HASH_SIZE}")
        created: list[StoredNode] = [(0, self.size, leaf)]
        current, level, index = leaf, 0, self.size
        # Every set low bit of the old size is a finished subtree that now gets a right sibling.
        while (self.size >> level) & 1:
            current = node_hash(self.border.pop(), current)
            level += 1
            index >>= 1
            created.append((level, index, current))
        self.border.append(current)
        self.size += 1
        return created

    def root(self) -> bytes:
        """Merkle tree hash of the leaves appended so far."""
        return _fold(self.border)


class NodeStore:
    """Complete nodes held in memory, one bytearray per level, 32 bytes a node.

    ``TreeState.append`` yields nodes in index order on every level, so storing is appending.
    It is the in-memory counterpart of a database node table, and its ``get`` is a ``GetNode``.
    """

    def __init__(self) -> None:
        self._levels: list[bytearray] = []

    def put(self, nodes: Iterable[StoredNode]) -> None:
        """Store nodes returned by ``TreeState.append``."""
        for level, index, value in nodes:
            if level == len(self._levels):
                self._levels.append(bytearray())
            row = self._levels[level]
            if index * HASH_SIZE != len(row):
                raise ValueError(f"node ({level}, {index}) stored out of order")
            row += value

    def get(self, level: int, index: int) -> bytes:
        """The hash of complete node ``(level, index)``; ``KeyError`` if it is not stored."""
        start = index * HASH_SIZE
        if not 0 <= level < len(self._levels) or not 0 <= start < len(self._levels[level]):
            raise KeyError((level, index))
        return bytes(self._levels[level][start : start + HASH_SIZE])


def border_coordinates(size: int) -> list[tuple[int, int]]:
    """``(level, index)`` of the perfect subtrees on the right border of a tree of ``size``
    leaves, largest first: what a store reads to rebuild a ``TreeState`` in one query."""
    return _decompose(0, size)


def root_at(size: int, get_node: GetNode) -> bytes:
    """Merkle tree hash of the first ``size`` leaves of a stored tree, from ``O(log n)`` nodes."""
    return _fold([get_node(level, index) for level, index in _decompose(0, size)])


def root_from_leaves(leaf_hashes: Iterable[bytes]) -> bytes:
    """Merkle tree hash of a sequence of leaf hashes."""
    state = TreeState()
    for leaf in leaf_hashes:
        state.append(leaf)
    return state.root()


def inclusion_proof(index: int, size: int, get_node: GetNode) -> list[bytes]:
    """RFC 9162 audit path of leaf ``index`` in the tree of ``size`` leaves, leaf side first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    return _path(0, index, size, get_node)


def consistency_proof(old_size: int, new_size: int, get_node: GetNode) -> list[bytes]:
    """RFC 9162 proof that the tree of ``old_size`` leaves is a prefix of that of ``new_size``."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    # The proof climbs from the largest complete node that ends at old_size; when that node is
    # the whole old tree (old_size a power of two) the verifier already has it as the old root.
    level = (old_size & -old_size).bit_length() - 1
    index = (old_size >> level) - 1
    start = [] if index == 0 else [get_node(level, index)]
    return start + _path(level, index, new_size, get_node)


def verify_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    """Whether ``proof`` shows ``leaf`` at ``index`` in the tree of ``size`` with ``root``.

    The proof does not bind ``size`` to ``root`` by itself (RFC 9162 leaves that to the signed
    tree head): take both from one verified checkpoint.
    """
    if not 0 <= index < size or not _well_formed(leaf, root, proof):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False  # the proof is longer than the path
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                # A right-edge node with no right sibling: skip the levels where it is promoted.
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> bool:
    """Whether ``proof`` shows the tree ``(old_size, old_root)`` is a prefix of ``new_size``.

    Stricter than RFC 9162 for the empty tree: its root must be ``SHA-256("")``, since an
    empty tree has exactly one hash and anything else is a malformed checkpoint.
    """
    if not 0 <= old_size <= new_size or not _well_formed(old_root, new_root, proof):
        return False
    if old_size == 0:
        return old_root == EMPTY_ROOT and not proof
    if old_size == new_size:
        return old_root == new_root and not proof
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)  # a power of two: the old tree is itself the starting node
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


def _well_formed(a: bytes, b: bytes, proof: list[bytes]) -> bool:
    return len(a) == HASH_SIZE and len(b) == HASH_SIZE and all(len(p) == HASH_SIZE for p in proof)


def _fold(nodes: list[bytes]) -> bytes:
    """Hash of a compact range given its perfect subtrees left to right (RFC 6962 split rule)."""
    if not nodes:
        return EMPTY_ROOT
    acc = nodes[-1]
    for left in reversed(nodes[:-1]):
        acc = node_hash(left, acc)
    return acc


def _decompose(begin: int, end: int) -> list[tuple[int, int]]:
    """Perfect subtrees ``(level, index)`` covering ``[begin, end)``, largest first.

    ``begin`` must be a multiple of a power of two larger than ``end - begin`` (true for the
    whole tree and for the right-edge remainder of an aligned node), so the pieces are the set
    bits of the length taken from the top.
    """
    nodes: list[tuple[int, int]] = []
    remaining = end - begin
    while remaining:
        level = remaining.bit_length() - 1
        nodes.append((level, begin >> level))
        begin += 1 << level
        remaining -= 1 << level
    return nodes


def _path(level: int, index: int, size: int, get_node: GetNode) -> list[bytes]:
    """Siblings on the way from complete node ``(level, index)`` up to the root of ``size``."""
    proof: list[bytes] = []
    height = (size - 1).bit_length()  # level of the root
    while level < height:
        sibling = index ^ 1
        begin = sibling << level
        end = begin + (1 << level)
        if sibling < index or end <= size:
            proof.append(get_node(level, sibling))
        elif begin < size:
            # The ephemeral right-edge node: hash its stored perfect pieces.
            proof.append(_fold([get_node(lv, ix) for lv, ix in _decompose(begin, size)]))
        # else the sibling lies wholly past the tree: RFC 6962 promotes the node unchanged.
        level += 1
        index >>= 1
    return proof
