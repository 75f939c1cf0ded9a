"""Hotline use cases: send, read, acknowledge; threads and inbox; ladders, channels, comms checks;
the escalation steps the scheduler runs; the thread a detected conflict opens.

Who sees a message: the sender's party, the recipient parties and the mediator (copied on every
message). Only a recipient party gives receipts: delivered (its client fetched the message, by the
inbox, the message or the stream), read, acknowledged; each once, with who and when, as a log
entry. Every change here runs in a write transaction that holds the log's lock (an officer's
statement takes it; the scheduler takes it first), so changes are serialised, the conditional
UPDATEs that claim timers are exact, and stream event ids follow commit order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, and_, bindparam, exists, insert, or_, select, update

from deconfliction.activities.visibility import readable_ids
from deconfliction.errors import Conflict, Forbidden, Invalid, NotFound
from deconfliction.hotline import templates
from deconfliction.hotline.models import (
    DEFAULT_COMMS_CHECK_EVERY_S,
    DEFAULT_DEADLINES_S,
    DEFAULT_LADDER,
    BandIn,
    ChannelOut,
    ChannelSettingsIn,
    MessageIn,
    MessageOut,
    PartyConfigIn,
    PartyConfigOut,
    PositionIn,
    ReceiptOut,
    RungIn,
    RungOut,
    SenderOut,
    ThreadOut,
    WarningIn,
    WindowIn,
)
from deconfliction.parties.models import Actor
from deconfliction.parties.service import OfficerInfo, PartyInfo, directory
from deconfliction.record import log
from deconfliction.record.service import record
from deconfliction.store import tables as t
from deconfliction.store.db import fetch_first, insert_row, run_rows
from deconfliction.stream.service import publish, publish_many
from deconfliction.tracks.models import AlertOut

INCIDENT_CLOCK_SKEW = timedelta(minutes=5)


# The statements of every message, built once: building one costs more than running it on SQLite.
_PARTY_CONFIG = select(t.hotline_parties).where(t.hotline_parties.c.party == bindparam("party"))
_PARTY_CONFIGS = select(t.hotline_parties).where(
    t.hotline_parties.c.party.in_(bindparam("parties", expanding=True))
)
_CHANNEL = select(t.hotline_channels).where(t.hotline_channels.c.pair == bindparam("pair"))
_INSERT_THREAD = insert(t.hotline_threads)
_INSERT_THREAD_PARTIES = insert(t.hotline_thread_parties)
_INSERT_MESSAGE = insert(t.hotline_messages)
_INSERT_RECIPIENTS = insert(t.hotline_recipients)
_TOUCH_THREAD = (
    update(t.hotline_threads)
    .where(t.hotline_threads.c.id == bindparam("thread"))
    .values(updated_at=bindparam("now"))
)
_SENDERS = select(t.hotline_messages.c.id, t.hotline_messages.c.sender_party).where(
    t.hotline_messages.c.id.in_(bindparam("ids", expanding=True))
)
_DELIVER = (
    update(t.hotline_recipients)
    .where(
        t.hotline_recipients.c.message_id.in_(bindparam("ids", expanding=True)),
        t.hotline_recipients.c.party == bindparam("reader"),
        t.hotline_recipients.c.delivered_at.is_(None),
    )
    .values(delivered_at=bindparam("now"), delivered_by=bindparam("officer"))
    .returning(t.hotline_recipients.c.message_id)
)
# --- helpers ----------------------------------------------------------------------------------


def pair_id(a: str, b: str) -> str:
    return "-".join(sorted((a, b)))


def parse_pair(pair: str) -> tuple[str, str]:
    a, sep, b = pair.partition("-")
    if not sep or not a or not b or a == b or "-" in b:
        raise NotFound(f"no channel {pair!r}: name it by two party codes, e.g. IL-TR")
    first, second = sorted((a, b))
    return first, second


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else log.rfc3339(moment)


def parties(conn: Connection) -> dict[str, PartyInfo]:
    return dict(directory(conn).parties)


def mediator_parties(conn: Connection) -> list[str]:
    return sorted(p.code for p in parties(conn).values() if p.kind == "mediator")


# --- party settings: time zone and ladder -----------------------------------------------------


def party_config(conn: Connection, party: str) -> PartyConfigOut:
    return _party_config(party, conn.execute(_PARTY_CONFIG, {"party": party}).first())


def party_configs(conn: Connection, wanted: Iterable[str]) -> dict[str, PartyConfigOut]:
    """`party_config` of several parties in one query."""
    parties = sorted(set(wanted))
    rows = {r.party: r for r in conn.execute(_PARTY_CONFIGS, {"parties": parties})}
    return {p: _party_config(p, rows.get(p)) for p in parties}


def _party_config(party: str, row: Row[Any] | None) -> PartyConfigOut:
    if row is None:
        return PartyConfigOut(
            id=party,
            party=party,
            time_zone="UTC",
            ladder=[RungIn.model_validate(r) for r in DEFAULT_LADDER],
            version=0,
            updated_at=None,
        )
    return PartyConfigOut(
        id=party,
        party=party,
        time_zone=row.time_zone,
        ladder=[RungIn.model_validate(r) for r in row.ladder],
        version=row.version,
        updated_at=row.updated_at,
    )


def get_party_config(conn: Connection, actor: Actor, party: str) -> PartyConfigOut:
    if party not in parties(conn):
        raise NotFound(f"unknown party {party}")
    if actor.party != party and not actor.sees_all_shared:
        raise Forbidden(f"{actor.party} reads its own hotline settings, not {party}'s")
    return party_config(conn, party)


def set_party_config(
    conn: Connection,
    actor: Actor,
    party: str,
    config: PartyConfigIn,
    expected_version: int,
    now: datetime,
) -> PartyConfigOut:
    log.lock(conn)
    known = parties(conn)
    if party not in known:
        raise NotFound(f"unknown party {party}")
    if actor.party != party:
        raise Forbidden(f"{actor.party} sets its own hotline settings, not {party}'s")
    current = party_config(conn, party)
    if current.version != expected_version:
        raise Conflict(
            f"hotline settings of {party} are at version {current.version}, not {expected_version}",
            current_version=current.version,
        )
    officers = {o.id: o.party for o in directory(conn).officers}
    for rung in config.ladder:
        for officer in rung.officers:
            owner = officers.get(officer)
            if owner is None:
                raise Invalid(f"ladder rung {rung.name}: unknown officer {officer}")
            if owner != party and known[owner].kind != "mediator":
                raise Invalid(
                    f"ladder rung {rung.name}: officer {officer} is of {owner}, "
                    f"neither {party} nor a mediator"
                )
    values = {
        "time_zone": config.time_zone,
        "ladder": [r.model_dump(mode="json") for r in config.ladder],
        "version": current.version + 1,
        "updated_at": now,
    }
    if current.version == 0:
        conn.execute(insert(t.hotline_parties).values(party=party, **values))
    else:
        conn.execute(
            update(t.hotline_parties).where(t.hotline_parties.c.party == party).values(**values)
        )
    record(
        conn,
        actor,
        "hotline.configured",
        f"hotline/{party}",
        {"party": party, "time_zone": config.time_zone, "ladder": values["ladder"]},
        now,
    )
    return party_config(conn, party)


def _copy_ladder(
    config: PartyConfigOut,
    priority: str,
    deadline_s: int,
    known: dict[str, PartyInfo],
    officers: Sequence[OfficerInfo],
) -> list[dict[str, Any]]:
    """The party's ladder (`config`) as it stands, resolved to officers, with the waits of this
    priority."""
    party = config.party
    rungs: list[dict[str, Any]] = []
    for rung in config.ladder:
        ids: list[str] = []
        if rung.role in ("officer", "commander"):
            ids += [o.id for o in officers if o.party == party and o.role == rung.role]
        elif rung.role == "mediator":
            ids += [o.id for o in officers if known[o.party].kind == "mediator"]
        ids += [o for o in rung.officers if o not in ids]
        if not ids and rungs:
            continue  # nobody to tell at this rung (no such officer): the next one is told
        waits = {str(k): v for k, v in rung.wait_s.items()}
        wait = deadline_s if not rungs else waits[priority]
        rungs.append({"name": rung.name, "officers": sorted(ids), "wait_s": wait})
    return rungs


# --- channels ---------------------------------------------------------------------------------


def _channel_row(conn: Connection, pair: str) -> Any:
    """The channel's row (its columns as attributes), or None."""
    return fetch_first(conn, _CHANNEL, {"pair": pair})


def ensure_channel(
    conn: Connection, a: str, b: str, now: datetime, known: dict[str, PartyInfo]
) -> Any:
    """The channel's row, made with the defaults if it is new (call holding the log's lock)."""
    pair = pair_id(a, b)
    row = _channel_row(conn, pair)
    if row is not None:
        return row
    first, second = sorted((a, b))
    both_participants = known[first].kind == known[second].kind == "participant"
    every = DEFAULT_COMMS_CHECK_EVERY_S if both_participants else 0
    conn.execute(
        insert(t.hotline_channels).values(
            pair=pair,
            party_a=first,
            party_b=second,
            state="open",
            reason=None,
            state_since=now,
            deadlines=dict(DEFAULT_DEADLINES_S),
            comms_check_every_s=every,
            next_comms_check_at=now + timedelta(seconds=every) if every else None,
            checks_sent=0,
            version=1,
            updated_at=now,
        )
    )
    made = _channel_row(conn, pair)
    assert made is not None
    return made


def missing_channels(conn: Connection) -> list[tuple[str, str]]:
    """The pairs of participant parties that have no channel yet."""
    known = parties(conn)
    participants = sorted(p.code for p in known.values() if p.kind == "participant")
    existing = set(conn.execute(select(t.hotline_channels.c.pair)).scalars())
    return [
        (a, b)
        for i, a in enumerate(participants)
        for b in participants[i + 1 :]
        if pair_id(a, b) not in existing
    ]


def ensure_channels(conn: Connection, now: datetime) -> int:
    """Every pair of participant parties has its channel (and so its comms checks)."""
    log.lock(conn)
    known = parties(conn)
    missing = missing_channels(conn)
    for a, b in missing:
        ensure_channel(conn, a, b, now, known)
    return len(missing)


def _channel_out(row: Any) -> ChannelOut:
    return ChannelOut(
        id=row.pair,
        parties=[row.party_a, row.party_b],
        state=row.state,
        reason=row.reason,
        state_since=row.state_since,
        deadlines={**DEFAULT_DEADLINES_S, **row.deadlines},
        comms_check_every_s=row.comms_check_every_s,
        next_comms_check_at=row.next_comms_check_at,
        checks_sent=row.checks_sent,
        version=row.version,
        updated_at=row.updated_at,
    )


def _may_see_channel(actor: Actor, a: str, b: str) -> bool:
    return actor.sees_all_shared or actor.party in (a, b)


def list_channels(conn: Connection, actor: Actor) -> list[ChannelOut]:
    query = select(t.hotline_channels).order_by(t.hotline_channels.c.pair)
    if not actor.sees_all_shared:
        query = query.where(
            or_(
                t.hotline_channels.c.party_a == actor.party,
                t.hotline_channels.c.party_b == actor.party,
            )
        )
    return [_channel_out(r) for r in conn.execute(query)]


def _visible_channel(conn: Connection, actor: Actor, pair: str) -> tuple[str, str]:
    a, b = parse_pair(pair)
    known = parties(conn)
    if a not in known or b not in known or not _may_see_channel(actor, a, b):
        raise NotFound(f"no channel {pair} visible to {actor.party}")
    return a, b


def get_channel(conn: Connection, actor: Actor, pair: str) -> ChannelOut:
    a, b = _visible_channel(conn, actor, pair)
    row = _channel_row(conn, pair_id(a, b))
    if row is None:
        raise NotFound(f"channel {pair_id(a, b)} is not open yet (no message, no settings)")
    return _channel_out(row)


def _channel_for_change(conn: Connection, actor: Actor, pair: str, now: datetime) -> Any:
    log.lock(conn)
    a, b = _visible_channel(conn, actor, pair)
    if actor.party not in (a, b) and not actor.sees_all_shared:
        raise Forbidden(f"{actor.party} is not a party to channel {pair_id(a, b)}")
    if actor.role == "observer":
        raise Forbidden("an observer reads; it does not write")
    return ensure_channel(conn, a, b, now, parties(conn))


def configure_channel(
    conn: Connection,
    actor: Actor,
    pair: str,
    settings: ChannelSettingsIn,
    expected_version: int,
    now: datetime,
) -> ChannelOut:
    row = _channel_for_change(conn, actor, pair, now)
    if row.version != expected_version:
        raise Conflict(
            f"channel {row.pair} is at version {row.version}, not {expected_version}",
            current_version=row.version,
        )
    values: dict[str, Any] = {"version": row.version + 1, "updated_at": now}
    if settings.deadlines is not None:
        values["deadlines"] = {**DEFAULT_DEADLINES_S, **row.deadlines, **settings.deadlines}
    if settings.comms_check_every_s is not None:
        every = settings.comms_check_every_s
        values["comms_check_every_s"] = every
        values["next_comms_check_at"] = (
            now + timedelta(seconds=every) if every and row.state != "suspended" else None
        )
    conn.execute(
        update(t.hotline_channels).where(t.hotline_channels.c.pair == row.pair).values(**values)
    )
    changed = settings.model_dump(exclude_none=True)
    record(conn, actor, "channel.configured", f"channel/{row.pair}", changed, now)
    publish(
        conn,
        [row.party_a, row.party_b],
        "channel.configured",
        {"channel": row.pair, **changed},
        now,
    )
    return get_channel(conn, actor, row.pair)


def _set_state(
    conn: Connection,
    actor: Actor | None,
    row: Row[Any],
    state: str,
    reason: str | None,
    kind: str,
    now: datetime,
    **values: Any,
) -> None:
    conn.execute(
        update(t.hotline_channels)
        .where(t.hotline_channels.c.pair == row.pair)
        .values(
            state=state,
            reason=reason,
            state_since=now,
            version=row.version + 1,
            updated_at=now,
            **values,
        )
    )
    body = {"channel": row.pair, "state": state, "reason": reason}
    record(conn, actor, kind, f"channel/{row.pair}", body, now)
    publish(conn, [row.party_a, row.party_b], kind, body, now)


def suspend_channel(
    conn: Connection, actor: Actor, pair: str, reason: str | None, now: datetime
) -> ChannelOut:
    row = _channel_for_change(conn, actor, pair, now)
    if row.state == "suspended":
        raise Conflict(f"channel {row.pair} is already suspended")
    _set_state(
        conn, actor, row, "suspended", reason, "channel.suspended", now, next_comms_check_at=None
    )
    return get_channel(conn, actor, row.pair)


def resume_channel(
    conn: Connection, actor: Actor, pair: str, reason: str | None, now: datetime
) -> ChannelOut:
    row = _channel_for_change(conn, actor, pair, now)
    if row.state != "suspended":
        raise Conflict(f"channel {row.pair} is {row.state}, not suspended")
    every = row.comms_check_every_s
    _set_state(
        conn,
        actor,
        row,
        "open",
        reason,
        "channel.resumed",
        now,
        next_comms_check_at=now + timedelta(seconds=every) if every else None,
    )
    return get_channel(conn, actor, row.pair)


# --- sending ----------------------------------------------------------------------------------


def _thread_parties(conn: Connection, thread_id: int) -> list[str]:
    return sorted(
        conn.execute(
            select(t.hotline_thread_parties.c.party).where(
                t.hotline_thread_parties.c.thread_id == thread_id
            )
        ).scalars()
    )


def _thread_visibility(actor: Actor) -> Any:
    if actor.sees_all_shared:
        return t.hotline_threads.c.id.is_not(None)
    return exists().where(
        and_(
            t.hotline_thread_parties.c.thread_id == t.hotline_threads.c.id,
            t.hotline_thread_parties.c.party == actor.party,
        )
    )


def _visible_thread(conn: Connection, actor: Actor, thread_id: int) -> Row[Any]:
    row = conn.execute(
        select(t.hotline_threads).where(
            t.hotline_threads.c.id == thread_id, _thread_visibility(actor)
        )
    ).first()
    if row is None:
        raise NotFound(f"no thread {thread_id} visible to {actor.party}")
    return row


def send(
    conn: Connection, actor: Actor, message: MessageIn, now: datetime, language: str | None = None
) -> MessageOut:
    """An officer's message: into a thread it may write in, to participant parties."""
    log.lock(conn)
    known = parties(conn)
    if actor.role == "observer":
        raise Forbidden("an observer reads; it does not write")
    thread = None
    if message.thread is not None:
        try:
            thread = _visible_thread(conn, actor, message.thread)
        except NotFound as exc:
            raise Invalid(exc.detail) from exc
        members = _thread_parties(conn, thread.id)
        if actor.party not in members and not actor.sees_all_shared:
            raise Forbidden(f"{actor.party} is not a party to thread {thread.id}")
        to = message.to or [
            p for p in members if p != actor.party and known[p].kind == "participant"
        ]
        outside = [p for p in to if p not in members]
        if outside:
            raise Invalid(f"to: {', '.join(outside)} not in thread {thread.id}")
    else:
        assert message.to is not None
        to = list(message.to)
    for party in to:
        if party not in known:
            raise Invalid(f"to: unknown party {party}")
        if party == actor.party:
            raise Invalid("to: a party does not send to itself")
        if known[party].kind != "participant":
            raise Invalid(
                f"to: {party} is a {known[party].kind} party; messages go to participant "
                "parties (the mediator is copied on every message)"
            )
    if not to:
        raise Invalid("to: nobody to send to in this thread")
    _check_references(conn, actor, message, thread.id if thread is not None else None, now)
    channels = {party: ensure_channel(conn, actor.party, party, now, known) for party in to}
    for channel in channels.values():
        if channel.state == "suspended":
            raise Conflict(
                f"channel {channel.pair} is suspended"
                + (f" ({channel.reason})" if channel.reason else "")
                + "; resume it first",
            )
    if thread is None:
        assert message.subject is not None
        thread_id = _open_thread(conn, message.subject, [actor.party, *to], actor.party, now)
    else:
        thread_id = thread.id
    content = message.content()
    posted = _post(
        conn,
        actor,
        thread_id=thread_id,
        new_thread=thread is None,
        kind=message.type,
        priority=message.priority,
        content=content,
        text=message.text,
        text_language=message.language,
        in_reply_to=message.in_reply_to,
        conflict_id=content.get("conflict"),
        activity_id=content.get("activity"),
        to=to,
        channels=channels,
        now=now,
        known=known,
    )
    # The answer from what was just written (the sender may see it: it sent it), not read back.
    out = _message_out(posted.message, _receipts(posted.recipients, actor, now))
    how = Reader(
        templates.reader_language(language, known[actor.party].language),
        posted.configs[actor.party].time_zone,
    )
    return render_all([out], actor, how)[0]


def _check_references(
    conn: Connection, actor: Actor, message: MessageIn, thread_id: int | None, now: datetime
) -> None:
    if message.in_reply_to is not None:
        if thread_id is None:
            raise Invalid("a reply goes into the thread of the query it answers: give 'thread'")
        replied = conn.execute(
            select(t.hotline_messages.c.thread_id, t.hotline_messages.c.type).where(
                t.hotline_messages.c.id == message.in_reply_to, _message_visibility(actor)
            )
        ).first()
        if replied is None or replied.thread_id != thread_id:
            raise Invalid(f"in_reply_to: no message {message.in_reply_to} in thread {thread_id}")
        if replied.type != "query":
            raise Invalid(f"in_reply_to: message {message.in_reply_to} is a {replied.type}")
    if message.deconfliction is not None:
        # Imported here: conflict detection calls this module (open_threads_for_conflicts).
        from deconfliction.conflicts.service import get as get_conflict

        if message.deconfliction.conflict is not None:
            try:
                get_conflict(conn, actor, message.deconfliction.conflict)
            except NotFound as exc:
                raise Invalid(f"deconfliction.conflict: {exc.detail}") from exc
        activity = message.deconfliction.activity
        if activity is not None and not readable_ids(conn, actor, [activity]):
            raise Invalid(
                f"deconfliction.activity: no activity {activity} visible to {actor.party}"
            )
    if message.warning is not None and message.warning.window.end <= now:
        raise Invalid("warning.window: the window has already ended")
    if message.incident is not None and message.incident.occurred_at > now + INCIDENT_CLOCK_SKEW:
        raise Invalid("incident.occurred_at: in the future")


def _open_thread(
    conn: Connection,
    subject: str,
    members: Iterable[str],
    opened_by: str | None,
    now: datetime,
    conflict_id: int | None = None,
    channel: str | None = None,
) -> int:
    thread_id = insert_row(
        conn,
        _INSERT_THREAD,
        {
            "subject": subject,
            "conflict_id": conflict_id,
            "channel": channel,
            "opened_by": opened_by,
            "created_at": now,
            "updated_at": now,
        },
    )
    run_rows(
        conn,
        _INSERT_THREAD_PARTIES,
        [{"thread_id": thread_id, "party": p} for p in sorted(set(members))],
    )
    return thread_id


@dataclass(frozen=True)
class Posted:
    """A message as `_post` wrote it: its row and its recipients' rows (column: value), and the
    hotline settings of the recipients and the sender."""

    message: dict[str, Any]
    recipients: list[dict[str, Any]]
    configs: dict[str, PartyConfigOut]


def _post(
    conn: Connection,
    actor: Actor | None,
    *,
    thread_id: int,
    new_thread: bool = False,
    kind: str,
    priority: str,
    content: dict[str, Any],
    text: str | None,
    text_language: str | None,
    in_reply_to: int | None,
    conflict_id: int | None,
    activity_id: int | None,
    to: list[str],
    channels: Mapping[str, Row[Any]],
    now: datetime,
    known: dict[str, PartyInfo],
) -> Posted:
    """Store a message with its recipients' deadlines and ladders (from their `channels`: party
    -> channel row); record it; publish it. A thread opened `new_thread` for it is up to date."""
    copied = sorted(p.code for p in known.values() if p.kind == "mediator")
    to = sorted(to)
    created = now.astimezone(UTC)  # as the database gives it back
    message: dict[str, Any] = {
        "thread_id": thread_id,
        "sender_party": actor.party if actor else None,
        "sender_officer": actor.officer if actor else None,
        "type": kind,
        "priority": priority,
        "content": content,
        "text": text,
        "text_language": text_language,
        "in_reply_to": in_reply_to,
        "conflict_id": conflict_id,
        "activity_id": activity_id,
        "recipients": to,
        "copied": copied,
        "created_at": created,
    }
    message_id = message["id"] = insert_row(conn, _INSERT_MESSAGE, message)
    officers = directory(conn).officers
    # The recipients' ladders, and the sender's time zone to render the answer in.
    configs = party_configs(conn, [*to, *([actor.party] if actor else [])])
    rows = []
    due_by: dict[str, datetime] = {}
    for party in to:
        channel = channels[party]
        deadlines = {**DEFAULT_DEADLINES_S, **channel.deadlines}
        deadline_s = int(deadlines[priority])
        deadline = created + timedelta(seconds=deadline_s)
        due_by[party] = deadline
        rows.append(
            {
                "message_id": message_id,
                "party": party,
                "channel": channel.pair,
                "deadline_at": deadline,
                "ladder": _copy_ladder(configs[party], priority, deadline_s, known, officers),
                "rung": 0,
                "next_escalation_at": deadline,
                "escalated_at": None,
                "delivered_at": None,
                "delivered_by": None,
                "read_at": None,
                "read_by": None,
                "acknowledged_at": None,
                "acknowledged_by": None,
            }
        )
    run_rows(conn, _INSERT_RECIPIENTS, rows)
    if not new_thread:
        conn.execute(_TOUCH_THREAD, {"thread": thread_id, "now": now})
    record(
        conn,
        actor,
        "message.sent",
        f"message/{message_id}",
        {
            "message": message_id,
            "thread": thread_id,
            "type": kind,
            "priority": priority,
            "to": to,
            "copied": copied,
            "deadlines": {party: iso(at) for party, at in due_by.items()},
            "ladders": {r["party"]: r["ladder"] for r in rows},
        },
        now,
    )
    # The stream's copy is the same for every reader: no ladder (a party's own business).
    shared = _message_out(message, _receipts(rows, None, now))
    audience = [*to, *([actor.party] if actor else [])]
    publish(conn, audience, "message.sent", {"message": shared.model_dump(mode="json")}, now)
    return Posted(message, rows, configs)


class NewConflict(NamedTuple):
    """What a new conflict's thread says, as the write that records it knows it."""

    id: int
    party_a: str
    party_b: str
    severity: str
    lower_m: float
    upper_m: float
    start: datetime
    end: datetime


def _open_conflict_thread(
    conn: Connection, row: NewConflict, now: datetime, known: dict[str, PartyInfo]
) -> int:
    """The hotline thread of one new conflict to both parties: a request for deconfliction from
    the system with the overlap, URGENT for a high severity conflict, else ROUTINE."""
    conflict_id = row.id
    to = sorted({row.party_a, row.party_b})
    thread_id = _open_thread(
        conn, f"conflict #{conflict_id}", to, None, now, conflict_id=conflict_id
    )
    first, second = to  # a conflict is always between two different parties
    channel = ensure_channel(conn, first, second, now, known)
    content = {
        "conflict": conflict_id,
        "severity": row.severity,
        "band": {"lower_m": row.lower_m, "upper_m": row.upper_m},
        "window": {"start": iso(row.start), "end": iso(row.end)},
    }
    _post(
        conn,
        None,
        thread_id=thread_id,
        new_thread=True,
        kind="request_deconfliction",
        priority="URGENT" if row.severity == "high" else "ROUTINE",
        content=content,
        text=None,
        text_language=None,
        in_reply_to=None,
        conflict_id=conflict_id,
        activity_id=None,
        to=to,
        channels={p: channel for p in to},
        now=now,
        known=known,
    )
    return thread_id


ALERT_BAND_M = (-500.0, 100_000.0)  # the band a hotline warning may carry (BandIn)


def _alert_subject(alert_id: int) -> str:
    return f"tactical alert #{alert_id}"


def open_thread_for_alert(
    conn: Connection, alert: AlertOut, now: datetime, lookahead_s: float = 300.0
) -> int:
    """Open the FLASH hotline thread of an imminent tactical alert (once per alert): a warning
    from the system to the participant parties of the alert (both tracks' parties; for a zone,
    the entering party and the zone's owner), with where and when (the closest approach or the
    entry point, the altitudes, the window up to ``t_out_s``, for a zone entry the look-ahead's
    end) and the alert's figures under ``alert``. It goes through ``_post`` like any message, so
    it carries receipts, the FLASH deadline and the escalation ladder. Call it in the transaction
    that raises or updates the alert. Returns the thread id."""
    log.lock(conn)
    subject = _alert_subject(alert.id)
    existing = conn.execute(
        select(t.hotline_threads.c.id).where(
            t.hotline_threads.c.subject == subject, t.hotline_threads.c.opened_by.is_(None)
        )
    ).scalar()
    if existing is not None:
        return int(existing)
    known = parties(conn)
    to = [p for p in alert.parties if known[p].kind == "participant"]
    thread_id = _open_thread(conn, subject, to, None, now)
    first, second = alert.parties  # two parties: the loop never alerts a party of its own
    channel = ensure_channel(conn, first, second, now, known)
    (lon_a, lat_a), (lon_b, lat_b) = alert.segment["coordinates"]
    if alert.kind == "pair":
        lat, lon = (lat_a + lat_b) / 2, (lon_a + lon_b) / 2  # between the two at the CPA
        what = (
            f"Predicted loss of separation between {alert.a} and {alert.b}: closest approach "
            f"{alert.dcpa_m or 0:.0f} m in {alert.tcpa_s or 0:.0f} s, "
            f"separation lost in {alert.t_in_s:.0f} s."
        )
    else:
        lat, lon = lat_b, lon_b  # the predicted entry point
        what = f"Predicted entry of {alert.a} into zone #{alert.zone} in {alert.t_in_s:.0f} s."
    low, high = ALERT_BAND_M
    start = now + timedelta(seconds=alert.t_in_s)
    out_s = alert.t_out_s if alert.t_out_s is not None else lookahead_s
    end = max(now + timedelta(seconds=out_s), start + timedelta(seconds=1))
    warning = WarningIn(
        hazard="other",
        position=PositionIn(lat=lat, lon=lon),
        band=BandIn(
            lower_m=min(max(min(alert.altitudes_m), low), high),
            upper_m=min(max(max(alert.altitudes_m), low), high),
        ),
        window=WindowIn(start=start, end=end),
    )
    content = {
        **warning.model_dump(mode="json", exclude_none=True),
        "alert": {
            "id": alert.id,
            "kind": alert.kind,
            "a": alert.a,
            "b": alert.b,
            "zone": alert.zone,
            "t_in_s": alert.t_in_s,
            "tcpa_s": alert.tcpa_s,
            "dcpa_m": alert.dcpa_m,
        },
    }
    _post(
        conn,
        None,
        thread_id=thread_id,
        new_thread=True,
        kind="warning",
        priority="FLASH",
        content=content,
        text=what,
        text_language="en",
        in_reply_to=None,
        conflict_id=None,
        activity_id=None,
        to=to,
        channels={p: channel for p in to},
        now=now,
        known=known,
    )
    return thread_id


def open_threads_for_conflicts(
    conn: Connection, conflicts: Sequence[NewConflict], now: datetime
) -> dict[int, int]:
    """The hotline threads of the conflicts one write just created (in id order; none has a
    thread yet), in that write's transaction: one thread per pair of parties (a plan crossing
    five activities of another party opens one thread, not five) whose request lists every
    conflict, URGENT when any is high. Returns conflict -> thread."""
    if not conflicts:
        return {}
    log.lock(conn)
    known = parties(conn)
    groups: dict[tuple[str, ...], list[NewConflict]] = {}
    for row in conflicts:
        groups.setdefault(tuple(sorted({row.party_a, row.party_b})), []).append(row)
    threads: dict[int, int] = {}
    for to, members in groups.items():
        if len(members) == 1:
            threads[members[0].id] = _open_conflict_thread(conn, members[0], now, known)
            continue
        ids = [int(r.id) for r in members]
        subject = "conflicts " + ", ".join(f"#{i}" for i in ids)
        thread_id = _open_thread(conn, subject, to, None, now, conflict_id=ids[0])
        channel = ensure_channel(conn, to[0], to[1], now, known)
        urgent = any(r.severity == "high" for r in members)
        content = {
            "conflict": ids[0],
            "conflicts": ids,
            "severity": "high" if urgent else members[0].severity,
            "band": {
                "lower_m": min(r.lower_m for r in members),
                "upper_m": max(r.upper_m for r in members),
            },
            "window": {
                "start": iso(min(r.start for r in members)),
                "end": iso(max(r.end for r in members)),
            },
        }
        _post(
            conn,
            None,
            thread_id=thread_id,
            new_thread=True,
            kind="request_deconfliction",
            priority="URGENT" if urgent else "ROUTINE",
            content=content,
            text=None,
            text_language=None,
            in_reply_to=None,
            conflict_id=ids[0],
            activity_id=None,
            to=list(to),
            channels={p: channel for p in to},
            now=now,
            known=known,
        )
        threads.update((i, thread_id) for i in ids)
    return threads


# --- reading ----------------------------------------------------------------------------------


def _message_visibility(actor: Actor) -> Any:
    if actor.sees_all_shared:
        return t.hotline_messages.c.id.is_not(None)
    return or_(
        t.hotline_messages.c.sender_party == actor.party,
        exists().where(
            and_(
                t.hotline_recipients.c.message_id == t.hotline_messages.c.id,
                t.hotline_recipients.c.party == actor.party,
            )
        ),
    )


def readable_message_ids(conn: Connection, actor: Actor, ids: Iterable[int]) -> set[int]:
    """Which of these messages the actor may read (for the record's payload visibility)."""
    wanted = set(ids)
    if not wanted:
        return set()
    return set(
        conn.execute(
            select(t.hotline_messages.c.id).where(
                t.hotline_messages.c.id.in_(wanted), _message_visibility(actor)
            )
        ).scalars()
    )


def _receipt(row: Mapping[Any, Any], now: datetime, show_ladder: bool) -> ReceiptOut:
    ladder = row["ladder"]
    rung = row["rung"]
    return ReceiptOut(
        party=row["party"],
        delivered_at=row["delivered_at"],
        delivered_by=row["delivered_by"],
        read_at=row["read_at"],
        read_by=row["read_by"],
        acknowledged_at=row["acknowledged_at"],
        acknowledged_by=row["acknowledged_by"],
        deadline_at=row["deadline_at"],
        overdue=row["acknowledged_at"] is None and row["deadline_at"] <= now,
        rung=rung,
        rung_name=ladder[min(rung, len(ladder) - 1)]["name"] if ladder else "",
        next_escalation_at=row["next_escalation_at"],
        escalated_at=row["escalated_at"],
        ladder=[RungOut.model_validate(r) for r in ladder] if show_ladder else None,
    )


def _receipts(
    rows: Iterable[Mapping[Any, Any]], actor: Actor | None, now: datetime
) -> list[ReceiptOut]:
    """One message's receipts, by party, as `actor` sees them (None: the stream's copy)."""
    return [
        _receipt(r, now, actor is not None and (actor.sees_all_shared or actor.party == r["party"]))
        for r in sorted(rows, key=lambda r: str(r["party"]))
    ]


def _message_out(m: Mapping[Any, Any], receipts: list[ReceiptOut]) -> MessageOut:
    return MessageOut(
        id=m["id"],
        thread=m["thread_id"],
        type=m["type"],
        priority=m["priority"],
        sender=SenderOut(party=m["sender_party"], officer=m["sender_officer"]),
        to=list(m["recipients"]),
        copied=list(m["copied"]),
        created_at=m["created_at"],
        content=m["content"],
        text=templates.free_text(m["text"], m["text_language"]),
        in_reply_to=m["in_reply_to"],
        conflict=m["conflict_id"],
        activity=m["activity_id"],
        receipts=receipts,
    )


def _messages_out(
    conn: Connection, actor: Actor | None, rows: Sequence[Row[Any]], now: datetime
) -> list[MessageOut]:
    """Messages as `actor` sees them (None: the neutral copy for the stream)."""
    if not rows:
        return []
    recipients: dict[int, list[Mapping[Any, Any]]] = {}
    for r in conn.execute(
        select(t.hotline_recipients).where(
            t.hotline_recipients.c.message_id.in_([m.id for m in rows])
        )
    ):
        recipients.setdefault(r.message_id, []).append(r._mapping)
    return [_message_out(m._mapping, _receipts(recipients.get(m.id, []), actor, now)) for m in rows]


@dataclass(frozen=True)
class Reader:
    """How an actor reads: the language and time zone of its party."""

    language: str
    time_zone: str


def reader(conn: Connection, actor: Actor, requested: str | None = None) -> Reader:
    party = directory(conn).parties.get(actor.party)
    return Reader(
        templates.reader_language(requested, party.language if party is not None else None),
        party_config(conn, actor.party).time_zone,
    )


def render_all(messages: list[MessageOut], actor: Actor, how: Reader) -> list[MessageOut]:
    for m in messages:
        m.rendered = templates.render(m, how.language, how.time_zone, actor.party)
    return messages


def get_message(
    conn: Connection, actor: Actor, message_id: int, now: datetime, language: str | None = None
) -> MessageOut:
    rows = conn.execute(
        select(t.hotline_messages).where(
            t.hotline_messages.c.id == message_id, _message_visibility(actor)
        )
    ).all()
    if not rows:
        raise NotFound(f"no message {message_id} visible to {actor.party}")
    return render_all(_messages_out(conn, actor, rows, now), actor, reader(conn, actor, language))[
        0
    ]


def inbox(
    conn: Connection,
    actor: Actor,
    now: datetime,
    *,
    pending: bool = False,
    after: int = 0,
    limit: int = 100,
    language: str | None = None,
) -> list[MessageOut]:
    """Messages to the actor's party (the mediator: every message), oldest first; `pending`:
    only those its party has not acknowledged."""
    query = select(t.hotline_messages).where(t.hotline_messages.c.id > after)
    if not actor.sees_all_shared or pending:
        mine = select(t.hotline_recipients.c.message_id).where(
            t.hotline_recipients.c.party == actor.party
        )
        if pending:
            mine = mine.where(t.hotline_recipients.c.acknowledged_at.is_(None))
        query = query.where(t.hotline_messages.c.id.in_(mine))
    rows = conn.execute(query.order_by(t.hotline_messages.c.id).limit(limit)).all()
    return render_all(_messages_out(conn, actor, rows, now), actor, reader(conn, actor, language))


def undelivered(actor: Actor, messages: Iterable[MessageOut]) -> list[int]:
    """Of these messages, those to the actor's party that its clients never fetched."""
    return [
        m.id
        for m in messages
        for r in m.receipts
        if r.party == actor.party and r.delivered_at is None
    ]


def _thread_out(conn: Connection, row: Row[Any]) -> ThreadOut:
    return ThreadOut(
        id=row.id,
        subject=row.subject,
        parties=_thread_parties(conn, row.id),
        conflict=row.conflict_id,
        opened_by=row.opened_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def list_threads(
    conn: Connection, actor: Actor, *, after: int = 0, limit: int = 100
) -> list[ThreadOut]:
    rows = conn.execute(
        select(t.hotline_threads)
        .where(_thread_visibility(actor), t.hotline_threads.c.id > after)
        .order_by(t.hotline_threads.c.id)
        .limit(limit)
    ).all()
    return [_thread_out(conn, r) for r in rows]


def get_thread(
    conn: Connection, actor: Actor, thread_id: int, now: datetime, language: str | None = None
) -> ThreadOut:
    out = _thread_out(conn, _visible_thread(conn, actor, thread_id))
    rows = conn.execute(
        select(t.hotline_messages)
        .where(t.hotline_messages.c.thread_id == thread_id, _message_visibility(actor))
        .order_by(t.hotline_messages.c.id)
    ).all()
    out.messages = render_all(
        _messages_out(conn, actor, rows, now), actor, reader(conn, actor, language)
    )
    return out


# --- receipts ---------------------------------------------------------------------------------


def _recipient_row(conn: Connection, message_id: int, party: str) -> Row[Any] | None:
    return conn.execute(
        select(t.hotline_recipients).where(
            t.hotline_recipients.c.message_id == message_id,
            t.hotline_recipients.c.party == party,
        )
    ).first()


def _set_receipt(
    conn: Connection, actor: Actor, message_id: int, receipt: str, now: datetime, **extra: Any
) -> bool:
    """Set one receipt once (a conditional UPDATE): record it and publish it if it was new."""
    at = getattr(t.hotline_recipients.c, f"{receipt}_at")
    done = conn.execute(
        update(t.hotline_recipients)
        .where(
            t.hotline_recipients.c.message_id == message_id,
            t.hotline_recipients.c.party == actor.party,
            at.is_(None),
        )
        .values({f"{receipt}_at": now, f"{receipt}_by": actor.officer, **extra})
    )
    if done.rowcount != 1:
        return False
    _given(conn, actor, receipt, [message_id], now)
    return True


def _given(
    conn: Connection, actor: Actor, receipt: str, message_ids: list[int], now: datetime
) -> None:
    """Record and publish receipts just set: each its log entry and its event, for the party
    and the message's sender (one query and one publish however many)."""
    kind = f"message.{receipt}"
    senders = {r.id: r.sender_party for r in conn.execute(_SENDERS, {"ids": message_ids})}
    events: list[tuple[list[str], str, dict[str, Any]]] = []
    for m in message_ids:
        body = {"message": m, "party": actor.party, "officer": actor.officer, "at": iso(now)}
        record(conn, actor, kind, f"message/{m}", body, now)
        sender = senders.get(m)
        events.append(([actor.party, *([sender] if sender else [])], kind, body))
    publish_many(conn, events, now)


def mark_delivered(
    conn: Connection, actor: Actor, message_ids: Iterable[int], now: datetime
) -> list[int]:
    """The actor's client got these messages: the delivered receipts not yet given, set in one
    conditional UPDATE (a stream push gives many at once)."""
    log.lock(conn)
    wanted = sorted(set(message_ids))
    if not wanted:
        return []
    params = {"ids": wanted, "reader": actor.party, "now": now, "officer": actor.officer}
    given: list[int] = sorted(conn.execute(_DELIVER, params).scalars())
    if given:
        _given(conn, actor, "delivered", given, now)
    return given


def _own_receipt_row(conn: Connection, actor: Actor, message_id: int) -> Row[Any]:
    log.lock(conn)
    visible = conn.execute(
        select(t.hotline_messages.c.id).where(
            t.hotline_messages.c.id == message_id, _message_visibility(actor)
        )
    ).first()
    if visible is None:
        raise NotFound(f"no message {message_id} visible to {actor.party}")
    row = _recipient_row(conn, message_id, actor.party)
    if row is None:
        raise Forbidden(
            f"{actor.party} is not a recipient of message {message_id}; only recipients give "
            "receipts"
        )
    return row


def read(
    conn: Connection, actor: Actor, message_id: int, now: datetime, language: str | None = None
) -> MessageOut:
    row = _own_receipt_row(conn, actor, message_id)
    if row.read_at is not None:
        raise Conflict(
            f"message {message_id} was already read for {actor.party} by {row.read_by} at "
            f"{iso(row.read_at)}"
        )
    _set_receipt(conn, actor, message_id, "delivered", now)
    _set_receipt(conn, actor, message_id, "read", now)
    return get_message(conn, actor, message_id, now, language)


def acknowledge(
    conn: Connection, actor: Actor, message_id: int, now: datetime, language: str | None = None
) -> MessageOut:
    row = _own_receipt_row(conn, actor, message_id)
    if row.acknowledged_at is not None:
        raise Conflict(
            f"message {message_id} was already acknowledged for {actor.party} by "
            f"{row.acknowledged_by} at {iso(row.acknowledged_at)}"
        )
    _set_receipt(conn, actor, message_id, "delivered", now)
    _set_receipt(conn, actor, message_id, "read", now)
    _set_receipt(conn, actor, message_id, "acknowledged", now, next_escalation_at=None)
    kind = conn.execute(
        select(t.hotline_messages.c.type).where(t.hotline_messages.c.id == message_id)
    ).scalar()
    if kind == "comms_check":
        _restore_if_answered(conn, row.channel, now)
    return get_message(conn, actor, message_id, now, language)


# --- what the scheduler runs ------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    message_id: int
    party: str
    at: datetime  # the next_escalation_at that was read: the claim is on this value


def due_escalations(conn: Connection, now: datetime, limit: int = 100) -> list[Due]:
    rows = conn.execute(
        select(
            t.hotline_recipients.c.message_id,
            t.hotline_recipients.c.party,
            t.hotline_recipients.c.next_escalation_at,
        )
        .where(
            t.hotline_recipients.c.next_escalation_at <= now,
            t.hotline_recipients.c.acknowledged_at.is_(None),
        )
        .order_by(t.hotline_recipients.c.next_escalation_at)
        .limit(limit)
    ).all()
    return [Due(r.message_id, r.party, r.next_escalation_at) for r in rows]


def escalate(conn: Connection, due: Due, now: datetime) -> bool:
    """One timer that fell due: tell the next rung (or, past the last, record the message
    overdue). Claimed by a conditional UPDATE on the `next_escalation_at` that was read, so it
    happens once however many schedulers saw it due. Returns whether this call did it."""
    log.lock(conn)
    row = _recipient_row(conn, due.message_id, due.party)
    if row is None or row.acknowledged_at is not None or row.next_escalation_at != due.at:
        return False
    ladder = row.ladder
    new_rung = row.rung + 1
    final = new_rung >= len(ladder)
    if final:
        next_at = None
        kind = "message.overdue"
    else:
        # Every rung has its wait, the last one too: past it the message is recorded overdue.
        next_at = now + timedelta(seconds=int(ladder[new_rung]["wait_s"]))
        kind = "message.escalated"
    claimed = conn.execute(
        update(t.hotline_recipients)
        .where(
            t.hotline_recipients.c.message_id == due.message_id,
            t.hotline_recipients.c.party == due.party,
            t.hotline_recipients.c.next_escalation_at == due.at,
            t.hotline_recipients.c.acknowledged_at.is_(None),
        )
        .values(
            rung=min(new_rung, len(ladder) - 1),
            next_escalation_at=next_at,
            escalated_at=now,
        )
    )
    if claimed.rowcount != 1:
        return False
    message = conn.execute(
        select(t.hotline_messages.c.sender_party, t.hotline_messages.c.type).where(
            t.hotline_messages.c.id == due.message_id
        )
    ).one()
    body: dict[str, Any] = {
        "message": due.message_id,
        "party": due.party,
        "deadline_at": iso(row.deadline_at),
        "next_escalation_at": iso(next_at),
    }
    if not final:
        body |= {
            "rung": new_rung,
            "name": ladder[new_rung]["name"],
            "officers": ladder[new_rung]["officers"],
        }
    record(conn, None, kind, f"message/{due.message_id}", body, now)
    audience = [due.party, *([message.sender_party] if message.sender_party else [])]
    publish(conn, audience, kind, body, now)
    if message.type == "comms_check" and row.rung == 0:
        _degrade(conn, row.channel, due, now)
    return True


def _degrade(conn: Connection, pair: str, due: Due, now: datetime) -> None:
    channel = _channel_row(conn, pair)
    if channel is None or channel.state != "open":
        return
    reason = f"comms check (message {due.message_id}) not acknowledged by {due.party} in time"
    _set_state(conn, None, channel, "degraded", reason, "channel.degraded", now)


def _restore_if_answered(conn: Connection, pair: str, now: datetime) -> None:
    """A degraded channel is open again once no comms check on it is overdue."""
    channel = _channel_row(conn, pair)
    if channel is None or channel.state != "degraded":
        return
    overdue = conn.execute(
        select(t.hotline_recipients.c.message_id)
        .join(t.hotline_messages, t.hotline_messages.c.id == t.hotline_recipients.c.message_id)
        .where(
            t.hotline_recipients.c.channel == pair,
            t.hotline_messages.c.type == "comms_check",
            t.hotline_recipients.c.acknowledged_at.is_(None),
            t.hotline_recipients.c.deadline_at <= now,
        )
        .limit(1)
    ).first()
    if overdue is None:
        _set_state(conn, None, channel, "open", "comms check acknowledged", "channel.restored", now)


def due_comms_checks(
    conn: Connection, now: datetime, limit: int = 100
) -> list[tuple[str, datetime]]:
    rows = conn.execute(
        select(t.hotline_channels.c.pair, t.hotline_channels.c.next_comms_check_at)
        .where(
            t.hotline_channels.c.next_comms_check_at <= now,
            t.hotline_channels.c.state != "suspended",
        )
        .order_by(t.hotline_channels.c.next_comms_check_at)
        .limit(limit)
    ).all()
    return [(r.pair, r.next_comms_check_at) for r in rows]


def send_comms_check(conn: Connection, pair: str, due_at: datetime, now: datetime) -> bool:
    """The periodic comms check of a channel, from the system to both parties; claimed like an
    escalation (conditional UPDATE on the timer that was read)."""
    log.lock(conn)
    channel = _channel_row(conn, pair)
    if channel is None:
        return False
    every = channel.comms_check_every_s
    claimed = conn.execute(
        update(t.hotline_channels)
        .where(
            t.hotline_channels.c.pair == pair,
            t.hotline_channels.c.next_comms_check_at == due_at,
            t.hotline_channels.c.state != "suspended",
        )
        .values(
            next_comms_check_at=now + timedelta(seconds=every) if every else None,
            checks_sent=channel.checks_sent + 1,
        )
    )
    if claimed.rowcount != 1:
        return False
    known = parties(conn)
    to = [channel.party_a, channel.party_b]
    thread_id = conn.execute(
        select(t.hotline_threads.c.id).where(t.hotline_threads.c.channel == pair)
    ).scalar()
    if thread_id is None:
        thread_id = _open_thread(conn, f"comms checks {pair}", to, None, now, channel=pair)
    _post(
        conn,
        None,
        thread_id=int(thread_id),
        kind="comms_check",
        priority="URGENT",
        content={"sequence": channel.checks_sent + 1, "channel": pair},
        text=None,
        text_language=None,
        in_reply_to=None,
        conflict_id=None,
        activity_id=None,
        to=to,
        channels={p: channel for p in to},
        now=now,
        known=known,
    )
    return True
