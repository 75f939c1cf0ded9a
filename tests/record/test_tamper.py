"""Tampering with the record, in the database or in what a server serves, and the offline
verifier naming the first bad entry and why; a party's client refusing to cosign a rewritten
history. The log is made through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from deconfliction.errors import Conflict
from deconfliction.ledger.entry import EntryFields, payload_sha256, sign_entry
from deconfliction.ledger.errors import Reason
from deconfliction.parties.service import authenticate
from deconfliction.record import log
from deconfliction.record.checkpoints import cosign_latest
from deconfliction.record.keys import officer_key, revoke
from deconfliction.record.service import statement_payload
from deconfliction.store import tables as t
from deconfliction.store.db import transaction
from tests.builders import activity, volume, zone
from tests.record.support import (
    Area,
    append_facts,
    checkpoint_of,
    export,
    index_of,
    log_size,
    sign_checkpoint,
    truncate_log,
    verify,
)


@dataclass
class Made:
    """A log made through the API, checkpointed halfway (`middle`) and at the end."""

    area: Area
    middle: int  # size of the checkpoint signed halfway
    size: int

    def verify(self, records: list[dict[str, Any]], **options: Any) -> Any:
        return verify(records, self.area.trust, **options)


@pytest.fixture
def made(held_area: Area) -> Made:
    api = held_area.api
    il, tr = api.as_("il-duty"), api.as_("tr-duty")
    assert il.post("/v1/zones", json=zone()).status_code == 201
    aid = tr.post("/v1/activities", json=activity(volume(36.0, 34.0))).json()["id"]
    middle = checkpoint_of(api.as_("az-med").post("/v1/ledger/checkpoint").text).size
    crossing = il.post("/v1/activities", json=activity(volume(36.1, 34.1))).json()
    assert crossing["conflicts"]
    assert il.post(f"/v1/activities/{aid}/acknowledge").status_code == 200
    moved = activity(volume(37.0, 34.0))
    assert tr.put(f"/v1/activities/{aid}", json=moved, headers={"If-Match": '"1"'}).is_success
    note = sign_checkpoint(held_area.engine, held_area.clock())
    found = Made(held_area, middle, checkpoint_of(note).size)
    result = found.verify(export(held_area.engine))
    assert result.ok, result.detail  # the untouched log verifies
    assert result.entries == found.size
    return found


def expect(result: Any, reason: Reason, index: int) -> None:
    assert not result.ok
    assert (result.reason, result.first_bad_index) == (reason, index), result.detail


def test_an_edited_payload_byte(made: Made) -> None:
    engine = made.area.engine
    k = index_of(engine, "activity.notify", 1)  # IL's crossing plan
    with transaction(engine, write=True) as conn:
        payload = conn.execute(select(t.entries.c.payload).where(t.entries.c.idx == k)).scalar_one()
        assert payload["body"]["title"] == "patrol"
        payload["body"]["title"] = "patrom"  # one byte
        conn.execute(update(t.entries).where(t.entries.c.idx == k).values(payload=payload))
    # The payload no longer matches the payload_sha256 the signature covers.
    expect(made.verify(export(engine)), Reason.MALFORMED, k)


def test_an_edited_payload_with_its_hash_recomputed(made: Made) -> None:
    engine = made.area.engine
    k = index_of(engine, "activity.notify", 1)
    with transaction(engine, write=True) as conn:
        payload = conn.execute(select(t.entries.c.payload).where(t.entries.c.idx == k)).scalar_one()
        payload["body"]["title"] = "patrom"
        conn.execute(
            update(t.entries)
            .where(t.entries.c.idx == k)
            .values(payload=payload, payload_sha256=payload_sha256(payload))
        )
    expect(made.verify(export(engine)), Reason.SIGNATURE, k)


def test_a_deleted_row(made: Made) -> None:
    engine = made.area.engine
    k = index_of(engine, "activity.acknowledge")
    with transaction(engine, write=True) as conn:
        conn.execute(delete(t.entries).where(t.entries.c.idx == k))
    expect(made.verify(export(engine)), Reason.GAP, k)


def test_the_last_row_deleted(made: Made) -> None:
    engine = made.area.engine
    with transaction(engine, write=True) as conn:
        conn.execute(delete(t.entries).where(t.entries.c.idx == made.size - 1))
    expect(made.verify(export(engine)), Reason.TRUNCATED, made.size - 1)


def test_two_rows_swapped(made: Made) -> None:
    engine = made.area.engine
    a, b = made.middle, made.middle + 2  # IL's statement and the conflict the log detected
    with transaction(engine, write=True) as conn:
        for old, new in ((a, -1), (b, a), (-1, b)):
            conn.execute(update(t.entries).where(t.entries.c.idx == old).values(idx=new))
    # Each entry is still well signed; the tree no longer has the root signed at the end, and
    # the halfway checkpoint shows the difference starts at the first swapped row.
    expect(made.verify(export(engine)), Reason.FORK, a)


def test_two_records_swapped_in_what_the_server_serves(made: Made) -> None:
    records = export(made.area.engine)
    at = {r["index"]: n for n, r in enumerate(records) if r["type"] == "entry"}
    a, b = at[made.middle], at[made.middle + 2]
    records[a], records[b] = records[b], records[a]
    expect(made.verify(records), Reason.ORDER, made.middle)


def test_an_entry_signed_by_a_revoked_key(made: Made) -> None:
    engine, clock, area = made.area.engine, made.area.clock, made.area
    with transaction(engine, write=True) as conn:
        key = officer_key(conn, "tr-duty")
        assert key.private_key is not None  # server-held: the server could sign in its name
        revoke(conn, "TR", area.roots["TR"], "tr-duty", clock())
    refused = area.api.as_("tr-duty").post("/v1/activities", json=activity())
    assert refused.status_code == 403  # the service no longer signs with it
    with transaction(engine, write=True) as conn:
        # Appended directly, past the service's checks, with the key the server still had.
        entry = sign_entry(
            EntryFields(
                kind="activity.notify",
                party="TR",
                author="tr-duty",
                payload=statement_payload(None, None, activity()),
                client_time=log.rfc3339(clock()),
                nonce=log.new_nonce(),
                key_id=key.key_id,
                server_held_key=True,
            ),
            key.private_key,
        )
        k = log.append(conn, entry, "activity/99", clock())
        log.checkpoint(conn, clock())
    assert k == made.size + 1  # after the revocation entry
    expect(made.verify(export(engine)), Reason.REVOKED_KEY, k)


def test_a_replayed_entry(made: Made) -> None:
    engine, clock = made.area.engine, made.area.clock
    k = index_of(engine, "activity.notify")
    with transaction(engine, write=False) as conn:
        row = conn.execute(select(t.entries).where(t.entries.c.idx == k)).one()
    entry = log.stored_entry(row)
    # The database refuses the same signed entry twice (uq_entries_nonce)...
    with pytest.raises(IntegrityError), transaction(engine, write=True) as conn:
        log.append(conn, entry, row.subject, clock())
    assert log_size(engine) == made.size
    # ...so the replay is made in what a server serves: the entry again at the end.
    records = export(engine)
    replayed = next(r for r in records if r.get("index") == k)
    records.append({"type": "entry", "index": made.size, "entry": copy.deepcopy(replayed["entry"])})
    expect(made.verify(records), Reason.REPLAYED_NONCE, made.size)


def test_a_fork_two_histories_served_to_two_parties(made: Made) -> None:
    area, engine = made.area, made.area.engine
    # What TR is served: the log goes on with TR's plan; TR remembers the checkpoint.
    assert area.api.as_("tr-duty").post("/v1/activities", json=activity(volume(40, 30))).is_success
    to_tr = sign_checkpoint(engine, area.clock())
    tr_export = export(engine)
    # What IL is served: the same prefix, then another history of the same length.
    with transaction(engine, write=True) as conn:
        truncate_log(conn, made.size, drop_checkpoints=True)
    assert area.api.as_("il-duty").post("/v1/activities", json=activity(volume(42, 30))).is_success
    to_il = sign_checkpoint(engine, area.clock())
    il_export = export(engine)
    assert checkpoint_of(to_il).size == checkpoint_of(to_tr).size
    assert checkpoint_of(to_il).root != checkpoint_of(to_tr).root

    # Each history verifies on its own; set against the other party's checkpoint, it forks
    # right after the last checkpoint both saw.
    assert made.verify(tr_export).ok
    assert made.verify(il_export).ok
    expect(made.verify(il_export, remembered=[to_tr]), Reason.FORK, made.size)
    expect(made.verify(tr_export, remembered=[to_il]), Reason.FORK, made.size)


def test_a_roll_back(made: Made) -> None:
    engine, clock = made.area.engine, made.area.clock
    with transaction(engine, write=False) as conn:
        remembered = conn.execute(
            select(t.checkpoints.c.note).where(t.checkpoints.c.size == made.size)
        ).scalar_one()
    cut = made.middle + 1
    with transaction(engine, write=True) as conn:
        truncate_log(conn, cut, drop_checkpoints=True)
        rolled_back = log.checkpoint(conn, clock())
    assert checkpoint_of(rolled_back).size == cut
    records = export(engine)
    assert made.verify(records).ok  # a reader who saw nothing before cannot tell
    expect(made.verify(records, remembered=[remembered]), Reason.ROLLBACK, cut)


def cosign_as_tr(made: Made) -> str:
    area = made.area
    with transaction(area.engine, write=True) as conn:
        tr = authenticate(conn, area.setup.tokens["tr-duty"], area.clock())
        return cosign_latest(conn, tr, area.roots["TR"], area.clock())


def test_a_party_client_catches_a_rewritten_history(made: Made) -> None:
    engine, clock = made.area.engine, made.area.clock
    cosigned = checkpoint_of(cosign_as_tr(made))
    assert cosigned.size == made.size
    # The server rewrites the tail TR cosigned and goes on from there.
    with transaction(engine, write=True) as conn:
        truncate_log(conn, made.middle, drop_checkpoints=False)
        append_facts(conn, made.size - made.middle + 1, clock(), "rewritten")
    with pytest.raises(Conflict, match="forked or was rewritten"):
        cosign_as_tr(made)
    with transaction(engine, write=False) as conn:
        notes = conn.execute(select(t.checkpoints.c.note)).scalars().all()
    assert not any("\n— TR " in n for n in notes if checkpoint_of(n).size > made.size)


def test_a_party_client_catches_a_rolled_back_history(made: Made) -> None:
    engine, clock = made.area.engine, made.area.clock
    cosigned = checkpoint_of(cosign_as_tr(made))
    assert cosigned.size == made.size
    # The server rewrites the tail TR cosigned, to fewer entries than TR cosigned.
    with transaction(engine, write=True) as conn:
        truncate_log(conn, made.middle, drop_checkpoints=False)
        append_facts(conn, made.size - made.middle - 1, clock(), "rolled back")
    with pytest.raises(Conflict):
        cosign_as_tr(made)
