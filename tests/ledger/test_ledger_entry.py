"""Signed entries, their canonical bytes, signing keys and the key ring."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deconfliction.ledger.canonical import canonical_json
from deconfliction.ledger.entry import (
    KIND_CERTIFY,
    KIND_REVOKE,
    LOG_PARTY,
    Entry,
    EntryFields,
    KeyRing,
    certify_payload,
    entry_bytes,
    officer_key_name,
    payload_sha256,
    revoke_payload,
    sign_entry,
    sign_log_entry,
    signing_bytes,
    verify_entry,
)
from deconfliction.ledger.errors import LedgerError, Reason
from deconfliction.ledger.merkle import leaf_hash
from deconfliction.ledger.signing import (
    generate_private_key,
    key_id,
    load_public_key,
    public_key_b64,
    public_key_bytes,
    sign_json,
    verify_json,
)
from tests.ledger.ledger_support import ORIGIN, LogBuilder, demo_log, sign_unchecked

KEY = generate_private_key()
KID = key_id(officer_key_name("TR", "tr-duty-1"), public_key_bytes(KEY)).hex()


def _fields(**changes: Any) -> EntryFields:
    values: dict[str, Any] = {
        "kind": "zone.declare",
        "party": "TR",
        "author": "tr-duty-1",
        "payload": {"rule": "no_entry", "radius_m": 5000.5},
        "client_time": "2025-04-09T10:00:00Z",
        "nonce": "0f" * 16,
        "key_id": KID,
    }
    return EntryFields(**{**values, **changes})


def test_sign_and_verify_round_trip() -> None:
    entry = sign_entry(_fields(), KEY)
    verify_entry(entry, KEY.public_key())
    assert Entry.from_json(entry.to_json()) == entry
    assert entry.leaf_hash == leaf_hash(entry_bytes(entry))
    with pytest.raises(LedgerError) as other:
        verify_entry(entry, generate_private_key().public_key())
    assert other.value.reason == Reason.SIGNATURE


def test_every_member_is_signed() -> None:
    entry = sign_entry(_fields(supersedes="ab" * 32), KEY)
    other_payload = {"rule": "caution", "radius_m": 5000.5}
    changes: list[dict[str, Any]] = [
        {"kind": "zone.amend"},
        {"party": "IL"},
        {"author": "tr-duty-2"},
        {"payload": other_payload, "payload_sha256": payload_sha256(other_payload)},
        {"payload": None, "payload_sha256": "00" * 32},
        {"client_time": "2025-04-09T10:00:01Z"},
        {"nonce": "0e" * 16},
        {"key_id": "00000000"},
        {"supersedes": None},
        {"server_held_key": True},
    ]
    for change in changes:
        edited = Entry.from_json({**entry.to_json(), **change})
        with pytest.raises(LedgerError) as err:
            verify_entry(edited, KEY.public_key())
        assert err.value.reason == Reason.SIGNATURE


def test_payload_hash_is_computed_checked_or_required() -> None:
    fields = _fields()
    assert fields.payload_sha256 == payload_sha256({"radius_m": 5000.5, "rule": "no_entry"})
    assert _fields(payload_sha256=fields.payload_sha256) == fields
    with pytest.raises(LedgerError, match="payload does not match its hash") as err:
        _fields(payload_sha256="00" * 32)
    assert err.value.reason == Reason.MALFORMED
    with pytest.raises(LedgerError, match="payload_sha256 is required"):
        _fields(payload=None)
    edited = {**sign_entry(fields, KEY).to_json(), "payload": {"rule": "caution"}}
    with pytest.raises(LedgerError, match="payload does not match its hash") as err:
        Entry.from_json(edited)
    assert err.value.reason == Reason.MALFORMED


def test_a_redacted_entry_keeps_its_signature_and_leaf_hash() -> None:
    entry = sign_entry(_fields(), KEY)
    hidden = entry.redacted()
    assert hidden.payload is None and hidden.payload_sha256 == entry.payload_sha256
    assert (hidden.signature, hidden.leaf_hash) == (entry.signature, entry.leaf_hash)
    verify_entry(hidden, KEY.public_key())
    assert hidden.to_json() == {**entry.to_json(), "payload": None}
    assert Entry.from_json(hidden.to_json()) == hidden
    assert signing_bytes(hidden) == signing_bytes(entry)


names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,20}", fullmatch=True)
payloads = st.dictionaries(
    st.text(max_size=6),
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**53), 2**53)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(st.characters(exclude_categories=["Cs"]), max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
        max_leaves=8,
    ),
    max_size=5,
)


@settings(max_examples=60, deadline=None)
@given(party=names, author=names, payload=payloads, held=st.booleans(), sup=st.booleans())
def test_fast_serialiser_equals_the_general_canonicaliser(
    party: str, author: str, payload: dict[str, Any], held: bool, sup: bool
) -> None:
    kid = key_id(officer_key_name(party, author), public_key_bytes(KEY)).hex()
    fields = _fields(
        party=party,
        author=author,
        payload=payload,
        key_id=kid,
        server_held_key=held,
        supersedes="cd" * 32 if sup else None,
    )
    entry = sign_entry(fields, KEY)
    whole = entry.to_json()
    del whole["payload"]
    assert entry_bytes(entry) == canonical_json(whole)
    del whole["signature"]
    assert signing_bytes(entry) == canonical_json(whole) == signing_bytes(fields)


def test_sign_entry_refuses_a_key_id_of_another_key() -> None:
    with pytest.raises(LedgerError, match="key_id"):
        sign_entry(_fields(key_id="00000000"), KEY)


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("kind", "Zone.Declare"),
        ("kind", ""),
        ("party", "T R"),
        ("party", "TR+1"),
        ("author", "tr/duty"),
        ("author", 7),
        ("payload", ["not", "an", "object"]),
        ("payload", {"x": float("nan")}),
        ("client_time", "2025-02-30T10:00:00Z"),
        ("client_time", "2025-04-09 10:00:00Z"),
        ("client_time", "2025-04-09T10:00:00z"),
        ("client_time", "2025-04-09T10:00:00"),
        ("client_time", "٢٠٢٥-04-09T10:00:00Z"),
        ("nonce", "0f" * 15),
        ("nonce", "0F" * 16),
        ("nonce", "0f" * 65),
        ("key_id", "ABCDEF01"),
        ("key_id", "abcdef0"),
        ("payload_sha256", "AB" * 32),
        ("payload_sha256", "ab" * 31),
        ("payload_sha256", ""),
        ("payload_sha256", None),
        ("payload_sha256", "00" * 32),  # not the payload's hash
        ("supersedes", "ab" * 31),
        ("server_held_key", 0),
        ("signature", "AA=="),
        ("signature", base64.b64encode(bytes(64)).decode()[:-3] + "B=="),  # non-canonical
        ("signature", None),
    ],
)
def test_malformed_members_are_refused(member: str, value: Any) -> None:
    good = sign_entry(_fields(), KEY).to_json()
    with pytest.raises(LedgerError) as err:
        Entry.from_json({**good, member: value})
    assert err.value.reason == Reason.MALFORMED


def test_members_must_be_exactly_the_defined_ones() -> None:
    good = sign_entry(_fields(), KEY).to_json()
    with pytest.raises(LedgerError, match="missing"):
        Entry.from_json({k: v for k, v in good.items() if k != "supersedes"})
    with pytest.raises(LedgerError, match="unexpected"):
        Entry.from_json({**good, "index": 3})
    with pytest.raises(LedgerError):
        Entry.from_json([good])


def test_signing_helpers() -> None:
    value = {"b": [1, 2.5], "a": "x"}
    signature = sign_json(KEY, value)
    assert verify_json(KEY.public_key(), {"a": "x", "b": [1, 2.5]}, signature)
    assert not verify_json(KEY.public_key(), {"a": "y", "b": [1, 2.5]}, signature)
    assert not verify_json(KEY.public_key(), value, "not base64!")
    assert public_key_bytes(load_public_key(public_key_b64(KEY))) == public_key_bytes(KEY)
    with pytest.raises(LedgerError):
        load_public_key(b"short")


# ---- key ring ------------------------------------------------------------------------------


def _entries(log: LogBuilder) -> list[Entry]:
    return [Entry.from_json(r["entry"]) for r in log.records if r["type"] == "entry"]


def _ring(log: LogBuilder) -> KeyRing:
    return KeyRing({party: public_key_bytes(key) for party, key in log.roots.items()})


def test_key_ring_answers_validity_by_log_index() -> None:
    log = demo_log()
    ring = _ring(log)
    for index, entry in enumerate(_entries(log)):
        ring.replay(entry, index)
    duty1 = key_id(
        officer_key_name("TR", "tr-duty-1"), public_key_bytes(log.officers[("TR", "tr-duty-1")])
    )
    assert not ring.valid_at("TR", "tr-duty-1", duty1.hex(), 0)  # its own certificate entry
    assert ring.valid_at("TR", "tr-duty-1", duty1.hex(), 1)
    assert ring.valid_at("TR", "tr-duty-1", duty1.hex(), 9)
    assert not ring.valid_at("TR", "tr-duty-1", duty1.hex(), 10)  # revoked at 10
    assert not ring.valid_at("IL", "tr-duty-1", duty1.hex(), 5)
    cert = ring.certificate("TR", "tr-duty-1", duty1.hex())
    assert cert is not None and (cert.certified_at, cert.revoked_at) == (0, 10)
    held = ring.certificate(
        "IL",
        "il-duty-2",
        key_id(
            officer_key_name("IL", "il-duty-2"), public_key_bytes(log.officers[("IL", "il-duty-2")])
        ).hex(),
    )
    assert held is not None and held.server_held


def test_key_ring_refuses_out_of_order_replay() -> None:
    log = demo_log()
    ring = _ring(log)
    entries = _entries(log)
    ring.replay(entries[0], 0)
    ring.replay(entries[1], 1)
    with pytest.raises(LedgerError) as err:
        ring.replay(entries[1], 1)
    assert err.value.reason == Reason.ORDER


def _replay_all(log: LogBuilder) -> None:
    ring = _ring(log)
    for index, entry in enumerate(_entries(log)):
        ring.replay(entry, index)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda log: (log.certify("TR", "a", key=KEY), log.certify("TR", "a", key=KEY)), "already"),
        (
            lambda log: (log.certify("TR", "a"), log.revoke("TR", "a"), log.revoke("TR", "a")),
            "revoked",
        ),
        (
            lambda log: log.by_root("TR", KIND_REVOKE, revoke_payload("a", public_key_bytes(KEY))),
            "never certified",
        ),
        (lambda log: log.by_root("TR", "key.rotate", {}), "unknown key entry kind"),
        (lambda log: log.by_root("TR", KIND_CERTIFY, {"officer": "a"}), "payload must have"),
        (
            lambda log: log.by_root(
                "TR",
                KIND_CERTIFY,
                {**certify_payload("a", bytes(32), "2025-01-01T00:00:00Z"), "x": 1},
            ),
            "payload must have",
        ),
        (
            lambda log: log.by_root(
                "TR", KIND_CERTIFY, certify_payload("a", public_key_bytes(KEY), "2025-01-01")
            ),
            "RFC 3339",
        ),
        (
            lambda log: log.by_root(
                "TR",
                KIND_CERTIFY,
                {"officer": "a", "public_key": 5, "not_before": "2025-01-01T00:00:00Z"},
            ),
            "public_key",
        ),
        (
            lambda log: log.by_root(
                "TR",
                KIND_CERTIFY,
                {
                    **certify_payload("a", public_key_bytes(KEY), "2025-01-01T00:00:00Z"),
                    "server_held": 1,
                },
            ),
            "server_held",
        ),
        (
            lambda log: log.by_root(
                "TR",
                KIND_CERTIFY,
                certify_payload("a b", public_key_bytes(KEY), "2025-01-01T00:00:00Z"),
            ),
            "officer",
        ),
    ],
)
def test_key_entries_that_break_the_rules(build: Any, message: str) -> None:
    log = LogBuilder()
    build(log)
    with pytest.raises(LedgerError, match=message):
        _replay_all(log)


def test_key_entries_must_be_signed_by_the_party_root() -> None:
    log = LogBuilder()
    officer = log.certify("TR", "a")
    forged = log.signed(
        "TR",
        "a",
        KIND_CERTIFY,
        certify_payload("b", bytes(32), "2025-01-01T00:00:00Z"),
        key=officer,
    )
    log.append(forged)
    with pytest.raises(LedgerError, match="must be signed by the party root") as err:
        _replay_all(log)
    assert err.value.reason == Reason.UNCERTIFIED_KEY


def test_key_entries_cannot_be_redacted() -> None:
    log = LogBuilder()
    log.certify("TR", "a")
    certificate = _entries(log)[0]
    with pytest.raises(LedgerError, match="cannot be redacted"):
        certificate.redacted()
    # One redacted by hand is refused when replayed.
    hidden = Entry.from_json({**certificate.to_json(), "payload": None})
    with pytest.raises(LedgerError, match="redacted") as err:
        _ring(log).replay(hidden, 0)
    assert err.value.reason == Reason.MALFORMED


# ---- log entries ---------------------------------------------------------------------------


def _log_ring(log: LogBuilder) -> KeyRing:
    return KeyRing(
        {party: public_key_bytes(key) for party, key in log.roots.items()},
        log_key=(ORIGIN, log.log.private_key.public_key()),
    )


def test_log_entries_are_signed_by_the_log_key() -> None:
    log = LogBuilder()
    entry = log.by_log("activity.filed", {"activity": 12, "from": 57, "notified": ["IL"]})
    _log_ring(log).replay(entry, 0)
    _log_ring(log).replay(entry.redacted(), 0)
    with pytest.raises(LedgerError, match="no log key") as err:
        _ring(log).replay(entry, 0)
    assert err.value.reason == Reason.UNCERTIFIED_KEY
    with pytest.raises(LedgerError, match="sign_log_entry"):
        sign_entry(log.log_fields("activity.filed", {}), log.log.private_key)
    with pytest.raises(LedgerError, match="key_id"):
        sign_log_entry(log.log_fields("activity.filed", {}), "other.example", log.log.private_key)
    with pytest.raises(LedgerError, match="only party roots"):
        sign_log_entry(log.log_fields(KIND_CERTIFY, {}), ORIGIN, log.log.private_key)
    with pytest.raises(LedgerError, match="'_log' is the log"):
        KeyRing({LOG_PARTY: public_key_bytes(KEY)})


@pytest.mark.parametrize(
    ("cheat", "reason"),
    [
        # Another key, under its own key id or claiming the log key's id.
        (lambda log, f: sign_log_entry(f(key=KEY), ORIGIN, KEY), Reason.UNCERTIFIED_KEY),
        (lambda log, f: sign_unchecked(f(), KEY), Reason.SIGNATURE),
        # The log key on a key entry or in the name of another author.
        (
            lambda log, f: sign_unchecked(
                f(
                    kind=KIND_CERTIFY,
                    payload=certify_payload("x", bytes(32), "2025-01-01T00:00:00Z"),
                ),
                log.log.private_key,
            ),
            Reason.UNCERTIFIED_KEY,
        ),
        (
            lambda log, f: sign_unchecked(f(author="tr-duty-1"), log.log.private_key),
            Reason.UNCERTIFIED_KEY,
        ),
    ],
)
def test_log_entries_that_break_the_rules(cheat: Any, reason: Reason) -> None:
    log = LogBuilder()

    def fields(
        key: Any = None, kind: str = "activity.filed", payload: Any = None, **changes: Any
    ) -> EntryFields:
        base = log.log_fields(kind, payload or {"activity": 12}, key=key)
        return dataclasses.replace(base, **changes)

    entry = cheat(log, fields)
    with pytest.raises(LedgerError) as err:
        _log_ring(log).replay(entry, 0)
    assert err.value.reason == reason
