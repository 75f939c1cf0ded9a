"""The record API: entries, proofs, checkpoints with cosignatures, the export, the trust anchors."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from deconfliction.errors import Invalid, NotFound
from deconfliction.http import ActorDep, ServicesDep, read
from deconfliction.record import checkpoints, log
from deconfliction.record.keys import trust
from deconfliction.record.reading import export_for, list_entries
from deconfliction.store.db import transaction

router = APIRouter(prefix="/v1/ledger", tags=["record"])


@router.get("/entries")
def entries(
    svc: ServicesDep,
    actor: ActorDep,
    start: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    with read(svc) as conn:
        return list_entries(conn, actor, start, start + limit)


@router.get("/entries/{index}")
def entry(index: int, svc: ServicesDep, actor: ActorDep) -> dict[str, Any]:
    with read(svc) as conn:
        found = list_entries(conn, actor, index, index + 1)
    if not found:
        raise NotFound(f"no entry {index}")
    return found[0]


class ProofOut(BaseModel):
    size: int
    root: str  # base64
    proof: list[str]  # base64 hashes, RFC 9162 order
    index: int | None = None
    old_size: int | None = None


def _b64(values: list[bytes]) -> list[str]:
    return [base64.b64encode(v).decode() for v in values]


@router.get("/proof/inclusion", response_model=ProofOut)
def inclusion(
    svc: ServicesDep,
    actor: ActorDep,
    index: Annotated[int, Query(ge=0)],
    size: Annotated[int, Query(ge=1)],
) -> ProofOut:
    with read(svc) as conn:
        _within(conn, size)
        if index >= size:
            raise Invalid(f"index {index} is not in a tree of size {size}")
        return ProofOut(
            size=size,
            root=base64.b64encode(log.root(conn, size)).decode(),
            index=index,
            proof=_b64(log.inclusion(conn, index, size)),
        )


@router.get("/proof/consistency", response_model=ProofOut)
def consistency(
    svc: ServicesDep,
    actor: ActorDep,
    old: Annotated[int, Query(ge=0)],
    new: Annotated[int, Query(ge=0)],
) -> ProofOut:
    with read(svc) as conn:
        _within(conn, new)
        if old > new:
            raise Invalid(f"old size {old} is larger than new size {new}")
        return ProofOut(
            size=new,
            old_size=old,
            root=base64.b64encode(log.root(conn, new)).decode(),
            proof=_b64(log.consistency(conn, old, new)),
        )


def _within(conn: Any, tree_size: int) -> None:
    current = log.size(conn)
    if tree_size > current:
        raise Invalid(f"the log has {current} entries, not {tree_size}")


@router.get("/checkpoint", response_class=PlainTextResponse)
def latest_checkpoint(svc: ServicesDep, actor: ActorDep) -> str:
    """The newest signed checkpoint, with the cosignatures it has (the server signs one every
    few seconds when the log grew)."""
    with read(svc) as conn:
        return checkpoints.latest(conn)


@router.post("/checkpoint", response_class=PlainTextResponse)
def sign_checkpoint(svc: ServicesDep, actor: ActorDep) -> str:
    """Sign a checkpoint of the log as it is now, unless the newest one covers it, and return
    it: for a client that must cosign or verify up to its own write without waiting."""
    try:
        with transaction(svc.engine, write=True) as conn:
            return log.checkpoint(conn, svc.clock())
    except IntegrityError:
        # Another server signed this size at the same moment: that checkpoint serves.
        with read(svc) as conn:
            return checkpoints.latest(conn)


class CosignIn(BaseModel):
    signature: str  # one signed-note signature line: "— <name> <base64>"


@router.post("/checkpoints/{size}/cosign", response_class=PlainTextResponse)
def cosign(size: int, body: CosignIn, svc: ServicesDep, actor: ActorDep) -> str:
    """Add a party's cosignature (by its root key) to the checkpoint of that size."""
    with transaction(svc.engine, write=True) as conn:
        return checkpoints.add_cosignature(conn, actor, size, body.signature)


@router.get("/trust")
def trust_anchors(svc: ServicesDep, actor: ActorDep) -> dict[str, Any]:
    with read(svc) as conn:
        return trust(conn)


@router.get("/export")
def export(svc: ServicesDep, actor: ActorDep) -> StreamingResponse:
    """The whole log as JSON Lines, payloads you may not read redacted to their hash."""

    def lines() -> Iterator[str]:
        with read(svc) as conn:
            for record in export_for(conn, actor):
                yield json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"

    return StreamingResponse(lines(), media_type="application/jsonl")
