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
