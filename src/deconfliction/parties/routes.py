"""Who am I, which parties share the area, my party's officers, and revoking their tokens."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from deconfliction.http import ActorDep, ServicesDep, read
from deconfliction.parties.models import OfficerOut, OfficerTokensOut, PartyOut
from deconfliction.parties.service import (
    get_officer,
    list_parties,
    officers_with_tokens,
    revoke_officer_tokens,
)
from deconfliction.store.db import transaction

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


@router.get("/officers", response_model=list[OfficerTokensOut])
def officers(svc: ServicesDep, actor: ActorDep) -> list[OfficerTokensOut]:
    """The officers of your party, each with how many of their tokens still work."""
    with read(svc) as conn:
        return officers_with_tokens(conn, svc.clock(), actor.party)


class TokensRevokedOut(BaseModel):
    officer: str
    revoked: int  # tokens revoked now (0: none was left)


@router.post("/officers/{officer}/tokens/revoke", response_model=TokensRevokedOut)
def revoke_tokens(officer: str, svc: ServicesDep, actor: ActorDep) -> TokensRevokedOut:
    """Revoke every token of an officer of your party (a lost device, an officer leaving): a
    commander of the party, or the officer. Requests with them are refused at once; their open
    streams end within 30 s. The host can do it too: `deconfliction tokens revoke`."""
    with transaction(svc.engine, write=True) as conn:
        revoked = revoke_officer_tokens(conn, actor, officer, svc.clock())
    return TokensRevokedOut(officer=officer, revoked=revoked)
