"""Strategic conflict detection between two Volume4Ds (pure).

Two volumes conflict when, in every dimension at once, the gap between them is STRICTLY less than
the separation minimum of that dimension, where overlapping interiors count as a negative gap:

- time: gap = later start - earlier end (negative when the windows overlap); conflict needs
  gap < ``time_buffer_s``;
- altitude: gap = higher lower bound - lower upper bound; conflict needs gap < ``vertical_m``
  (plus ``GEOID_MARGIN_M`` when one band is W84 and the other MSL, see below);
- horizontal: conflict needs the interiors to overlap, or the minimum distance to be
  < ``horizontal_m``.

So with zero minima, polygons that only share an edge, bands where one's upper bound equals the
other's lower bound and windows where one ends when the other starts do NOT conflict; with any
positive minimum they do (gap 0 < minimum). Overlapping interiors always conflict.

The reported :class:`Overlap` applies one rule in every dimension: *the part of each volume that is
within the minimum of the other* (for intervals this is the overlap widened by the minimum and
clipped to the span of both). It is what the other party needs to see, not the whole plan.

Bands in different references (W84 ellipsoid vs MSL) are compared as numbers after widening the
vertical minimum by ``GEOID_MARGIN_M``: the geoid lies within about 107 m of the ellipsoid
everywhere (EGM2008), so this never misses a conflict that a geoid model would find.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property, partial

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely import MultiPolygon, Polygon

from deconfliction.geo.boxes import grow_box
from deconfliction.geo.model import (
    AltitudeBand,
    Circle,
    Footprint,
    GeoError,
    Volume4D,
    as_float,
)
from deconfliction.geo.projection import (
    GEOD,
    SEGMENT_DEG,
    LocalProjection,
    footprint_boxes,
    separations,
    snapped_centres,
)

GEOID_MARGIN_M = 110.0
# Metric error allowance when deciding in degrees (boxes) what is decided in metres later:
# the local plane is accurate to far better than 1% + 1 m for regional footprints.
BOX_SLACK_RATIO = 0.01
BOX_SLACK_M = 1.0
# Polygonal stand-ins used only to draw the overlap region, always from outside.
_REGION_CIRCLE_SIDES = 64
_REGION_QUAD_SEGS = 16


@dataclass(frozen=True, slots=True)
class SeparationMinima:
    """How far apart volumes of different parties must stay: metres and seconds, all >= 0."""

    horizontal_m: float
    vertical_m: float
    time_buffer_s: float

    def __post_init__(self) -> None:
        for name in ("horizontal_m", "vertical_m", "time_buffer_s"):
            value = as_float(getattr(self, name), f"separation minimum {name}")
            object.__setattr__(self, name, value)
            if not math.isfinite(value) or value < 0.0:
                raise GeoError(f"separation minimum {name} = {value} is not a finite number >= 0")


@dataclass(frozen=True)
class Overlap:
    """Where, at which altitudes and when two volumes come within the minima of each other.

    ``lower_m``/``upper_m`` is the band overlap widened by the vertical minimum and clipped to
    the span of both bands; ``start``/``end`` likewise for time with the buffer.
    ``distance_m`` is the minimum horizontal distance (0 when the footprints touch or overlap).

    ``region`` (lon/lat) is (A within ``horizontal_m`` of B) union (B within ``horizontal_m`` of
    A), drawn from outside (it may exceed the true set by ~0.1% of a circle's radius or of the
    minimum). Drawing it costs two polygon overlays, ten times the decision itself, so it is
    drawn on first access by ``draw_region`` and kept: a check that finds many conflicts pays
    only for the regions someone looks at (the first one asked for draws, in one batch, those
    of every pair of its check that shares its first volume).
    """

    lower_m: float
    upper_m: float
    start: datetime
    end: datetime
    distance_m: float
    draw_region: Callable[[], Polygon | MultiPolygon] = field(repr=False, compare=False)

    @cached_property
    def region(self) -> Polygon | MultiPolygon:
        return self.draw_region()


def vertical_minimum_m(a: AltitudeBand, b: AltitudeBand, minima: SeparationMinima) -> float:
    """The vertical minimum for this pair of bands, widened when their references differ."""
    return minima.vertical_m + (GEOID_MARGIN_M if a.reference != b.reference else 0.0)


def box_reach_m(minima: SeparationMinima) -> float:
    """Distance by which a lon/lat box is grown so that box tests never drop a conflict that the
    metric test would find."""
    if minima.horizontal_m == 0.0:
        return 0.0
    return minima.horizontal_m * (1.0 + BOX_SLACK_RATIO) + BOX_SLACK_M


def _outer_local(fp: Footprint, grow_m: float, proj: LocalProjection) -> Polygon | MultiPolygon:
    """The footprint grown by ``grow_m`` in ``proj``, as a polygon that contains the true set."""
    return _outer_locals([fp], [grow_m], proj)[0][0]


def _outer_locals(
    footprints: Sequence[Footprint], grows_m: Sequence[float], proj: LocalProjection
) -> list[list[Polygon | MultiPolygon]]:
    """Each footprint grown by each of ``grows_m`` in ``proj``, as polygons that contain the
    true sets (circles as circumscribed 64-gons), with one call into PROJ and GEOS per step
    however many footprints."""
    circles = {i: fp for i, fp in enumerate(footprints) if isinstance(fp, Circle)}
    polygons = [i for i, fp in enumerate(footprints) if not isinstance(fp, Circle)]
    sides = _REGION_CIRCLE_SIDES
    if polygons:
        segmented = shapely.segmentize(_geometries([footprints[i] for i in polygons]), SEGMENT_DEG)
        polygons_local = proj.to_local(segmented)
    drawn: list[list[Polygon | MultiPolygon]] = []
    for grow_m in grows_m:
        shapes: dict[int, Polygon | MultiPolygon] = {}
        if circles:
            radii = [(c.radius_m + grow_m) / math.cos(math.pi / sides) for c in circles.values()]
            lons, lats, _ = GEOD.fwd(
                np.repeat([c.lon for c in circles.values()], sides),
                np.repeat([c.lat for c in circles.values()], sides),
                np.tile(np.linspace(0.0, 360.0, sides, endpoint=False), len(circles)),
                np.repeat(radii, sides),
            )
            x, y = proj.transform_points(np.asarray(lons), np.asarray(lats))
            rings = np.column_stack([x, y]).reshape(len(circles), sides, 2)
            shapes.update(zip(circles, shapely.polygons(rings).tolist(), strict=True))
        if polygons:
            if grow_m == 0.0:
                grown = polygons_local
            else:
                reach = grow_m / math.cos(math.pi / (4 * _REGION_QUAD_SEGS))
                grown = shapely.buffer(polygons_local, reach, quad_segs=_REGION_QUAD_SEGS)
            shapes.update(zip(polygons, grown.tolist(), strict=True))
        drawn.append([shapes[i] for i in range(len(footprints))])
    return drawn


def _polygonal(geom: shapely.Geometry) -> Polygon | MultiPolygon:
    """The areal parts of an overlay result, merged (touching parts can add points and lines,
    make_valid can nest a MultiPolygon in a collection); an empty polygon when there are none."""
    parts = [
        part for part in shapely.get_parts(shapely.get_parts(geom)) if isinstance(part, Polygon)
    ]
    merged: Polygon | MultiPolygon = shapely.union_all(parts) if parts else Polygon()
    return merged


def overlap_region(
    a: Footprint, b: Footprint, horizontal_m: float, proj: LocalProjection
) -> Polygon | MultiPolygon:
    """(A within ``horizontal_m`` of B) union (B within ``horizontal_m`` of A), in lon/lat.

    Footprints whose overlap is thinner than floating-point resolution (they meet only up to
    rounding) get a 1 m disc around their point of contact instead of an empty region."""
    return _RegionPlane(a, (proj.lon0, proj.lat0), horizontal_m).add(b)()


def _geometries(items: Sequence[shapely.Geometry]) -> NDArray[np.object_]:
    """A 1-d array of these geometries, for shapely's vectorised functions."""
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


class _RegionPlane:
    """The overlap regions of one first volume with its seconds, in the local plane of the
    first: all drawn together when one is first asked for, as array operations (a new plan
    meets many stored volumes, and a call into GEOS or PROJ costs more than its vertices)."""

    __slots__ = ("_centre", "_first", "_horizontal_m", "_regions", "_seconds")

    def __init__(self, first: Footprint, centre: tuple[float, float], horizontal_m: float) -> None:
        self._first = first
        self._centre = centre
        self._horizontal_m = horizontal_m
        self._seconds: list[Footprint] = []
        self._regions: list[Polygon | MultiPolygon] = []

    def add(self, second: Footprint) -> Callable[[], Polygon | MultiPolygon]:
        """How to draw the region of the first volume with ``second``."""
        self._seconds.append(second)
        return partial(self._region, len(self._seconds) - 1)

    def _region(self, slot: int) -> Polygon | MultiPolygon:
        if slot >= len(self._regions):
            self._regions.extend(self._draw(self._seconds[len(self._regions) :]))
        return self._regions[slot]

    def _draw(self, seconds: Sequence[Footprint]) -> list[Polygon | MultiPolygon]:
        proj = LocalProjection(*self._centre)
        horizontal_m = self._horizontal_m
        a_local = _outer_local(self._first, 0.0, proj)
        if horizontal_m == 0.0:
            (b_locals,) = _outer_locals(seconds, (0.0,), proj)
            local = shapely.intersection(a_local, _geometries(b_locals))
        else:
            b_locals, b_grown_list = _outer_locals(seconds, (0.0, horizontal_m), proj)
            b_grown = _geometries(b_grown_list)
            local = shapely.union(
                shapely.intersection(a_local, b_grown),
                shapely.intersection(
                    _geometries(b_locals), _outer_local(self._first, horizontal_m, proj)
                ),
            )
        regions = [_polygonal(part) for part in local]
        for i, region in enumerate(regions):
            if region.is_empty:
                regions[i] = shapely.shortest_line(a_local, b_locals[i]).buffer(1.0)
        drawn: list[Polygon | MultiPolygon] = proj.to_lonlat(_geometries(regions)).tolist()
        for i, lonlat in enumerate(drawn):
            if not shapely.is_valid(lonlat):
                # Going back to degrees can make parts that nearly touch cross by a rounding
                # error.
                drawn[i] = _polygonal(shapely.make_valid(lonlat))
        return drawn


def _overlap(
    a: Volume4D,
    b: Volume4D,
    minima: SeparationMinima,
    buffer: timedelta,
    vertical: float,
    distance: float,
    plane: _RegionPlane,
) -> Overlap:
    # Every interval: the overlap widened by the minimum, clipped to the span of both
    # (conditional expressions: a check builds dozens of these, builtin min/max cost more).
    low_a, low_b = a.altitude.lower_m, b.altitude.lower_m
    up_a, up_b = a.altitude.upper_m, b.altitude.upper_m
    low, high = (low_a, low_b) if low_a <= low_b else (low_b, low_a)
    lower = low if low >= high - vertical else high - vertical
    low, high = (up_a, up_b) if up_a <= up_b else (up_b, up_a)
    upper = high if high <= low + vertical else low + vertical
    first, last = (a.start, b.start) if a.start <= b.start else (b.start, a.start)
    start = first if first >= last - buffer else last - buffer
    first, last = (a.end, b.end) if a.end <= b.end else (b.end, a.end)
    end = last if last <= first + buffer else first + buffer
    return Overlap(
        lower_m=lower,
        upper_m=upper,
        start=start,
        end=end,
        distance_m=distance,
        draw_region=plane.add(b.footprint),
    )


def pairwise_conflicts(
    pairs: Sequence[tuple[Volume4D, Volume4D]], minima: SeparationMinima
) -> list[Overlap | None]:
    """``conflict(a, b, minima)`` for each pair, vectorised: the (exact) time and altitude
    tests and the (conservative) box test run first, then the geometry of every surviving pair
    is decided in one batch (:func:`~deconfliction.geo.projection.separations`), each in the
    local plane of its first volume. Each result is exactly what :func:`conflict` returns for
    that pair alone."""
    results: list[Overlap | None] = [None] * len(pairs)
    buffer = timedelta(seconds=minima.time_buffer_s)
    near: list[int] = []
    verticals: list[float] = []
    # The first volume of many pairs is the same object: its box and plane are found once.
    first_slot: dict[int, int] = {}
    firsts: list[Footprint] = []
    first_of: list[int] = []
    seconds: list[Footprint] = []
    for i, (a, b) in enumerate(pairs):
        # The gap between windows is max(starts) - min(ends); as both windows are non-empty
        # and the buffer >= 0, it reaches the buffer iff one starts that long after the other
        # ends (datetime arithmetic is exact). Likewise for bands, as float subtraction is
        # monotonic.
        if a.start - b.end >= buffer or b.start - a.end >= buffer:
            continue
        band_a, band_b = a.altitude, b.altitude
        vertical = vertical_minimum_m(band_a, band_b, minima)
        if (
            band_a.lower_m - band_b.upper_m >= vertical
            or band_b.lower_m - band_a.upper_m >= vertical
        ):
            continue
        near.append(i)
        verticals.append(vertical)
        slot = first_slot.setdefault(id(a), len(firsts))
        if slot == len(firsts):
            firsts.append(a.footprint)
        first_of.append(slot)
        seconds.append(b.footprint)
    if not near:
        return results
    reach = box_reach_m(minima)
    first_boxes = footprint_boxes(firsts)
    grown = np.array([grow_box(box, reach) for box in first_boxes.tolist()], dtype=np.float64)
    grown = grown[first_of]
    boxes = footprint_boxes(seconds)
    meet = (
        (boxes[:, 0] <= grown[:, 2])
        & (boxes[:, 2] >= grown[:, 0])
        & (boxes[:, 1] <= grown[:, 3])
        & (boxes[:, 3] >= grown[:, 1])
    ).tolist()
    planes = snapped_centres(first_boxes)
    kept = [slot for slot, keep in enumerate(meet) if keep]
    centres = [planes[first_of[slot]] for slot in kept]
    overlapping, distance = separations(
        [firsts[first_of[slot]] for slot in kept], [seconds[slot] for slot in kept], centres
    )
    hits = (overlapping | (distance < minima.horizontal_m)).tolist()
    region_planes: dict[int, _RegionPlane] = {}
    for slot, hit, gap, centre in zip(kept, hits, distance.tolist(), centres, strict=True):
        if hit:
            i = near[slot]
            a, b = pairs[i]
            first = first_of[slot]
            plane = region_planes.get(first)
            if plane is None:
                plane = region_planes[first] = _RegionPlane(
                    a.footprint, centre, minima.horizontal_m
                )
            results[i] = _overlap(a, b, minima, buffer, verticals[slot], gap, plane)
    return results


def conflict(a: Volume4D, b: Volume4D, minima: SeparationMinima) -> Overlap | None:
    """The overlap of two volumes under ``minima``, or None when they are separated (see the
    module docstring for the exact rule). Geometry is measured in the local plane centred on
    ``a``; swapping the arguments can change the decision only when the distance is within
    ~1e-4 of the horizontal minimum."""
    return pairwise_conflicts([(a, b)], minima)[0]
