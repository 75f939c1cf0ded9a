"""Signing goes through libsodium: its signatures must be RFC 8032's, byte for byte the ones
`cryptography` makes, and verify."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from deconfliction.ledger.signing import private_key_from_seed, sign, verify

# RFC 8032 section 7.1, TEST 2: the secret key, the one-byte message and its signature.
RFC8032_SEED = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
RFC8032_MESSAGE = bytes.fromhex("72")
RFC8032_SIGNATURE = bytes.fromhex(
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
)


def test_the_rfc_8032_vector() -> None:
    assert sign(private_key_from_seed(RFC8032_SEED), RFC8032_MESSAGE) == RFC8032_SIGNATURE


@settings(max_examples=200)
@given(seed=st.binary(min_size=32, max_size=32), data=st.binary(max_size=2048))
def test_signatures_are_cryptography_s_and_verify(seed: bytes, data: bytes) -> None:
    key = private_key_from_seed(seed)
    signature = sign(key, data)
    assert signature == Ed25519PrivateKey.from_private_bytes(seed).sign(data)
    assert sign(key, data) == signature  # the key's libsodium form, kept, signs the same
    assert verify(key.public_key(), data, signature)
