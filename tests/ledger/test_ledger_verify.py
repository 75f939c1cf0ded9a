"""Tamper tests: a real log is exported, edited the way a cheat would, and the offline verifier
must name the first bad entry index and the reason.

Record numbers of the demo export: entries 0-3 are records 0-3, the size-4 checkpoint is
record 4, entries 4-7 are records 5-8, the size-8 checkpoint record 9, entries 8-11 records
10-13, the size-12 checkpoint record 14.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from deconfliction.ledger.entry import KIND_CERTIFY, Entry, certify_payload, payload_sha256
from deconfliction.ledger.errors import LedgerError, Reason
from deconfliction.ledger.merkle import EMPTY_ROOT
from deconfliction.ledger.signing import generate_private_key
from deconfliction.ledger.verify import VerifyResult, verify_export
from tests.ledger.ledger_support import T0, LogBuilder, demo_log, sign_unchecked

CP4, CP8, CP12 = 4, 9, 14  # record numbers of the checkpoints


@pytest.fixture(scope="module")
def log() -> LogBuilder:
    return demo_log()


def _check(log: LogBuilder, lines: list[Any], **kw: Any) -> VerifyResult:
    result = verify_export(lines, **{**log.keys(), **kw})
    # The same verdict from this process alone and from worker processes reading chunks of
    # three records.
    assert verify_export(lines, **{**log.keys(), **kw}, workers=0) == result
    assert verify_export(lines, **{**log.keys(), **kw}, workers=2, chunk=3) == result
    return result


def _at(lines: list[str], index: int) -> int:
    """Record number of entry ``index``."""
    return next(
        n
        for n, line in enumerate(lines)
        if json.loads(line)["type"] == "entry" and json.loads(line)["index"] == index
    )


def _bad(result: VerifyResult, reason: Reason, index: int | None, record: int | None) -> None:
    assert not result.ok, result
    assert (result.reason, result.first_bad_index, result.record) == (reason, index, record), result
    assert result.detail


def test_the_untouched_export_verifies(log: LogBuilder) -> None:
    result = _check(log, log.lines(), required_cosigners=["mediator.example", "tr.party.example"])
    assert result.ok, result.detail
    assert (result.entries, result.checkpoints, result.checkpointed_size) == (12, 3, 12)
    assert result.root == log.state.root()
    assert set(result.signers) == {
        "log.deconfliction.example",
        "mediator.example",
        "tr.party.example",
        "il.party.example",
    }
    # Parsed records are accepted as well as lines, and remembered checkpoints that still hold.
    again = _check(log, log.records, remembered=[log.records[CP8]["note"]])
    assert again.ok and again.checkpoints == 4


def _rehash(line: str) -> str:
    """The entry record with payload_sha256 recomputed over its (edited) payload."""
    record = json.loads(line)
    record["entry"]["payload_sha256"] = payload_sha256(record["entry"]["payload"])
    return json.dumps(record)


def _redact(line: str) -> str:
    record = json.loads(line)
    record["entry"] = Entry.from_json(record["entry"]).redacted().to_json()
    return json.dumps(record)


def test_edited_payload_byte(log: LogBuilder) -> None:
    # The edited payload no longer matches payload_sha256; with the hash recomputed as well,
    # the signature (over the hash) fails.
    lines = log.lines()
    lines[3] = lines[3].replace("air patrol", "air pAtrol")
    _bad(_check(log, lines), Reason.MALFORMED, 3, 3)
    lines[3] = _rehash(lines[3])
    _bad(_check(log, lines), Reason.SIGNATURE, 3, 3)
    # The server re-signing the checkpoints over the edit does not help it.
    _bad(_check(log, log.reseal(lines)), Reason.SIGNATURE, 3, 3)


def test_edited_number_in_payload(log: LogBuilder) -> None:
    lines = log.lines()
    lines[2] = lines[2].replace("12000.5", "12000.6")
    _bad(_check(log, lines), Reason.MALFORMED, 2, 2)
    lines[2] = _rehash(lines[2])
    _bad(_check(log, lines), Reason.SIGNATURE, 2, 2)


def test_edited_certificate(log: LogBuilder) -> None:
    lines = log.lines()
    record = json.loads(lines[1])
    record["entry"]["payload"]["public_key"] = record["entry"]["payload"]["public_key"][::-1]
    lines[1] = json.dumps(record)
    _bad(_check(log, lines), Reason.MALFORMED, 1, 1)
    lines[1] = _rehash(lines[1])
    _bad(_check(log, lines), Reason.SIGNATURE, 1, 1)


def test_an_export_with_redacted_entries_verifies(log: LogBuilder) -> None:
    lines = log.lines()
    for index in (2, 3, 8, 11):
        lines[_at(lines, index)] = _redact(lines[_at(lines, index)])
    assert json.loads(lines[3])["entry"]["payload"] is None
    result = _check(log, lines, required_cosigners=["mediator.example", "il.party.example"])
    assert result.ok, result.detail
    assert (result.entries, result.checkpoints, result.root) == (12, 3, log.state.root())


def test_edited_hash_of_a_redacted_entry(log: LogBuilder) -> None:
    lines = log.lines()
    lines[3] = _redact(lines[3])
    record = json.loads(lines[3])
    record["entry"]["payload_sha256"] = "0" + record["entry"]["payload_sha256"][1:]
    lines[3] = json.dumps(record)
    _bad(_check(log, lines), Reason.SIGNATURE, 3, 3)


def test_redacted_key_entry(log: LogBuilder) -> None:
    lines = log.lines()
    record = json.loads(lines[1])
    record["entry"]["payload"] = None
    lines[1] = json.dumps(record)
    result = _check(log, lines)
    _bad(result, Reason.MALFORMED, 1, 1)
    assert "redacted" in result.detail


def _log_with_notice() -> tuple[LogBuilder, Entry]:
    log = LogBuilder()
    log.certify("IL", "il-duty-1")
    return log, log.say("IL", "il-duty-1", "activity.notify", {"activity": "air patrol"})


def test_log_entries_signed_by_the_log_key_verify() -> None:
    log, notice = _log_with_notice()
    log.by_log("activity.filed", {"activity": 12, "entry": notice.leaf_hash.hex()})
    log.checkpoint()
    assert _check(log, log.lines()).ok
    lines = log.lines()
    lines[2] = _redact(lines[2])
    assert _check(log, lines).ok


@pytest.mark.parametrize(
    "forge",
    [
        lambda log: log.by_log("activity.filed", {"activity": 12}, key=generate_private_key()),
        lambda log: log.append(
            sign_unchecked(
                log.log_fields(KIND_CERTIFY, certify_payload("x", bytes(32), T0)),
                log.log.private_key,
            )
        ),
    ],
    ids=["another key", "key entry"],
)
def test_log_entries_that_break_the_rules(forge: Any) -> None:
    log, _ = _log_with_notice()
    forge(log)
    log.checkpoint()
    _bad(_check(log, log.lines()), Reason.UNCERTIFIED_KEY, 2, 2)


def test_deleted_row_is_an_index_gap(log: LogBuilder) -> None:
    lines = log.lines()
    del lines[_at(lines, 5)]
    _bad(_check(log, lines), Reason.GAP, 5, 6)


def test_deleted_and_renumbered_row_is_a_fork_against_remembered_checkpoints(
    log: LogBuilder,
) -> None:
    # The server deletes entry 5, renumbers the rest and re-signs every checkpoint.
    lines = log.lines()
    del lines[_at(lines, 5)]
    for n, line in enumerate(lines):
        record = json.loads(line)
        if record["type"] == "entry" and record["index"] > 5:
            record["index"] -= 1
            lines[n] = json.dumps(record)
    resealed = log.reseal(lines)
    assert _check(log, resealed).ok  # internally consistent: only outside memory can tell
    remembered = [log.records[CP8]["note"]]
    # A party kept the size-8 checkpoint. No checkpoint it (or a cosigner) signed matches, so
    # the first difference can lie anywhere from entry 0.
    _bad(_check(log, resealed, remembered=remembered), Reason.FORK, 0, None)
    # Requiring the parties' cosignatures catches it at the first re-signed checkpoint.
    _bad(
        _check(log, resealed, required_cosigners=["tr.party.example"]),
        Reason.CHECKPOINT_SIGNATURE,
        None,
        CP4,
    )


def test_swapped_rows(log: LogBuilder) -> None:
    lines = log.lines()
    a, b = _at(lines, 5), _at(lines, 6)
    lines[a], lines[b] = lines[b], lines[a]
    _bad(_check(log, lines), Reason.ORDER, 5, a)


def test_swapped_contents_keeping_indices_is_a_fork(log: LogBuilder) -> None:
    records = [json.loads(line) for line in log.lines()]
    a, b = _at(log.lines(), 4), _at(log.lines(), 5)
    records[a]["entry"], records[b]["entry"] = records[b]["entry"], records[a]["entry"]
    _bad(_check(log, [json.dumps(r) for r in records]), Reason.FORK, 4, CP8)


def test_duplicated_row(log: LogBuilder) -> None:
    lines = log.lines()
    lines.insert(_at(lines, 6), lines[_at(lines, 5)])
    _bad(_check(log, lines), Reason.ORDER, 6, 7)


def test_uncertified_key(log: LogBuilder) -> None:
    # The server forges an entry for an officer with a key no party root ever certified.
    lines = log.lines()
    forged = log.signed(
        "IL", "il-duty-1", "message.send", {"text": "x"}, key=generate_private_key()
    )
    lines.append(json.dumps({"type": "entry", "index": 12, "entry": forged.to_json()}))
    _bad(_check(log, lines), Reason.UNCERTIFIED_KEY, 12, 15)


def test_key_used_before_its_certificate() -> None:
    log = LogBuilder()
    key = generate_private_key()
    log.say("TR", "early", "message.send", {"text": "too early"}, key=key)
    log.certify("TR", "early", key=key)
    log.checkpoint()
    _bad(_check(log, log.lines()), Reason.UNCERTIFIED_KEY, 0, 0)


def test_revoked_key(log: LogBuilder) -> None:
    # tr-duty-1 was revoked at index 10; an entry it signs afterwards is refused.
    lines = log.lines()
    late = log.signed("TR", "tr-duty-1", "message.send", {"text": "after revocation"})
    lines.append(json.dumps({"type": "entry", "index": 12, "entry": late.to_json()}))
    _bad(_check(log, lines), Reason.REVOKED_KEY, 12, 15)


def test_replayed_nonce(log: LogBuilder) -> None:
    # The server appends a second copy of entry 3 and re-signs: it cannot make IL say it twice.
    lines = log.lines()
    copy = json.loads(lines[3])
    copy["index"] = 12
    lines.append(json.dumps(copy))
    lines.append(lines[CP12])
    _bad(_check(log, log.reseal(lines)), Reason.REPLAYED_NONCE, 12, 15)


def test_fork_a_checkpoint_signed_over_other_entries(log: LogBuilder) -> None:
    lines = log.lines()
    bogus = log.checkpoint_note(8, bytes(32), cosigned=False)
    lines[CP8] = json.dumps({"type": "checkpoint", "note": bogus})
    _bad(_check(log, lines), Reason.FORK, 4, CP8)


def test_roll_back_to_a_smaller_size_in_the_export(log: LogBuilder) -> None:
    lines = [*log.lines(), log.lines()[CP8]]
    _bad(_check(log, lines), Reason.ROLLBACK, 8, 15)


def test_roll_back_against_a_remembered_checkpoint(log: LogBuilder) -> None:
    # The server drops entries 8-11 and the checkpoint over them; a party remembers it.
    lines = log.lines()[: CP8 + 1]
    assert _check(log, lines).ok
    remembered = [log.records[CP12]["note"]]
    _bad(_check(log, lines, remembered=remembered), Reason.ROLLBACK, 8, None)


def test_checkpoint_over_missing_tail(log: LogBuilder) -> None:
    lines = log.lines()
    del lines[_at(lines, 11)]
    _bad(_check(log, lines), Reason.TRUNCATED, 11, None)


def test_checkpoint_with_edited_root(log: LogBuilder) -> None:
    lines = log.lines()
    record = json.loads(lines[CP8])
    head, rest = record["note"].split("\n", 2)[:2], record["note"].split("\n", 2)[2]
    record["note"] = "\n".join(head) + "\n" + "A" + rest[1:]
    lines[CP8] = json.dumps(record)
    _bad(_check(log, lines), Reason.CHECKPOINT_SIGNATURE, None, CP8)


def test_checkpoint_missing_a_required_cosignature(log: LogBuilder) -> None:
    lines = log.lines()
    record = json.loads(lines[CP8])
    record["note"] = "".join(
        line for line in record["note"].splitlines(keepends=True) if "il.party" not in line
    )
    lines[CP8] = json.dumps(record)
    assert _check(log, lines).ok
    _bad(
        _check(log, lines, required_cosigners=["il.party.example"]),
        Reason.CHECKPOINT_SIGNATURE,
        None,
        CP8,
    )


def test_checkpoint_of_another_log(log: LogBuilder) -> None:
    other = log.checkpoint_note(4, log.state.root()).replace(
        "log.deconfliction.example\n4", "other.example\n4", 1
    )
    lines = log.lines()
    lines[CP4] = json.dumps({"type": "checkpoint", "note": other})
    # The edited text breaks the log signature before the origin is even read.
    _bad(_check(log, lines), Reason.CHECKPOINT_SIGNATURE, None, CP4)


def test_supersedes_must_name_an_earlier_entry_of_the_same_party(log: LogBuilder) -> None:
    zone = log.records[2]["entry"]
    lines = log.lines()
    foreign = log.signed(
        "IL", "il-duty-1", "zone.amend", {"rule": "caution"}, supersedes=Entry.from_json(zone)
    )
    lines.append(json.dumps({"type": "entry", "index": 12, "entry": foreign.to_json()}))
    _bad(_check(log, lines), Reason.BAD_SUPERSEDES, 12, 15)


def test_server_held_flag_must_match_the_certificate(log: LogBuilder) -> None:
    lines = log.lines()
    hidden = log.signed("IL", "il-duty-2", "message.send", {"text": "as if by hand"})
    lines.append(json.dumps({"type": "entry", "index": 12, "entry": hidden.to_json()}))
    _bad(_check(log, lines), Reason.UNCERTIFIED_KEY, 12, 15)


def test_entry_before_the_keys_not_before() -> None:
    log = LogBuilder()
    log.certify("TR", "later", not_before="2025-05-01T00:00:00Z")
    log.say("TR", "later", "message.send", {"text": "x"}, client_time=T0)
    _bad(_check(log, log.lines()), Reason.UNCERTIFIED_KEY, 1, 1)


def test_root_key_signs_only_key_entries() -> None:
    log = LogBuilder()
    log.by_root("TR", "message.send", {"text": "from the root key"})
    _bad(_check(log, log.lines()), Reason.UNCERTIFIED_KEY, 0, 0)


def test_unknown_party() -> None:
    log = LogBuilder(parties=("TR", "XX"))
    log.certify("XX", "someone")
    keys = log.keys()
    del keys["party_roots"]["XX"]
    _bad(verify_export(log.lines(), **keys), Reason.UNCERTIFIED_KEY, 0, 0)


@pytest.mark.parametrize(
    "edit",
    [
        lambda line: line[:-1],  # broken JSON
        lambda line: line.replace('"type": "entry"', '"type": "entry", "type": "entry"'),
        lambda line: line.replace('"type": "entry"', '"type": "row"'),
        # Duplicate members, whichever copy a last-wins reader would keep.
        lambda line: line.replace('"index": 2', '"index": 9, "index": 2'),
        lambda line: line.replace('"index": 2', '"index": 2, "index": 9'),
        lambda line: line.replace('"party": "', '"party": "XX", "party": "'),
        lambda line: line.replace('"index": 2', '"index": 2.0'),
        lambda line: line.replace('"index": 2', '"index": true'),
        lambda line: line.replace('"supersedes": null', '"supersedes": null, "extra": 1'),
        lambda line: line.replace("12000.5", "NaN"),
        lambda line: line.replace('"nonce": "', '"nonce": "zz'),
    ],
)
def test_malformed_records(log: LogBuilder, edit: Any) -> None:
    lines = log.lines()
    lines[2] = edit(lines[2])
    _bad(_check(log, lines), Reason.MALFORMED, 2, 2)


def test_checkpoint_record_that_is_not_a_note(log: LogBuilder) -> None:
    lines = log.lines()
    lines[CP4] = json.dumps({"type": "checkpoint", "note": 4})
    _bad(_check(log, lines), Reason.MALFORMED, None, CP4)
    lines[CP4] = json.dumps({"type": "checkpoint", "note": "not a note"})
    _bad(_check(log, lines), Reason.MALFORMED, None, CP4)


def test_checkpoint_written_before_its_entries_is_checked_when_they_arrive(
    log: LogBuilder,
) -> None:
    lines = log.lines()
    lines.insert(CP4 + 1, lines.pop(CP8))
    assert _check(log, lines).ok
    bogus = log.checkpoint_note(8, bytes(32), cosigned=False)
    lines[CP4 + 1] = json.dumps({"type": "checkpoint", "note": bogus})
    _bad(_check(log, lines), Reason.FORK, 4, CP4 + 1)


def test_empty_export_and_empty_checkpoint(log: LogBuilder) -> None:
    assert _check(log, []).ok
    note = log.checkpoint_note(0, EMPTY_ROOT)
    result = _check(log, [json.dumps({"type": "checkpoint", "note": note})])
    assert result.ok and result.checkpoints == 1


def test_a_malformed_trusted_key_is_the_callers_error(log: LogBuilder) -> None:
    with pytest.raises(LedgerError):
        verify_export([], party_roots={"TR": b"short"}, log_key=log.log.verifier())
