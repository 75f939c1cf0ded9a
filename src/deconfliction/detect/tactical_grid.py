"""Broad phase of the tactical engine: all pairs of overlapping 3-D boxes, in numpy (pure).

A uniform grid in x, y and a sweep in z inside each cell:

1. each box is entered in every x/y cell it touches (cells about as large as an average box, so a
   box touches about four);
2. entries are sorted by (cell, bottom of the box), so inside a cell the boxes that can overlap a
   given one in z follow it directly: one ``searchsorted`` on (cell, top of the box) bounds them,
   and pairs are generated only there (this is what keeps level traffic at different flight levels
   from ever being paired);
3. a pair met in several cells is kept only in the cell holding the lower-left corner of the two
   boxes' x/y overlap (both boxes' first column or row), which needs no sort and no set;
4. the exact x/y overlap test runs on what is left.

The z sweep uses altitudes quantised outwards (floor of bottoms, ceiling of tops), so it may keep
pairs whose z intervals miss by less than one quantum; callers test those exactly anyway.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

# Bounds that keep every key below 2**62: at most 257 x 257 cells across the traffic (so one
# huge box cannot expand into millions of entries) and 2**20 altitude quanta.
_MAX_CELLS_PER_SIDE = 256
_Z_QUANTA = 2**20


def overlapping_pairs(
    x0: FloatArray,
    x1: FloatArray,
    y0: FloatArray,
    y1: FloatArray,
    z0: FloatArray,
    z1: FloatArray,
    groups: IntArray | None = None,
) -> tuple[IntArray, IntArray]:
    """Index pairs (i, j), each unordered pair once, of the boxes [x0, x1] x [y0, y1] that
    overlap (closed intervals) and whose [z0, z1] overlap or miss by less than one z quantum
    (span / 2**20). With ``groups``, pairs of boxes of the same group are left out."""
    n = x0.shape[0]
    empty = np.empty(0, dtype=np.int64)
    if n < 2:
        return empty, empty
    width = x1 - x0
    height = y1 - y0
    ox, oy, oz = float(x0.min()), float(y0.min()), float(z0.min())
    extent = max(float(x1.max()) - ox, float(y1.max()) - oy)
    cell = max(float(np.mean(width + height)) / 2.0, extent / _MAX_CELLS_PER_SIDE, 1.0)
    ix0 = ((x0 - ox) // cell).astype(np.int64)
    iy0 = ((y0 - oy) // cell).astype(np.int64)
    nx = ((x1 - ox) // cell).astype(np.int64) - ix0 + 1
    ny = ((y1 - oy) // cell).astype(np.int64) - iy0 + 1
    rows = int(iy0.max() + ny.max()) + 1
    quantum = max(float(z1.max()) - oz, 1.0) / _Z_QUANTA
    zq0 = np.floor((z0 - oz) / quantum).astype(np.int64)
    zq1 = np.ceil((z1 - oz) / quantum).astype(np.int64)
    z_span = int(zq1.max()) + 2

    # One entry per (box, cell touched), cells enumerated column by column.
    per_box = nx * ny
    total = int(per_box.sum())
    box = np.repeat(np.arange(n, dtype=np.int64), per_box)
    k = np.arange(total, dtype=np.int64) - (np.cumsum(per_box) - per_box)[box]
    ny_e = ny[box]
    kx = k // ny_e
    ky = k - kx * ny_e
    cell_id = (ix0[box] + kx) * rows + (iy0[box] + ky)
    # Bit 0: the box's first column; bit 1: its first row (for the dedup of step 3).
    first = (kx == 0).astype(np.uint8) | ((ky == 0).astype(np.uint8) << 1)
    key = cell_id * z_span + zq0[box]
    order = np.argsort(key)
    key = key[order]
    box = box[order]
    cell_id = cell_id[order]
    first = first[order]

    # Entry e pairs with the entries after it, up to the last one in its cell whose bottom is
    # not above e's top.
    entry = np.arange(total, dtype=np.int64)
    stop = np.searchsorted(key, cell_id * z_span + zq1[box], side="right")
    count = stop - entry - 1
    # Pairs (a, b) for a < b < stop[a] without a Python loop: b counts up from a + 1 in each run.
    a = np.repeat(entry, count)
    b = np.arange(a.shape[0], dtype=np.int64) + np.repeat(
        entry + 1 - (np.cumsum(count) - count), count
    )
    keep = (first[a] | first[b]) == 3
    if groups is not None:
        group = groups[box]
        keep &= group[a] != group[b]
    a = a[keep]
    b = b[keep]
    # Boxes copied in entry order: a and b point close together, so these reads stay in cache.
    xy = np.stack([x0, x1, y0, y1], axis=1)[box]
    ba = xy[a]
    bb = xy[b]
    hit = (
        (ba[:, 0] <= bb[:, 1])
        & (bb[:, 0] <= ba[:, 1])
        & (ba[:, 2] <= bb[:, 3])
        & (bb[:, 2] <= ba[:, 3])
    )
    return box[a[hit]], box[b[hit]]


def pairs_touching(
    x0: FloatArray,
    x1: FloatArray,
    y0: FloatArray,
    y1: FloatArray,
    z0: FloatArray,
    z1: FloatArray,
    query: IntArray,
    groups: IntArray | None = None,
) -> tuple[IntArray, IntArray]:
    """Index pairs (i, j), each unordered pair once, of overlapping boxes (closed intervals in
    x, y and z) of which at least one is in ``query``: the pairs :func:`overlapping_pairs` finds
    that touch those boxes, without pairing all the others among themselves. ``i`` is always
    in ``query``. With ``groups``, pairs of boxes of the same group are left out.

    Every box goes into the cells it touches, sorted by cell; each query box then meets the
    entries of its own cells, and a pair met in several cells is kept only in the cell holding
    the lower-left corner of the two boxes' overlap (as in :func:`overlapping_pairs`). A pair of
    two query boxes is met from both sides and kept from the lower index."""
    n = x0.shape[0]
    empty = np.empty(0, dtype=np.int64)
    query = np.unique(np.asarray(query, dtype=np.int64))
    if n < 2 or query.shape[0] == 0:
        return empty, empty
    ox, oy = float(x0.min()), float(y0.min())
    extent = max(float(x1.max()) - ox, float(y1.max()) - oy)
    cell = max(float(np.mean(x1 - x0 + y1 - y0)) / 2.0, extent / _MAX_CELLS_PER_SIDE, 1.0)
    ix0 = ((x0 - ox) // cell).astype(np.int64)
    iy0 = ((y0 - oy) // cell).astype(np.int64)
    nx = ((x1 - ox) // cell).astype(np.int64) - ix0 + 1
    ny = ((y1 - oy) // cell).astype(np.int64) - iy0 + 1
    rows = int(iy0.max() + ny.max()) + 1

    def entries(boxes: IntArray) -> tuple[IntArray, IntArray, NDArray[np.uint8]]:
        """(box, cell, first-column/first-row bits) of every cell each of ``boxes`` touches."""
        per_box = nx[boxes] * ny[boxes]
        box = np.repeat(boxes, per_box)
        k = np.arange(box.shape[0], dtype=np.int64) - np.repeat(
            np.cumsum(per_box) - per_box, per_box
        )
        ny_e = ny[box]
        kx = k // ny_e
        ky = k - kx * ny_e
        first = (kx == 0).astype(np.uint8) | ((ky == 0).astype(np.uint8) << 1)
        return box, (ix0[box] + kx) * rows + (iy0[box] + ky), first

    box, cell_id, first = entries(np.arange(n, dtype=np.int64))
    order = np.argsort(cell_id, kind="stable")
    box, cell_id, first = box[order], cell_id[order], first[order]
    q_box, q_cell, q_first = entries(query)
    start = np.searchsorted(cell_id, q_cell, side="left")
    count = np.searchsorted(cell_id, q_cell, side="right") - start
    a = np.repeat(np.arange(q_box.shape[0], dtype=np.int64), count)
    b = np.arange(a.shape[0], dtype=np.int64) + np.repeat(start - (np.cumsum(count) - count), count)
    i = q_box[a]
    j = box[b]
    keep = ((q_first[a] | first[b]) == 3) & (i != j)
    # A pair of two query boxes: kept from the lower index only.
    in_query = np.zeros(n, dtype=bool)
    in_query[query] = True
    keep &= ~in_query[j] | (i < j)
    if groups is not None:
        keep &= groups[i] != groups[j]
    i = i[keep]
    j = j[keep]
    hit = (
        (x0[i] <= x1[j])
        & (x0[j] <= x1[i])
        & (y0[i] <= y1[j])
        & (y0[j] <= y1[i])
        & (z0[i] <= z1[j])
        & (z0[j] <= z1[i])
    )
    return i[hit], j[hit]
