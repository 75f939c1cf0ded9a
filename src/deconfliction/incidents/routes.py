"""Incidents API: report, the lifecycle steps, evidence, list and get."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Connection

from deconfliction.http import ActorDep, BodyWriterDep, ServicesDep, Writer, read, with_etag
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

router = APIRouter(prefix="/v1/incidents", tags=["incidents"])
Step = Callable[[Connection, datetime], BaseModel]


@router.post("", status_code=201, response_model=IncidentOut)
def report(incident: IncidentIn, w: BodyWriterDep) -> JSONResponse:
    return w.write(
        "incident.report",
        lambda conn, now: service.report(conn, w.actor, incident, now),
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


def _step(w: Writer, name: str, incident_id: int, use_case: Step) -> JSONResponse:
    """A lifecycle step: the statement `incident.<name>` about the incident, with the body."""
    return w.write(f"incident.{name}", use_case, subject="incident", target=incident_id)


def _note(note: NoteIn | None) -> str | None:
    return note.note if note else None


@router.post("/{incident_id}/acknowledge", response_model=IncidentOut)
def acknowledge(incident_id: int, w: BodyWriterDep, note: NoteIn | None = None) -> JSONResponse:
    return _step(
        w,
        "acknowledge",
        incident_id,
        lambda conn, now: service.acknowledge(conn, w.actor, incident_id, _note(note), now),
    )


@router.post("/{incident_id}/review", response_model=IncidentOut)
def start_review(incident_id: int, w: BodyWriterDep, note: NoteIn | None = None) -> JSONResponse:
    return _step(
        w,
        "review",
        incident_id,
        lambda conn, now: service.start_review(conn, w.actor, incident_id, _note(note), now),
    )


@router.post("/{incident_id}/findings", response_model=IncidentOut)
def findings(incident_id: int, found: FindingsIn, w: BodyWriterDep) -> JSONResponse:
    return _step(
        w,
        "findings",
        incident_id,
        lambda conn, now: service.record_findings(conn, w.actor, incident_id, found, now),
    )


@router.post("/{incident_id}/close", response_model=IncidentOut)
def close(incident_id: int, w: BodyWriterDep, note: NoteIn | None = None) -> JSONResponse:
    return _step(
        w,
        "close",
        incident_id,
        lambda conn, now: service.close(conn, w.actor, incident_id, _note(note), now),
    )


@router.post("/{incident_id}/duplicate", response_model=IncidentOut)
def duplicate(incident_id: int, of: DuplicateIn, w: BodyWriterDep) -> JSONResponse:
    return _step(
        w,
        "duplicate",
        incident_id,
        lambda conn, now: service.mark_duplicate(conn, w.actor, incident_id, of, now),
    )


@router.post("/{incident_id}/evidence", response_model=IncidentOut)
def add_evidence(incident_id: int, evidence: list[EvidenceIn], w: BodyWriterDep) -> JSONResponse:
    return _step(
        w,
        "evidence",
        incident_id,
        lambda conn, now: service.add_evidence(conn, w.actor, incident_id, evidence, now),
    )
