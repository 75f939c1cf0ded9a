"""Builds small real ledgers in memory, with real Ed25519 keys, for the ledger tests."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deconfliction.ledger.checkpoint import Checkpoint, NoteSigner, NoteVerifier, cosign
from deconfliction.ledger.entry import (
    KIND_CERTIFY,
    KIND_REVOKE,
    LOG_AUTHOR,
    LOG_PARTY,
    Entry,
    EntryFields,
    certify_payload,
    officer_key_name,
    revoke_payload,
    root_key_name,
    sign_entry,
    sign_log_entry,
    signing_bytes,
)
from deconfliction.ledger.merkle import NodeStore, TreeState
from deconfliction.ledger.signing import generate_private_key, key_id, public_key_bytes, sign

ORIGIN = "log.deconfliction.example"
T0 = "2025-04-09T08:00:00Z"


class LogBuilder:
    """A log writer that does no checking, so tests can also write what a cheat would."""

    def __init__(self, parties: tuple[str, ...] = ("TR", "IL")) -> None:
        self.roots = {party: generate_private_key() for party in parties}
        self.party_notes = {
            party: NoteSigner(f"{party.lower()}.party.example", generate_private_key())
            for party in parties
        }
        self.log = NoteSigner(ORIGIN, generate_private_key())
        self.mediator = NoteSigner("mediator.example", generate_private_key())
        self.officers: dict[tuple[str, str], Ed25519PrivateKey] = {}
        self.records: list[dict[str, Any]] = []
        self.state, self.store = TreeState(), NodeStore()
        self._nonces = 0

    # ---- writing ----

    def nonce(self) -> str:
        self._nonces += 1
        return f"{self._nonces:032x}"

    def append(self, entry: Entry) -> Entry:
        self.records.append({"type": "entry", "index": self.state.size, "entry": entry.to_json()})
        self.store.put(self.state.append(entry.leaf_hash))
        return entry

    def by_root(self, party: str, kind: str, payload: dict[str, Any]) -> Entry:
        root = self.roots[party]
        fields = EntryFields(
            kind=kind,
            party=party,
            author="hq",
            payload=payload,
            client_time=T0,
            nonce=self.nonce(),
            key_id=key_id(root_key_name(party), public_key_bytes(root)).hex(),
        )
        return self.append(sign_entry(fields, root))

    def certify(
        self,
        party: str,
        officer: str,
        *,
        key: Ed25519PrivateKey | None = None,
        server_held: bool = False,
        not_before: str = T0,
    ) -> Ed25519PrivateKey:
        key = key or generate_private_key()
        self.officers[(party, officer)] = key
        payload = certify_payload(
            officer, public_key_bytes(key), not_before, server_held=server_held
        )
        self.by_root(party, KIND_CERTIFY, payload)
        return key

    def revoke(self, party: str, officer: str) -> Entry:
        key = self.officers[(party, officer)]
        return self.by_root(party, KIND_REVOKE, revoke_payload(officer, public_key_bytes(key)))

    def signed(
        self,
        party: str,
        officer: str,
        kind: str,
        payload: dict[str, Any],
        *,
        key: Ed25519PrivateKey | None = None,
        supersedes: Entry | None = None,
        server_held: bool = False,
        client_time: str = "2025-04-09T09:00:00Z",
        nonce: str | None = None,
    ) -> Entry:
        key = key or self.officers[(party, officer)]
        fields = EntryFields(
            kind=kind,
            party=party,
            author=officer,
            payload=payload,
            client_time=client_time,
            nonce=nonce or self.nonce(),
            key_id=key_id(officer_key_name(party, officer), public_key_bytes(key)).hex(),
            supersedes=None if supersedes is None else supersedes.leaf_hash.hex(),
            server_held_key=server_held,
        )
        return sign_entry(fields, key)

    def say(self, party: str, officer: str, kind: str, payload: dict[str, Any], **kw: Any) -> Entry:
        return self.append(self.signed(party, officer, kind, payload, **kw))

    def log_fields(
        self, kind: str, payload: dict[str, Any], *, key: Ed25519PrivateKey | None = None
    ) -> EntryFields:
        """A statement of the log itself, with the key id of ``key`` (default the log key)."""
        key = key or self.log.private_key
        return EntryFields(
            kind=kind,
            party=LOG_PARTY,
            author=LOG_AUTHOR,
            payload=payload,
            client_time=T0,
            nonce=self.nonce(),
            key_id=key_id(ORIGIN, public_key_bytes(key)).hex(),
        )

    def by_log(
        self, kind: str, payload: dict[str, Any], *, key: Ed25519PrivateKey | None = None
    ) -> Entry:
        key = key or self.log.private_key
        return self.append(sign_log_entry(self.log_fields(kind, payload, key=key), ORIGIN, key))

    def checkpoint(self) -> str:
        note = self.checkpoint_note(self.state.size, self.state.root())
        self.records.append({"type": "checkpoint", "note": note})
        return note

    def checkpoint_note(self, size: int, root: bytes, *, cosigned: bool = True) -> str:
        note = Checkpoint(ORIGIN, size, root).sign(self.log)
        if cosigned:
            for cosigner in (self.mediator, *self.party_notes.values()):
                note = cosign(note, cosigner)
        return note

    # ---- reading ----

    def lines(self) -> list[str]:
        return [json.dumps(record, ensure_ascii=False) for record in self.records]

    def keys(self) -> dict[str, Any]:
        """The keyword arguments of verify_export that say whom to trust."""
        cosigners: list[NoteVerifier] = [self.mediator.verifier()]
        cosigners += [signer.verifier() for signer in self.party_notes.values()]
        return {
            "party_roots": {party: public_key_bytes(k) for party, k in self.roots.items()},
            "log_key": self.log.verifier(),
            "cosigners": cosigners,
        }

    def reseal(self, lines: list[str]) -> list[str]:
        """What a cheating server does after editing rows: re-sign each checkpoint, where it
        stands, over the edited entries before it (log key only: it has no cosigner keys)."""
        state = TreeState()
        out = []
        for line in lines:
            record = json.loads(line)
            if record["type"] == "entry":
                state.append(Entry.from_json(record["entry"]).leaf_hash)
                out.append(line)
            else:
                note = self.checkpoint_note(state.size, state.root(), cosigned=False)
                out.append(json.dumps({"type": "checkpoint", "note": note}))
        return out


def sign_unchecked(fields: EntryFields, key: Ed25519PrivateKey) -> Entry:
    """Sign without any of the signing helpers' checks, as a cheat would."""
    signature = base64.b64encode(sign(key, signing_bytes(fields))).decode("ascii")
    values = {f.name: getattr(fields, f.name) for f in dataclasses.fields(fields)}
    return Entry(**values, signature=signature)


def demo_log() -> LogBuilder:
    """Twelve entries of two parties and three fully cosigned checkpoints (sizes 4, 8, 12).

    0 TR certifies tr-duty-1      4 TR message                 8  IL message (server-held key)
    1 IL certifies il-duty-1      5 IL receipt                 9  TR certifies tr-duty-2
    2 TR declares a zone          6 TR amends the zone (2)     10 TR revokes tr-duty-1
    3 IL notifies an activity     7 IL certifies il-duty-2     11 TR message by tr-duty-2
                                     as server-held
    """
    log = LogBuilder()
    log.certify("TR", "tr-duty-1")
    log.certify("IL", "il-duty-1")
    zone = log.say(
        "TR",
        "tr-duty-1",
        "zone.declare",
        {
            "rule": "no_entry",
            "footprint": {
                "type": "Polygon",
                "coordinates": [[[36.2, 33.5], [36.4, 33.5], [36.3, 33.7], [36.2, 33.5]]],
            },
            "band": {"lower_m": 0, "upper_m": 12000.5, "ref": "MSL"},
        },
    )
    log.say(
        "IL",
        "il-duty-1",
        "activity.notify",
        {"activity": "air patrol", "window": ["2025-04-10T06:00:00Z", "2025-04-10T08:00:00Z"]},
    )
    log.checkpoint()
    log.say("TR", "tr-duty-1", "message.send", {"priority": "URGENT", "text": "Şam hattı açık mı?"})
    log.say("IL", "il-duty-1", "receipt.ack", {"message": 4, "state": "acknowledged"})
    log.say("TR", "tr-duty-1", "zone.amend", {"rule": "caution"}, supersedes=zone)
    log.certify("IL", "il-duty-2", server_held=True)
    log.checkpoint()
    log.say("IL", "il-duty-2", "message.send", {"text": "קו חם פתוח"}, server_held=True)
    log.certify("TR", "tr-duty-2")
    log.revoke("TR", "tr-duty-1")
    log.say("TR", "tr-duty-2", "message.send", {"text": "خط ساخن"})
    log.checkpoint()
    return log
