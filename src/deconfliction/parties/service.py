"""Parties, officers and their tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, true, update

from deconfliction.errors import Conflict, Forbidden, NotFound, Unauthorized
from deconfliction.parties.models import (
    Actor,
    AreaConfig,
    MinimaConfig,
    OfficerOut,
    OfficerTokensOut,
    PartyOut,
)
from deconfliction.record.keys import KeyMaterial, init_keys
from deconfliction.store import tables as t
from deconfliction.store.db import fetch_first

TOKEN_LIFETIME = timedelta(days=90)


def token_hash(token: str) -> str:
    # Tokens carry 256 random bits, so a plain SHA-256 is enough to make a stolen table useless.
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class AreaSetUp:
    tokens: dict[str, str]  # officer: token, shown once
    keys: KeyMaterial  # private keys to hand out, never stored by the server


@dataclass(frozen=True)
class PartyInfo:
    code: str
    kind: str
    language: str


@dataclass(frozen=True)
class OfficerInfo:
    id: str
    party: str
    role: str


@dataclass(frozen=True)
class Directory:
    """The area's parties, officers and default separation minima."""

    parties: dict[str, PartyInfo]
    officers: tuple[OfficerInfo, ...]
    minima: MinimaConfig


_PARTIES = select(t.parties.c.code, t.parties.c.kind, t.parties.c.language)
_OFFICERS = select(t.officers.c.id, t.officers.c.party, t.officers.c.role)
_MINIMA = select(t.settings.c.value).where(t.settings.c.key == "minima")
# Parties, officers and the area's minima are written once, by `init_area`, and never changed:
# every write reads them, so each engine keeps them once it has found them (an empty area is
# read again).
_DIRECTORIES: weakref.WeakKeyDictionary[Engine, Directory] = weakref.WeakKeyDictionary()


def directory(conn: Connection) -> Directory:
    """The parties, officers and minima (do not change what it gives: it is shared)."""
    found = _DIRECTORIES.get(conn.engine)
    if found is not None:
        return found
    made = Directory(
        {r.code: PartyInfo(r.code, r.kind, r.language) for r in conn.execute(_PARTIES)},
        tuple(OfficerInfo(r.id, r.party, r.role) for r in conn.execute(_OFFICERS)),
        _minima(conn.execute(_MINIMA).scalar()),
    )
    if made.parties:
        _DIRECTORIES[conn.engine] = made
    return made


def log_name(area: str) -> str:
    """The log's name (checkpoint origin and note key name): no spaces, no '+'."""
    return "deconfliction/" + (re.sub(r"[^A-Za-z0-9._-]+", "-", area).strip("-") or "area")


def init_area(
    conn: Connection, config: AreaConfig, now: datetime, *, server_held_keys: bool = False
) -> AreaSetUp:
    """Create the area's settings, parties and officers with their tokens and certified keys.

    With `server_held_keys` the server keeps each officer's private key and signs for them,
    marked in every entry; otherwise each officer takes its key away and signs on its client.
    """
    if conn.execute(select(t.parties.c.code).limit(1)).first() is not None:
        raise Conflict("the database already holds parties; use a new database file or URL")
    conn.execute(
        insert(t.settings),
        [
            {"key": "area", "value": config.area},
            {"key": "minima", "value": config.minima.model_dump()},
        ],
    )
    tokens: dict[str, str] = {}
    for party in config.party:
        conn.execute(
            insert(t.parties).values(
                code=party.code,
                name=party.name,
                language=party.language,
                kind=party.kind,
                created_at=now,
            )
        )
        for officer in party.officer:
            conn.execute(
                insert(t.officers).values(
                    id=officer.id,
                    party=party.code,
                    name=officer.name,
                    role=officer.role,
                    created_at=now,
                )
            )
            tokens[officer.id] = issue_token(conn, officer.id, now)
    keys = init_keys(
        conn,
        log_name(config.area),
        {p.code: [o.id for o in p.officer] for p in config.party},
        now,
        server_held=server_held_keys,
    )
    _DIRECTORIES.pop(conn.engine, None)  # whatever was read before the area was made
    return AreaSetUp(tokens, keys)


def _officer_party(conn: Connection, officer: str) -> str:
    """The party of `officer`; NotFound if there is no such officer."""
    party = conn.execute(select(t.officers.c.party).where(t.officers.c.id == officer)).scalar()
    if party is None:
        raise NotFound(f"unknown officer {officer}")
    return str(party)


def issue_token(
    conn: Connection, officer: str, now: datetime, lifetime: timedelta = TOKEN_LIFETIME
) -> str:
    _officer_party(conn, officer)
    token = "dcf_" + secrets.token_urlsafe(32)
    conn.execute(
        insert(t.tokens).values(
            hash=token_hash(token),
            officer=officer,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    return token


def revoke_tokens(conn: Connection, officer: str, now: datetime) -> int:
    """Revoke every token of `officer` not yet revoked (a lost laptop, an officer leaving);
    how many. Requests with them are refused at once, open streams end within
    `stream.service.TOKEN_CHECK_S`."""
    _officer_party(conn, officer)
    return _revoke_all(conn, officer, now)


def _revoke_all(conn: Connection, officer: str, now: datetime) -> int:
    done = conn.execute(
        update(t.tokens)
        .where(t.tokens.c.officer == officer, t.tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(done.rowcount)


def revoke_officer_tokens(conn: Connection, actor: Actor, officer: str, now: datetime) -> int:
    """`revoke_tokens` as the API does it: an officer's own, or any of the party's officers' by
    a commander of the party."""
    party = _officer_party(conn, officer)
    if party != actor.party:
        raise Forbidden(f"{actor.party} revokes only its own officers' tokens, not {party}'s")
    if officer != actor.officer and actor.role != "commander":
        raise Forbidden(f"only a commander of {party}, or {officer}, revokes {officer}'s tokens")
    return _revoke_all(conn, officer, now)


def officers_with_tokens(
    conn: Connection, now: datetime, party: str | None = None
) -> list[OfficerTokensOut]:
    """The officers (of `party`, or all) with how many of their tokens still work, to see which
    device to cut off."""
    active = (
        select(t.tokens.c.officer, func.count().label("active"))
        .where(t.tokens.c.revoked_at.is_(None), t.tokens.c.expires_at > now)
        .group_by(t.tokens.c.officer)
        .subquery()
    )
    rows = conn.execute(
        select(t.officers, func.coalesce(active.c.active, 0).label("active"))
        .outerjoin(active, active.c.officer == t.officers.c.id)
        .where(t.officers.c.party == party if party is not None else true())
        .order_by(t.officers.c.party, t.officers.c.id)
    ).all()
    return [
        OfficerTokensOut(
            id=r.id, party=r.party, name=r.name, role=r.role, active_tokens=int(r.active)
        )
        for r in rows
    ]


# How many token hashes one query looks up (under every database's limit on parameters).
_HASHES_PER_QUERY = 500


def lapsed_tokens(conn: Connection, hashes: set[str], now: datetime) -> set[str]:
    """Those of the token `hashes` that no longer authenticate: revoked, expired or gone."""
    ordered = sorted(hashes)
    valid: set[str] = set()
    for k in range(0, len(ordered), _HASHES_PER_QUERY):
        valid.update(
            conn.execute(
                select(t.tokens.c.hash).where(
                    t.tokens.c.hash.in_(ordered[k : k + _HASHES_PER_QUERY]),
                    t.tokens.c.revoked_at.is_(None),
                    t.tokens.c.expires_at > now,
                )
            ).scalars()
        )
    return hashes - valid


# Every request authenticates: the statement is built once.
_TOKEN = (
    select(
        t.tokens.c.expires_at,
        t.tokens.c.revoked_at,
        t.officers.c.id,
        t.officers.c.party,
        t.officers.c.role,
        t.parties.c.kind,
    )
    .join(t.officers, t.officers.c.id == t.tokens.c.officer)
    .join(t.parties, t.parties.c.code == t.officers.c.party)
    .where(t.tokens.c.hash == bindparam("hash"))
)


def authenticate(conn: Connection, token: str, now: datetime) -> Actor:
    # The lookup is by hash, so the comparison never touches the secret itself.
    row = fetch_first(conn, _TOKEN, {"hash": token_hash(token)})
    if row is None:
        raise Unauthorized("unknown token")
    if row.revoked_at is not None:
        raise Unauthorized("token revoked")
    if row.expires_at <= now:
        raise Unauthorized(f"token expired at {row.expires_at.isoformat()}")
    return Actor(officer=row.id, party=row.party, role=row.role, party_kind=row.kind)


def require_acting(actor: Actor) -> None:
    if not actor.acts_for_party:
        raise Forbidden(f"a {actor.role} cannot act for a party; only officers and commanders can")


def list_parties(conn: Connection) -> list[PartyOut]:
    rows = conn.execute(select(t.parties).order_by(t.parties.c.code)).all()
    return [PartyOut(code=r.code, name=r.name, language=r.language, kind=r.kind) for r in rows]


def party_kinds(conn: Connection) -> dict[str, str]:
    return {code: p.kind for code, p in directory(conn).parties.items()}


def get_officer(conn: Connection, officer: str) -> OfficerOut:
    row = conn.execute(select(t.officers).where(t.officers.c.id == officer)).one()
    return OfficerOut(id=row.id, party=row.party, name=row.name, role=row.role)


def area_minima(conn: Connection) -> MinimaConfig:
    return directory(conn).minima


def _minima(value: object) -> MinimaConfig:
    return MinimaConfig.model_validate(value) if value is not None else MinimaConfig()
