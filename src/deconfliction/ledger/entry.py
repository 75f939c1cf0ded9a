"""Signed ledger entries, officer key certificates, and the key ring that replays them.

An entry records what one officer of one party said, signed by that officer's Ed25519 key.
Its JSON form always carries every member (``supersedes`` is ``null`` when absent)::

    {"author": "tr-duty-1", "client_time": "2025-04-09T10:00:00Z", "key_id": "1a2b3c4d",
     "kind": "zone.declare", "nonce": "<32-128 lowercase hex>", "party": "TR",
     "payload": {...}, "payload_sha256": "<64 lowercase hex>", "server_held_key": false,
     "signature": "<base64>", "supersedes": null}

- ``payload_sha256`` is the SHA-256 of the RFC 8785 canonical JSON of ``payload``; the entry
  commits to its payload only through this hash;
- ``signature`` is Ed25519 over the RFC 8785 canonical JSON of every member except ``payload``
  and ``signature`` (``signing_bytes``);
- the Merkle leaf is the canonical JSON of every member except ``payload``, signature included
  (``entry_bytes``);
- ``key_id`` is the C2SP key id (``signing.key_id``) of the signing key under its key name:
  ``<party>`` for the party root key, ``<party>/<officer>`` for an officer key;
- ``server_held_key`` is true when the server signed with a key it holds for the officer, an
  explicit convenience mode that the key's certificate must allow;
- ``supersedes`` is the hex leaf hash of an earlier entry of the same party that this one
  corrects; nothing is ever deleted.

Redaction. Because neither the signature nor the leaf covers the payload itself, an entry can be
shown with ``"payload": null`` (``Entry.redacted()``) to a party that may not read it: the
signature, the leaf hash and so the whole tree still verify. A payload that is present must match
``payload_sha256`` (else the entry is malformed). Key entries are never redacted: the key ring
needs their payloads.

Keys. Each party has a root key that the verifier trusts out of band. The root key signs only
two kinds of entry: ``key.certify`` with payload ``{"officer", "public_key", "not_before"}``
(and optionally ``"server_held": true``) makes an officer key valid for entries after it in the
log, and ``key.revoke`` with payload ``{"officer", "public_key"}`` ends that validity for entries
after it. Log order, not the clients' clocks, decides before and after. Entries are values: do
not mutate a payload after building an entry from it.

Log entries. The log (the server) also writes entries, stating facts it derived (say, "activity
12 was filed from entry 57, notified to IL"). They have ``party`` ``"_log"``, ``author``
``"server"``, ``server_held_key`` false, a kind not starting ``key.``, and are signed with the
log's note key (the key that signs checkpoints), ``key_id`` being that key's C2SP id under its
note name, the log origin (``sign_log_entry``; the ``KeyRing`` is given that key as ``log_key``).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from json.encoder import encode_basestring
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from deconfliction.ledger.canonical import canonical_json
from deconfliction.ledger.errors import LedgerError, Reason
from deconfliction.ledger.merkle import leaf_hash
from deconfliction.ledger.signing import (
    SIGNATURE_SIZE,
    b64decode,
    key_id,
    load_public_key,
    public_key_bytes,
    sign,
    verify,
)

KIND_CERTIFY = "key.certify"
KIND_REVOKE = "key.revoke"
LOG_PARTY = "_log"  # party of the entries the log itself writes
LOG_AUTHOR = "server"  # their author

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
_KIND = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*")
_NONCE = re.compile(r"(?:[0-9a-f]{2}){16,64}")
_KEY_ID = re.compile(r"[0-9a-f]{8}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
_MEMBERS = frozenset(
    {
        "author",
        "client_time",
        "key_id",
        "kind",
        "nonce",
        "party",
        "payload",
        "payload_sha256",
        "server_held_key",
        "signature",
        "supersedes",
    }
)


def root_key_name(party: str) -> str:
    """Key name of a party's root key (what its key id is computed over)."""
    return party


def officer_key_name(party: str, officer: str) -> str:
    """Key name of an officer key."""
    return f"{party}/{officer}"


def payload_sha256(payload: dict[str, Any]) -> str:
    """Lowercase hex SHA-256 of the RFC 8785 canonical JSON of a payload."""
    return hashlib.sha256(canonical_json(payload)).hexdigest()


def parse_rfc3339(text: str, what: str = "time") -> datetime:
    """A timezone-aware datetime from an RFC 3339 date-time (``T`` and ``Z`` upper case)."""
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        raise LedgerError(f"{what} {text!r} is not an RFC 3339 date-time")
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise LedgerError(f"{what} {text!r} is not a valid date-time: {exc}") from exc


@dataclass(frozen=True, kw_only=True)
class EntryFields:
    """Everything an officer signs: an entry without its signature.

    ``payload`` is ``None`` in a redacted entry, which must then give ``payload_sha256``; left
    empty, ``payload_sha256`` is computed from the payload, and given with a payload, it must
    match it.
    """

    kind: str
    party: str
    author: str
    payload: dict[str, Any] | None
    client_time: str
    nonce: str
    key_id: str
    supersedes: str | None = None
    server_held_key: bool = False
    payload_sha256: str = ""

    def __post_init__(self) -> None:
        _check(isinstance(self.kind, str) and _KIND.fullmatch(self.kind), "kind", self.kind)
        _check(
            isinstance(self.party, str)
            and (self.party == LOG_PARTY or _NAME.fullmatch(self.party)),
            "party",
            self.party,
        )
        _check(isinstance(self.author, str) and _NAME.fullmatch(self.author), "author", self.author)
        _check(isinstance(self.nonce, str) and _NONCE.fullmatch(self.nonce), "nonce", self.nonce)
        _check(
            isinstance(self.key_id, str) and _KEY_ID.fullmatch(self.key_id), "key_id", self.key_id
        )
        _check(
            self.supersedes is None
            or (isinstance(self.supersedes, str) and _HEX64.fullmatch(self.supersedes)),
            "supersedes",
            self.supersedes,
        )
        _check(isinstance(self.server_held_key, bool), "server_held_key", self.server_held_key)
        _check(
            self.payload is None or isinstance(self.payload, dict),
            "payload (must be a JSON object or null)",
            self.payload,
        )
        _check(
            isinstance(self.payload_sha256, str)
            and (self.payload_sha256 == "" or _HEX64.fullmatch(self.payload_sha256)),
            "payload_sha256",
            self.payload_sha256,
        )
        parse_rfc3339(self.client_time, "client_time")
        if self.payload is None:
            if not self.payload_sha256:
                raise LedgerError("entry payload_sha256 is required when the payload is null")
            return
        digest = payload_sha256(self.payload)
        if not self.payload_sha256:
            object.__setattr__(self, "payload_sha256", digest)
        elif self.payload_sha256 != digest:
            raise LedgerError(
                f"entry payload does not match its hash: payload_sha256 is "
                f"{self.payload_sha256[:16]}..., the payload hashes to {digest[:16]}..."
            )


@dataclass(frozen=True, kw_only=True)
class Entry(EntryFields):
    """A signed entry, as it is stored, exported and hashed into the log."""

    signature: str

    def __post_init__(self) -> None:
        super().__post_init__()
        ok = isinstance(self.signature, str)
        if ok:
            try:
                ok = len(b64decode(self.signature, "signature")) == SIGNATURE_SIZE
            except LedgerError:
                ok = False
        _check(ok, "signature (base64 of 64 bytes)", self.signature)

    def to_json(self) -> dict[str, Any]:
        """The JSON object form (every member present; ``payload`` is ``null`` if redacted)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, obj: Any) -> Entry:
        """Parse the JSON object form strictly: exactly the defined members, each well formed,
        and a payload that is not ``null`` matching ``payload_sha256``."""
        if not isinstance(obj, dict):
            raise LedgerError("entry is not a JSON object")
        members = set(obj)
        if members != _MEMBERS:
            missing, extra = sorted(_MEMBERS - members), sorted(members - _MEMBERS)
            raise LedgerError(f"entry members wrong: missing {missing}, unexpected {extra}")
        digest = obj["payload_sha256"]
        _check(isinstance(digest, str) and _HEX64.fullmatch(digest), "payload_sha256", digest)
        return cls(**obj)

    def redacted(self) -> Entry:
        """This entry without its payload: same signature, same leaf hash.

        Key entries are refused: verifying a log needs their payloads.
        """
        if self.kind.startswith("key."):
            raise LedgerError(f"a {self.kind} entry cannot be redacted: the key ring needs it")
        return replace(self, payload=None)

    @property
    def leaf_hash(self) -> bytes:
        """The RFC 6962 leaf hash of this entry."""
        return leaf_hash(entry_bytes(self))


def signing_bytes(entry: EntryFields) -> bytes:
    """Canonical JSON of every member except payload and signature: what the officer signs."""
    return _serialize(entry, None)


def entry_bytes(entry: Entry) -> bytes:
    """Canonical JSON of every member except the payload, signature included: what the Merkle
    leaf hashes."""
    return _serialize(entry, entry.signature)


def sign_entry(entry: EntryFields, private_key: Ed25519PrivateKey) -> Entry:
    """Sign an entry; ``entry.key_id`` must name ``private_key`` as the party root or the author.

    Entries of party ``"_log"`` are signed with ``sign_log_entry``.
    """
    if entry.party == LOG_PARTY:
        raise LedgerError(f"entries of party {LOG_PARTY!r} are signed with sign_log_entry")
    public = public_key_bytes(private_key)
    names = (root_key_name(entry.party), officer_key_name(entry.party, entry.author))
    if entry.key_id not in {key_id(name, public).hex() for name in names}:
        raise LedgerError(
            f"key_id {entry.key_id} is not the id of this key as {names[0]!r} or {names[1]!r}"
        )
    return _signed(entry, private_key)


def sign_log_entry(entry: EntryFields, name: str, private_key: Ed25519PrivateKey) -> Entry:
    """Sign a statement of the log itself with the log's note key ``private_key`` named ``name``
    (the log origin): party ``"_log"``, author ``"server"``, not server-held, not a key entry,
    and ``entry.key_id`` the C2SP id of the key under ``name``."""
    _check_log_entry(entry)
    kid = key_id(name, public_key_bytes(private_key)).hex()
    if entry.key_id != kid:
        raise LedgerError(f"key_id {entry.key_id} is not the id {kid} of this key as {name!r}")
    return _signed(entry, private_key)


def _signed(entry: EntryFields, private_key: Ed25519PrivateKey) -> Entry:
    signature = base64.b64encode(sign(private_key, signing_bytes(entry))).decode("ascii")
    values = {f.name: getattr(entry, f.name) for f in fields(EntryFields)}
    return Entry(**values, signature=signature)


def _check_log_entry(entry: EntryFields) -> None:
    if entry.party != LOG_PARTY or entry.author != LOG_AUTHOR or entry.server_held_key:
        raise LedgerError(
            f"a log entry has party {LOG_PARTY!r}, author {LOG_AUTHOR!r} and "
            f"server_held_key false, not {entry.party!r}, {entry.author!r}, "
            f"{str(entry.server_held_key).lower()}",
            Reason.UNCERTIFIED_KEY,
        )
    if entry.kind.startswith("key."):
        raise LedgerError(
            f"the log may not write {entry.kind} entries: only party roots manage keys",
            Reason.UNCERTIFIED_KEY,
        )


def verify_entry(entry: Entry, public_key: Ed25519PublicKey) -> None:
    """Raise ``LedgerError`` (reason ``signature``) unless ``public_key`` signed this entry."""
    signature = b64decode(entry.signature, "signature")
    if not verify(public_key, signing_bytes(entry), signature):
        raise LedgerError(
            f"signature of the {entry.kind} entry by {entry.party}/{entry.author} "
            f"(key {entry.key_id}) does not verify: the signed bytes were changed or another "
            "key signed them",
            Reason.SIGNATURE,
        )


def certify_payload(
    officer: str, public_key: bytes, not_before: str, *, server_held: bool = False
) -> dict[str, Any]:
    """Payload of a ``key.certify`` entry (signed by the party root key)."""
    payload: dict[str, Any] = {
        "officer": officer,
        "public_key": base64.b64encode(public_key).decode("ascii"),
        "not_before": not_before,
    }
    if server_held:
        payload["server_held"] = True
    return payload


def revoke_payload(officer: str, public_key: bytes) -> dict[str, Any]:
    """Payload of a ``key.revoke`` entry (signed by the party root key)."""
    return {"officer": officer, "public_key": base64.b64encode(public_key).decode("ascii")}


@dataclass
class Certificate:
    """An officer key as certified in the log, with the log indices that bound its validity."""

    party: str
    officer: str
    public_key: Ed25519PublicKey
    key_id: str
    not_before: datetime
    server_held: bool
    certified_at: int
    revoked_at: int | None = None

    def valid_at(self, index: int) -> bool:
        """Whether an entry at log ``index`` may be signed with this key."""
        return self.certified_at < index and (self.revoked_at is None or index < self.revoked_at)


class KeyRing:
    """Replays entries in log order and knows which key was valid for whom at which index."""

    def __init__(
        self,
        party_roots: Mapping[str, bytes],
        *,
        log_key: tuple[str, Ed25519PublicKey] | None = None,
    ) -> None:
        """``party_roots`` maps a party to its raw root public key; ``log_key`` is the log's
        note name and key, which signs the entries of party ``"_log"`` (none verify without)."""
        if LOG_PARTY in party_roots:
            raise LedgerError(f"{LOG_PARTY!r} is the log, not a party with a root key")
        self._roots: dict[str, tuple[str, Ed25519PublicKey]] = {
            party: (key_id(root_key_name(party), raw).hex(), load_public_key(raw))
            for party, raw in party_roots.items()
        }
        self._log: tuple[str, Ed25519PublicKey] | None = None
        if log_key is not None:
            name, public = log_key
            self._log = (key_id(name, public_key_bytes(public)).hex(), public)
        self._certs: dict[tuple[str, str, str], Certificate] = {}
        self._next = 0

    def replay(self, entry: Entry, index: int) -> None:
        """Check that a key valid at ``index`` signed ``entry``, then apply its key changes.

        Raises ``LedgerError`` naming the broken rule; the ring is unchanged when it does.
        """
        if index < self._next:
            raise LedgerError(f"index {index} replayed after index {self._next - 1}", Reason.ORDER)
        verify_entry(entry, self.signing_key(entry, index))
        if entry.kind == KIND_CERTIFY:
            self._certify(entry, index)
        elif entry.kind == KIND_REVOKE:
            self._revoke(entry, index)
        self._next = index + 1

    def signing_key(self, entry: Entry, index: int) -> Ed25519PublicKey:
        """The key that may sign ``entry`` at ``index``; ``LedgerError`` when there is none."""
        if entry.party == LOG_PARTY:
            return self._log_key(entry)
        root = self._roots.get(entry.party)
        if root is None:
            raise LedgerError(
                f"party {entry.party!r} has no trusted root key", Reason.UNCERTIFIED_KEY
            )
        root_id, root_key = root
        if entry.kind.startswith("key."):
            if entry.kind not in (KIND_CERTIFY, KIND_REVOKE):
                raise LedgerError(f"unknown key entry kind {entry.kind!r}")
            if entry.key_id != root_id:
                raise LedgerError(
                    f"{entry.kind} for {entry.party} must be signed by the party root key "
                    f"{root_id}, not key {entry.key_id}",
                    Reason.UNCERTIFIED_KEY,
                )
            return root_key
        cert = self._certs.get((entry.party, entry.author, entry.key_id))
        if cert is None or index <= cert.certified_at:
            why = (
                "party root keys sign only key.certify and key.revoke"
                if entry.key_id == root_id
                else "no key.certify from the party root precedes it"
            )
            raise LedgerError(
                f"key {entry.key_id} is not certified for {entry.party}/{entry.author} at index "
                f"{index}: {why}",
                Reason.UNCERTIFIED_KEY,
            )
        if cert.revoked_at is not None and index >= cert.revoked_at:
            raise LedgerError(
                f"key {entry.key_id} of {entry.party}/{entry.author} was revoked at index "
                f"{cert.revoked_at}, before index {index}",
                Reason.REVOKED_KEY,
            )
        if parse_rfc3339(entry.client_time, "client_time") < cert.not_before:
            raise LedgerError(
                f"entry time {entry.client_time} is before the not_before of key {entry.key_id}",
                Reason.UNCERTIFIED_KEY,
            )
        if entry.server_held_key != cert.server_held:
            held = "server-held" if cert.server_held else "officer-held"
            raise LedgerError(
                f"key {entry.key_id} is certified {held} but the entry says "
                f"server_held_key={str(entry.server_held_key).lower()}",
                Reason.UNCERTIFIED_KEY,
            )
        return cert.public_key

    def valid_at(self, party: str, author: str, key_id_hex: str, index: int) -> bool:
        """Whether officer key ``key_id_hex`` could sign for ``party``/``author`` at ``index``."""
        cert = self._certs.get((party, author, key_id_hex))
        return cert is not None and cert.valid_at(index)

    def certificate(self, party: str, author: str, key_id_hex: str) -> Certificate | None:
        """The certificate of an officer key, if the replayed log certified it."""
        return self._certs.get((party, author, key_id_hex))

    def _log_key(self, entry: Entry) -> Ed25519PublicKey:
        _check_log_entry(entry)
        if self._log is None:
            raise LedgerError("no log key was given to verify a log entry", Reason.UNCERTIFIED_KEY)
        log_id, public = self._log
        if entry.key_id != log_id:
            raise LedgerError(
                f"log entries are signed by the log key {log_id}, not key {entry.key_id}",
                Reason.UNCERTIFIED_KEY,
            )
        return public

    def _key_payload(
        self, entry: Entry, extra: frozenset[str]
    ) -> tuple[str, bytes, str, dict[str, Any]]:
        payload = entry.payload
        if payload is None:
            raise LedgerError(
                f"{entry.kind} entry of {entry.party} is redacted: its payload is needed to know "
                "the key"
            )
        required = {"officer", "public_key"} | (
            {"not_before"} if entry.kind == KIND_CERTIFY else set()
        )
        if not required <= set(payload) <= required | extra:
            raise LedgerError(
                f"{entry.kind} payload must have {sorted(required)}"
                + (f" and may have {sorted(extra)}" if extra else "")
                + f", got {sorted(payload)}"
            )
        officer = payload["officer"]
        _check(isinstance(officer, str) and _NAME.fullmatch(officer), "officer", officer)
        encoded = payload["public_key"]
        _check(isinstance(encoded, str), "public_key", encoded)
        raw = b64decode(encoded, "public_key")
        load_public_key(raw)  # refuses anything but 32 bytes
        return officer, raw, key_id(officer_key_name(entry.party, officer), raw).hex(), payload

    def _certify(self, entry: Entry, index: int) -> None:
        officer, raw, kid, payload = self._key_payload(entry, frozenset({"server_held"}))
        server_held = payload.get("server_held", False)
        _check(isinstance(server_held, bool), "server_held", server_held)
        not_before = parse_rfc3339(payload["not_before"], "not_before")
        slot = (entry.party, officer, kid)
        if slot in self._certs:
            raise LedgerError(
                f"key {kid} of {entry.party}/{officer} was already certified at index "
                f"{self._certs[slot].certified_at}"
            )
        self._certs[slot] = Certificate(
            party=entry.party,
            officer=officer,
            public_key=load_public_key(raw),
            key_id=kid,
            not_before=not_before,
            server_held=server_held,
            certified_at=index,
        )

    def _revoke(self, entry: Entry, index: int) -> None:
        officer, _, kid, _ = self._key_payload(entry, frozenset())
        cert = self._certs.get((entry.party, officer, kid))
        if cert is None or cert.revoked_at is not None:
            state = "never certified" if cert is None else f"already revoked at {cert.revoked_at}"
            raise LedgerError(f"key.revoke of key {kid} of {entry.party}/{officer}: {state}")
        cert.revoked_at = index


def _check(ok: object, what: str, value: object) -> None:
    if not ok:
        raise LedgerError(f"entry {what} is malformed: {value!r}")


def _serialize(entry: EntryFields, signature: str | None) -> bytes:
    # The members are fixed ASCII names (payload left out: payload_sha256 stands for it), so
    # their RFC 8785 order is known here and no general canonicaliser is needed.
    text = (
        f'{{"author":{encode_basestring(entry.author)}'
        f',"client_time":{encode_basestring(entry.client_time)}'
        f',"key_id":{encode_basestring(entry.key_id)}'
        f',"kind":{encode_basestring(entry.kind)}'
        f',"nonce":{encode_basestring(entry.nonce)}'
        f',"party":{encode_basestring(entry.party)}'
        f',"payload_sha256":{encode_basestring(entry.payload_sha256)}'
        f',"server_held_key":{"true" if entry.server_held_key else "false"}'
    )
    if signature is not None:
        text += f',"signature":{encode_basestring(signature)}'
    supersedes = "null" if entry.supersedes is None else encode_basestring(entry.supersedes)
    text += f',"supersedes":{supersedes}}}'
    return text.encode("ascii")
