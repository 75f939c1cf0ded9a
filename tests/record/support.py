"""Helpers of the record tests: an area of one's own (with its private keys), signing headers
as an officer's client does, exporting and verifying, and rewriting the log's tail as a
dishonest server would."""

from __future__ import annotations

import base64
import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, delete, func, select, update

from deconfliction.api import create_app
from deconfliction.ledger.checkpoint import Checkpoint, NoteVerifier, parse_note
from deconfliction.ledger.entry import LOG_PARTY, officer_key_name
from deconfliction.ledger.signing import key_id, public_key_bytes
from deconfliction.ledger.verify import Record, VerifyResult, verify_export
from deconfliction.parties.models import AreaConfig
from deconfliction.parties.service import AreaSetUp, init_area
from deconfliction.record import log
from deconfliction.record.service import Statement, sign_statement
from deconfliction.store import tables as t
from deconfliction.store.db import transaction
from tests.api.conftest import Api
from tests.conftest import AREA_TOML, FakeClock

PARTY_OF = {"tr-duty": "TR", "tr-cmd": "TR", "il-duty": "IL", "az-med": "AZ", "un-obs": "UNDOF"}


@dataclass
class Area:
    """An area set up in the test itself, so that the test holds the private keys."""

    engine: Engine
    clock: FakeClock
    setup: AreaSetUp
    api: Api

    @property
    def trust(self) -> dict[str, Any]:
        return self.setup.keys.trust()

    @property
    def roots(self) -> dict[str, Ed25519PrivateKey]:
        return self.setup.keys.roots


def make_area(engine: Engine, clock: FakeClock, client: TestClient, *, server_held: bool) -> Area:
    with transaction(engine, write=True) as conn:
        setup = init_area(
            conn,
            AreaConfig.model_validate(tomllib.loads(AREA_TOML)),
            clock(),
            server_held_keys=server_held,
        )
    return Area(engine, clock, setup, Api(client, setup.tokens, engine))


def app_client(engine: Engine, clock: FakeClock) -> TestClient:
    """The app without its background checkpoint signer: checkpoints only when a test asks."""
    return TestClient(
        create_app(
            engine, clock, checkpoint_every_s=None, hotline_every_s=None, tactical_every_s=None
        )
    )


def officer_kid(officer: str, private: Ed25519PrivateKey) -> str:
    return key_id(officer_key_name(PARTY_OF[officer], officer), public_key_bytes(private)).hex()


def signature_header(
    statement: Statement,
    officer: str,
    private: Ed25519PrivateKey,
    now: datetime,
    nonce: str | None = None,
) -> dict[str, str]:
    """The `Deconfliction-Signature` header an officer's client sends with a write."""
    signed = sign_statement(
        statement,
        PARTY_OF[officer],
        officer,
        officer_kid(officer, private),
        private,
        now,
        nonce,
    )
    return {"Deconfliction-Signature": signed.header()}


def json_request(body: Any) -> dict[str, Any]:
    """Keyword arguments sending `body` as exactly these JSON bytes."""
    return {"content": json.dumps(body).encode(), "headers": {"Content-Type": "application/json"}}


def decode_receipt(header: str) -> dict[str, Any]:
    receipt: dict[str, Any] = json.loads(base64.b64decode(header))
    return receipt


def roots_of(trust: Mapping[str, Any]) -> dict[str, bytes]:
    return {p: base64.b64decode(k) for p, k in trust["parties"].items()}


def log_verifier(trust: Mapping[str, Any]) -> NoteVerifier:
    return NoteVerifier.from_vkey(trust["log"])


def verify(records: Iterable[Record], trust: Mapping[str, Any], **options: Any) -> VerifyResult:
    """`verify_export` with the trust anchors as `GET /v1/ledger/trust` gives them."""
    return verify_export(
        records, party_roots=roots_of(trust), log_key=log_verifier(trust), **options
    )


def cosigners(trust: Mapping[str, Any]) -> list[NoteVerifier]:
    return [NoteVerifier(p, k) for p, k in roots_of(trust).items()]


def checkpoint_of(note: str) -> Checkpoint:
    return Checkpoint.parse(parse_note(note).text)


def sign_checkpoint(engine: Engine, now: datetime) -> str:
    with transaction(engine, write=True) as conn:
        return log.checkpoint(conn, now)


def export(engine: Engine) -> list[dict[str, Any]]:
    with transaction(engine, write=False) as conn:
        return list(log.export_records(conn))


def log_size(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.entries)).scalar_one())


def entry_records(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in records if r["type"] == "entry"]


def is_statement(entry: Mapping[str, Any]) -> bool:
    """An officer's statement: neither the log's own fact nor a root's key entry."""
    return entry["party"] != LOG_PARTY and not entry["kind"].startswith("key.")


def index_of(engine: Engine, kind: str, nth: int = 0) -> int:
    """The log index of the nth entry of a kind."""
    with engine.connect() as conn:
        found = (
            conn.execute(select(t.entries.c.idx).where(t.entries.c.kind == kind).order_by("idx"))
            .scalars()
            .all()
        )
    return int(found[nth])


def truncate_log(conn: Connection, size: int, *, drop_checkpoints: bool) -> None:
    """Cut the log back to `size` entries as a dishonest server would: the tail's rows, the
    tree nodes that cover them and the tree size (and, if asked, the checkpoints beyond)."""
    conn.execute(delete(t.entries).where(t.entries.c.idx >= size))
    for level, index in conn.execute(select(t.ledger_nodes.c.level, t.ledger_nodes.c.idx)).all():
        if (int(index) + 1) << int(level) > size:
            conn.execute(
                delete(t.ledger_nodes).where(
                    t.ledger_nodes.c.level == level, t.ledger_nodes.c.idx == index
                )
            )
    conn.execute(update(t.ledger_state).where(t.ledger_state.c.id == 1).values(size=size))
    if drop_checkpoints:
        conn.execute(delete(t.checkpoints).where(t.checkpoints.c.size > size))


def append_facts(conn: Connection, count: int, now: datetime, tag: str) -> None:
    """Entries the log signs with its own key: valid entries of a different history."""
    for i in range(count):
        log.append_log_entry(conn, "zone.declared", f"zone/{900 + i}", {"zone": tag, "n": i}, now)
