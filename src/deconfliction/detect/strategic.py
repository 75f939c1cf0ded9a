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
    only for the regions someone looks at.
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
    if isinstance(fp, Circle):
        sides = _REGION_CIRCLE_SIDES
        radius = (fp.radius_m + grow_m) / math.cos(math.pi / sides)
        return proj.circle_local(fp, radius, sides)
    local = proj.footprint_local(fp)
    if grow_m == 0.0:
        return local
    reach = grow_m / math.cos(math.pi / (4 * _REGION_QUAD_SEGS))
    grown: Polygon | MultiPolygon = local.buffer(reach, quad_segs=_REGION_QUAD_SEGS)
    return grown


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
    a_local, b_local = _outer_local(a, 0.0, proj), _outer_local(b, 0.0, proj)
    if horizontal_m == 0.0:
        local = shapely.intersection(a_local, b_local)
    else:
        local = shapely.union(
            shapely.intersection(a_local, _outer_local(b, horizontal_m, proj)),
            shapely.intersection(b_local, _outer_local(a, horizontal_m, proj)),
        )
    region = _polygonal(local)
    if region.is_empty:
        region = shapely.shortest_line(a_local, b_local).buffer(1.0)
    lonlat: Polygon | MultiPolygon = proj.to_lonlat(region)
    if not shapely.is_valid(lonlat):
        # Going back to degrees can make parts that nearly touch cross by a rounding error.
        lonlat = _polygonal(shapely.make_valid(lonlat))
    return lonlat


def _draw_region(
    a: Footprint, b: Footprint, horizontal_m: float, centre: tuple[float, float]
) -> Polygon | MultiPolygon:
    return overlap_region(a, b, horizontal_m, LocalProjection(*centre))


def _overlap(
    a: Volume4D,
    b: Volume4D,
    minima: SeparationMinima,
    buffer: timedelta,
    vertical: float,
    distance: float,
    centre: tuple[float, float],
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
        draw_region=partial(_draw_region, a.footprint, b.footprint, minima.horizontal_m, centre),
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
    for slot, hit, gap, centre in zip(kept, hits, distance.tolist(), centres, strict=True):
        if hit:
            i = near[slot]
            a, b = pairs[i]
            results[i] = _overlap(a, b, minima, buffer, verticals[slot], gap, centre)
    return results


def conflict(a: Volume4D, b: Volume4D, minima: SeparationMinima) -> Overlap | None:
    """The overlap of two volumes under ``minima``, or None when they are separated (see the
    module docstring for the exact rule). Geometry is measured in the local plane centred on
    ``a``; swapping the arguments can change the decision only when the distance is within
    ~1e-4 of the horizontal minimum."""
    return pairwise_conflicts([(a, b)], minima)[0]
