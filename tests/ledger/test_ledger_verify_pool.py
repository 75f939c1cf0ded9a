"""The offline verifier with its process pool: the same verdict, the same first bad entry, as
when every check runs in one process, on a clean export and on the tampered ones, whether the
workers get records or read byte ranges of the export file themselves."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from deconfliction.ledger.canonical import canonical_json, parse_json
from deconfliction.ledger.entry import payload_sha256
from deconfliction.ledger.errors import Reason
from deconfliction.ledger.verify import (
    _certified,
    _Keys,
    _read,
    _read_canonical,
    verify_export,
)
from tests.ledger.ledger_support import LogBuilder, demo_log


def _rehashed(line: str, old: str, new: str) -> str:
    record = json.loads(line.replace(old, new))
    record["entry"]["payload_sha256"] = payload_sha256(record["entry"]["payload"])
    return json.dumps(record)


def _edit(record: int, change: Callable[[str], str]) -> Callable[[list[str]], list[str]]:
    def apply(lines: list[str]) -> list[str]:
        lines = list(lines)
        lines[record] = change(lines[record])
        return lines

    return apply


def _swap(a: int, b: int) -> Callable[[list[str]], list[str]]:
    def apply(lines: list[str]) -> list[str]:
        lines = list(lines)
        lines[a], lines[b] = lines[b], lines[a]
        return lines

    return apply


def _canonical(lines: list[str]) -> list[str]:
    return [canonical_json(json.loads(line)).decode() for line in lines]


CASES: list[tuple[str, Callable[[list[str]], list[str]], Reason | None, int | None]] = [
    ("untouched", list, None, None),
    ("untouched, canonical", _canonical, None, None),
    (
        "payload byte",
        _edit(3, lambda s: s.replace("air patrol", "air pAtrol")),
        Reason.MALFORMED,
        3,
    ),
    (
        "payload byte, canonical",
        lambda lines: [line.replace("air patrol", "air pAtrol") for line in _canonical(lines)],
        Reason.MALFORMED,
        3,
    ),
    ("payload rehashed", _edit(3, lambda s: _rehashed(s, "air patrol", "X")), Reason.SIGNATURE, 3),
    (
        "duplicate member",
        _edit(6, lambda s: s.replace('"index"', '"index": 0, "index"')),
        Reason.MALFORMED,
        5,
    ),
    ("swapped rows", _swap(5, 6), Reason.ORDER, 4),
    ("deleted row", lambda lines: lines[:6] + lines[7:], Reason.GAP, 5),
    ("blank line", lambda lines: [*lines[:6], "", *lines[6:]], Reason.MALFORMED, 5),
    (
        "edited checkpoint",
        _edit(9, lambda s: s.replace("log.", "lag.")),
        Reason.CHECKPOINT_SIGNATURE,
        None,
    ),
]


def _keys(log: LogBuilder) -> _Keys:
    """The keys a worker tries: the party roots and the log key, no officer key yet."""
    return _Keys(log.log.verifier().public_key, log.keys()["party_roots"], {})


@pytest.fixture(scope="module")
def log() -> LogBuilder:
    return demo_log()


@pytest.mark.parametrize(("name", "tamper", "reason", "index"), CASES, ids=[c[0] for c in CASES])
def test_pool_gives_the_sequential_verdict(
    log: LogBuilder,
    tmp_path: Path,
    name: str,
    tamper: Callable[[list[str]], list[str]],
    reason: Reason | None,
    index: int | None,
) -> None:
    lines = tamper(log.lines())
    alone = verify_export(lines, **log.keys(), workers=0)
    assert (alone.reason, alone.first_bad_index) == (reason, index), alone
    assert verify_export(lines, **log.keys(), workers=2, chunk=2) == alone
    export = tmp_path / "export.jsonl"
    export.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    # 1 KiB ranges: every worker reads a few lines of the file, cut at line boundaries.
    for workers in (0, 2):
        with export.open("rb") as file:
            assert verify_export(file, **log.keys(), workers=workers, chunk=1) == alone


def test_a_file_is_read_from_where_it_stands(log: LogBuilder, tmp_path: Path) -> None:
    export = tmp_path / "export.jsonl"
    export.write_text("preamble\n" + "".join(line + "\n" for line in log.lines()))
    with export.open("rb") as file:
        file.readline()
        result = verify_export(file, **log.keys(), workers=2, chunk=1)
    assert result == verify_export(log.lines(), **log.keys(), workers=0)
    assert result.ok and result.entries == 12


def test_a_canonical_export_is_read_without_parsing_its_payloads(log: LogBuilder) -> None:
    # `ledger export` writes canonical JSON, so each payload's text is what its hash covers.
    lines = _canonical(log.lines())
    keys = _keys(log).with_officers(found for line in lines for found in _certified(line))
    for number in (2, 3, 5, 6, 7, 10, 13):  # records of the entries that are not key entries
        read = _read_canonical(lines[number].encode(), keys)
        assert read is not None and len(read.signers) == 1 and read.entry is None, number
        assert read == _read(json.loads(lines[number]), keys)  # what the long way reads
    record = json.loads(lines[3])
    payload = json.dumps(record["entry"]["payload"], separators=(",", ":"), ensure_ascii=False)
    refused = {
        # a second payload member after the hashed one, whichever a reader keeps
        "doubled payload": lines[3].replace(payload, payload + ',"payload":{"rule":"none"}', 1),
        # the payload text moved into another member's place hashes right but is no payload
        "moved payload": lines[3].replace(f'"payload":{payload}', '"payload":null', 1),
        "doubled member": lines[3].replace('"author"', '"author":"x","author"', 1),
        "doubled entry": lines[3].replace('"index"', '"entry":null,"index"', 1),
        "spaced": lines[3].replace('"kind":', '"kind": ', 1),
    }
    for name, line in refused.items():
        assert line != lines[3], name
        assert _read_canonical(line.encode(), keys) is None, name
    result = verify_export([*lines[:3], refused["doubled payload"], *lines[4:]], **log.keys())
    assert (result.reason, result.first_bad_index) == (Reason.MALFORMED, 3)
    assert verify_export([*lines[:3], refused["spaced"], *lines[4:]], **log.keys()).ok


def test_a_payload_that_hashes_right_must_be_a_json_object(log: LogBuilder) -> None:
    record = json.loads(_canonical(log.lines())[3])
    for text in ('["air patrol"]', '{"a":1', "nope"):
        digest = hashlib.sha256(text.encode()).hexdigest()
        entry = {**record["entry"], "payload": None, "payload_sha256": digest}
        line = canonical_json({**record, "entry": entry}).decode()
        line = line.replace('"payload":null', f'"payload":{text}', 1)
        assert _read_canonical(line.encode(), _keys(log)) is None, text
        assert _read(line, _keys(log)).record != "entry" or _read(line, _keys(log)).payload_error


def test_a_certificate_the_scan_misses_is_still_honoured(log: LogBuilder) -> None:
    # JSON may spell "certify" with escapes: the quick scan does not see that certificate, so
    # no worker knows the key, and this process verifies its entries' signatures itself.
    lines = log.lines()
    hidden = lines[0].replace('"key.certify"', '"key.c\\u0065rtify"', 1)
    assert hidden != lines[0] and not _certified(hidden)
    escaped = [hidden, *lines[1:]]
    keys = _keys(log)
    assert _read(escaped[2], keys).signers == ()  # TR's zone, signed by tr-duty-1
    assert _read(escaped[2], keys.with_officers(_certified(lines[0]))).signers != ()
    result = verify_export(escaped, **log.keys(), workers=2, chunk=2)
    assert result.ok and result.entries == 12, result


MUTATIONS = [
    ("2025-04-09T09:00:00Z", "2025-13-09T09:00:00Z"),  # no such month
    ('"author":"tr-duty-1"', '"author":"\\u0074r-duty-1"'),  # an escape: same value
    ('"author":"tr-duty-1"', '"author":"tr duty 1"'),
    ('"server_held_key":false', '"server_held_key":true'),
    ('"supersedes":null', '"supersedes":"' + "ab" * 32 + '"'),
    ('"index":2,', '"index":02,'),
    ('"index":2,', '"index":2.0,'),
    ('"nonce":"', '"nonce":"a'),
    ('"kind":"zone.declare"', '"kind":"zone.Declare"'),
    ('"rule":"no_entry"', '"rule": "no_entry"'),
    ('"party":"TR"', '"party":"_log"'),
]


@pytest.mark.parametrize(("old", "new"), MUTATIONS)
def test_the_quick_read_agrees_with_the_strict_one(log: LogBuilder, old: str, new: str) -> None:
    # An edited line is read the quick way only when that gives what the strict read gives.
    lines = _canonical(log.lines())
    keys = _keys(log).with_officers(found for line in lines for found in _certified(line))
    line = lines[2].replace(old, new, 1)
    assert line != lines[2]
    quick = _read_canonical(line.encode(), keys)
    if quick is not None:
        assert quick == _read(parse_json(line), keys)
    alone = verify_export([*lines[:2], line, *lines[3:]], **log.keys(), workers=0)
    assert verify_export([*lines[:2], line, *lines[3:]], **log.keys(), workers=2, chunk=2) == alone
