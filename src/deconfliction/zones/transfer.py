"""Zone import and export use cases: files in the formats airspace people use, in and out.

An import is one write: the officer's signed statement carries the file as sent, and each zone
it declares, updates or withdraws is a fact of the log, all in one transaction. Records that
cannot be read are reported with their line or index and the reason, and the others imported;
a record is never half-imported (a NOTAMR whose new zone is refused leaves the old one). Each
zone keeps the id its record has in the source, and a hash of the record, so re-importing the
same file changes nothing, and a changed record replaces the zone it came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection, Row, select

from deconfliction.errors import Invalid
from deconfliction.parties.models import Actor
from deconfliction.parties.service import require_acting
from deconfliction.store import tables as t
from deconfliction.zones import service
from deconfliction.zones.formats import (
    READERS,
    Cancellation,
    ExportFormat,
    FormatError,
    ImportFormat,
    ZoneRecord,
    cot,
    geojson,
    kml,
)
from deconfliction.zones.formats.common import MAX_TEXT_BYTES
from deconfliction.zones.models import ZoneIn, ZoneOut

Action = Literal["declared", "updated", "unchanged", "withdrawn"]
EXPORT_FORMATS: dict[str, ExportFormat] = {"geojson": "geojson", "kml": "kml", "cot": "cot"}
EXPORT_MEDIA_TYPES: dict[str, str] = {
    "geojson": "application/geo+json",
    "kml": "application/vnd.google-earth.kml+xml",
    "cot": "application/xml",
}


class ImportIn(BaseModel):
    """The file as text and its format; ``dry_run`` shows what would change, writing nothing."""

    model_config = ConfigDict(extra="forbid")
    format: ImportFormat
    content: str = Field(max_length=MAX_TEXT_BYTES)
    dry_run: bool = False


class ImportedOut(BaseModel):
    where: str
    source: str
    action: Action
    zone: int | None  # None for a zone a dry run would declare
    name: str | None = None
    reason: str | None = None  # why a zone was withdrawn (replaced, cancelled, changed)


class RejectedOut(BaseModel):
    where: str
    reason: str


class ImportOut(BaseModel):
    format: ImportFormat
    dry_run: bool
    imported: list[ImportedOut]
    rejected: list[RejectedOut]


@dataclass
class _Plan:
    """What the file asks once replacements and cancellations inside it are applied."""

    zones: list[tuple[ZoneRecord, ZoneIn]]
    withdrawals: list[tuple[str, str, str]]  # (where, source to withdraw, why)
    rejected: list[RejectedOut]


def _plan(request: ImportIn, now: datetime) -> _Plan:
    try:
        parsed = READERS[request.format](request.content)
    except FormatError as exc:
        raise Invalid(f"not a {request.format} file: {exc}") from None
    rejected = [RejectedOut(where=e.where, reason=e.reason) for e in parsed.errors]
    latest: dict[str, ZoneRecord] = {}
    withdrawals: list[tuple[str, str, str]] = []
    for record in parsed.records:
        if isinstance(record, Cancellation):
            if latest.pop(record.cancels, None) is None:
                withdrawals.append(
                    (record.where, record.cancels, f"cancelled by {record.source_id}")
                )
            continue
        if record.replaces is not None and latest.pop(record.replaces, None) is None:
            withdrawals.append((record.where, record.replaces, f"replaced by {record.source_id}"))
        latest[record.source_id] = record
    zones: list[tuple[ZoneRecord, ZoneIn]] = []
    refused: set[str] = set()
    for record in latest.values():
        try:
            zone = ZoneIn.model_validate({"valid_from": now.isoformat(), **record.zone})
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            reason = str(first["msg"]).removeprefix("Value error, ")
            rejected.append(
                RejectedOut(where=record.where, reason=f"{field}: {reason}".lstrip(": "))
            )
            refused.add(record.source_id)
            continue
        if zone.valid_to is not None and zone.valid_to <= now:
            rejected.append(
                RejectedOut(
                    where=record.where,
                    reason=f"validity already over: valid_to {zone.valid_to.isoformat()}",
                )
            )
            refused.add(record.source_id)
            continue
        zones.append((record, zone))
    # A replacement that was refused must not take the old zone away.
    kept = {r.replaces for r, _ in zones if r.replaces is not None}
    withdrawals = [w for w in withdrawals if not w[2].startswith("replaced by ") or w[1] in kept]
    return _Plan(zones, withdrawals, rejected)


def _rows_by_source(conn: Connection, owner: str, sources: set[str]) -> dict[str, list[Row[Any]]]:
    found: dict[str, list[Row[Any]]] = {}
    listed = sorted(sources)
    for start in range(0, len(listed), 500):  # keep IN lists small for every database
        for row in conn.execute(
            select(t.zones)
            .where(t.zones.c.owner == owner, t.zones.c.source_id.in_(listed[start : start + 500]))
            .order_by(t.zones.c.id)
        ):
            found.setdefault(row.source_id, []).append(row)
    return found


def import_zones(conn: Connection, actor: Actor, request: ImportIn, now: datetime) -> ImportOut:
    """Import (or, with ``dry_run``, plan) the file as the actor's party's zones."""
    require_acting(actor)
    plan = _plan(request, now)
    if not plan.zones and not plan.withdrawals and plan.rejected:
        raise Invalid(
            f"nothing to import: {len(plan.rejected)} record(s) refused; first: "
            f"{plan.rejected[0].where}: {plan.rejected[0].reason}",
            rejected=[r.model_dump() for r in plan.rejected],
        )
    sources = {r.source_id for r, _ in plan.zones} | {w[1] for w in plan.withdrawals}
    rows = _rows_by_source(conn, actor.party, sources)
    dry = request.dry_run
    imported: list[ImportedOut] = []

    def withdraw(row: Row[Any], where: str, why: str) -> None:
        if not dry:
            service.withdraw(conn, actor, row.id, row.version, now)
        imported.append(
            ImportedOut(
                where=where, source=row.source_id, action="withdrawn", zone=row.id, reason=why
            )
        )

    for where, source, why in plan.withdrawals:
        for row in rows.get(source, []):
            if row.status != "withdrawn":
                withdraw(row, where, why)
    for record, zone in plan.zones:
        digest = record.content_hash
        earlier = rows.get(record.source_id, [])
        same = next((r for r in earlier if r.source_hash == digest), None)
        if same is not None:
            # Imported before as it is now (perhaps withdrawn since): nothing to do.
            imported.append(
                ImportedOut(
                    where=record.where,
                    source=record.source_id,
                    action="unchanged",
                    zone=same.id,
                    name=zone.name,
                )
            )
            continue
        active = [r for r in earlier if r.status != "withdrawn"]
        for row in active:
            withdraw(
                row, record.where, f"changed in the source: replaced by the new {record.source_id}"
            )
        made = (
            None
            if dry
            else service.declare(conn, actor, zone, now, source=(record.source_id, digest))
        )
        imported.append(
            ImportedOut(
                where=record.where,
                source=record.source_id,
                action="updated" if active else "declared",
                zone=made.id if made else None,
                name=zone.name,
            )
        )
    return ImportOut(format=request.format, dry_run=dry, imported=imported, rejected=plan.rejected)


def export_zones(zones: list[ZoneOut], format: ExportFormat, now: datetime) -> str:
    """The zones as a GeoJSON FeatureCollection, a KML document or CoT events (one a line)."""
    if format == "geojson":
        return json.dumps(geojson.write(zones), ensure_ascii=False)
    if format == "kml":
        return kml.write(zones)
    return cot.write(zones, now)
