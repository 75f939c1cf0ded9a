"""`deconfliction hotline send|inbox|read|ack|watch`: the hotline from a terminal.

Like the rest of the CLI it works on the database directly and acts as the officer of the token
(`--token` or DECONFLICTION_TOKEN); writes are the officer's statements, signed here with
`--key` or else by a server-held key. Bad input prints one line and exits with code 2.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from deconfliction.cli_support import (
    DbOption,
    JsonFlag,
    KeyOption,
    TokenOption,
    acting,
    fail,
    guarded,
    open_engine,
    said,
)
from deconfliction.hotline import service, templates
from deconfliction.hotline.models import MessageIn, MessageOut
from deconfliction.http import utc_now
from deconfliction.parties.models import Actor
from deconfliction.record.service import Statement
from deconfliction.store.db import transaction
from deconfliction.stream.service import StreamEvent, events_after, latest_id

hotline_app = typer.Typer(
    help="The hotline: typed messages with receipts, deadlines and escalation.",
    no_args_is_help=True,
)

LangOption = Annotated[
    str | None,
    typer.Option(
        "--lang", help="Render in this language (en, tr, he, ar, az); default: your party's."
    ),
]


def line(message: MessageOut) -> str:
    rendered = message.rendered
    sender = message.sender.party or "system"
    title = rendered.title if rendered else message.type
    text = message.text.content if message.text else (rendered.body if rendered else "")
    states = []
    for r in message.receipts:
        state = (
            "acknowledged"
            if r.acknowledged_at
            else "read"
            if r.read_at
            else "delivered"
            if r.delivered_at
            else "sent"
        )
        states.append(f"{r.party}:{state}{' OVERDUE' if r.overdue else ''}")
    return (
        f"{message.id}\t{message.priority}\t{sender}\t{' '.join(states)}\t"
        f"{message.created_at:%Y-%m-%d %H:%MZ}\t{title}: {text}"
    )


def show(message: MessageOut) -> str:
    rendered = message.rendered
    assert rendered is not None
    out = [
        f"[{rendered.priority}] {rendered.title} (message {message.id}, thread {message.thread})"
    ]
    out += [f"{f.label}: {f.value}" for f in rendered.fields]
    out.append(rendered.body)
    if rendered.text is not None:
        out.append(f"[{rendered.text.language}] {rendered.text.content}")
    return "\n".join(out)


def dump(items: list[MessageOut] | MessageOut) -> str:
    if isinstance(items, list):
        return json.dumps([i.model_dump(mode="json") for i in items], indent=2, ensure_ascii=False)
    return items.model_dump_json(indent=2)


@hotline_app.command("send")
def send(
    to: Annotated[
        list[str] | None, typer.Option("--to", help="A recipient party (repeat for several).")
    ] = None,
    text: Annotated[str | None, typer.Option("--text", help="Free text, sent as written.")] = None,
    language: Annotated[
        str | None, typer.Option("--language", help="The language of --text (default en).")
    ] = None,
    kind: Annotated[
        str, typer.Option("--type", help="notice, query, reply, warning, comms_check, ...")
    ] = "notice",
    priority: Annotated[
        str, typer.Option("--priority", help="ROUTINE, URGENT or FLASH.")
    ] = "ROUTINE",
    subject: Annotated[
        str | None, typer.Option("--subject", help="A new thread's subject.")
    ] = None,
    thread: Annotated[int | None, typer.Option("--thread", help="Send into this thread.")] = None,
    in_reply_to: Annotated[int | None, typer.Option("--in-reply-to")] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="A JSON message body (structured types); options override."),
    ] = None,
    db: DbOption = None,
    token: TokenOption = None,
    key: KeyOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Send a message: to parties in a new thread (--subject, --to) or into --thread."""

    def run() -> MessageOut:
        body: dict[str, Any] = {}
        if file is not None:
            loaded = json.loads(file.read_text(encoding="utf-8"))
            if not isinstance(loaded, dict):
                fail(f"{file}: not a JSON object")
            body = loaded
        given = {
            "type": kind if file is None or kind != "notice" else None,
            "priority": priority if file is None or priority != "ROUTINE" else None,
            "to": to or None,
            "text": text,
            "language": language or ("en" if text is not None else None),
            "subject": subject,
            "thread": thread,
            "in_reply_to": in_reply_to,
        }
        body.update({k: v for k, v in given.items() if v is not None})
        message = MessageIn.model_validate(body)
        return said(
            open_engine(db),
            token,
            key,
            Statement("message.send", body=body),
            lambda conn, actor, now: service.send(conn, actor, message, now),
        )

    sent = guarded(run)
    if as_json:
        typer.echo(dump(sent))
        return
    deadlines = ", ".join(f"{r.party} by {r.deadline_at:%Y-%m-%d %H:%M:%SZ}" for r in sent.receipts)
    typer.echo(f"sent message {sent.id} in thread {sent.thread}; acknowledgement due: {deadlines}")


@hotline_app.command("inbox")
def inbox(
    pending: Annotated[
        bool, typer.Option("--pending", help="Only messages your party has not acknowledged.")
    ] = False,
    db: DbOption = None,
    token: TokenOption = None,
    lang: LangOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Messages to your party, oldest first (fetching them gives the delivered receipts)."""

    def run() -> list[MessageOut]:
        engine = open_engine(db)

        def fetch() -> tuple[Actor, list[MessageOut]]:
            with acting(engine, token, write=False) as (conn, actor):
                found = service.inbox(
                    conn, actor, utc_now(), pending=pending, limit=1000, language=lang
                )
                return actor, found

        actor, found = fetch()
        waiting = service.undelivered(actor, found)
        if waiting:
            with acting(engine, token, write=True) as (conn, actor):
                service.mark_delivered(conn, actor, waiting, utc_now())
            actor, found = fetch()
        return found

    found = guarded(run)
    if as_json:
        typer.echo(dump(found))
        return
    if not found:
        typer.echo("no messages")
    for message in found:
        typer.echo(line(message))


@hotline_app.command("read")
def read(
    message_id: int,
    db: DbOption = None,
    token: TokenOption = None,
    key: KeyOption = None,
    lang: LangOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Show a message in your language; the first read by your party is its read receipt."""

    def run() -> MessageOut:
        engine = open_engine(db)
        with acting(engine, token, write=False) as (conn, actor):
            message = service.get_message(conn, actor, message_id, utc_now(), lang)
        mine = next((r for r in message.receipts if r.party == actor.party), None)
        if mine is None or mine.read_at is not None:
            return message
        return said(
            engine,
            token,
            key,
            Statement("message.mark_read", target=message_id),
            lambda conn, actor, now: service.read(conn, actor, message_id, now, lang),
        )

    message = guarded(run)
    typer.echo(dump(message) if as_json else show(message))


@hotline_app.command("ack")
def ack(
    message_id: int,
    db: DbOption = None,
    token: TokenOption = None,
    key: KeyOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Acknowledge a message to your party (stops its escalation)."""

    def run() -> MessageOut:
        return said(
            open_engine(db),
            token,
            key,
            Statement("message.acknowledge", target=message_id),
            lambda conn, actor, now: service.acknowledge(conn, actor, message_id, now),
        )

    message = guarded(run)
    if as_json:
        typer.echo(dump(message))
        return
    typer.echo(f"acknowledged message {message.id}")


def describe(event: StreamEvent, how: service.Reader, actor: Actor) -> str:
    payload = event.payload
    if event.kind == "message.sent":
        message = MessageOut.model_validate(payload["message"])
        rendered = templates.render(message, how.language, how.time_zone, actor.party)
        text = f" [{message.text.language}] {message.text.content}" if message.text else ""
        summary = f"[{rendered.priority}] {rendered.title}: {rendered.body}{text}"
    elif event.kind.startswith("message."):
        who = payload.get("officer") or ",".join(payload.get("officers", []))
        summary = f"message {payload.get('message')} {payload.get('party', '')} {who}".strip()
    else:
        summary = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"{event.id}\t{event.at:%Y-%m-%d %H:%M:%SZ}\t{event.kind}\t{summary}"


@hotline_app.command("watch")
def watch(
    after: Annotated[
        int | None,
        typer.Option("--after", help="Start after this event id (default: from now on)."),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Print what is there and exit, do not follow.")
    ] = False,
    poll: Annotated[float, typer.Option("--poll", help="Seconds between polls.")] = 0.5,
    db: DbOption = None,
    token: TokenOption = None,
    lang: LangOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Follow the events your party may see, one line each (messages get delivered)."""
    engine = guarded(lambda: open_engine(db))

    def start() -> tuple[Actor, service.Reader, int]:
        with acting(engine, token, write=False) as (conn, actor):
            return (
                actor,
                service.reader(conn, actor, lang),
                (latest_id(conn) if after is None else after),
            )

    actor, how, last = guarded(start)
    while True:
        with transaction(engine, write=False) as conn:
            events = events_after(conn, actor, last)
        for event in events:
            typer.echo(
                json.dumps(event.model_dump(mode="json"), ensure_ascii=False)
                if as_json
                else describe(event, how, actor)
            )
            last = event.id
        mine = [
            int(e.payload["message"]["id"])
            for e in events
            if e.kind == "message.sent" and actor.party in e.payload["message"].get("to", [])
        ]
        if mine:
            with transaction(engine, write=True) as conn:
                service.mark_delivered(conn, actor, mine, utc_now())
        if once and len(events) < 500:
            return
        if len(events) < 500:
            time.sleep(poll)
