"""In-memory spatio-temporal index of stored volumes, and the strategic check that uses it.

Layout (no shapely object per stored volume, only numbers in numpy arrays):

- one row per volume: key, conservative lon/lat box, altitude band, time window (POSIX seconds),
  owner code, alive flag; arrays grow by doubling, so an insert is O(1) amortised;
- a grid over the rows, on the 0.25 degree cells of :mod:`deconfliction.detect.cells`: a
  (grid key, row) list sorted by key, the key being (cell id, minute the window starts); rows
  whose window is longer than a day share one slot per cell instead. A query reads, per cell,
  the long slot and the run of start minutes that can reach its window (two binary searches
  each, all cells in one vectorised call): O(log n + k), k counting only rows near in space
  AND time;
- a delta: rows added since the last merge, scanned linearly (vectorised) until there are
  ``DELTA_ROWS`` of them, then merged into the sorted lists with one ``searchsorted`` + ``insert``
  (an O(n) memory move, ~10 ms at a million rows, so ~5 us per insert amortised);
- removal clears the alive flag; dead rows are dropped by a rebuild once they are a quarter of
  the rows, so the rebuild's O(n log n) is amortised over n/4 removals;
- volumes whose box covers more than ``MAX_GRID_CELLS`` cells (country-sized zones) sit in a
  short list scanned linearly rather than flooding the grid.

Candidates are a superset of the pairs :func:`~deconfliction.detect.strategic.conflict` can
report: boxes are grown by the horizontal minimum plus 1% and 1 m, altitude by the vertical
minimum plus the geoid margin, time by the buffer plus a millisecond for float rounding.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from deconfliction.detect.cells import CELL_SIZE_DEG, GRID_COLUMNS, GRID_ROWS
from deconfliction.detect.strategic import (
    GEOID_MARGIN_M,
    Overlap,
    SeparationMinima,
    box_reach_m,
    pairwise_conflicts,
)
from deconfliction.geo.boxes import grow_box
from deconfliction.geo.model import Volume4D
from deconfliction.geo.projection import footprint_box, footprint_boxes

DELTA_ROWS: Final = 2048
MAX_GRID_CELLS: Final = 4096
_TIME_SLACK_S: Final = 1e-3
# Grid keys are (cell id << 32) | slot: slot 0 holds rows with windows longer than a day,
# slots 1.. the other rows by the minute they start, so that a query reads per cell only the
# rows that can reach its window.
SHORT_SPAN_S: Final = 86_400.0
_MINUTE_BITS: Final = 32
_LONG_SLOT: Final = 0
# Offsets and last indices of grid columns and rows, for (west, south, east, north).
_GRID_ORIGIN: Final[NDArray[np.float64]] = np.array([180.0, 90.0, 180.0, 90.0])
_GRID_LAST: Final[NDArray[np.int64]] = np.array(
    [GRID_COLUMNS - 1, GRID_ROWS - 1, GRID_COLUMNS - 1, GRID_ROWS - 1]
)


def _minutes(seconds: NDArray[np.float64]) -> NDArray[np.int64]:
    """Slots of start times: their minutes since 1970, clamped into 1 .. 2**32 - 2."""
    return np.clip(np.floor(seconds / 60.0), 1, 2**_MINUTE_BITS - 2).astype(np.int64)


def _cells_of(boxes: NDArray[np.float64]) -> NDArray[np.int64]:
    """Grid columns and rows of the corners of (west, south, east, north) boxes, as in
    :func:`~deconfliction.detect.cells.box_cell_ranges`."""
    cells = np.floor((boxes + _GRID_ORIGIN) / CELL_SIZE_DEG)
    return np.clip(cells, 0, _GRID_LAST).astype(np.int64)


def _expand_blocks(
    r0: NDArray[np.int64],
    c0: NDArray[np.int64],
    height: NDArray[np.int64],
    width: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The cell ids of blocks of cells (rows ``r0 .. r0 + height - 1``, columns likewise), all
    blocks at once, and for each cell the number of its block."""
    counts = height * width
    firsts = np.repeat(np.cumsum(counts) - counts, counts)
    offsets = np.arange(int(counts.sum()), dtype=np.int64) - firsts
    widths = np.repeat(width, counts)
    cells = (np.repeat(r0, counts) + offsets // widths) * GRID_COLUMNS + (
        np.repeat(c0, counts) + offsets % widths
    )
    return cells, np.repeat(np.arange(len(counts)), counts)


# Columns of the per-row number table; one gather fetches all of them for a candidate row.
WEST, SOUTH, EAST, NORTH, LOW, HIGH, START, END = range(8)
_COLUMNS: Final = 8

# The query column that each row column is compared with, and on which side it must be
# (+1 below, -1 above): a row's west below the query's east, its east above the query's west...
_FACING: Final = [EAST, NORTH, WEST, SOUTH, HIGH, LOW, END, START]
_SIDE: Final = np.array([1.0, 1.0, -1.0, -1.0, 1.0, -1.0, 1.0, -1.0])

Lookup = Callable[[int], tuple[str, Volume4D]]
# One row's numbers, in the column order above.
Row = tuple[float, float, float, float, float, float, float, float]


class VolumeIndex:
    """Stored volumes of many activities, keyed by an integer (e.g. the volume's row id).

    Not thread-safe: writes (and reads during writes) must be serialised by the caller, as
    detection and insertion of an activity are one critical section anyway."""

    def __init__(self) -> None:
        self._size = 0  # rows written, dead or alive
        self._live = 0
        self._dead = 0
        self._merged = 0  # rows [0, _merged) are in the grid or the big list
        self._num = np.zeros((0, _COLUMNS), dtype=np.float64)
        self._key = np.zeros(0, dtype=np.int64)
        self._owner = np.zeros(0, dtype=np.int32)
        self._alive = np.zeros(0, dtype=bool)
        self._owner_codes: dict[str, int] = {}
        self._grid_keys = np.zeros(0, dtype=np.int64)
        self._grid_rows = np.zeros(0, dtype=np.int32)
        self._big_rows = np.zeros(0, dtype=np.int32)
        self._short_span = 0.0  # longest window among short rows, seconds
        # key -> row: sorted arrays for merged rows, a dict for the delta.
        self._sorted_keys = np.zeros(0, dtype=np.int64)
        self._sorted_rows = np.zeros(0, dtype=np.int32)
        self._delta_keys: dict[int, int] = {}

    def __len__(self) -> int:
        return self._live

    def memory_bytes(self) -> int:
        """Bytes held by the index: its arrays plus an estimate for the small dicts."""
        arrays: list[NDArray[Any]] = [
            self._grid_keys,
            self._grid_rows,
            self._big_rows,
            self._sorted_keys,
            self._sorted_rows,
            self._num,
            self._key,
            self._owner,
            self._alive,
        ]
        dicts = sys.getsizeof(self._delta_keys) + 64 * len(self._delta_keys)
        owners = sys.getsizeof(self._owner_codes) + sum(
            sys.getsizeof(name) for name in self._owner_codes
        )
        return sum(int(array.nbytes) for array in arrays) + dicts + owners

    # -- writing ---------------------------------------------------------------------------

    def _row_of(self, key: int) -> int | None:
        row = self._delta_keys.get(key)
        if row is not None:
            return row
        if not self._sorted_keys.size:  # a bulk load: nothing merged yet
            return None
        # A key removed and added again appears twice; only one of its rows is alive.
        first = int(np.searchsorted(self._sorted_keys, key, side="left"))
        last = int(np.searchsorted(self._sorted_keys, key, side="right"))
        for found in self._sorted_rows[first:last].tolist():
            if self._alive[found]:
                return int(found)
        return None

    def _grow(self, needed: int) -> None:
        capacity = len(self._key)
        if needed <= capacity:
            return
        capacity = max(needed, 2 * capacity, 1024)

        def widen(array: NDArray[Any]) -> NDArray[Any]:
            wider = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
            wider[: self._size] = array[: self._size]
            return wider

        self._num = widen(self._num)
        self._key = widen(self._key)
        self._owner = widen(self._owner)
        self._alive = widen(self._alive)

    def _append(self, key: int, owner: str, volume: Volume4D) -> None:
        band = volume.altitude
        self._append_numbers(
            key,
            owner,
            (
                *footprint_box(volume.footprint),
                band.lower_m,
                band.upper_m,
                volume.start.timestamp(),
                volume.end.timestamp(),
            ),
        )

    def _append_numbers(self, key: int, owner: str, numbers: Row) -> None:
        if self._row_of(key) is not None:
            raise ValueError(f"volume key {key} is already in the index")
        self._grow(self._size + 1)
        row = self._size
        self._num[row] = numbers
        self._key[row] = key
        self._owner[row] = self._owner_codes.setdefault(owner, len(self._owner_codes))
        self._alive[row] = True
        self._delta_keys[key] = row
        self._size += 1
        self._live += 1

    def add(self, key: int, owner: str, volume: Volume4D) -> None:
        """Index ``volume`` of ``owner`` under ``key`` (ValueError if the key is present)."""
        self._append(key, owner, volume)
        if self._size - self._merged >= DELTA_ROWS:
            self._merge()

    def add_many(self, items: Iterable[tuple[int, str, Volume4D]]) -> None:
        """Bulk :meth:`add` with a single merge at the end (how to load a million rows)."""
        for key, owner, volume in items:
            self._append(key, owner, volume)
        self._merge()

    def add_many_numbers(self, items: Iterable[tuple[int, str, Row]]) -> None:
        """:meth:`add_many` from the numbers alone: ``(west, south, east, north, lower_m,
        upper_m, start, end)`` with a box as :func:`~deconfliction.geo.projection.footprint_box`
        gives and times in POSIX seconds (a start-up need not build a volume per row)."""
        for key, owner, numbers in items:
            self._append_numbers(key, owner, numbers)
        self._merge()

    def remove(self, key: int) -> None:
        """Forget the volume under ``key`` (KeyError if absent)."""
        row = self._row_of(key)
        if row is None:
            raise KeyError(key)
        self._alive[row] = False
        # An empty time window makes every query's time test drop the row without a lookup.
        self._num[row, START], self._num[row, END] = np.inf, -np.inf
        self._delta_keys.pop(key, None)
        self._live -= 1
        self._dead += 1
        if self._dead > max(DELTA_ROWS, self._size // 4):
            self._rebuild()

    def _grid_entries(
        self, rows: NDArray[np.int32]
    ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int32]]:
        """Grid entries (keys, rows) sorted by key, and the rows too big for the grid.
        Cells use the arithmetic of :func:`~deconfliction.detect.cells.box_cell_ranges`."""
        num = self._num[rows]
        c0, r0, c1, r1 = _cells_of(num[:, :4]).T
        span = num[:, END] - num[:, START]
        short = span <= SHORT_SPAN_S
        if short.any():
            self._short_span = max(self._short_span, float(span[short].max()))
        minute = np.where(short, _minutes(num[:, START]), _LONG_SLOT)
        height, width = r1 - r0 + 1, c1 - c0 + 1
        small = height * width <= MAX_GRID_CELLS
        cell, block = _expand_blocks(r0[small], c0[small], height[small], width[small])
        keys = (cell << _MINUTE_BITS) | minute[small][block]
        entry_rows = rows[small][block].astype(np.int32)
        order = np.argsort(keys, kind="stable")
        return keys[order], entry_rows[order], rows[~small].astype(np.int32)

    def _merge(self) -> None:
        """Move the delta rows into the grid and the sorted key list."""
        delta = np.arange(self._merged, self._size, dtype=np.int32)
        delta = delta[self._alive[delta]]
        if delta.size:
            cells, rows, big = self._grid_entries(delta)
            at = np.searchsorted(self._grid_keys, cells, side="right")
            self._grid_keys = np.insert(self._grid_keys, at, cells)
            self._grid_rows = np.insert(self._grid_rows, at, rows)
            self._big_rows = np.concatenate([self._big_rows, big])
            keys = self._key[delta]
            order = np.argsort(keys, kind="stable")
            at = np.searchsorted(self._sorted_keys, keys[order])
            self._sorted_keys = np.insert(self._sorted_keys, at, keys[order])
            self._sorted_rows = np.insert(self._sorted_rows, at, delta[order])
        self._merged = self._size
        self._delta_keys = {}

    def _rebuild(self) -> None:
        """Drop dead rows and rebuild the grid from scratch."""
        keep = np.flatnonzero(self._alive[: self._size])
        self._num = self._num[keep]
        self._key = self._key[keep]
        self._owner = self._owner[keep]
        self._alive = self._alive[keep]
        self._size = self._live = len(keep)
        self._dead = self._merged = 0
        self._short_span = 0.0
        self._grid_keys = np.zeros(0, dtype=np.int64)
        self._grid_rows = np.zeros(0, dtype=np.int32)
        self._big_rows = np.zeros(0, dtype=np.int32)
        self._sorted_keys = np.zeros(0, dtype=np.int64)
        self._sorted_rows = np.zeros(0, dtype=np.int32)
        self._merge()

    # -- reading ---------------------------------------------------------------------------

    def candidates(
        self, volume: Volume4D, minima: SeparationMinima, exclude_owner: str | None = None
    ) -> list[int]:
        """Keys (ascending) of stored volumes that may conflict with ``volume``: boxes within
        the horizontal minimum, bands within the vertical minimum, windows within the buffer.
        ``exclude_owner`` leaves out that owner's own volumes."""
        return self.candidates_many([volume], minima, exclude_owner)[0]

    def candidates_many(
        self,
        volumes: Sequence[Volume4D],
        minima: SeparationMinima,
        exclude_owner: str | None = None,
    ) -> list[list[int]]:
        """:meth:`candidates` of several volumes with one pass of numpy calls for all."""
        count = len(volumes)
        buffer = minima.time_buffer_s + _TIME_SLACK_S
        vertical = minima.vertical_m + GEOID_MARGIN_M
        reach = box_reach_m(minima)
        # Per query: the grown box, the band and the window, as columns.
        boxes = footprint_boxes([volume.footprint for volume in volumes])
        query = np.array(
            [
                (
                    *grow_box((west, south, east, north), reach),
                    volume.altitude.lower_m - vertical,
                    volume.altitude.upper_m + vertical,
                    volume.start.timestamp() - buffer,
                    volume.end.timestamp() + buffer,
                )
                for volume, (west, south, east, north) in zip(volumes, boxes.tolist(), strict=True)
            ],
            dtype=np.float64,
        ).reshape(count, 8)
        # Every cell of every grown box (the arithmetic of box_cell_ranges), query by query.
        c0, r0, c1, r1 = _cells_of(query[:, :4]).T
        cells, cell_query = _expand_blocks(r0, c0, r1 - r0 + 1, c1 - c0 + 1)
        # Per cell two key ranges: the long rows' slot, and the short rows whose start minute
        # can reach the window. Keys are integers: "<= last" is "< last + 1".
        slots = np.zeros((count, 4), dtype=np.int64)
        slots[:, 1] = _LONG_SLOT + 1
        window = _minutes(query[:, START:] - np.array([self._short_span, 0.0]))
        slots[:, 2], slots[:, 3] = window[:, 0], window[:, 1] + 1
        ends = np.searchsorted(
            self._grid_keys, (cells[:, None] << _MINUTE_BITS) | slots[cell_query]
        )
        counts = (ends[:, 1::2] - ends[:, ::2]).ravel()
        starts = ends[:, ::2].ravel()
        total = int(counts.sum())
        taken = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(total)
        rows = self._grid_rows[taken]
        label = np.repeat(np.repeat(cell_query, 2), counts)
        # Rows outside the grid (huge boxes, the delta) are tried against every query.
        extra = np.concatenate(
            [self._big_rows, np.arange(self._merged, self._size, dtype=np.int32)]
        )
        if extra.size:
            rows = np.concatenate([rows, np.tile(extra, count)])
            label = np.concatenate([label, np.repeat(np.arange(count), len(extra))])
        # Each row column must be on the _SIDE of its _FACING query column, strictly once
        # closed box bounds are nudged outwards; negating the "above" columns makes every test
        # one "below".
        limits = query[:, _FACING]
        limits[:, :4] = np.nextafter(limits[:, :4], _SIDE[:4] * np.inf)
        keep = (self._num[rows] * _SIDE < (limits * _SIDE)[label]).all(axis=1)
        if exclude_owner is not None and exclude_owner in self._owner_codes:
            keep &= self._owner[rows] != self._owner_codes[exclude_owner]
        rows, label = rows[keep], label[keep]
        # Sorted by query then key, without the repeats of rows met in several cells.
        result: list[list[int]] = [[] for _ in volumes]
        for query, key in sorted(set(zip(label.tolist(), self._key[rows].tolist(), strict=True))):
            result[query].append(key)
        return result


def check(
    index: VolumeIndex,
    volumes: Sequence[Volume4D],
    owner: str,
    minima: SeparationMinima,
    lookup: Lookup,
) -> list[tuple[int, int, Overlap]]:
    """Conflicts of ``owner``'s new ``volumes`` with the stored volumes of other owners, as
    ``(index into volumes, stored key, overlap)`` sorted by both. ``lookup`` turns a stored key
    into ``(owner, volume)``; its owner is authoritative for skipping one's own volumes."""
    pairs: list[tuple[Volume4D, Volume4D]] = []
    labels: list[tuple[int, int]] = []
    found = index.candidates_many(volumes, minima, exclude_owner=owner)
    for position, (volume, keys) in enumerate(zip(volumes, found, strict=True)):
        for key in keys:
            stored_owner, stored = lookup(key)
            if stored_owner != owner:
                pairs.append((volume, stored))
                labels.append((position, key))
    return [
        (position, key, overlap)
        for (position, key), overlap in zip(labels, pairwise_conflicts(pairs, minima), strict=True)
        if overlap is not None
    ]
