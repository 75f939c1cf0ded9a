"""Strategic detection inside the notify/amend transaction: the pure engine tied to storage.

Candidates come from an index (the SQL cell index on any database, or the in-memory index on the
single-writer SQLite), then every candidate is decided exactly by `detect.strategic.conflict`.

Race-freedom: on PostgreSQL a writer takes a transaction-scoped advisory lock on every grid cell
that its volumes, grown by the largest horizontal minimum, touch, before it reads candidates; two
volumes within the minimum of each other always share such a cell, so of two concurrent writers
the second waits for the first to commit and then sees its volumes. On SQLite every write
transaction starts with BEGIN IMMEDIATE, so writers are serialised anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import shapely
from sqlalchemy import Connection, and_, delete, func, insert, select, text, update

from deconfliction import geo
from deconfliction.conflicts.models import OverlapOut, Severity, SideOut
from deconfliction.detect.cells import cells_covering
from deconfliction.detect.index import VolumeIndex
from deconfliction.detect.strategic import Overlap, SeparationMinima, conflict
from deconfliction.parties.models import MinimaConfig
from deconfliction.store import tables as t
from deconfliction.volumes import volume_from_json, volume_json
from deconfliction.zones.models import ZoneOut
from deconfliction.zones.service import zone_volume

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
        region = shapely.union_all([o.region for o in self.overlaps])
        return OverlapOut(
            region=geo.footprint_to_geojson(_polygonal(region)),
            lower_m=min(o.lower_m for o in self.overlaps),
            upper_m=max(o.upper_m for o in self.overlaps),
            start=min(o.start for o in self.overlaps),
            end=max(o.end for o in self.overlaps),
            distance_m=min(o.distance_m for o in self.overlaps),
        )


def _polygonal(geom: Any) -> Any:
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
        buffer = timedelta(seconds=reach.time_buffer_s)
        cells = sorted(
            {c for v in volumes for c in cells_covering(v.footprint, reach.horizontal_m)}
        )
        start = min(v.start for v in volumes) - buffer
        end = max(v.end for v in volumes) + buffer
        ids = select(t.volume_cells.c.volume_id).where(t.volume_cells.c.cell.in_(cells))
        rows = conn.execute(
            select(t.volumes)
            .where(
                t.volumes.c.id.in_(ids.scalar_subquery()),
                t.volumes.c.active,
                t.volumes.c.party != party,
                t.volumes.c.end > start,
                t.volumes.c.start < end,
            )
            .order_by(t.volumes.c.id)
        ).all()
        return [_stored(r) for r in rows]


class MemoryIndex(CellIndex):
    """The hot path on SQLite: an in-memory index of the stored volumes, built from the database
    on start and caught up before every query.

    Only for a single writer (SQLite): volume ids then grow in commit order, so reading the rows
    above the last id seen is an exact catch-up. Volumes retired since (amended or cancelled
    plans) are dropped when a query meets them. Other databases use the cell index in SQL.
    """

    def __init__(self) -> None:
        self.index = VolumeIndex()
        self.stored: dict[int, StoredVolume] = {}
        self.last_id = 0
        self.lock = threading.Lock()

    def build(
        self, conn: Connection, now: datetime, horizon: timedelta = timedelta(days=1)
    ) -> None:
        """Load every active volume that can still meet a new one (ends after now - horizon)."""
        with self.lock:
            self.last_id = int(conn.execute(select(func.max(t.volumes.c.id))).scalar() or 0)
            rows = conn.execute(
                select(t.volumes).where(
                    t.volumes.c.active,
                    t.volumes.c.end > now - horizon,
                    t.volumes.c.id <= self.last_id,
                )
            ).all()
            self._add([_stored(r) for r in rows])

    def _add(self, volumes: list[StoredVolume]) -> None:
        self.index.add_many((v.id, v.party, v.volume) for v in volumes)
        self.stored.update((v.id, v) for v in volumes)

    def candidates(
        self,
        conn: Connection,
        party: str,
        volumes: Sequence[geo.Volume4D],
        reach: SeparationMinima,
        now: datetime,
    ) -> list[StoredVolume]:
        with self.lock:
            new = conn.execute(
                select(t.volumes).where(t.volumes.c.id > self.last_id).order_by(t.volumes.c.id)
            ).all()
            if new:
                self.last_id = int(new[-1].id)
                self._add([_stored(r) for r in new if r.active])
            keys = sorted(
                {k for ks in self.index.candidates_many(volumes, reach, party) for k in ks}
            )
            if not keys:
                return []
            alive = set(
                conn.execute(
                    select(t.volumes.c.id).where(t.volumes.c.id.in_(keys), t.volumes.c.active)
                ).scalars()
            )
            for key in set(keys) - alive:
                self.index.remove(key)
                del self.stored[key]
            return [self.stored[k] for k in keys if k in alive]


def _stored(row: Any) -> StoredVolume:
    return StoredVolume(
        row.id, row.activity_id, row.plan_version, row.party, volume_from_json(row.geometry)
    )


def lock_cells(conn: Connection, volumes: Sequence[geo.Volume4D], reach_m: float) -> None:
    """Serialise writers per touched cell (PostgreSQL); SQLite's single writer needs nothing."""
    if conn.dialect.name != "postgresql":
        return
    cells = sorted({c for v in volumes for c in cells_covering(v.footprint, reach_m)})
    for cell in cells:  # in one global order, so two writers never deadlock
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:ns, :cell)"), {"ns": LOCK_NAMESPACE, "cell": cell}
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
    reach = policy.reach
    for stored in index.candidates(conn, party, volumes, reach, now):
        for i, volume in enumerate(volumes):
            overlap = conflict(volume, stored.volume, policy.for_pair(volume, stored.volume))
            if overlap is None:
                continue
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
            if _interpenetrate(volume, stored.volume, overlap):
                finding.severity = "high"
    for zone in zones:
        if zone.owner == party:
            continue
        zone_vol = zone_volume(zone)
        for i, volume in enumerate(volumes):
            minima = TOUCH if zone.rule == "notify" else policy.for_pair(volume, zone_vol)
            overlap = conflict(volume, zone_vol, minima)
            if overlap is None:
                continue
            if zone.rule == "notify":
                assert zone.lead_time_s is not None
                if (overlap.start - now).total_seconds() >= zone.lead_time_s:
                    continue
            key = ("zone", zone.id)
            if key not in found:
                found[key] = Finding(
                    "zone", _ZONE_SEVERITY[zone.rule], SideOut(party=zone.owner, zone=zone.id)
                )
            found[key].overlaps.append(overlap)
            found[key].volume_indices.add(i)
    return list(found.values())


_ZONE_SEVERITY: dict[str, Severity] = {
    "no_entry": "high",
    "notify": "medium",
    "caution": "advisory",
}


def _interpenetrate(a: geo.Volume4D, b: geo.Volume4D, overlap: Overlap) -> bool:
    """The volumes share airspace at the same time, not merely within the minima: they still
    conflict with zero minima (touching edges, bands or windows do not count)."""
    return overlap.distance_m == 0.0 and conflict(a, b, TOUCH) is not None


def index_volumes(
    conn: Connection,
    activity_id: int,
    plan_version: int,
    party: str,
    volumes: Sequence[geo.Volume4D],
) -> None:
    for i, volume in enumerate(volumes):
        volume_id = conn.execute(
            insert(t.volumes).values(
                activity_id=activity_id,
                plan_version=plan_version,
                idx=i,
                party=party,
                active=True,
                lower_m=volume.altitude.lower_m,
                upper_m=volume.altitude.upper_m,
                start=volume.start,
                end=volume.end,
                geometry=volume_json(volume),
            )
        ).inserted_primary_key
        assert volume_id is not None
        conn.execute(
            insert(t.volume_cells),
            [
                {"cell": cell, "volume_id": volume_id[0]}
                for cell in cells_covering(volume.footprint)
            ],
        )


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
