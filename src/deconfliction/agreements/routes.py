"""Agreements API: rounds of talks, stated positions, commitments and consents, violations."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from deconfliction.agreements import service
from deconfliction.agreements.models import (
    CommitmentIn,
    CommitmentOut,
    PositionIn,
    PositionOut,
    RoundIn,
    RoundOut,
    ViolationOut,
)
from deconfliction.http import ActorDep, BodyWriterDep, ServicesDep, WriterDep, read, with_etag

router = APIRouter(prefix="/v1/agreements", tags=["agreements"])


@router.post("/rounds", status_code=201, response_model=RoundOut)
def record_round(round_in: RoundIn, w: BodyWriterDep) -> JSONResponse:
    return w.write(
        "round.record",
        lambda conn, now: service.record_round(conn, w.actor, round_in, now),
        subject="round",
        status=201,
    )


@router.get("/rounds", response_model=list[RoundOut])
def list_rounds(svc: ServicesDep, _actor: ActorDep) -> list[RoundOut]:
    with read(svc) as conn:
        return service.list_rounds(conn)


@router.get("/rounds/{round_id}", response_model=RoundOut)
def get_round(round_id: int, svc: ServicesDep, _actor: ActorDep) -> RoundOut:
    with read(svc) as conn:
        return service.get_round(conn, round_id)


@router.post("/rounds/{round_id}/positions", status_code=201, response_model=PositionOut)
def state_position(round_id: int, position: PositionIn, w: BodyWriterDep) -> JSONResponse:
    return w.write(
        "position.state",
        lambda conn, now: service.state_position(conn, w.actor, round_id, position, now),
        subject="position",
        target=round_id,
        status=201,
    )


@router.post("/commitments", status_code=201, response_model=CommitmentOut)
def propose(commitment: CommitmentIn, w: BodyWriterDep) -> JSONResponse:
    return w.write(
        "commitment.propose",
        lambda conn, now: service.propose(conn, w.actor, commitment, now),
        subject="commitment",
        status=201,
    )


@router.get("/commitments", response_model=list[CommitmentOut])
def list_commitments(
    svc: ServicesDep, _actor: ActorDep, status: str | None = None
) -> list[CommitmentOut]:
    with read(svc) as conn:
        return service.list_commitments(conn, status=status)


@router.get("/commitments/{commitment_id}", response_model=CommitmentOut)
def get_commitment(commitment_id: int, svc: ServicesDep, _actor: ActorDep) -> JSONResponse:
    with read(svc) as conn:
        return with_etag(service.get_commitment(conn, commitment_id))


@router.post("/commitments/{commitment_id}/consent", response_model=CommitmentOut)
def consent(commitment_id: int, w: WriterDep) -> JSONResponse:
    return w.write(
        "commitment.consent",
        lambda conn, now: service.consent(conn, w.actor, commitment_id, now),
        subject="commitment",
        target=commitment_id,
    )


@router.get("/violations", response_model=list[ViolationOut])
def list_violations(
    svc: ServicesDep,
    actor: ActorDep,
    party: str | None = None,
    commitment: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[ViolationOut]:
    with read(svc) as conn:
        return service.list_violations(
            conn, actor, party=party, start=start, end=end, commitment_id=commitment
        )
