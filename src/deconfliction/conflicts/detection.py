"""Strategic detection inside the notify/amend transaction: the pure engine tied to storage.

Candidates come from an index (the SQL cell index on any database, or the in-memory index on the
single-writer SQLite), already filtered in time and altitude per new volume; then every
(new volume, candidate) pair is decided exactly, all in one batch
(`detect.strategic.pairwise_conflicts`). Candidate rows are read back without validating them
again (`stored_volume`): they were validated when written, and validation costs ten times more.
A declared zone is checked the same way against the activities already filed
(`find_zone_conflicts`).

Race-freedom: on PostgreSQL a writer takes a transaction-scoped advisory lock on every grid cell
that its volumes, grown by the largest horizontal minimum, touch, before it reads candidates; two
volumes within the minimum of each other always share such a cell, so of two concurrent writers
the second waits for the first to commit and then sees its volumes. On SQLite every write
transaction starts with BEGIN IMMEDIATE, so writers are serialised anyway.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar

import shapely
from shapely import MultiPolygon, Polygon
from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from deconfliction import geo
from deconfliction.conflicts.models import OverlapOut, Severity, SideOut
from deconfliction.detect.cells import cells_covering, slots_near, time_slot
from deconfliction.detect.index import Row, VolumeIndex
from deconfliction.detect.schedule import conflict_in_schedule
from deconfliction.detect.strategic import (
    GEOID_MARGIN_M,
    Overlap,
    SeparationMinima,
    conflict,
    pairwise_conflicts,
)
from deconfliction.geo.projection import footprint_box
from deconfliction.parties.models import MinimaConfig
from deconfliction.store import tables as t
from deconfliction.store.db import fetch_rows, insert_returning_ids, run_rows
from deconfliction.zones.models import ZoneOut
from deconfliction.zones.service import zone_schedule, zone_volume

# Entering a notify zone is what its lead time is about: no separation margin for that test.
TOUCH = SeparationMinima(0.0, 0.0, 0.0)
# Namespace of our PostgreSQL advisory locks (two-key form: namespace, cell).
LOCK_NAMESPACE = 0x6463


@dataclass(frozen=True, slots=True)
class StoredVolume:
    id: int
    activity_id: int
    plan_version: int
    party: str
    volume: geo.Volume4D


@dataclass
class Finding:
    """One conflict a plan creates: with one stored activity, or with one zone."""

    kind: str
    severity: Severity
    other: SideOut
    overlaps: list[Overlap] = field(default_factory=list)
    volume_indices: set[int] = field(default_factory=set)

    def overlap(self) -> OverlapOut:
        regions = [o.region for o in self.overlaps]
        # Mostly one volume meets one: its region is the whole (a union costs a GEOS call).
        region = regions[0] if len(regions) == 1 else shapely.union_all(regions)
        return OverlapOut(
            region=geo.footprint_to_geojson(_polygonal(region)),
            lower_m=min(o.lower_m for o in self.overlaps),
            upper_m=max(o.upper_m for o in self.overlaps),
            start=min(o.start for o in self.overlaps),
            end=max(o.end for o in self.overlaps),
            distance_m=min(o.distance_m for o in self.overlaps),
        )


def _polygonal(geom: Any) -> Any:
    if geom.geom_type == "Polygon":  # the usual case; splitting it into parts costs ~10 us
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon"]
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def minima_of(config: MinimaConfig) -> SeparationMinima:
    return SeparationMinima(config.horizontal_m, config.vertical_m, config.time_buffer_s)


@dataclass(frozen=True)
class MinimaPolicy:
    """The area's default minima, overridden inside zones that carry their own."""

    default: SeparationMinima
    overrides: tuple[tuple[geo.Volume4D, SeparationMinima], ...]

    @property
    def reach(self) -> SeparationMinima:
        """The largest minima anywhere: what an index query must cover."""
        all_minima = [self.default, *(m for _, m in self.overrides)]
        return SeparationMinima(
            max(m.horizontal_m for m in all_minima),
            max(m.vertical_m for m in all_minima),
            max(m.time_buffer_s for m in all_minima),
        )

    def decide(self, pairs: Sequence[tuple[geo.Volume4D, geo.Volume4D]]) -> list[Overlap | None]:
        """``conflict(a, b, self.for_pair(a, b))`` for each pair, in one batch per minima."""
        if not self.overrides:
            return pairwise_conflicts(pairs, self.default)
        groups: dict[SeparationMinima, list[int]] = {}
        for n, (a, b) in enumerate(pairs):
            groups.setdefault(self.for_pair(a, b), []).append(n)
        results: list[Overlap | None] = [None] * len(pairs)
        for minima, members in groups.items():
            verdicts = pairwise_conflicts([pairs[n] for n in members], minima)
            for n, verdict in zip(members, verdicts, strict=True):
                results[n] = verdict
        return results

    def for_pair(self, a: geo.Volume4D, b: geo.Volume4D) -> SeparationMinima:
        """Inside override zones their minima apply (the largest if several), else the default."""
        applying = [
            m
            for zone, m in self.overrides
            if conflict(a, zone, TOUCH) is not None or conflict(b, zone, TOUCH) is not None
        ]
        if not applying:
            return self.default
        return SeparationMinima(
            max(m.horizontal_m for m in applying),
            max(m.vertical_m for m in applying),
            max(m.time_buffer_s for m in applying),
        )


def policy_for(default: MinimaConfig, zones: Iterable[ZoneOut]) -> MinimaPolicy:
    return MinimaPolicy(
        minima_of(default),
        tuple((zone_volume(z), minima_of(z.minima)) for z in zones if z.minima is not None),
    )


class CellIndex:
    """Candidates from the SQL cell index: correct on any database and across servers."""

    def candidates(
        self,
        conn: Connection,
        party: str,
        volumes: Sequence[geo.Volume4D],
        reach: SeparationMinima,
        now: datetime,
    ) -> list[StoredVolume]:
        cells = sorted(
            {c for v in volumes for c in cells_covering(v.footprint, reach.horizontal_m)}
        )
        slots = slots_near(((v.start, v.end) for v in volumes), reach.time_buffer_s)
        rows = conn.execute(
            _cell_candidates(len(volumes), by_slot=slots is not None),
            {
                "cells": cells,
                **({"slots": slots} if slots is not None else {}),
                "party": party,
                **near_in_time_and_altitude(volumes, reach),
            },
        ).all()
        return [_stored(r, stored_volume(r.geometry)) for r in rows]


_STORED_COLUMNS = (
    t.volumes.c.id,
    t.volumes.c.activity_id,
    t.volumes.c.plan_version,
    t.volumes.c.party,
    t.volumes.c.geometry,
)
# Bands are filtered in SQL before their reference is known (it is in the JSON): always widen by
# the geoid margin, plus a metre so that float rounding in SQL never drops a pair.
_SQL_ALTITUDE_SLACK_M = GEOID_MARGIN_M + 1.0


@lru_cache(maxsize=128)
def _cell_candidates(count: int, by_slot: bool) -> Any:
    """The candidate query of the SQL cell index for a plan of ``count`` volumes, built once per
    count: its parameters are the cells, the time slots (``by_slot``), the party and
    `near_in_time_and_altitude`'s."""
    near = or_(
        *(
            and_(
                t.volumes.c.start < bindparam(f"start_before_{i}"),
                t.volumes.c.end > bindparam(f"end_after_{i}"),
                t.volumes.c.lower_m < bindparam(f"lower_below_{i}"),
                t.volumes.c.upper_m > bindparam(f"upper_above_{i}"),
            )
            for i in range(count)
        )
    )
    in_cells = select(t.volume_cells.c.volume_id).where(
        t.volume_cells.c.cell.in_(bindparam("cells", expanding=True)),
        *([t.volume_cells.c.slot.in_(bindparam("slots", expanding=True))] if by_slot else []),
    )
    return (
        select(*_STORED_COLUMNS)
        .where(
            t.volumes.c.id.in_(in_cells.scalar_subquery()),
            t.volumes.c.active,
            t.volumes.c.party != bindparam("party"),
            near,
        )
        .order_by(t.volumes.c.id)
    )


def near_in_time_and_altitude(
    volumes: Sequence[geo.Volume4D], reach: SeparationMinima
) -> dict[str, Any]:
    """The bounds of `_cell_candidates`: a stored volume within ``reach`` in time and altitude
    of any of ``volumes`` (exact in time; in altitude conservative, the engine decides
    exactly)."""
    buffer = timedelta(seconds=reach.time_buffer_s)
    vertical = reach.vertical_m + _SQL_ALTITUDE_SLACK_M
    bounds: dict[str, Any] = {}
    for i, v in enumerate(volumes):
        bounds[f"start_before_{i}"] = v.end + buffer
        bounds[f"end_after_{i}"] = v.start - buffer
        bounds[f"lower_below_{i}"] = v.altitude.upper_m + vertical
        bounds[f"upper_above_{i}"] = v.altitude.lower_m - vertical
    return bounds


class MemoryIndex(CellIndex):
    """The hot path on SQLite: an in-memory index of the stored volumes, built from the database
    on start and caught up before every query.

    Only for a single writer (SQLite): volume ids then grow in commit order, so reading the rows
    above the last id seen is an exact catch-up (once the volumes of a write that rolled back
    after the index read them are forgotten: their ids are given again). Volumes retired since
    (amended or cancelled plans) are dropped when a query meets them. Other databases use the
    cell index in SQL.

    The index holds numbers only (boxes, bands, windows); a candidate's activity, party and
    geometry come from its row, read in the query that checks it is still active. Parsed
    geometry is kept in a bounded cache, so that a busy area is not parsed again and again.
    """

    BUILD_BATCH = 10_000

    def __init__(self, cache_size: int = 100_000) -> None:
        self.index = VolumeIndex()
        self.last_id = 0
        self.lock = threading.Lock()
        self.cache = VolumeCache(cache_size)

    def build(
        self, conn: Connection, now: datetime, horizon: timedelta = timedelta(days=1)
    ) -> None:
        """Load every active volume that can still meet a new one (ends after now - horizon),
        streaming the rows: no volume object outlives its batch."""
        with self.lock:
            self.last_id = int(conn.execute(select(func.max(t.volumes.c.id))).scalar() or 0)
            rows = conn.execute(
                select(t.volumes.c.id, t.volumes.c.party, t.volumes.c.geometry)
                .where(
                    t.volumes.c.active,
                    t.volumes.c.end > now - horizon,
                    t.volumes.c.id <= self.last_id,
                )
                .execution_options(yield_per=self.BUILD_BATCH)
            )
            self.index.add_many_numbers(
                (int(r.id), str(r.party), index_numbers(r.geometry)) for r in rows
            )

    def _forget_rolled_back(self, conn: Connection) -> None:
        """Forget the volumes this index took in from a write that then rolled back (in a
        group commit the next write of the batch reads them; then the commit fails): they
        are gone, and SQLite gives their ids to the next volumes, which the catch-up must
        read. Volumes are never deleted, so a highest id below the last one seen means that."""
        highest = int(fetch_rows(conn, _HIGHEST_VOLUME)[0].highest)
        if highest >= self.last_id:
            return
        for key in range(highest + 1, self.last_id + 1):
            with contextlib.suppress(KeyError):  # retired when taken in: never indexed
                self.index.remove(key)
            self.cache.drop(key)
        self.last_id = highest

    def candidates(
        self,
        conn: Connection,
        party: str,
        volumes: Sequence[geo.Volume4D],
        reach: SeparationMinima,
        now: datetime,
    ) -> list[StoredVolume]:
        with self.lock:
            self._forget_rolled_back(conn)
            new = fetch_rows(conn, _VOLUMES_AFTER, {"after": self.last_id})
            for row in new:
                # One insert each: a catch-up is a few rows, merged into the grid only when
                # the index's delta is full (a bulk load would merge on every write).
                if row.active:
                    volume = stored_volume(row.geometry)
                    self.index.add(int(row.id), str(row.party), volume)
                    self.cache.put(int(row.id), volume)
            if new:
                self.last_id = int(new[-1].id)
            keys = sorted(
                {k for ks in self.index.candidates_many(volumes, reach, party) for k in ks}
            )
            if not keys:
                return []
            found = conn.execute(_VOLUME_STATES, {"ids": keys}).all()
            for retired in found:
                if not retired.active:
                    self.index.remove(int(retired.id))
                    self.cache.drop(int(retired.id))
            alive = [r for r in found if r.active]
            parsed = self.cache.get_many(conn, [int(r.id) for r in alive])
            return [_stored(r, parsed[int(r.id)]) for r in alive]


# The memory index's statements, built once (each runs on every notification).
_HIGHEST_VOLUME = select(func.coalesce(func.max(t.volumes.c.id), 0).label("highest"))
_VOLUMES_AFTER = (
    select(t.volumes.c.id, t.volumes.c.party, t.volumes.c.active, t.volumes.c.geometry)
    .where(t.volumes.c.id > bindparam("after"))
    .order_by(t.volumes.c.id)
)
_VOLUME_STATES = (
    select(
        t.volumes.c.id,
        t.volumes.c.activity_id,
        t.volumes.c.plan_version,
        t.volumes.c.party,
        t.volumes.c.active,
    )
    .where(t.volumes.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(t.volumes.c.id)
)
_GEOMETRIES = select(t.volumes.c.id, t.volumes.c.geometry).where(
    t.volumes.c.id.in_(bindparam("ids", expanding=True))
)


class VolumeCache:
    """Parsed volumes by row id, least recently used first out. A volume row never changes its
    geometry (amending makes new rows), so an entry never goes stale within one database."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._volumes: OrderedDict[int, geo.Volume4D] = OrderedDict()

    def put(self, key: int, volume: geo.Volume4D) -> None:
        self._volumes[key] = volume
        self._volumes.move_to_end(key)
        while len(self._volumes) > self.capacity:
            self._volumes.popitem(last=False)

    def drop(self, key: int) -> None:
        self._volumes.pop(key, None)

    def get_many(self, conn: Connection, keys: Sequence[int]) -> dict[int, geo.Volume4D]:
        """The volumes of ``keys``, reading only the missing ones from the database."""
        found: dict[int, geo.Volume4D] = {}
        for key in keys:
            volume = self._volumes.get(key)
            if volume is not None:
                self._volumes.move_to_end(key)
                found[key] = volume
        missing = [key for key in keys if key not in found]
        if missing:
            for row in conn.execute(_GEOMETRIES, {"ids": missing}):
                found[int(row.id)] = volume = stored_volume(row.geometry)
                self.put(int(row.id), volume)
        return found


def _stored(row: Any, volume: geo.Volume4D) -> StoredVolume:
    return StoredVolume(row.id, row.activity_id, row.plan_version, row.party, volume)


_T = TypeVar("_T")


def _trusted(cls: type[_T], **fields: Any) -> _T:
    """An instance of a frozen dataclass without running its validation."""
    made = object.__new__(cls)
    for name, value in fields.items():
        object.__setattr__(made, name, value)
    return made


def index_numbers(data: dict[str, Any]) -> Row:
    """What the in-memory index keeps of a stored volume, read straight from its JSON: the box
    (as ``footprint_box``), the band and the window in POSIX seconds. Building the volume
    itself would cost several times more, a million times over at start-up."""
    if "circle" in data:
        box = footprint_box(stored_volume_footprint(data))
    else:
        shape = data["footprint"]
        polygons = [shape["coordinates"]] if shape["type"] == "Polygon" else shape["coordinates"]
        # Holes lie inside their exterior ring: the exterior rings bound the footprint.
        lons = [position[0] for polygon in polygons for position in polygon[0]]
        lats = [position[1] for polygon in polygons for position in polygon[0]]
        box = (float(min(lons)), float(min(lats)), float(max(lons)), float(max(lats)))
    altitude = data["altitude"]
    window = data["time"]
    return (
        *box,
        float(altitude["lower_m"]),
        float(altitude["upper_m"]),
        datetime.fromisoformat(window["start"]).timestamp(),
        datetime.fromisoformat(window["end"]).timestamp(),
    )


def stored_volume_footprint(data: dict[str, Any]) -> geo.Footprint:
    """The footprint of a stored volume's JSON, not validated again (see `stored_volume`)."""
    if "circle" in data:
        circle = data["circle"]
        made: geo.Footprint = _trusted(
            geo.Circle,
            lon=float(circle["center"][0]),
            lat=float(circle["center"][1]),
            radius_m=float(circle["radius_m"]),
        )
        return made
    if data["footprint"]["type"] == "Polygon":
        rings = data["footprint"]["coordinates"]
        return Polygon(rings[0], rings[1:])
    return MultiPolygon([Polygon(p[0], p[1:]) for p in data["footprint"]["coordinates"]])


def stored_volume(data: dict[str, Any]) -> geo.Volume4D:
    """A volume read back from its row, built without validating it again: it was validated
    before it was written, and validation costs ten times the construction, paid here for
    every candidate row. Equal to ``volume_from_json(data)``."""
    footprint = stored_volume_footprint(data)
    altitude = data["altitude"]
    window = data["time"]
    return _trusted(
        geo.Volume4D,
        footprint=footprint,
        altitude=_trusted(
            geo.AltitudeBand,
            lower_m=float(altitude["lower_m"]),
            upper_m=float(altitude["upper_m"]),
            reference=altitude["reference"],
        ),
        start=datetime.fromisoformat(window["start"]).astimezone(UTC),
        end=datetime.fromisoformat(window["end"]).astimezone(UTC),
    )


def lock_cells(conn: Connection, volumes: Sequence[geo.Volume4D], reach_m: float) -> None:
    """Serialise writers per touched cell (PostgreSQL); SQLite's single writer needs nothing."""
    if conn.dialect.name != "postgresql":
        return
    cells = sorted({c for v in volumes for c in cells_covering(v.footprint, reach_m)})
    # In one global order, so two writers never deadlock: unnest reads the sorted array out in
    # storage order, and the locks are taken row by row as it does (one round trip for all).
    conn.execute(_LOCK_CELLS, {"ns": LOCK_NAMESPACE, "cells": cells})


_LOCK_CELLS = text(
    "SELECT pg_advisory_xact_lock(:ns, cell) FROM unnest(CAST(:cells AS integer[])) AS cell"
)


def find_conflicts(
    conn: Connection,
    index: CellIndex,
    party: str,
    volumes: Sequence[geo.Volume4D],
    zones: Sequence[ZoneOut],
    policy: MinimaPolicy,
    now: datetime,
) -> list[Finding]:
    """Every conflict the plan (`volumes` of `party`) has with stored activity and zones."""
    found: dict[tuple[str, int], Finding] = {}
    candidates = index.candidates(conn, party, volumes, policy.reach, now)
    pairs = [(i, stored) for stored in candidates for i in range(len(volumes))]
    overlaps = policy.decide([(volumes[i], stored.volume) for i, stored in pairs])
    hits = [(pair, overlap) for pair, overlap in zip(pairs, overlaps, strict=True) if overlap]
    shared = interpenetrating([(volumes[i], stored.volume) for (i, stored), _ in hits], hits)
    for ((i, stored), overlap), high in zip(hits, shared, strict=True):
        key = ("activity", stored.activity_id)
        if key not in found:
            found[key] = Finding(
                "activities",
                "medium",
                SideOut(
                    party=stored.party, activity=stored.activity_id, version=stored.plan_version
                ),
            )
        finding = found[key]
        finding.overlaps.append(overlap)
        finding.volume_indices.add(i)
        if high:
            finding.severity = "high"
    for zone in zones:
        if zone.owner == party:
            continue
        zone_finding = _zone_finding(
            zone, volumes, policy, now, SideOut(party=zone.owner, zone=zone.id)
        )
        if zone_finding is not None:
            found[("zone", zone.id)] = zone_finding
    return list(found.values())


def find_zone_conflicts(
    conn: Connection, index: CellIndex, zone: ZoneOut, policy: MinimaPolicy, now: datetime
) -> list[Finding]:
    """The conflicts a zone has with the stored activities of other parties, by the same rules
    as a plan meeting the zone; each finding's ``other`` is the activity."""
    candidates = index.candidates(conn, zone.owner, [zone_volume(zone)], policy.reach, now)
    by_activity: dict[int, list[StoredVolume]] = {}
    for stored in candidates:
        if stored.volume.end > now:  # what has flown is no longer a conflict
            by_activity.setdefault(stored.activity_id, []).append(stored)
    findings: list[Finding] = []
    for activity_id, members in sorted(by_activity.items()):
        side = SideOut(
            party=members[0].party, activity=activity_id, version=members[0].plan_version
        )
        finding = _zone_finding(zone, [s.volume for s in members], policy, now, side)
        if finding is not None:
            findings.append(finding)
    return findings


def _zone_finding(
    zone: ZoneOut,
    volumes: Sequence[geo.Volume4D],
    policy: MinimaPolicy,
    now: datetime,
    other: SideOut,
) -> Finding | None:
    """The conflict of an activity's volumes with one zone of another party, by the zone's
    rule: ``no_entry`` always, ``notify`` only when entered before its lead time, ``caution``
    as an advisory. ``other`` names the side that is not the caller's."""
    zone_vol = zone_volume(zone)
    finding: Finding | None = None
    for i, volume in enumerate(volumes):
        minima = TOUCH if zone.rule == "notify" else policy.for_pair(volume, zone_vol)
        overlap = conflict_in_schedule(volume, zone_vol, zone_schedule(zone), minima)
        if overlap is None:
            continue
        if zone.rule == "notify":
            assert zone.lead_time_s is not None
            if (overlap.start - now).total_seconds() >= zone.lead_time_s:
                continue
        if finding is None:
            finding = Finding("zone", _ZONE_SEVERITY[zone.rule], other)
        finding.overlaps.append(overlap)
        finding.volume_indices.add(i)
    return finding


_ZONE_SEVERITY: dict[str, Severity] = {
    "no_entry": "high",
    "notify": "medium",
    "caution": "advisory",
}


def interpenetrating(
    pairs: Sequence[tuple[geo.Volume4D, geo.Volume4D]], hits: Sequence[tuple[Any, Overlap]]
) -> list[bool]:
    """For each conflicting pair: do the volumes share airspace at the same time, not merely
    come within the minima (they still conflict with zero minima: touching edges, bands or
    windows do not count)? Decided in one batch for the pairs that touch horizontally."""
    touching = [n for n, (_, overlap) in enumerate(hits) if overlap.distance_m == 0.0]
    shared = [False] * len(pairs)
    verdicts = pairwise_conflicts([pairs[n] for n in touching], TOUCH)
    for n, verdict in zip(touching, verdicts, strict=True):
        shared[n] = verdict is not None
    return shared


_INSERT_CELLS = insert(t.volume_cells)


def index_volumes(
    conn: Connection,
    activity_id: int,
    plan_version: int,
    party: str,
    volumes: Sequence[geo.Volume4D],
    geometries: Sequence[dict[str, Any]],
) -> None:
    """Store a plan's volumes (``geometries``: their `volume_json`) and their cells, one
    statement each for the whole plan."""
    volume_ids = insert_returning_ids(
        conn,
        t.volumes,
        [
            {
                "activity_id": activity_id,
                "plan_version": plan_version,
                "idx": i,
                "party": party,
                "active": True,
                "lower_m": volume.altitude.lower_m,
                "upper_m": volume.altitude.upper_m,
                "start": volume.start,
                "end": volume.end,
                "geometry": geometry,
            }
            for i, (volume, geometry) in enumerate(zip(volumes, geometries, strict=True))
        ],
    )
    cells: list[dict[str, int]] = []
    for volume_id, volume in zip(volume_ids, volumes, strict=True):
        slot = time_slot(volume.start, volume.end)
        cells.extend(
            {"cell": cell, "slot": slot, "volume_id": volume_id}
            for cell in cells_covering(volume.footprint)
        )
    run_rows(conn, _INSERT_CELLS, cells)


def retire_volumes(conn: Connection, activity_id: int) -> None:
    """An amended or cancelled plan's volumes leave the index but stay on record."""
    retired = select(t.volumes.c.id).where(
        and_(t.volumes.c.activity_id == activity_id, t.volumes.c.active)
    )
    conn.execute(
        delete(t.volume_cells).where(t.volume_cells.c.volume_id.in_(retired.scalar_subquery()))
    )
    conn.execute(
        update(t.volumes).where(t.volumes.c.activity_id == activity_id).values(active=False)
    )
