"""Conflicts API: list, get, acknowledge, accept."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from deconfliction.conflicts import service
from deconfliction.conflicts.models import ConflictOut, ConflictState
from deconfliction.http import ActorDep, ServicesDep, WriterDep, read

router = APIRouter(prefix="/v1/conflicts", tags=["conflicts"])


@router.get("", response_model=list[ConflictOut])
def list_conflicts(
    svc: ServicesDep,
    actor: ActorDep,
    state: ConflictState | None = None,
    party: str | None = None,
    activity: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    after: Annotated[int, Query(ge=0)] = 0,
) -> list[ConflictOut]:
    with read(svc) as conn:
        return service.list_conflicts(
            conn,
            actor,
            state=state,
            party=party,
            activity=activity,
            start=start,
            end=end,
            limit=limit,
            after=after,
        )


@router.get("/{conflict_id}", response_model=ConflictOut)
def get_conflict(conflict_id: int, svc: ServicesDep, actor: ActorDep) -> ConflictOut:
    with read(svc) as conn:
        return service.get(conn, actor, conflict_id)


@router.post("/{conflict_id}/acknowledge", response_model=ConflictOut)
def acknowledge(conflict_id: int, w: WriterDep) -> JSONResponse:
    return w.write(
        "conflict.acknowledge",
        lambda conn, now: service.acknowledge(conn, w.actor, conflict_id, now),
        subject="conflict",
        target=conflict_id,
    )


@router.post("/{conflict_id}/accept", response_model=ConflictOut)
def accept(conflict_id: int, w: WriterDep) -> JSONResponse:
    return w.write(
        "conflict.accept",
        lambda conn, now: service.accept(conn, w.actor, conflict_id, now),
        subject="conflict",
        target=conflict_id,
    )
