"""Activities API: notify, list, get, versions, amend, cancel, acknowledge."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from deconfliction.activities import service
from deconfliction.activities.models import ActivityIn, ActivityOut, ActivityVersionOut, FiledOut
from deconfliction.conflicts.models import ProposedConflict
from deconfliction.http import (
    ActorDep,
    BodyWriterDep,
    ExpectedVersion,
    ServicesDep,
    WriterDep,
    read,
    with_etag,
)
from deconfliction.volumes import feature, feature_collection

router = APIRouter(prefix="/v1/activities", tags=["activities"])


@router.post("", status_code=201, response_model=FiledOut)
def notify(activity: ActivityIn, w: BodyWriterDep) -> JSONResponse:
    return w.write(
        "activity.notify",
        lambda conn, now: service.notify(conn, w.actor, activity, now, w.svc.index),
        subject="activity",
        status=201,
    )


@router.post("/check", response_model=list[ProposedConflict])
def check(activity: ActivityIn, svc: ServicesDep, actor: ActorDep) -> list[ProposedConflict]:
    """A dry run: the conflicts this plan would create, nothing stored."""
    with read(svc) as conn:
        return service.check(conn, actor, activity, svc.clock(), svc.index)


@router.get("", response_model=list[ActivityOut])
def list_activities(
    svc: ServicesDep,
    actor: ActorDep,
    party: str | None = None,
    state: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    after: Annotated[int, Query(ge=0)] = 0,
    format: Annotated[Literal["json", "geojson"], Query()] = "json",
) -> Any:
    with read(svc) as conn:
        found = service.list_activities(
            conn,
            actor,
            svc.clock(),
            party=party,
            state=state,
            start=start,
            end=end,
            limit=limit,
            after=after,
        )
    if format == "geojson":
        return JSONResponse(
            feature_collection([f for a in found for f in activity_features(a)]),
            media_type="application/geo+json",
        )
    return found


def activity_features(activity: ActivityOut) -> list[dict[str, Any]]:
    """One Feature per volume, carrying the activity's identity and the volume's band and time."""
    base = activity.model_dump(mode="json", exclude={"volumes", "route", "acknowledgements"})
    return [
        feature(
            volume, {**base, "volume": i, "altitude": volume["altitude"], "time": volume["time"]}
        )
        for i, volume in enumerate(activity.volumes)
    ]


@router.get("/{activity_id}", response_model=ActivityOut)
def get_activity(activity_id: int, svc: ServicesDep, actor: ActorDep) -> JSONResponse:
    with read(svc) as conn:
        return with_etag(service.get(conn, actor, activity_id, svc.clock()))


@router.get("/{activity_id}/versions", response_model=list[ActivityVersionOut])
def versions(activity_id: int, svc: ServicesDep, actor: ActorDep) -> list[ActivityVersionOut]:
    with read(svc) as conn:
        return service.versions(conn, actor, activity_id)


@router.put("/{activity_id}", response_model=FiledOut)
def amend(
    activity_id: int, activity: ActivityIn, w: BodyWriterDep, version: ExpectedVersion
) -> JSONResponse:
    return w.write(
        "activity.amend",
        lambda conn, now: service.amend(
            conn, w.actor, activity_id, activity, version, now, w.svc.index
        ),
        subject="activity",
        target=activity_id,
        version=version,
    )


@router.post("/{activity_id}/cancel", response_model=ActivityOut)
def cancel(activity_id: int, w: WriterDep, version: ExpectedVersion) -> JSONResponse:
    return w.write(
        "activity.cancel",
        lambda conn, now: service.cancel(conn, w.actor, activity_id, version, now),
        subject="activity",
        target=activity_id,
        version=version,
    )


@router.post("/{activity_id}/acknowledge", response_model=ActivityOut)
def acknowledge(activity_id: int, w: WriterDep) -> JSONResponse:
    return w.write(
        "activity.acknowledge",
        lambda conn, now: service.acknowledge(conn, w.actor, activity_id, now),
        subject="activity",
        target=activity_id,
    )
