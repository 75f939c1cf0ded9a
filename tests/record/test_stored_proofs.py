"""Proofs read from the node table are the proofs the in-memory tree gives, on both databases.

The table is filled with the nodes `record.log.append_at` stores (those `TreeState.append`
returns) for a tree of LEAVES leaves; the nodes of every smaller tree are among them, since
complete nodes never change.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, insert

from deconfliction.errors import NotFound
from deconfliction.ledger.merkle import (
    NodeStore,
    TreeState,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_at,
    verify_consistency,
    verify_inclusion,
)
from deconfliction.record import log
from deconfliction.store import tables as t

LEAVES = 300


def _fill(conn: Connection) -> NodeStore:
    state, store, rows = TreeState(), NodeStore(), []
    for i in range(LEAVES):
        created = state.append(leaf_hash(i.to_bytes(8, "big")))
        store.put(created)
        rows += [{"level": level, "idx": index, "hash": value} for level, index, value in created]
    conn.execute(insert(t.ledger_nodes), rows)
    return store


def test_stored_proofs_match_the_in_memory_tree(engine: Engine) -> None:
    with engine.begin() as conn:
        store = _fill(conn)

    @settings(max_examples=150, deadline=None)
    @given(
        size=st.integers(1, LEAVES),
        at=st.floats(0, 1, exclude_max=True),
        older=st.floats(0, 1),
    )
    def check(size: int, at: float, older: float) -> None:
        index, old = int(at * size), int(older * size)
        with engine.connect() as conn:
            root = log.root(conn, size)
            inclusion = log.inclusion(conn, index, size)
            consistency = log.consistency(conn, old, size)
            old_root = log.root(conn, old)
        assert root == root_at(size, store.get)
        assert inclusion == inclusion_proof(index, size, store.get)
        assert consistency == consistency_proof(old, size, store.get)
        assert verify_inclusion(store.get(0, index), index, size, inclusion, root)
        assert verify_consistency(old, size, old_root, root, consistency)

    check()


@pytest.mark.parametrize("size", [LEAVES + 1, 2 * LEAVES])
def test_a_proof_past_the_stored_tree_names_the_missing_node(engine: Engine, size: int) -> None:
    with engine.begin() as conn:
        _fill(conn)
    with engine.connect() as conn, pytest.raises(NotFound, match="no tree node"):
        log.inclusion(conn, 0, size)
