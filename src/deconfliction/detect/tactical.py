"""Tactical conflict detection between live tracks, and zone infringement prediction (pure, numpy).

The pair test is the state-based closest-point-of-approach test of BlueSky
(``bluesky/traffic/asas/statebased.py``), reimplemented from its formulas:

- horizontally, with the relative position d and relative velocity v of j seen from i,
  ``tcpa = -(d . v) / |v|**2`` and ``dcpa = |d x v| / |v|``; the pair is horizontally inside
  the minimum R during the open interval ``tcpa -/+ sqrt(R**2 - dcpa**2) / |v|``, and never if
  ``dcpa >= R``;
- vertically, with relative altitude dz and vertical speed dw, inside the minimum H during the
  open interval where ``|dz + dw t| < H``, its ends ``(-/+H - dz) / dw``;
- a conflict is a pair whose two intervals overlap in an interval (t_in, t_out) with
  ``t_in < lookahead`` and ``t_out > 0``.

Boundaries (one rule everywhere): only STRICTLY inside both minima counts. A pair exactly R apart
at its closest approach, or exactly H apart vertically while level, is not in conflict, and
neither is one whose loss of separation would start exactly at the look-ahead.

Zero relative speed (below ``STILL_MPS``, 1e-9 m/s: under a micrometre over a 300 s look-ahead)
horizontally means inside R for ever if the pair is inside R now and never otherwise; likewise
vertically with H. Such a pair has tcpa 0.

Reported figures (all finite, so they serialise to JSON):

- ``tcpa_s``: the state-based tcpa clipped to the look-ahead [0, lookahead], i.e. the moment of
  closest horizontal approach from now until the look-ahead ends; ``dcpa_m``: the horizontal
  distance then (always < R for a conflict). Clipping keeps both meaningful for pairs that are
  already diverging or that fly almost parallel (where the raw tcpa runs to days);
- ``t_in_s``, ``t_out_s``: the conflict interval clipped to [0, lookahead].

Positions and velocities live in one conformal plane around the traffic (see
``tactical_plane``); each pair's distances are divided by the plane's point scale at its closest
approach, so the planar figures stay within ~30 m of the WGS-84 geodesic anywhere over Syria
(tests hold them to 50 m). :func:`with_geodesic_dcpa` recomputes ``dcpa_m`` on the geodesic for
the pairs found.

Only pairs that can meet are examined: every track's swept look-ahead box (from now to the
look-ahead, grown by half of each minimum) goes into the grid of ``tactical_grid``, and only
overlapping boxes are tested, each pair once, in one numpy pass. Growing by half the minima in
the same plane makes this exact, not a heuristic: two tracks strictly inside both minima at some
instant of the look-ahead sit in boxes that overlap.

Also here: :func:`predict_zone_entries` (zone infringement, footprint and altitude band) and
:func:`read_tracks` (the offline command's parser). The DO-365 well-clear mode is in
``tactical_wellclear``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal, NamedTuple

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Geod

from deconfliction.detect.tactical_grid import overlapping_pairs, pairs_touching
from deconfliction.detect.tactical_plane import ConformalPlane, PlaneTracks

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

STILL_MPS = 1e-9
_STILL2 = STILL_MPS * STILL_MPS
# Box growth on top of half the minima, so that float rounding (~1e-10 m at 500 km) can never
# drop a pair that the pair test would keep.
_BOX_SLACK_M = 1e-6
_BOX_SLACK_RATIO = 1e-9
# Zone footprints: lon/lat edges are split every 0.05 degrees before projecting, so the straight
# projected pieces stay within about 0.4 m of the lon/lat edge (GeoJSON edges are straight in
# lon/lat, RFC 7946).
_ZONE_SEGMENT_DEG = 0.05
_GEOD = Geod(ellps="WGS84")

TRACK_COLUMNS = ("id", "party", "lat", "lon", "alt_m", "gs_mps", "course_deg", "vs_mps")
_NUMBER_COLUMNS = TRACK_COLUMNS[2:]


@dataclass(frozen=True, slots=True)
class TacticalMinima:
    """Separation minima and look-ahead: 5 NM, 1,000 ft and 300 s by default."""

    horizontal_m: float = 9260.0
    vertical_m: float = 304.8
    lookahead_s: float = 300.0

    def __post_init__(self) -> None:
        for name in ("horizontal_m", "vertical_m", "lookahead_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


@dataclass(frozen=True, slots=True, eq=False)
class TrackBatch:
    """States of tracks at one instant: WGS-84 degrees, metres, m/s, course in degrees true.

    ``vs_mps`` is positive when climbing. Arrays are converted to 1-D float64; every value is
    checked, and the error names the first bad track.
    """

    ids: list[str]
    party: list[str]
    lat: FloatArray
    lon: FloatArray
    alt_m: FloatArray
    gs_mps: FloatArray
    course_deg: FloatArray
    vs_mps: FloatArray

    def __post_init__(self) -> None:
        n = len(self.ids)
        if len(self.party) != n:
            raise ValueError(f"party has {len(self.party)} entries for {n} ids")
        for name in _NUMBER_COLUMNS:
            arr = np.ascontiguousarray(getattr(self, name), dtype=np.float64)
            if arr.shape != (n,):
                raise ValueError(f"{name} has shape {arr.shape}, expected ({n},)")
            object.__setattr__(self, name, arr)
            bad = ~np.isfinite(arr)
            if bad.any():
                raise ValueError(f"track {self._first(bad)}: {name} is not a finite number")
        for name, lo, hi in (("lat", -90.0, 90.0), ("lon", -180.0, 180.0)):
            arr = getattr(self, name)
            bad = (arr < lo) | (arr > hi)
            if bad.any():
                raise ValueError(f"track {self._first(bad)}: {name} outside {lo:g}..{hi:g}")
        if (self.gs_mps < 0.0).any():
            raise ValueError(f"track {self._first(self.gs_mps < 0.0)}: gs_mps is negative")
        if len(set(self.ids)) != n:
            seen: set[str] = set()
            for track in self.ids:
                if track in seen:
                    raise ValueError(f"duplicate track id {track!r}")
                seen.add(track)

    def _first(self, bad: BoolArray) -> str:
        return repr(self.ids[int(np.argmax(bad))])

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True, slots=True)
class TacticalConflict:
    """A predicted loss of separation between tracks ``a`` < ``b`` (see the module docstring for
    the exact meaning of each figure)."""

    a: str
    b: str
    tcpa_s: float
    dcpa_m: float
    t_in_s: float
    t_out_s: float


class TacticalZone(NamedTuple):
    """A zone for infringement prediction: footprint (shapely Polygon or MultiPolygon in lon/lat
    degrees) and altitude band in metres, in the same altitude reference as the tracks."""

    id: str
    footprint: Any
    lower_m: float
    upper_m: float


class ZoneEntry(NamedTuple):
    track: str
    zone: str
    t_entry_s: float


def plane_for(batch: TrackBatch, origin: tuple[float, float] | None = None) -> ConformalPlane:
    """The plane the engine works in: tangent at ``origin`` (lat, lon), or by default at the
    middle of the batch's lat/lon box. Live callers should pass a fixed origin (the middle of the
    operating area) so that figures do not shift with the traffic."""
    if origin is not None:
        return ConformalPlane(*origin)
    if len(batch) == 0:
        return ConformalPlane(0.0, 0.0)
    middle = (float(batch.lat.min()) + float(batch.lat.max())) / 2.0
    return ConformalPlane(
        min(max(middle, -89.9), 89.9),
        (float(batch.lon.min()) + float(batch.lon.max())) / 2.0,
    )


def plane_tracks(batch: TrackBatch, plane: ConformalPlane) -> PlaneTracks:
    """The batch in the plane. Tracks more than 90 degrees of arc (~10,000 km) from the plane's
    centre are refused: there the plane's scale passes 2 and runs to infinity at the antipode,
    and a batch spread that wide is not one operating area."""
    tracks = plane.tracks(batch.lat, batch.lon, batch.gs_mps, batch.course_deg)
    # The stereographic image of the hemisphere is the disc of radius 2 R.
    limit = (2.0 * plane.radius_m) ** 2
    if not (tracks.x * tracks.x + tracks.y * tracks.y <= limit).all():
        raise ValueError("tracks too far apart for one regional plane (over 10,000 km)")
    return tracks


class PairFigures(NamedTuple):
    """Result of :func:`pair_test` for arrays of pairs: the conflict mask and the reported
    figures (meaningful where ``conflict`` is true)."""

    conflict: BoolArray
    tcpa_s: FloatArray
    dcpa_m: FloatArray
    t_in_s: FloatArray
    t_out_s: FloatArray


def pair_test(
    plane: ConformalPlane,
    tracks: PlaneTracks,
    alt_m: FloatArray,
    vs_mps: FloatArray,
    i: IntArray,
    j: IntArray,
    minima: TacticalMinima,
) -> PairFigures:
    """The state-based test of the pairs (i[k], j[k]), vectorised; symmetric in i and j."""
    big_r = minima.horizontal_m
    big_h = minima.vertical_m
    look = minima.lookahead_s
    dx = tracks.x[j] - tracks.x[i]
    dy = tracks.y[j] - tracks.y[i]
    du = tracks.u[j] - tracks.u[i]
    dv = tracks.v[j] - tracks.v[i]
    v2 = du * du + dv * dv
    moving = v2 > _STILL2
    v2s = np.where(moving, v2, 1.0)
    tcpa_raw = np.where(moving, -(dx * du + dy * dv) / v2s, 0.0)
    tcpa = np.clip(tcpa_raw, 0.0, look)
    # Point scale halfway between the two at the reported closest approach: plane metres there.
    scale = plane.scale(
        (tracks.x[i] + tracks.x[j] + (tracks.u[i] + tracks.u[j]) * tcpa) / 2.0,
        (tracks.y[i] + tracks.y[j] + (tracks.v[i] + tracks.v[j]) * tcpa) / 2.0,
    )
    r_map = big_r * scale
    cross = dx * dv - dy * du
    d2 = np.where(moving, cross * cross / v2s, dx * dx + dy * dy)
    horizontal = d2 < r_map * r_map
    half = np.sqrt(np.maximum(r_map * r_map - d2, 0.0) / v2s)
    tin_h = np.where(moving, tcpa_raw - half, -np.inf)
    tout_h = np.where(moving, tcpa_raw + half, np.inf)

    dz = alt_m[j] - alt_m[i]
    dw = vs_mps[j] - vs_mps[i]
    climbing = np.abs(dw) > STILL_MPS
    dws = np.where(climbing, dw, 1.0)
    t_top = (big_h - dz) / dws
    t_bottom = (-big_h - dz) / dws
    level_inside = np.abs(dz) < big_h
    tin_v = np.where(climbing, np.minimum(t_top, t_bottom), np.where(level_inside, -np.inf, np.inf))
    tout_v = np.where(
        climbing, np.maximum(t_top, t_bottom), np.where(level_inside, np.inf, -np.inf)
    )

    t_in = np.maximum(tin_h, tin_v)
    t_out = np.minimum(tout_h, tout_v)
    conflict = horizontal & (t_in < t_out) & (t_out > 0.0) & (t_in < look)
    ex = dx + du * tcpa
    ey = dy + dv * tcpa
    return PairFigures(
        conflict=conflict,
        tcpa_s=tcpa,
        dcpa_m=np.sqrt(ex * ex + ey * ey) / scale,
        t_in_s=np.maximum(t_in, 0.0),
        t_out_s=np.minimum(t_out, look),
    )


class SweptBoxes(NamedTuple):
    """Every track's swept look-ahead box in the plane and in altitude, grown by half of each
    minimum, and the party group of each track (None when pairs of one party count too)."""

    x0: FloatArray
    x1: FloatArray
    y0: FloatArray
    y1: FloatArray
    z0: FloatArray
    z1: FloatArray
    groups: IntArray | None


def swept_boxes(
    plane: ConformalPlane,
    tracks: PlaneTracks,
    batch: TrackBatch,
    minima: TacticalMinima,
    same_party: bool,
    extra_horizontal_s: float = 0.0,
) -> SweptBoxes:
    """The broad phase's boxes: two tracks whose boxes do not overlap cannot be in conflict.
    ``extra_horizontal_s`` sweeps the horizontal boxes that much beyond the look-ahead (for
    criteria that alert before the distance is reached, like modified tau)."""
    look = minima.lookahead_s
    xe = tracks.x + tracks.u * (look + extra_horizontal_s)
    ye = tracks.y + tracks.v * (look + extra_horizontal_s)
    x0 = np.minimum(tracks.x, xe)
    x1 = np.maximum(tracks.x, xe)
    y0 = np.minimum(tracks.y, ye)
    y1 = np.maximum(tracks.y, ye)
    # The pair test measures R in plane metres at the point scale of a point between the two
    # tracks; the scale grows away from the centre, so its largest value over the boxes is at a
    # corner of their joint extent.
    corner_x = max(abs(float(x0.min())), abs(float(x1.max())))
    corner_y = max(abs(float(y0.min())), abs(float(y1.max())))
    top_scale = float(plane.scale(np.array([corner_x]), np.array([corner_y]))[0])
    grow_h = minima.horizontal_m * top_scale / 2.0 * (1.0 + _BOX_SLACK_RATIO) + _BOX_SLACK_M
    grow_v = minima.vertical_m / 2.0 * (1.0 + _BOX_SLACK_RATIO) + _BOX_SLACK_M
    ze = batch.alt_m + batch.vs_mps * look
    groups = None
    if not same_party:
        codes = {p: k for k, p in enumerate(dict.fromkeys(batch.party))}
        groups = np.fromiter(map(codes.__getitem__, batch.party), np.int64, len(batch))
    return SweptBoxes(
        x0 - grow_h,
        x1 + grow_h,
        y0 - grow_h,
        y1 + grow_h,
        np.minimum(batch.alt_m, ze) - grow_v,
        np.maximum(batch.alt_m, ze) + grow_v,
        groups,
    )


def candidate_pairs(
    plane: ConformalPlane,
    tracks: PlaneTracks,
    batch: TrackBatch,
    minima: TacticalMinima,
    same_party: bool,
    extra_horizontal_s: float = 0.0,
) -> tuple[IntArray, IntArray]:
    """Pairs whose swept look-ahead boxes overlap: a superset of the conflicts (broad phase)."""
    return overlapping_pairs(
        *swept_boxes(plane, tracks, batch, minima, same_party, extra_horizontal_s)
    )


def detect_conflicts(
    batch: TrackBatch,
    minima: TacticalMinima = TacticalMinima(),
    *,
    same_party: bool = False,
    origin: tuple[float, float] | None = None,
) -> list[TacticalConflict]:
    """Conflicts between tracks of different parties (all pairs with ``same_party``), sorted by
    (a, b). ``origin`` (lat, lon) fixes the plane, see :func:`plane_for`."""
    if len(batch) < 2:
        return []
    plane = plane_for(batch, origin)
    tracks = plane_tracks(batch, plane)
    i, j = candidate_pairs(plane, tracks, batch, minima, same_party)
    return conflict_list(
        batch, i, j, pair_test(plane, tracks, batch.alt_m, batch.vs_mps, i, j, minima)
    )


def detect_conflicts_of(
    batch: TrackBatch,
    rows: IntArray,
    minima: TacticalMinima = TacticalMinima(),
    *,
    same_party: bool = False,
    origin: tuple[float, float] | None = None,
) -> list[TacticalConflict]:
    """The conflicts of :func:`detect_conflicts` that involve at least one of the tracks at
    ``rows`` (indices into ``batch``), found without pairing the other tracks among themselves:
    the loop's early cycles, which look only at the tracks that reported since the last cycle.
    Exactly the same pairs and figures as the full engine's for those tracks, given the same
    ``origin`` (the plane)."""
    if len(batch) < 2 or len(rows) == 0:
        return []
    plane = plane_for(batch, origin)
    tracks = plane_tracks(batch, plane)
    x0, x1, y0, y1, z0, z1, groups = swept_boxes(plane, tracks, batch, minima, same_party)
    i, j = pairs_touching(x0, x1, y0, y1, z0, z1, rows, groups)
    return conflict_list(
        batch, i, j, pair_test(plane, tracks, batch.alt_m, batch.vs_mps, i, j, minima)
    )


def conflict_list(
    batch: TrackBatch, i: IntArray, j: IntArray, fig: PairFigures
) -> list[TacticalConflict]:
    """The pairs (i[k], j[k]) where ``fig.conflict`` holds, as conflicts sorted by (a, b)."""
    hit = fig.conflict
    i = i[hit]
    j = j[hit]
    if i.shape[0] == 0:
        return []
    # Order by id: rank only the tracks involved, far fewer than the batch in sparse traffic.
    involved = np.unique(np.concatenate([i, j]))
    ids = batch.ids
    rank = np.empty(len(ids), dtype=np.int64)
    rank[sorted(involved.tolist(), key=ids.__getitem__)] = np.arange(involved.shape[0])
    swap = rank[i] > rank[j]
    a = np.where(swap, j, i)
    b = np.where(swap, i, j)
    order = np.lexsort((rank[b], rank[a]))
    return [
        TacticalConflict(ids[ka], ids[kb], tc, dc, ti, to)
        for ka, kb, tc, dc, ti, to in zip(
            a[order].tolist(),
            b[order].tolist(),
            fig.tcpa_s[hit][order].tolist(),
            fig.dcpa_m[hit][order].tolist(),
            fig.t_in_s[hit][order].tolist(),
            fig.t_out_s[hit][order].tolist(),
            strict=True,
        )
    ]


def with_geodesic_dcpa(
    batch: TrackBatch, conflicts: Iterable[TacticalConflict]
) -> list[TacticalConflict]:
    """The conflicts with ``dcpa_m`` measured on the WGS-84 geodesic: both tracks flown along the
    geodesic that starts on their course, for ``tcpa_s`` seconds at their ground speed, then the
    geodesic distance between them."""
    found = list(conflicts)
    if not found:
        return []
    index = {track: k for k, track in enumerate(batch.ids)}
    ia = np.array([index[c.a] for c in found], dtype=np.int64)
    ib = np.array([index[c.b] for c in found], dtype=np.int64)
    t = np.array([c.tcpa_s for c in found], dtype=np.float64)
    lon_a, lat_a, _ = _GEOD.fwd(
        batch.lon[ia], batch.lat[ia], batch.course_deg[ia], batch.gs_mps[ia] * t
    )
    lon_b, lat_b, _ = _GEOD.fwd(
        batch.lon[ib], batch.lat[ib], batch.course_deg[ib], batch.gs_mps[ib] * t
    )
    _, _, dist = _GEOD.inv(lon_a, lat_a, lon_b, lat_b)
    return [replace(c, dcpa_m=float(d)) for c, d in zip(found, np.asarray(dist), strict=True)]


def _zone_window(
    alt: FloatArray, vs: FloatArray, lower: FloatArray, upper: FloatArray, look: float
) -> tuple[FloatArray, FloatArray]:
    """The closed time interval within [0, look] where lower <= alt + vs t <= upper (empty when
    start > end)."""
    climbing = np.abs(vs) > STILL_MPS
    vss = np.where(climbing, vs, 1.0)
    t_lo = (lower - alt) / vss
    t_hi = (upper - alt) / vss
    inside = (lower <= alt) & (alt <= upper)
    start = np.where(climbing, np.minimum(t_lo, t_hi), np.where(inside, -np.inf, np.inf))
    end = np.where(climbing, np.maximum(t_lo, t_hi), np.where(inside, np.inf, -np.inf))
    return np.maximum(start, 0.0), np.minimum(end, look)


def predict_zone_entries(
    batch: TrackBatch,
    zones: Iterable[tuple[str, Any, float, float]],
    lookahead_s: float,
    *,
    origin: tuple[float, float] | None = None,
) -> list[ZoneEntry]:
    """First time within [0, lookahead_s] at which each track, flying straight on, is inside a
    zone's footprint AND altitude band, both closed (touching the edge or a bound counts: the zone
    is what must not be entered). A track already inside gets 0. Zones are (id, lon/lat Polygon
    or MultiPolygon, lower_m, upper_m), e.g. :class:`TacticalZone`; sorted by (track, zone)."""
    if not (math.isfinite(lookahead_s) and lookahead_s > 0.0):
        raise ValueError(f"lookahead_s must be a finite number > 0, got {lookahead_s!r}")
    zone_list = [TacticalZone(*z) for z in zones]
    for z in zone_list:
        if not (math.isfinite(z.lower_m) and math.isfinite(z.upper_m) and z.lower_m <= z.upper_m):
            raise ValueError(f"zone {z.id!r}: altitude band {z.lower_m}..{z.upper_m} is invalid")
        if not isinstance(z.footprint, shapely.Polygon | shapely.MultiPolygon):
            raise ValueError(f"zone {z.id!r}: footprint must be a Polygon or MultiPolygon")
        if z.footprint.is_empty or not z.footprint.is_valid:
            raise ValueError(f"zone {z.id!r}: footprint is empty or invalid")
    if not zone_list or len(batch) == 0:
        return []
    plane = plane_for(batch, origin)
    tracks = plane_tracks(batch, plane)

    def to_plane(coords: FloatArray) -> FloatArray:
        x, y = plane.forward(coords[:, 1], coords[:, 0])
        return np.column_stack([x, y])

    footprints = np.array(
        [
            shapely.transform(shapely.segmentize(z.footprint, _ZONE_SEGMENT_DEG), to_plane)
            for z in zone_list
        ],
        dtype=object,
    )
    look = lookahead_s
    start = np.column_stack([tracks.x, tracks.y])
    end = start + np.column_stack([tracks.u, tracks.v]) * look
    # A stationary track sweeps a point; a LineString needs two distinct points.
    still = tracks.u * tracks.u + tracks.v * tracks.v <= _STILL2
    swept = np.where(
        still,
        shapely.points(start),
        shapely.linestrings(np.stack([start, end], axis=1)),
    )
    k, z = shapely.STRtree(footprints).query(swept, predicate="intersects")
    lower = np.array([zz.lower_m for zz in zone_list], dtype=np.float64)[z]
    upper = np.array([zz.upper_m for zz in zone_list], dtype=np.float64)[z]
    t0, t1 = _zone_window(batch.alt_m[k], batch.vs_mps[k], lower, upper, look)
    ok = t0 <= t1
    k, z, t0, t1 = k[ok], z[ok], t0[ok], t1[ok]
    # Intersect the part of the path flown inside the altitude band with the footprint; the
    # first point of that intersection along the path is the entry.
    u = tracks.u[k]
    v = tracks.v[k]
    p0 = np.column_stack([tracks.x[k] + u * t0, tracks.y[k] + v * t0])
    p1 = np.column_stack([tracks.x[k] + u * t1, tracks.y[k] + v * t1])
    point = still[k] | (t1 <= t0)
    pieces = np.where(point, shapely.points(p0), shapely.linestrings(np.stack([p0, p1], axis=1)))
    inter = shapely.intersection(footprints[z], pieces)
    coords, owner = shapely.get_coordinates(inter, return_index=True)
    entered = np.zeros(k.shape[0], dtype=bool)
    entered[owner] = True
    t_entry = t0.copy()
    moving = ~point[owner]
    rows = owner[moving]
    c = coords[moving]
    speed2 = u[rows] * u[rows] + v[rows] * v[rows]
    along = (c[:, 0] - tracks.x[k][rows]) * u[rows] + (c[:, 1] - tracks.y[k][rows]) * v[rows]
    t_hit = np.full(k.shape[0], np.inf)
    np.minimum.at(t_hit, rows, along / speed2)
    has_hit = np.isfinite(t_hit)
    # Rounding of the intersection points may put the entry a hair outside [t0, t1].
    t_entry[has_hit] = np.clip(t_hit[has_hit], t0[has_hit], t1[has_hit])
    result = [
        ZoneEntry(batch.ids[kk], zone_list[zz].id, tt)
        for kk, zz, tt in zip(
            k[entered].tolist(), z[entered].tolist(), t_entry[entered].tolist(), strict=True
        )
    ]
    result.sort(key=lambda e: (e.track, e.zone))
    return result


def _row_error(line: int, message: str) -> ValueError:
    return ValueError(f"line {line}: {message}")


def _number(value: object, column: str, line: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _row_error(line, f"{column} must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise _row_error(line, f"{column} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise _row_error(line, f"{column} is not a finite number ({value!r})")
    return number


def _check_row(row: dict[str, Any], line: int, first_line: dict[str, int]) -> list[float]:
    missing = [c for c in TRACK_COLUMNS if c not in row or row[c] is None]
    if missing:
        raise _row_error(line, f"missing {', '.join(missing)}")
    for column in ("id", "party"):
        if not isinstance(row[column], str) or not row[column].strip():
            raise _row_error(line, f"{column} must be a non-empty string")
    values = [_number(row[c], c, line) for c in _NUMBER_COLUMNS]
    lat, lon, _, gs, course, _ = values
    if not -90.0 <= lat <= 90.0:
        raise _row_error(line, f"lat {lat:g} is outside -90..90")
    if not -180.0 <= lon <= 180.0:
        raise _row_error(line, f"lon {lon:g} is outside -180..180")
    if gs < 0.0:
        raise _row_error(line, f"gs_mps {gs:g} is negative")
    if not 0.0 <= course <= 360.0:
        raise _row_error(line, f"course_deg {course:g} is outside 0..360")
    track = row["id"].strip()
    if track in first_line:
        raise _row_error(line, f"duplicate id {track!r} (first on line {first_line[track]})")
    first_line[track] = line
    return values


def _csv_rows(text: str) -> Iterable[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header = next(reader, None)
    if header is None:
        raise ValueError("line 1: missing header (id,party,lat,lon,alt_m,gs_mps,course_deg,vs_mps)")
    names = [h.strip() for h in header]
    missing = [c for c in TRACK_COLUMNS if c not in names]
    if missing:
        raise ValueError(f"line 1: header lacks column {', '.join(missing)}")
    for fields in reader:
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(names):
            raise _row_error(reader.line_num, f"{len(fields)} fields, header has {len(names)}")
        yield reader.line_num, dict(zip(names, (f.strip() for f in fields), strict=True))


def _jsonl_rows(text: str) -> Iterable[tuple[int, dict[str, Any]]]:
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _row_error(line, f"not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise _row_error(line, "expected a JSON object")
        yield line, obj


def read_tracks(text: str, fmt: Literal["csv", "jsonl"]) -> TrackBatch:
    """Tracks from CSV (header naming at least id,party,lat,lon,alt_m,gs_mps,course_deg,vs_mps,
    in any order; other columns ignored) or JSON Lines (one object per line with those keys).
    Bad input raises ValueError naming the line: missing column or field, a value that is not a
    finite number, lat/lon out of range, negative ground speed, course outside 0..360,
    duplicate id."""
    if fmt == "csv":
        rows = _csv_rows(text)
    elif fmt == "jsonl":
        rows = _jsonl_rows(text)
    else:
        raise ValueError(f"unknown track format {fmt!r}: use csv or jsonl")
    first_line: dict[str, int] = {}
    ids: list[str] = []
    party: list[str] = []
    numbers: list[list[float]] = []
    for line, row in rows:
        numbers.append(_check_row(row, line, first_line))
        ids.append(row["id"].strip())
        party.append(row["party"].strip())
    table = np.array(numbers, dtype=np.float64).reshape(len(numbers), len(_NUMBER_COLUMNS))
    return TrackBatch(
        ids,
        party,
        lat=table[:, 0],
        lon=table[:, 1],
        alt_m=table[:, 2],
        gs_mps=table[:, 3],
        course_deg=table[:, 4],
        vs_mps=table[:, 5],
    )
