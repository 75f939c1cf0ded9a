"""What every router shares: the services on the app, the caller's identity, write helpers.

The caller's party and role come from the bearer token only. Writes go through
`record.service.perform_write`, which gives every write idempotency and one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Connection, Engine

from deconfliction.conflicts.detection import CellIndex
from deconfliction.errors import Invalid, PreconditionRequired, Unauthorized
from deconfliction.ledger.canonical import parse_json
from deconfliction.ledger.errors import LedgerError
from deconfliction.parties.models import Actor
from deconfliction.parties.service import authenticate
from deconfliction.record.service import (
    ClientSignature,
    Statement,
    perform_write,
    receipt_header,
)
from deconfliction.store.db import transaction

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    engine: Engine
    clock: Clock
    index: CellIndex  # where detection finds candidate volumes


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


ServicesDep = Annotated[Services, Depends(services)]


def current_actor(svc: ServicesDep, authorization: Annotated[str | None, Header()] = None) -> Actor:
    if authorization is None:
        raise Unauthorized("missing Authorization header; send 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'")
    with transaction(svc.engine, write=False) as conn:
        return authenticate(conn, token.strip(), svc.clock())


ActorDep = Annotated[Actor, Depends(current_actor)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


def expected_version(if_match: Annotated[str | None, Header(alias="If-Match")] = None) -> int:
    """The version a change applies to, from `If-Match: "3"` (the ETag of the last read)."""
    if if_match is None:
        raise PreconditionRequired("send If-Match with the ETag (version) you are changing")
    raw = if_match.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        raise Invalid(f'If-Match must be a version ETag such as "3", not {if_match!r}')
    return int(raw)


ExpectedVersion = Annotated[int, Depends(expected_version)]


def read(svc: Services) -> Any:
    return transaction(svc.engine, write=False)


async def raw_body(request: Request) -> Any:
    """The request body as the client sent it: what the officer's statement carries."""
    raw = await request.body()
    if not raw:
        return None
    try:
        return parse_json(raw)
    except (LedgerError, ValueError) as exc:
        raise Invalid(f"body is not strict JSON: {exc}") from exc


def client_signature(
    header: Annotated[str | None, Header(alias="Deconfliction-Signature")] = None,
) -> ClientSignature | None:
    return None if header is None else ClientSignature.parse(header)


RawBody = Annotated[Any, Depends(raw_body)]
SignatureDep = Annotated[ClientSignature | None, Depends(client_signature)]


def write(
    svc: Services,
    actor: Actor,
    key: str | None,
    statement: Statement,
    use_case: Callable[[Connection, datetime], BaseModel],
    subject: str,
    status: int = 200,
) -> JSONResponse:
    """Run a write use case once (idempotently) and answer with its model, ETag and receipt.

    `subject` names what the write is about, `activity` for instance: the statement's subject
    becomes `activity/<id>` of the answer.
    """
    now = svc.clock()

    def run(conn: Connection) -> tuple[int, dict[str, Any]]:
        return status, use_case(conn, now).model_dump(mode="json")

    code, body, receipt = perform_write(
        svc.engine, actor, key, statement, run, lambda b: f"{subject}/{b['id']}", now
    )
    headers = {"Deconfliction-Receipt": receipt_header(receipt)}
    if "version" in body:
        headers["ETag"] = f'"{body["version"]}"'
    return JSONResponse(body, status_code=code, headers=headers)


def with_etag(model: BaseModel) -> JSONResponse:
    body = model.model_dump(mode="json")
    return JSONResponse(body, headers={"ETag": f'"{body["version"]}"'})
