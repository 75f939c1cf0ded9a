"""Who am I, and which parties share the area."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from deconfliction.http import ActorDep, ServicesDep, read
from deconfliction.parties.models import OfficerOut, PartyOut
from deconfliction.parties.service import get_officer, list_parties

router = APIRouter(prefix="/v1", tags=["parties"])


class Me(BaseModel):
    officer: OfficerOut
    party: PartyOut


@router.get("/me", response_model=Me)
def me(svc: ServicesDep, actor: ActorDep) -> Me:
    with read(svc) as conn:
        party = next(p for p in list_parties(conn) if p.code == actor.party)
        return Me(officer=get_officer(conn, actor.officer), party=party)


@router.get("/parties", response_model=list[PartyOut])
def parties(svc: ServicesDep, actor: ActorDep) -> list[PartyOut]:
    with read(svc) as conn:
        return list_parties(conn)
