"""Hotline API under /v1/hotline: messages, receipts, inbox, threads, ladders, channels.

Every write is the officer's signed statement (`Writer.write`), with the change in one transaction.
Statements: `message.send` (body: the request), `message.mark_read` / `message.acknowledge` (target:
the message id), `hotline.configure` (version: If-Match; body: {"party": CODE, "request": the
body}), `channel.configure` (version: If-Match), `channel.suspend`, `channel.resume` (body:
{"channel": "IL-TR", "request": the body}). A client that signs its own writes signs these.

Reading a message (inbox, one message, a thread) gives the delivered receipt of the reader's
party if it was not given yet. Messages are rendered in the reader's party's language unless
`?lang=` (en, tr, he, ar, az) asks for another.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from deconfliction.hotline import service
from deconfliction.hotline.models import (
    ChannelChangeIn,
    ChannelOut,
    ChannelSettingsIn,
    MessageIn,
    MessageOut,
    PartyConfigIn,
    PartyConfigOut,
    ThreadOut,
)
from deconfliction.http import (
    ActorDep,
    BodyWriterDep,
    ExpectedVersion,
    Services,
    ServicesDep,
    Writer,
    WriterDep,
    read,
    with_etag,
)
from deconfliction.parties.models import Actor
from deconfliction.store.db import transaction

router = APIRouter(prefix="/v1/hotline", tags=["hotline"])

Lang = Annotated[
    str | None,
    Query(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", description="en, tr, he, ar or az"),
]
T = TypeVar("T")


def _delivering(
    svc: Services, actor: Actor, fetch: Callable[[], T], ids: Callable[[T], list[int]]
) -> T:
    """Fetch; if that handed the reader's party messages it never got, give the delivered
    receipts (a write) and fetch again so that the answer shows them."""
    found = fetch()
    pending = ids(found)
    if not pending:
        return found
    with transaction(svc.engine, write=True) as conn:
        service.mark_delivered(conn, actor, pending, svc.clock())
    return fetch()


@router.post("/messages", status_code=201, response_model=MessageOut)
def send(message: MessageIn, w: BodyWriterDep, lang: Lang = None) -> JSONResponse:
    return w.write(
        "message.send",
        lambda conn, now: service.send(conn, w.actor, message, now, lang),
        subject="message",
        status=201,
    )


@router.get("/inbox", response_model=list[MessageOut])
def inbox(
    svc: ServicesDep,
    actor: ActorDep,
    pending: Annotated[bool, Query(description="only those not yet acknowledged")] = False,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    lang: Lang = None,
) -> list[MessageOut]:
    def fetch() -> list[MessageOut]:
        with read(svc) as conn:
            return service.inbox(
                conn,
                actor,
                svc.clock(),
                pending=pending,
                after=after,
                limit=limit,
                language=lang,
            )

    return _delivering(svc, actor, fetch, lambda found: service.undelivered(actor, found))


@router.get("/messages/{message_id}", response_model=MessageOut)
def get_message(
    message_id: int, svc: ServicesDep, actor: ActorDep, lang: Lang = None
) -> MessageOut:
    def fetch() -> MessageOut:
        with read(svc) as conn:
            return service.get_message(conn, actor, message_id, svc.clock(), lang)

    return _delivering(svc, actor, fetch, lambda found: service.undelivered(actor, [found]))


@router.post("/messages/{message_id}/read", response_model=MessageOut)
def read_message(message_id: int, w: WriterDep, lang: Lang = None) -> JSONResponse:
    return w.write(
        "message.mark_read",
        lambda conn, now: service.read(conn, w.actor, message_id, now, lang),
        subject="message",
        target=message_id,
    )


@router.post("/messages/{message_id}/acknowledge", response_model=MessageOut)
def acknowledge(message_id: int, w: WriterDep, lang: Lang = None) -> JSONResponse:
    return w.write(
        "message.acknowledge",
        lambda conn, now: service.acknowledge(conn, w.actor, message_id, now, lang),
        subject="message",
        target=message_id,
    )


@router.get("/threads", response_model=list[ThreadOut])
def list_threads(
    svc: ServicesDep,
    actor: ActorDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ThreadOut]:
    with read(svc) as conn:
        return service.list_threads(conn, actor, after=after, limit=limit)


@router.get("/threads/{thread_id}", response_model=ThreadOut)
def get_thread(thread_id: int, svc: ServicesDep, actor: ActorDep, lang: Lang = None) -> ThreadOut:
    def fetch() -> ThreadOut:
        with read(svc) as conn:
            return service.get_thread(conn, actor, thread_id, svc.clock(), lang)

    return _delivering(
        svc, actor, fetch, lambda found: service.undelivered(actor, found.messages or [])
    )


@router.get("/parties/{party}", response_model=PartyConfigOut)
def get_party_config(party: str, svc: ServicesDep, actor: ActorDep) -> JSONResponse:
    with read(svc) as conn:
        return with_etag(service.get_party_config(conn, actor, party))


@router.put("/parties/{party}", response_model=PartyConfigOut)
def set_party_config(
    party: str, config: PartyConfigIn, version: ExpectedVersion, w: BodyWriterDep
) -> JSONResponse:
    """Your party's time zone and escalation ladder (If-Match: the version read; "0" the first
    time). Messages already sent keep the ladder they were sent with."""
    return w.write(
        "hotline.configure",
        lambda conn, now: service.set_party_config(conn, w.actor, party, config, version, now),
        subject="hotline",
        version=version,
        statement_body={"party": party, "request": w.body},
    )


@router.get("/channels", response_model=list[ChannelOut])
def list_channels(svc: ServicesDep, actor: ActorDep) -> list[ChannelOut]:
    with read(svc) as conn:
        return service.list_channels(conn, actor)


@router.get("/channels/{pair}", response_model=ChannelOut)
def get_channel(pair: str, svc: ServicesDep, actor: ActorDep) -> JSONResponse:
    with read(svc) as conn:
        return with_etag(service.get_channel(conn, actor, pair))


@router.put("/channels/{pair}", response_model=ChannelOut)
def configure_channel(
    pair: str, settings: ChannelSettingsIn, version: ExpectedVersion, w: BodyWriterDep
) -> JSONResponse:
    """The pair's acknowledgement deadlines per priority and comms check interval."""
    return w.write(
        "channel.configure",
        lambda conn, now: service.configure_channel(conn, w.actor, pair, settings, version, now),
        subject="channel",
        version=version,
        statement_body={"channel": pair, "request": w.body},
    )


def _change(
    kind: Literal["suspend", "resume"], pair: str, change: ChannelChangeIn | None, w: Writer
) -> JSONResponse:
    reason = change.reason if change is not None else None
    use_case = service.suspend_channel if kind == "suspend" else service.resume_channel
    return w.write(
        f"channel.{kind}",
        lambda conn, now: use_case(conn, w.actor, pair, reason, now),
        subject="channel",
        statement_body={"channel": pair, "request": w.body},
    )


@router.post("/channels/{pair}/suspend", response_model=ChannelOut)
def suspend_channel(
    pair: str, w: BodyWriterDep, change: ChannelChangeIn | None = None
) -> JSONResponse:
    """Suspend the channel: no messages over it and no comms checks until it is resumed."""
    return _change("suspend", pair, change, w)


@router.post("/channels/{pair}/resume", response_model=ChannelOut)
def resume_channel(
    pair: str, w: BodyWriterDep, change: ChannelChangeIn | None = None
) -> JSONResponse:
    return _change("resume", pair, change, w)
