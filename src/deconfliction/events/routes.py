"""The event record of the caller's party (the mediator reads every party's)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from deconfliction.events.service import EventOut, list_events
from deconfliction.http import ActorDep, ServicesDep, read

router = APIRouter(prefix="/v1", tags=["events"])


@router.get("/events", response_model=list[EventOut])
def events(
    svc: ServicesDep,
    actor: ActorDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[EventOut]:
    with read(svc) as conn:
        return list_events(conn, actor, after, limit)
