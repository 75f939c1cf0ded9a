"""What every router shares: the services on the app, the caller's identity, write helpers.

The caller's party and role come from the bearer token only. Writes go through
`record.service.perform_write`, which gives every write idempotency and one transaction.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool

from deconfliction.conflicts.detection import CellIndex
from deconfliction.errors import Invalid, PreconditionRequired, Problem, Unauthorized
from deconfliction.ledger.canonical import parse_json
from deconfliction.ledger.errors import LedgerError
from deconfliction.parties.models import Actor
from deconfliction.parties.service import authenticate, token_hash
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


class TooManyRequests(Problem):
    status = 429
    title = "Too many requests"


class RateLimit:
    """Requests per token: a token bucket of `burst` requests refilled at `per_s` a second.

    Kept in the process (each replica limits on its own) on the monotonic clock, not the
    app's clock: a request rate is about real time even when the app's clock is simulated.
    Buckets are keyed by the token's hash and the least recently used are forgotten past
    `max_tokens`, so a flood of made-up tokens cannot grow memory.
    """

    def __init__(self, per_s: float, burst: float, max_tokens: int = 10_000) -> None:
        if per_s <= 0 or burst < 1:
            raise ValueError("a rate limit needs per_s > 0 and burst >= 1")
        self.per_s = per_s
        self.burst = burst
        self.max_tokens = max_tokens
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # (level, at)
        self._lock = threading.Lock()  # sync routes run in a thread pool

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> RateLimit:
        """DECONFLICTION_RATE_PER_S (default 1000) and DECONFLICTION_RATE_BURST (default 2000).

        The defaults sit above the load benchmarks' anchors (500 messages/s from one token);
        a deployment sets what its clients need (an officer's console: a few a second)."""
        try:
            return cls(
                float(env.get("DECONFLICTION_RATE_PER_S", "1000")),
                float(env.get("DECONFLICTION_RATE_BURST", "2000")),
            )
        except ValueError as exc:
            raise Invalid(f"DECONFLICTION_RATE_PER_S / _BURST: {exc}") from exc

    def take(self, token: str, now: float | None = None) -> None:
        """Spend one request of the token's bucket, or raise 429 with the wait in seconds."""
        at = time.monotonic() if now is None else now
        key = token_hash(token)
        with self._lock:
            level, since = self._buckets.pop(key, (self.burst, at))
            level = min(self.burst, level + (at - since) * self.per_s)
            if level < 1:
                self._buckets[key] = (level, at)
                wait = math.ceil((1 - level) / self.per_s)
                raise TooManyRequests(
                    f"more than {self.per_s:g} requests a second (bursts of {self.burst:g}) "
                    f"with this token; retry after {wait} s",
                    retry_after_s=wait,
                )
            self._buckets[key] = (level - 1, at)
            while len(self._buckets) > self.max_tokens:
                self._buckets.popitem(last=False)


@dataclass
class Services:
    engine: Engine
    clock: Clock
    index: CellIndex  # where detection finds candidate volumes
    rate_limit: RateLimit = field(default_factory=RateLimit.from_env)
    # Where the event loop reads a request's token itself (`store.db.loop_engine`), or None.
    loop_reads: Engine | None = None

    async def authenticate(self, token: str) -> Actor:
        """The token's actor, read on the event loop where that is cheap and never waits (every
        request pays a hop to a worker thread otherwise), else in a worker thread."""
        if self.loop_reads is not None:
            # One SELECT on the driver, a read transaction of its own (no BEGIN needed).
            with self.loop_reads.connect() as conn:
                return authenticate(conn, token, self.clock())
        return await run_in_threadpool(self._authenticate, token)

    def _authenticate(self, token: str) -> Actor:
        with transaction(self.engine, write=False) as conn:
            return authenticate(conn, token, self.clock())


# The dependencies that do no I/O are `async def`: FastAPI runs a plain `def` dependency in the
# thread pool, a hop that costs more CPU than their work.


async def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


ServicesDep = Annotated[Services, Depends(services)]


async def current_actor(
    svc: ServicesDep, authorization: Annotated[str | None, Header()] = None
) -> Actor:
    if authorization is None:
        raise Unauthorized("missing Authorization header; send 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'")
    svc.rate_limit.take(token.strip())  # before the database: a flood costs it nothing
    return await svc.authenticate(token.strip())


ActorDep = Annotated[Actor, Depends(current_actor)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


async def expected_version(if_match: Annotated[str | None, Header(alias="If-Match")] = None) -> int:
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


async def client_signature(
    header: Annotated[str | None, Header(alias="Deconfliction-Signature")] = None,
) -> ClientSignature | None:
    return None if header is None else ClientSignature.parse(header)


RawBody = Annotated[Any, Depends(raw_body)]
SignatureDep = Annotated[ClientSignature | None, Depends(client_signature)]


class OrjsonResponse(JSONResponse):
    """A JSON answer written by orjson: a write's answer carries every conflict's region, which
    the standard encoder writes several times slower."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


@dataclass(frozen=True)
class Writer:
    """What every write route needs: the services, the caller, the client's signature, the
    idempotency key and, for routes whose statement carries it, the body as it was sent."""

    svc: Services
    actor: Actor
    signed: ClientSignature | None
    key: str | None
    body: Any = None

    def write(
        self,
        kind: str,
        use_case: Callable[[Connection, datetime], BaseModel],
        subject: str,
        *,
        target: int | None = None,
        version: int | None = None,
        statement_body: Any = None,
        status: int = 200,
    ) -> JSONResponse:
        """Run a write use case once (idempotently) and answer with its model, ETag and receipt.

        The statement says `kind` about `target` (at `version`) with the raw body, or with
        `statement_body` when the route wraps the body (the hotline names the party or channel).
        `subject` names what the write is about, `activity` for instance: the statement's
        subject becomes `activity/<id>` of the answer, or `subject` itself when the answer has
        no id (`zone/import`: many zones at once).
        """
        statement = Statement(
            kind,
            target=target,
            version=version,
            body=self.body if statement_body is None else statement_body,
            signed=self.signed,
        )
        now = self.svc.clock()

        def run(conn: Connection) -> tuple[int, dict[str, Any]]:
            return status, use_case(conn, now).model_dump(mode="json")

        code, body, receipt = perform_write(
            self.svc.engine,
            self.actor,
            self.key,
            statement,
            run,
            lambda b: f"{subject}/{b['id']}" if "id" in b else subject,
            now,
        )
        headers = {"Deconfliction-Receipt": receipt_header(receipt)}
        if "version" in body:
            headers["ETag"] = f'"{body["version"]}"'
        return OrjsonResponse(body, status_code=code, headers=headers)


async def writer(
    svc: ServicesDep, actor: ActorDep, signed: SignatureDep, key: IdempotencyKey = None
) -> Writer:
    """For writes whose statement has no body (cancel, consent, ...): a body sent is ignored."""
    return Writer(svc, actor, signed, key)


async def body_writer(
    svc: ServicesDep,
    actor: ActorDep,
    body: RawBody,
    signed: SignatureDep,
    key: IdempotencyKey = None,
) -> Writer:
    """For writes whose statement carries the request body as the client sent it."""
    return Writer(svc, actor, signed, key, body)


WriterDep = Annotated[Writer, Depends(writer)]
BodyWriterDep = Annotated[Writer, Depends(body_writer)]


def with_etag(model: BaseModel) -> JSONResponse:
    body = model.model_dump(mode="json")
    return OrjsonResponse(body, headers={"ETag": f'"{body["version"]}"'})
