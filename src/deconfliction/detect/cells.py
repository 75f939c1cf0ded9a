"""A portable integer cell index for SQL: a fixed 0.25 degree lat/lon grid.

Why a plain grid rather than S2, H3 or a geohash: the id is ``row * 1440 + col`` with
``row = floor((lat + 90) / 0.25)`` and ``col = floor((lon + 180) / 0.25)``, so any SQL engine
(SQLite, PostgreSQL, CockroachDB) stores it in an INTEGER column and any language recomputes it
in two lines, with no library and no hierarchy to agree on. The engine is regional (tens of
degrees, never the poles), where a lat/lon grid's shrinking cells do no harm: at 35 N a cell is
about 28 km x 23 km, so a 20-50 km activity volume covers roughly 1-12 cells (at most ~20 with
a separation margin), few enough rows per volume and selective enough per query. The same grid
keys the in-memory :class:`~deconfliction.detect.index.VolumeIndex`.

Covering is conservative: every cell that the footprint's outer polygon, grown by the margin,
touches (boundary contact included) is listed, and never one less; a few extra cells cost only
an extra candidate that the exact check discards.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime

import numpy as np
import shapely
from numpy.typing import NDArray

from deconfliction.geo.boxes import Box, grow_box
from deconfliction.geo.model import Circle, Footprint, GeoError
from deconfliction.geo.projection import (
    LocalProjection,
    footprint_box,
    outer_circle_polygon,
    outer_polygon,
)

CELL_SIZE_DEG = 0.25
GRID_COLUMNS = 1440  # 360 / CELL_SIZE_DEG
GRID_ROWS = 720  # 180 / CELL_SIZE_DEG
# Growing a polygon by a margin happens in a local plane with round joins drawn from outside;
# this extra reach also absorbs the plane's error (far below 0.1% regionally) and rounding.
_MARGIN_SLACK_RATIO = 0.002
_MARGIN_SLACK_M = 1.0
_QUAD_SEGS = 8
_OUTLINE_STEP_M = 2_000.0


def cell_id(lon: float, lat: float) -> int:
    """The cell that contains a point (points on a shared edge belong to the east/north cell)."""
    row = min(int((lat + 90.0) // CELL_SIZE_DEG), GRID_ROWS - 1)
    col = min(int((lon + 180.0) // CELL_SIZE_DEG), GRID_COLUMNS - 1)
    return row * GRID_COLUMNS + col


def cell_box(cell: int) -> Box:
    """(west, south, east, north) of a cell."""
    row, col = divmod(cell, GRID_COLUMNS)
    west = col * CELL_SIZE_DEG - 180.0
    south = row * CELL_SIZE_DEG - 90.0
    return (west, south, west + CELL_SIZE_DEG, south + CELL_SIZE_DEG)


def _row(lat: float) -> int:
    row: int = min(max(math.floor((lat + 90.0) / CELL_SIZE_DEG), 0), GRID_ROWS - 1)
    return row


def _col(lon: float) -> int:
    col: int = min(max(math.floor((lon + 180.0) / CELL_SIZE_DEG), 0), GRID_COLUMNS - 1)
    return col


def box_cell_ranges(box: Box) -> tuple[int, int, int, int]:
    """Rows ``r0..r1`` and columns ``c0..c1`` (inclusive) of every cell a closed box touches."""
    west, south, east, north = box
    return _row(south), _row(north), _col(west), _col(east)


def _grown_outer(fp: Footprint, margin_m: float) -> shapely.Geometry:
    """The outer polygon of ``fp`` grown by at least ``margin_m`` metres, in lon/lat."""
    if margin_m == 0.0:
        return outer_polygon(fp)
    reach = margin_m * (1.0 + _MARGIN_SLACK_RATIO) + _MARGIN_SLACK_M
    if isinstance(fp, Circle):
        return outer_circle_polygon(fp.lon, fp.lat, fp.radius_m + reach)
    proj = LocalProjection.around(fp)
    grown = proj.footprint_local(fp).buffer(
        reach / math.cos(math.pi / (4 * _QUAD_SEGS)), quad_segs=_QUAD_SEGS
    )
    return proj.to_lonlat(shapely.segmentize(grown, _OUTLINE_STEP_M))


def cells_covering(fp: Footprint, margin_m: float = 0.0) -> list[int]:
    """Every cell that the outer polygon of ``fp``, grown by ``margin_m`` metres, touches."""
    if not math.isfinite(margin_m) or margin_m < 0.0:
        raise GeoError(f"cell margin {margin_m} m is not a finite number >= 0")
    box = grow_box(footprint_box(fp), margin_m * (1.0 + _MARGIN_SLACK_RATIO) + _MARGIN_SLACK_M)
    r0, r1, c0, c1 = box_cell_ranges(box)
    rows, cols = np.meshgrid(np.arange(r0, r1 + 1), np.arange(c0, c1 + 1), indexing="ij")
    ids: NDArray[np.int64] = (rows * GRID_COLUMNS + cols).ravel().astype(np.int64)
    shape = _grown_outer(fp, margin_m)
    west = cols.ravel() * CELL_SIZE_DEG - 180.0
    south = rows.ravel() * CELL_SIZE_DEG - 90.0
    boxes = shapely.box(west, south, west + CELL_SIZE_DEG, south + CELL_SIZE_DEG)
    shapely.prepare(shape)
    hits = shapely.intersects(shape, boxes)
    return [int(cell) for cell in ids[hits]]


# The cell index is keyed by time too: over a busy week a cell holds a thousand volumes, and a
# check wants the few near its window. A volume of at most SHORT_S is filed under the hour its
# window starts (hours since 1970, UTC); a longer one under LONG_SLOT, which every check reads.
SLOT_S = 3600
SHORT_S = 6 * 3600
LONG_SLOT = -(2**31)  # an INTEGER no hour since 1970 reaches
MAX_SLOTS_READ = 31 * 24  # a check reads at most a month of slots by name, else all of them


def time_slot(start: datetime, end: datetime) -> int:
    """The time slot a stored volume with window [start, end] is filed under."""
    if (end - start).total_seconds() > SHORT_S:
        return LONG_SLOT
    return math.floor(start.timestamp() / SLOT_S)


def slots_near(windows: Iterable[tuple[datetime, datetime]], buffer_s: float) -> list[int] | None:
    """Every slot that may hold a stored volume whose window comes within ``buffer_s`` of one
    of ``windows``: a short one then starts after ``start - buffer - SHORT_S`` (it ends after
    ``start - buffer`` and lasts at most SHORT_S) and before ``end + buffer``; plus LONG_SLOT.
    None (read every slot) when that is more than MAX_SLOTS_READ: a zone valid for a year is
    checked against everything anyway, and listing its hours would cost more than reading."""
    ranges = [
        (
            math.floor((start.timestamp() - buffer_s - SHORT_S) / SLOT_S),
            math.floor((end.timestamp() + buffer_s) / SLOT_S),
        )
        for start, end in windows
    ]
    if sum(last - first + 1 for first, last in ranges) > MAX_SLOTS_READ:
        return None
    slots = {LONG_SLOT}
    for first, last in ranges:
        slots.update(range(first, last + 1))
    return sorted(slots)
