"""A request's token is read afresh every time: on SQLite by the event loop on a connection of
its own (`store.db.loop_engine`), elsewhere in the thread pool. What changes in the database
counts at the next request."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, update
from sqlalchemy.pool import StaticPool

from deconfliction.parties.service import (
    TOKEN_LIFETIME,
    issue_token,
    lapsed_tokens,
    revoke_tokens,
    token_hash,
)
from deconfliction.store import tables as t
from deconfliction.store.db import loop_engine, make_engine, transaction
from tests.api.conftest import Api, OfficerClient
from tests.conftest import FakeClock


def test_a_token_revoked_or_issued_while_the_server_runs_counts_at_the_next_request(
    api: Api, clock: FakeClock
) -> None:
    assert api.as_("tr-duty").get("/v1/me").status_code == 200
    with transaction(api.engine, write=True) as conn:
        fresh = issue_token(conn, "tr-duty", clock())
        conn.execute(
            update(t.tokens)
            .where(t.tokens.c.hash == token_hash(api.tokens["tr-duty"]))
            .values(revoked_at=clock())
        )
    revoked = api.as_("tr-duty").get("/v1/me")
    assert revoked.status_code == 401
    assert revoked.json()["detail"] == "token revoked"
    assert OfficerClient(api.client, fresh).get("/v1/me").json()["officer"]["id"] == "tr-duty"
    clock.advance(seconds=TOKEN_LIFETIME.total_seconds() + 1)
    expired = OfficerClient(api.client, fresh).get("/v1/me")
    assert expired.status_code == 401
    assert expired.json()["detail"].startswith("token expired at")


def test_only_an_sqlite_file_gets_a_connection_for_the_event_loop(
    engine: Engine, tmp_path: Path
) -> None:
    loop = loop_engine(engine)
    if engine.dialect.name != "sqlite":
        assert loop is None
        return
    assert loop is not None
    assert isinstance(loop.pool, StaticPool)
    assert loop.url == engine.url
    loop.dispose()
    assert loop_engine(make_engine("sqlite://")) is None
    assert loop_engine(make_engine(f"sqlite:///{tmp_path / 'x.db'}")) is not None


def test_lapsed_tokens_are_exactly_the_revoked_expired_and_unknown_ones(
    engine: Engine, clock: FakeClock, tokens: dict[str, str]
) -> None:
    now = clock()
    with transaction(engine, write=True) as conn:
        short = issue_token(conn, "il-duty", now, lifetime=timedelta(minutes=1))
        assert revoke_tokens(conn, "tr-duty", now) == 1
    good = {token_hash(v) for k, v in tokens.items() if k != "tr-duty"}
    unknown = {token_hash(secrets.token_hex(8)) for _ in range(1200)}  # several queries' worth
    asked = good | unknown | {token_hash(tokens["tr-duty"]), token_hash(short)}
    with transaction(engine, write=False) as conn:
        assert lapsed_tokens(conn, asked, now) == asked - good - {token_hash(short)}
        later = now + timedelta(minutes=2)
        assert lapsed_tokens(conn, asked, later) == asked - good


def test_a_commander_or_the_officer_revokes_the_officers_tokens_and_no_one_else(
    api: Api,
) -> None:
    def revoke(by: str, officer: str) -> tuple[int, dict[str, object]]:
        answer = api.as_(by).post(f"/v1/officers/{officer}/tokens/revoke")
        return answer.status_code, answer.json()

    refused = [
        ("tr-duty", "tr-cmd", 403, "only a commander of TR, or tr-cmd, revokes tr-cmd's tokens"),
        ("il-duty", "tr-duty", 403, "IL revokes only its own officers' tokens, not TR's"),
        ("az-med", "tr-duty", 403, "AZ revokes only its own officers' tokens, not TR's"),
        ("tr-cmd", "nobody", 404, "unknown officer nobody"),
    ]
    for by, officer, status, detail in refused:
        code, body = revoke(by, officer)
        assert (code, body["detail"]) == (status, detail), (by, officer)
    assert api.as_("tr-duty").get("/v1/me").status_code == 200  # nothing revoked so far
    assert revoke("tr-cmd", "tr-duty") == (200, {"officer": "tr-duty", "revoked": 1})
    assert api.as_("tr-duty").get("/v1/me").json()["detail"] == "token revoked"
    assert api.as_("tr-cmd").get("/v1/me").status_code == 200
    assert revoke("il-duty", "il-duty") == (200, {"officer": "il-duty", "revoked": 1})
    assert api.as_("il-duty").get("/v1/me").status_code == 401


def test_the_party_officers_list_counts_the_tokens_that_still_work(
    api: Api, clock: FakeClock
) -> None:
    def listed(by: str) -> dict[str, tuple[str, int]]:
        answer = api.as_(by).get("/v1/officers")
        assert answer.status_code == 200, answer.text
        return {o["id"]: (o["role"], o["active_tokens"]) for o in answer.json()}

    # Only one's own party, each officer once, whatever the tokens.
    assert listed("tr-duty") == {"tr-duty": ("officer", 1), "tr-cmd": ("commander", 1)}
    with transaction(api.engine, write=True) as conn:
        issue_token(conn, "tr-duty", clock())  # a second device
        issue_token(conn, "tr-duty", clock() - TOKEN_LIFETIME)  # expired
    assert listed("tr-cmd")["tr-duty"] == ("officer", 2)
    assert api.as_("tr-cmd").post("/v1/officers/tr-duty/tokens/revoke").json()["revoked"] == 3
    assert listed("tr-cmd") == {"tr-duty": ("officer", 0), "tr-cmd": ("commander", 1)}
    assert set(listed("il-duty")) == {"il-duty"}
