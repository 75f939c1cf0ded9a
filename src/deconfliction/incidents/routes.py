"""Incidents API: report, the lifecycle steps, evidence, list and get."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Connection

from deconfliction.http import (
    ActorDep,
    IdempotencyKey,
    RawBody,
    ServicesDep,
    SignatureDep,
    read,
    with_etag,
    write,
)
from deconfliction.incidents import service
from deconfliction.incidents.models import (
    DuplicateIn,
    EvidenceIn,
    FindingsIn,
    IncidentIn,
    IncidentOut,
    IncidentState,
    NoteIn,
)
from deconfliction.record.service import Statement

router = APIRouter(prefix="/v1/incidents", tags=["incidents"])
Step = Callable[[Connection, datetime], BaseModel]


@router.post("", status_code=201, response_model=IncidentOut)
def report(
    incident: IncidentIn,
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
        Statement("incident.report", body=body, signed=signed),
        lambda conn, now: service.report(conn, actor, incident, now),
        subject="incident",
        status=201,
    )


@router.get("", response_model=list[IncidentOut])
def list_incidents(
    svc: ServicesDep,
    actor: ActorDep,
    state: IncidentState | None = None,
    party: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[IncidentOut]:
    with read(svc) as conn:
        return service.list_incidents(conn, actor, state=state, party=party, start=start, end=end)


@router.get("/{incident_id}", response_model=IncidentOut)
def get_incident(incident_id: int, svc: ServicesDep, actor: ActorDep) -> JSONResponse:
    with read(svc) as conn:
        return with_etag(service.get(conn, actor, incident_id))


def _step(
    name: str,
    incident_id: int,
    svc: ServicesDep,
    actor: ActorDep,
    body: object,
    signed: SignatureDep,
    key: str | None,
    use_case: Step,
) -> JSONResponse:
    return write(
        svc,
        actor,
        key,
        Statement(f"incident.{name}", target=incident_id, body=body, signed=signed),
        use_case,
        subject="incident",
    )


@router.post("/{incident_id}/acknowledge", response_model=IncidentOut)
def acknowledge(
    incident_id: int,
    svc: ServicesDep,
    actor: ActorDep,
    body: RawBody,
    signed: SignatureDep,
    note: NoteIn | None = None,
    key: IdempotencyKey = None,
) -> JSONResponse:
    text = note.note if note else None
    return _step(
        "acknowledge",
        incident_id,
        svc,
        actor,
        body,
        signed,
        key,
        lambda conn, now: service.acknowledge(conn, actor, incident_id, text, now),
    )


@router.post("/{incident_id}/review", response_model=IncidentOut)
def start_review(
    incident_id: int,
    svc: ServicesDep,
    actor: ActorDep,
    body: RawBody,
    signed: SignatureDep,
    note: NoteIn | None = None,
    key: IdempotencyKey = None,
) -> JSONResponse:
    text = note.note if note else None
    return _step(
        "review",
        incident_id,
        svc,
        actor,
        body,
        signed,
        key,
        lambda conn, now: service.start_review(conn, actor, incident_id, text, now),
    )


@router.post("/{incident_id}/findings", response_model=IncidentOut)
def findings(
    incident_id: int,
    found: FindingsIn,
    svc: ServicesDep,
    actor: ActorDep,
    body: RawBody,
    signed: SignatureDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    return _step(
        "findings",
        incident_id,
        svc,
        actor,
        body,
        signed,
        key,
        lambda conn, now: service.record_findings(conn, actor, incident_id, found, now),
    )


@router.post("/{incident_id}/close", response_model=IncidentOut)
def close(
    incident_id: int,
    svc: ServicesDep,
    actor: ActorDep,
    body: RawBody,
    signed: SignatureDep,
    note: NoteIn | None = None,
    key: IdempotencyKey = None,
) -> JSONResponse:
    text = note.note if note else None
    return _step(
        "close",
        incident_id,
        svc,
        actor,
        body,
        signed,
        key,
        lambda conn, now: service.close(conn, actor, incident_id, text, now),
    )


@router.post("/{incident_id}/duplicate", response_model=IncidentOut)
def duplicate(
    incident_id: int,
    of: DuplicateIn,
    svc: ServicesDep,
    actor: ActorDep,
    body: RawBody,
    signed: SignatureDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    return _step(
        "duplicate",
        incident_id,
        svc,
        actor,
        body,
        signed,
        key,
        lambda conn, now: service.mark_duplicate(conn, actor, incident_id, of, now),
    )


@router.post("/{incident_id}/evidence", response_model=IncidentOut)
def add_evidence(
    incident_id: int,
    evidence: list[EvidenceIn],
    svc: ServicesDep,
    actor: ActorDep,
    body: RawBody,
    signed: SignatureDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    return _step(
        "evidence",
        incident_id,
        svc,
        actor,
        body,
        signed,
        key,
        lambda conn, now: service.add_evidence(conn, actor, incident_id, evidence, now),
    )
