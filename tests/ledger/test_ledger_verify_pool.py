"""The offline verifier with its process pool: the same verdict, the same first bad entry, as
when every check runs in one process, on a clean export and on the tampered ones."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from deconfliction.ledger.canonical import canonical_json
from deconfliction.ledger.entry import payload_sha256
from deconfliction.ledger.errors import Reason
from deconfliction.ledger.verify import _hashed_as_written, _Job, verify_export
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


CASES: list[tuple[str, Callable[[list[str]], list[str]], Reason | None, int | None]] = [
    ("untouched", list, None, None),
    (
        "payload byte",
        _edit(3, lambda s: s.replace("air patrol", "air pAtrol")),
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
    (
        "edited checkpoint",
        _edit(9, lambda s: s.replace("log.", "lag.")),
        Reason.CHECKPOINT_SIGNATURE,
        None,
    ),
]


@pytest.fixture(scope="module")
def log() -> LogBuilder:
    return demo_log()


@pytest.mark.parametrize(("name", "tamper", "reason", "index"), CASES, ids=[c[0] for c in CASES])
def test_pool_gives_the_sequential_verdict(
    log: LogBuilder,
    name: str,
    tamper: Callable[[list[str]], list[str]],
    reason: Reason | None,
    index: int | None,
) -> None:
    lines = tamper(log.lines())
    alone = verify_export(lines, **log.keys(), workers=0)
    pooled = verify_export(lines, **log.keys(), workers=2, chunk=2)
    assert pooled == alone
    assert (alone.reason, alone.first_bad_index) == (reason, index), alone


def test_a_canonical_export_is_hashed_as_written(log: LogBuilder) -> None:
    # `ledger export` writes canonical JSON, so each payload's text is what its hash covers.
    lines = [canonical_json(json.loads(line)).decode() for line in log.lines()]
    entry_line = lines[3].encode()
    record = json.loads(entry_line)
    job = _Job(3, 3, entry_line, record["entry"]["payload_sha256"], b"", b"", b"")
    assert _hashed_as_written(entry_line, job)
    assert verify_export(lines, **log.keys(), workers=0).ok
    # A second payload member after the hashed one is refused, whichever a reader keeps.
    payload = json.dumps(record["entry"]["payload"], separators=(",", ":"))
    doubled = lines[3].replace(payload, payload + ',"payload":{"rule":"none"}', 1)
    assert doubled != lines[3]
    assert not _hashed_as_written(doubled.encode(), job)
    result = verify_export([*lines[:3], doubled, *lines[4:]], **log.keys(), workers=0)
    assert (result.reason, result.first_bad_index) == (Reason.MALFORMED, 3)
    # The payload text moved into another member's place hashes right but is not the payload.
    moved = lines[3].replace(f'"payload":{payload}', '"payload":null', 1)
    assert not _hashed_as_written(moved.encode(), job)
