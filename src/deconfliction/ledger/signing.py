"""Ed25519 keys and signatures (RFC 8032, through `cryptography`; signing through libsodium).

Public keys travel as base64 of the raw 32 bytes. A key is named by a short key id computed as
in C2SP signed-note for Ed25519: ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``, so the
id of an officer key in a ledger entry and the id of the same key signing a note are equal.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from nacl.bindings import crypto_sign, crypto_sign_seed_keypair

from deconfliction.ledger.canonical import canonical_json
from deconfliction.ledger.errors import LedgerError

ED25519_TYPE = 0x01  # C2SP signed-note signature type of Ed25519
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


def generate_private_key() -> Ed25519PrivateKey:
    """A new random Ed25519 private key."""
    return Ed25519PrivateKey.generate()


def private_key_from_seed(seed: bytes) -> Ed25519PrivateKey:
    """The Ed25519 private key of a 32-byte RFC 8032 seed."""
    if len(seed) != 32:
        raise LedgerError(f"Ed25519 seed has {len(seed)} bytes, expected 32")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The raw 32-byte public key of a private or public key."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The raw public key as standard base64, the form entries and certificates carry."""
    return base64.b64encode(public_key_bytes(key)).decode("ascii")


def load_public_key(raw_or_b64: bytes | str) -> Ed25519PublicKey:
    """An Ed25519 public key from its raw 32 bytes or their base64."""
    raw = b64decode(raw_or_b64, "public key") if isinstance(raw_or_b64, str) else raw_or_b64
    if len(raw) != PUBLIC_KEY_SIZE:
        raise LedgerError(f"public key has {len(raw)} bytes, expected {PUBLIC_KEY_SIZE}")
    return Ed25519PublicKey.from_public_bytes(raw)


def key_id(name: str, public_key: bytes) -> bytes:
    """4-byte key id of an Ed25519 key, as C2SP signed-note computes it."""
    data = name.encode("utf-8") + b"\n" + bytes([ED25519_TYPE]) + public_key
    return hashlib.sha256(data).digest()[:4]


def sign(private_key: Ed25519PrivateKey, data: bytes) -> bytes:
    """Ed25519 signature of ``data``: by libsodium, which gives the same (deterministic, RFC
    8032) signature as `cryptography` in about 60 % of the time; the server signs several
    entries on every write."""
    held = _SODIUM_KEYS.get(id(private_key))
    if held is None:
        seed = private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        held = (private_key, crypto_sign_seed_keypair(seed)[1])
        if len(_SODIUM_KEYS) >= _SODIUM_KEYS_MAX:
            _SODIUM_KEYS.clear()
        _SODIUM_KEYS[id(private_key)] = held
    return crypto_sign(data, held[1])[:SIGNATURE_SIZE]


# libsodium's secret key of each private key signed with, by the key object's id (the entry
# holds the key, so that id is not reused while it is here).
_SODIUM_KEYS: dict[int, tuple[Ed25519PrivateKey, bytes]] = {}
_SODIUM_KEYS_MAX = 10_000


def verify(public_key: Ed25519PublicKey, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``data`` by ``public_key``."""
    if len(signature) != SIGNATURE_SIZE:
        return False
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def sign_json(private_key: Ed25519PrivateKey, value: Any) -> str:
    """Base64 Ed25519 signature over the RFC 8785 canonical bytes of a JSON value."""
    return base64.b64encode(sign(private_key, canonical_json(value))).decode("ascii")


def verify_json(public_key: Ed25519PublicKey, value: Any, signature_b64: str) -> bool:
    """Whether a base64 signature is valid over the canonical bytes of a JSON value."""
    try:
        signature = b64decode(signature_b64, "signature")
    except LedgerError:
        return False
    return verify(public_key, canonical_json(value), signature)


def b64decode(text: str | bytes, what: str) -> bytes:
    """Strict standard base64: padded, no stray characters, and the one canonical spelling.

    Canonical matters: ``AB==`` and ``AA==`` decode alike, and a signature spelled two ways
    would give two leaf hashes for one signed entry.
    """
    data = text.encode("ascii", "replace") if isinstance(text, str) else text
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise LedgerError(f"{what} is not valid base64") from exc
    if base64.b64encode(raw) != data:
        raise LedgerError(f"{what} is not canonical base64")
    return raw
