"""The broad phase against all pairs of boxes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from deconfliction.detect.tactical_grid import overlapping_pairs, pairs_touching

box = st.tuples(
    st.integers(0, 40),
    st.integers(0, 40),
    st.integers(0, 20),
    st.integers(0, 30),
    st.integers(0, 30),
    st.integers(0, 10),
    st.integers(0, 3),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(box, min_size=0, max_size=60), st.booleans(), st.sampled_from([1.0, 250.0]))
def test_overlapping_pairs_equals_all_pairs(
    boxes: list[tuple[int, int, int, int, int, int, int]], grouped: bool, unit: float
) -> None:
    # Integer corners make boxes touch, nest and coincide often; touching counts as overlap.
    a = np.array(boxes, dtype=np.float64).reshape(-1, 7)
    x0, y0, z0 = a[:, 0] * unit, a[:, 1] * unit, a[:, 2] * 100.0
    x1, y1, z1 = x0 + a[:, 3] * unit, y0 + a[:, 4] * unit, z0 + a[:, 5] * 100.0
    groups = a[:, 6].astype(np.int64) if grouped else None
    i, j = overlapping_pairs(x0, x1, y0, y1, z0, z1, groups)
    got = [(min(p), max(p)) for p in zip(i.tolist(), j.tolist(), strict=True)]
    assert len(got) == len(set(got))
    want = {
        (p, q)
        for p in range(len(boxes))
        for q in range(p + 1, len(boxes))
        if x0[p] <= x1[q]
        and x0[q] <= x1[p]
        and y0[p] <= y1[q]
        and y0[q] <= y1[p]
        and z0[p] <= z1[q]
        and z0[q] <= z1[p]
        and (groups is None or groups[p] != groups[q])
    }
    assert set(got) == want


def test_one_huge_box_stays_cheap() -> None:
    # A box across the whole extent must not expand into a cell per metre.
    x0 = np.array([0.0, 5.0, 1e6 - 10.0])
    x1 = np.array([1e6, 6.0, 1e6])
    y = np.zeros(3)
    z = np.zeros(3)
    i, j = overlapping_pairs(x0, x1, y, y + 1.0, z, z + 1.0)
    assert sorted((min(p), max(p)) for p in zip(i.tolist(), j.tolist(), strict=True)) == [
        (0, 1),
        (0, 2),
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(box, min_size=0, max_size=60),
    st.sets(st.integers(0, 59)),
    st.booleans(),
    st.sampled_from([1.0, 250.0]),
)
def test_pairs_touching_equals_all_pairs_of_the_query(
    boxes: list[tuple[int, int, int, int, int, int, int]],
    chosen: set[int],
    grouped: bool,
    unit: float,
) -> None:
    a = np.array(boxes, dtype=np.float64).reshape(-1, 7)
    x0, y0, z0 = a[:, 0] * unit, a[:, 1] * unit, a[:, 2] * 100.0
    x1, y1, z1 = x0 + a[:, 3] * unit, y0 + a[:, 4] * unit, z0 + a[:, 5] * 100.0
    groups = a[:, 6].astype(np.int64) if grouped else None
    query = sorted(k for k in chosen if k < len(boxes))
    i, j = pairs_touching(x0, x1, y0, y1, z0, z1, np.array(query, dtype=np.int64), groups)
    assert set(i.tolist()) <= set(query)
    got = [(min(p), max(p)) for p in zip(i.tolist(), j.tolist(), strict=True)]
    assert len(got) == len(set(got))
    want = {
        (p, q)
        for p in range(len(boxes))
        for q in range(p + 1, len(boxes))
        if (p in chosen or q in chosen)
        and x0[p] <= x1[q]
        and x0[q] <= x1[p]
        and y0[p] <= y1[q]
        and y0[q] <= y1[p]
        and z0[p] <= z1[q]
        and z0[q] <= z1[p]
        and (groups is None or groups[p] != groups[q])
    }
    assert set(got) == want
