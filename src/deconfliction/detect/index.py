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

import math
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from deconfliction.detect.cells import CELL_SIZE_DEG, GRID_COLUMNS, GRID_ROWS, box_cell_ranges
from deconfliction.detect.strategic import (
    GEOID_MARGIN_M,
    Overlap,
    SeparationMinima,
    box_reach_m,
    pairwise_conflicts,
)
from deconfliction.geo.boxes import grow_box
from deconfliction.geo.model import Volume4D
from deconfliction.geo.projection import footprint_box

DELTA_ROWS: Final = 2048
MAX_GRID_CELLS: Final = 4096
_TIME_SLACK_S: Final = 1e-3
# Grid keys are (cell id << 32) | slot: slot 0 holds rows with windows longer than a day,
# slots 1.. the other rows by the minute they start, so that a query reads per cell only the
# rows that can reach its window.
SHORT_SPAN_S: Final = 86_400.0
_MINUTE_BITS: Final = 32
_LONG_SLOT: Final = 0


def _minute(seconds: float) -> int:
    """Slot of a start time: its minute since 1970, clamped into 1 .. 2**32 - 2."""
    minute: int = min(max(math.floor(seconds / 60.0), 1), 2**_MINUTE_BITS - 2)
    return minute


# Columns of the per-row number table; one gather fetches all of them for a candidate row.
WEST, SOUTH, EAST, NORTH, LOW, HIGH, START, END = range(8)
_COLUMNS: Final = 8

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

        def cell_of(values: NDArray[np.float64], offset: float, top: int) -> NDArray[np.int64]:
            return np.clip(np.floor((values + offset) / CELL_SIZE_DEG), 0, top - 1).astype(np.int64)

        r0 = cell_of(num[:, SOUTH], 90.0, GRID_ROWS)
        r1 = cell_of(num[:, NORTH], 90.0, GRID_ROWS)
        c0 = cell_of(num[:, WEST], 180.0, GRID_COLUMNS)
        c1 = cell_of(num[:, EAST], 180.0, GRID_COLUMNS)
        span = num[:, END] - num[:, START]
        short = span <= SHORT_SPAN_S
        if short.any():
            self._short_span = max(self._short_span, float(span[short].max()))
        minutes = np.clip(np.floor(num[:, START] / 60.0), 1, 2**_MINUTE_BITS - 2)
        minute = np.where(short, minutes.astype(np.int64), _LONG_SLOT)
        width = c1 - c0 + 1
        counts = (r1 - r0 + 1) * width
        small = counts <= MAX_GRID_CELLS
        r0, c0, width, counts = r0[small], c0[small], width[small], counts[small]
        # Expand each row's block of cells without a Python loop.
        firsts = np.repeat(np.cumsum(counts) - counts, counts)
        offsets = np.arange(int(counts.sum()), dtype=np.int64) - firsts
        widths = np.repeat(width, counts)
        cell = (np.repeat(r0, counts) + offsets // widths) * GRID_COLUMNS + (
            np.repeat(c0, counts) + offsets % widths
        )
        keys = (cell << _MINUTE_BITS) | np.repeat(minute[small], counts)
        entry_rows = np.repeat(rows[small], counts).astype(np.int32)
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
        buffer = minima.time_buffer_s + _TIME_SLACK_S
        vertical = minima.vertical_m + GEOID_MARGIN_M
        reach = box_reach_m(minima)
        inf = math.inf
        probes: list[int] = []
        range_owner: list[int] = []
        low: list[tuple[float, ...]] = []
        high: list[tuple[float, ...]] = []
        for query, volume in enumerate(volumes):
            west, south, east, north = grow_box(footprint_box(volume.footprint), reach)
            r0, r1, c0, c1 = box_cell_ranges((west, south, east, north))
            start, end = volume.start.timestamp(), volume.end.timestamp()
            # Per cell two key ranges: the long rows' slot, and the short rows whose start
            # minute can reach the window. Keys are integers: "<= last" is "< last + 1".
            first = _minute(start - buffer - self._short_span)
            last = _minute(end + buffer) + 1
            probes += [
                ((row * GRID_COLUMNS + col) << _MINUTE_BITS) | slot
                for row in range(r0, r1 + 1)
                for col in range(c0, c1 + 1)
                for slot in (_LONG_SLOT, _LONG_SLOT + 1, first, last)
            ]
            range_owner += [query] * (2 * (r1 - r0 + 1) * (c1 - c0 + 1))
            # One open interval per column; closed box bounds are nudged outwards.
            # Columns: WEST, SOUTH, EAST, NORTH, LOW, HIGH, START, END.
            band = volume.altitude
            low.append(
                (
                    *(-inf, -inf, math.nextafter(west, -inf), math.nextafter(south, -inf)),
                    *(-inf, band.lower_m - vertical, -inf, start - buffer),
                )
            )
            high.append(
                (
                    *(math.nextafter(east, inf), math.nextafter(north, inf), inf, inf),
                    *(band.upper_m + vertical, inf, end + buffer, inf),
                )
            )
        ends = np.searchsorted(self._grid_keys, probes).reshape(-1, 2)
        counts = ends[:, 1] - ends[:, 0]
        taken = np.repeat(ends[:, 0] - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        # Rows outside the grid (huge boxes, the delta) are tried against every query.
        extra = np.concatenate(
            [self._big_rows, np.arange(self._merged, self._size, dtype=np.int32)]
        )
        rows = np.concatenate([self._grid_rows[taken], np.tile(extra, len(volumes))])
        label = np.concatenate(
            [
                np.repeat(np.array(range_owner, dtype=np.int64), counts),
                np.repeat(np.arange(len(volumes), dtype=np.int64), len(extra)),
            ]
        )
        num = self._num[rows]
        keep = ((num > np.array(low)[label]) & (num < np.array(high)[label])).all(axis=1)
        rows, label = rows[keep], label[keep]
        if exclude_owner is not None and exclude_owner in self._owner_codes:
            mine = self._owner[rows] == self._owner_codes[exclude_owner]
            rows, label = rows[~mine], label[~mine]
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
