"""The SQL cell index: never misses a cell, and stays small for activity-sized volumes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely import Polygon

from deconfliction.detect.cells import (
    CELL_SIZE_DEG,
    GRID_COLUMNS,
    LONG_SLOT,
    SHORT_S,
    SLOT_S,
    cell_box,
    cell_id,
    cells_covering,
    slots_near,
    time_slot,
)
from deconfliction.geo import Circle, Footprint, GeoError, LocalProjection, horizontal_distance_m
from tests.detect_strategic.reference import footprints

GEOD = Geod(ellps="WGS84")


def test_cell_ids_and_boxes_agree() -> None:
    assert cell_id(-180.0, -90.0) == 0
    assert cell_id(180.0, 90.0) == 720 * GRID_COLUMNS - 1
    cell = cell_id(36.1, 33.2)
    west, south, east, north = cell_box(cell)
    assert west <= 36.1 < east and south <= 33.2 < north
    assert east - west == CELL_SIZE_DEG
    # A point on a cell edge belongs to the east/north cell.
    assert cell_id(36.0, 33.0) == cell_id(36.1, 33.1)


def test_a_footprint_on_cell_edges_touches_the_neighbours() -> None:
    square = Polygon([(36.0, 33.0), (36.25, 33.0), (36.25, 33.25), (36.0, 33.25)])
    assert len(cells_covering(square)) == 9


def test_margin_is_validated() -> None:
    with pytest.raises(GeoError, match="cell margin"):
        cells_covering(Circle(36.0, 33.0, 1000.0), -1.0)


@pytest.mark.parametrize("across_km", [20.0, 35.0, 50.0])
def test_activity_sized_volumes_cover_few_cells(across_km: float) -> None:
    counts = []
    rng = np.random.default_rng(7)
    for lon, lat in zip(rng.uniform(35, 42, 30), rng.uniform(30, 37, 30), strict=True):
        counts.append(len(cells_covering(Circle(lon, lat, across_km * 500.0))))
        half = across_km / 2 / 111.0
        box = shapely.box(lon - half, lat - half, lon + half, lat + half)
        counts.append(len(cells_covering(box)))
    assert min(counts) >= 1
    assert max(counts) <= 20


def _points_within(fp: Footprint, margin: float, rng: np.random.Generator) -> np.ndarray:
    """Random lon/lat points inside the footprint or within ``margin`` metres of it."""
    proj = LocalProjection.around(fp)
    local = proj.footprint_local(fp)
    grown = local.buffer(margin, quad_segs=16) if margin > 0 else local
    west, south, east, north = grown.bounds
    x = rng.uniform(west, east, 4000)
    y = rng.uniform(south, north, 4000)
    keep = shapely.contains_xy(grown, x, y)
    lonlat = proj.to_lonlat(shapely.points(x[keep], y[keep]))
    coords: np.ndarray = shapely.get_coordinates(lonlat)
    return coords


@settings(max_examples=60, deadline=None)
@given(fp=footprints, margin=st.sampled_from([0.0, 0.0, 300.0, 9_260.0]), seed=st.integers(0, 99))
def test_never_misses_a_cell(fp: Footprint, margin: float, seed: int) -> None:
    covering = set(cells_covering(fp, margin))
    points = _points_within(fp, margin, np.random.default_rng(seed))
    # The boundary too, where misses would hide.
    if isinstance(fp, Circle):
        azimuths = np.arange(0.0, 360.0, 1.0)
        lons, lats, _ = GEOD.fwd(
            np.full(360, fp.lon), np.full(360, fp.lat), azimuths, np.full(360, fp.radius_m + margin)
        )
        points = np.vstack([points, np.column_stack([lons, lats])])
    elif margin == 0.0:
        points = np.vstack([points, shapely.get_coordinates(shapely.segmentize(fp, 0.001))])
    for lon, lat in points:
        assert cell_id(lon, lat) in covering
    # Every cell listed is near: within the margin plus a cell's diagonal.
    for cell in covering:
        box = shapely.box(*cell_box(cell))
        assert horizontal_distance_m(box, fp) <= margin * 1.01 + 2.0


def test_point_on_a_cell_corner_lists_all_four_cells() -> None:
    lon, lat = 36.25, 33.25
    tiny = Polygon([(lon - 1e-4, lat - 1e-4), (lon, lat - 1e-4), (lon, lat), (lon - 1e-4, lat)])
    assert len(cells_covering(tiny)) == 4


T0 = datetime(2030, 1, 7, tzinfo=UTC)
seconds = st.integers(-20 * 3600, 20 * 3600)


@settings(max_examples=400, deadline=None)
@given(
    stored=st.tuples(seconds, st.integers(0, 30 * 3600)),
    checked=st.tuples(seconds, st.integers(0, 10 * 3600)),
    buffer_s=st.sampled_from([0, 1, 600, 3599, 3600, 7200]),
)
def test_a_stored_window_near_a_checked_one_is_in_a_slot_the_check_reads(
    stored: tuple[int, int], checked: tuple[int, int], buffer_s: int
) -> None:
    # Reference: the windows come within the buffer (touching counts, as the SQL filter's is
    # what decides; the slots only narrow what it reads).
    s_start = T0 + timedelta(seconds=stored[0])
    s_end = s_start + timedelta(seconds=stored[1])
    c_start = T0 + timedelta(seconds=checked[0])
    c_end = c_start + timedelta(seconds=checked[1])
    near = s_start <= c_end + timedelta(seconds=buffer_s) and s_end >= c_start - timedelta(
        seconds=buffer_s
    )
    slot = time_slot(s_start, s_end)
    read = slots_near([(c_start, c_end)], buffer_s)
    assert read is not None
    if near:
        assert slot in read
    assert (slot == LONG_SLOT) == (stored[1] > SHORT_S)


def test_slots_are_hours_since_1970_and_few_per_check() -> None:
    assert time_slot(T0, T0 + timedelta(hours=2)) == int(T0.timestamp()) // SLOT_S
    assert time_slot(T0, T0 + timedelta(hours=6, seconds=1)) == LONG_SLOT
    # A two-hour window with a 10-minute buffer reads its own hours, the six before, and LONG.
    read = slots_near([(T0, T0 + timedelta(hours=2))], 600)
    hour = int(T0.timestamp()) // SLOT_S
    assert read == [LONG_SLOT, *range(hour - 7, hour + 3)]
    # A zone valid for a year reads every slot: naming 8,760 hours would cost more.
    assert slots_near([(T0, T0 + timedelta(days=365))], 600) is None
    assert slots_near([(T0, T0 + timedelta(days=20))] * 2, 0) is None  # the sum counts
    assert slots_near([(T0, T0 + timedelta(days=24))], 0) is not None
