"""Zones API: declare, list, get, consent, withdraw; GeoJSON out with ?format=geojson."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from deconfliction.http import (
    ActorDep,
    ExpectedVersion,
    IdempotencyKey,
    RawBody,
    ServicesDep,
    SignatureDep,
    read,
    write,
)
from deconfliction.record.service import Statement
from deconfliction.volumes import feature, feature_collection
from deconfliction.zones import service
from deconfliction.zones.models import ZoneIn, ZoneOut

router = APIRouter(prefix="/v1/zones", tags=["zones"])

Format = Annotated[Literal["json", "geojson"], Query()]


@router.post("", status_code=201, response_model=ZoneOut)
def declare(
    zone: ZoneIn,
    svc: ServicesDep,
    actor: ActorDep,
    body: RawBody,
    signed: SignatureDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    return write(
        svc,
        actor,
        key,
        Statement("zone.declare", body=body, signed=signed),
        lambda conn, now: service.declare(conn, actor, zone, now),
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


@router.get("/{zone_id}", response_model=ZoneOut)
def get_zone(zone_id: int, svc: ServicesDep, actor: ActorDep) -> JSONResponse:
    with read(svc) as conn:
        zone = service.get(conn, actor, zone_id)
    return JSONResponse(zone.model_dump(mode="json"), headers={"ETag": f'"{zone.version}"'})


@router.post("/{zone_id}/consent", response_model=ZoneOut)
def consent(
    zone_id: int,
    svc: ServicesDep,
    actor: ActorDep,
    signed: SignatureDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    return write(
        svc,
        actor,
        key,
        Statement("zone.consent", target=zone_id, signed=signed),
        lambda conn, now: service.consent(conn, actor, zone_id, now),
        subject="zone",
    )


@router.post("/{zone_id}/withdraw", response_model=ZoneOut)
def withdraw(
    zone_id: int,
    svc: ServicesDep,
    actor: ActorDep,
    version: ExpectedVersion,
    signed: SignatureDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    return write(
        svc,
        actor,
        key,
        Statement("zone.withdraw", target=zone_id, version=version, signed=signed),
        lambda conn, now: service.withdraw(conn, actor, zone_id, version, now),
        subject="zone",
    )
