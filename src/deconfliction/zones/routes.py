"""Zones API: declare, list, get, consent, withdraw; GeoJSON out with ?format=geojson."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from deconfliction.http import (
    ActorDep,
    BodyWriterDep,
    ExpectedVersion,
    ServicesDep,
    WriterDep,
    read,
)
from deconfliction.volumes import feature, feature_collection
from deconfliction.zones import service, transfer
from deconfliction.zones.formats import ExportFormat
from deconfliction.zones.models import ZoneIn, ZoneOut
from deconfliction.zones.transfer import ImportIn, ImportOut

router = APIRouter(prefix="/v1/zones", tags=["zones"])

Format = Annotated[Literal["json", "geojson"], Query()]


@router.post("", status_code=201, response_model=ZoneOut)
def declare(zone: ZoneIn, w: BodyWriterDep) -> JSONResponse:
    return w.write(
        "zone.declare",
        lambda conn, now: service.declare(conn, w.actor, zone, now),
        subject="zone",
        status=201,
    )


@router.get("", response_model=list[ZoneOut])
def list_zones(
    svc: ServicesDep,
    actor: ActorDep,
    owner: str | None = None,
    include_withdrawn: bool = False,
    active_at: datetime | None = None,
    format: Format = "json",
) -> Any:
    with read(svc) as conn:
        zones = service.list_zones(
            conn, actor, owner=owner, include_withdrawn=include_withdrawn, active_at=active_at
        )
    if format == "geojson":
        return JSONResponse(
            feature_collection([zone_feature(z) for z in zones]), media_type="application/geo+json"
        )
    return zones


def zone_feature(zone: ZoneOut) -> dict[str, Any]:
    props = zone.model_dump(mode="json", exclude={"footprint", "circle"})
    shape = {"footprint": zone.footprint} if zone.footprint else {"circle": zone.circle}
    return feature(shape, props)


@router.post("/import", response_model=ImportOut)
def import_zones(request: ImportIn, w: BodyWriterDep) -> JSONResponse:
    """Zones from a NOTAM, OpenAir, ED-269 or GeoJSON file: one signed statement, a fact per
    zone; ``dry_run`` answers what would change and writes nothing."""
    if request.dry_run:
        with read(w.svc) as conn:
            planned = transfer.import_zones(conn, w.actor, request, w.svc.clock())
        return JSONResponse(planned.model_dump(mode="json"))
    return w.write(
        "zone.import",
        lambda conn, now: transfer.import_zones(conn, w.actor, request, now),
        subject="zone/import",
    )


@router.get("/export")
def export_zones(
    svc: ServicesDep,
    actor: ActorDep,
    format: Annotated[ExportFormat, Query()] = "geojson",
    owner: str | None = None,
    active_at: datetime | None = None,
) -> Response:
    """The zones in force as GeoJSON, KML (Google Earth) or CoT drawings (TAK), one per line."""
    with read(svc) as conn:
        zones = service.list_zones(conn, actor, owner=owner, active_at=active_at)
    return Response(
        transfer.export_zones(zones, format, svc.clock()),
        media_type=transfer.EXPORT_MEDIA_TYPES[format],
    )


@router.get("/{zone_id}", response_model=ZoneOut)
def get_zone(zone_id: int, svc: ServicesDep, actor: ActorDep) -> JSONResponse:
    with read(svc) as conn:
        zone = service.get(conn, actor, zone_id)
    return JSONResponse(zone.model_dump(mode="json"), headers={"ETag": f'"{zone.version}"'})


@router.post("/{zone_id}/consent", response_model=ZoneOut)
def consent(zone_id: int, w: WriterDep) -> JSONResponse:
    return w.write(
        "zone.consent",
        lambda conn, now: service.consent(conn, w.actor, zone_id, now),
        subject="zone",
        target=zone_id,
    )


@router.post("/{zone_id}/withdraw", response_model=ZoneOut)
def withdraw(zone_id: int, w: WriterDep, version: ExpectedVersion) -> JSONResponse:
    return w.write(
        "zone.withdraw",
        lambda conn, now: service.withdraw(conn, w.actor, zone_id, version, now),
        subject="zone",
        target=zone_id,
        version=version,
    )
