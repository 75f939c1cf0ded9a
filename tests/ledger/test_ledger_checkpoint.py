"""Signed notes and checkpoints against the published C2SP and Go sumdb/note examples."""

from __future__ import annotations

import base64

import pytest

from deconfliction.ledger.checkpoint import (
    EM_DASH,
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    cosign,
    open_checkpoint,
    open_note,
    parse_note,
    sign_note,
)
from deconfliction.ledger.errors import LedgerError, Reason
from deconfliction.ledger.signing import (
    generate_private_key,
    key_id,
    private_key_from_seed,
    public_key_bytes,
)

# c2sp.org/signed-note: the example verifier key and note.
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    f"{EM_DASH} example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)

# golang.org/x/mod/sumdb/note package documentation: keys, text and the exact signed notes.
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    f"{EM_DASH} PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    f"{EM_DASH} EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)


def test_spec_example_note_verifies_with_spec_key() -> None:
    verifier = NoteVerifier.from_vkey(SPEC_VKEY)
    assert verifier.name == "example.com/foo"
    assert verifier.key_id.hex() == "530d903a"
    assert verifier.vkey() == SPEC_VKEY
    opened = open_note(SPEC_NOTE, [verifier])
    assert opened.text == "This is an example message.\n"
    assert opened.signers == ("example.com/foo",)


def test_go_example_signs_byte_for_byte() -> None:
    signer = NoteSigner.from_skey(PETER_SKEY)
    assert signer.skey() == PETER_SKEY
    assert signer.verifier().vkey() == PETER_VKEY
    # Ed25519 is deterministic, so the published note is reproduced exactly.
    assert sign_note(GO_TEXT, [signer]) == GO_TEXT + "\n" + PETER_SIG


def test_cosignature_reproduces_the_go_doubly_signed_note() -> None:
    # EnochRoot's published key is the one derived from the all-zero seed.
    enoch = NoteSigner("EnochRoot", private_key_from_seed(bytes(32)))
    assert enoch.verifier().vkey() == ENOCH_VKEY
    single = GO_TEXT + "\n" + PETER_SIG
    double = cosign(single, enoch)
    assert double == GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert cosign(double, enoch) == double  # re-signing replaces, never duplicates
    peter, enoch_v = NoteVerifier.from_vkey(PETER_VKEY), NoteVerifier.from_vkey(ENOCH_VKEY)
    assert open_note(double, [peter, enoch_v]).signers == ("PeterNeumann", "EnochRoot")
    only_enoch = open_note(double, [enoch_v])
    assert only_enoch.signers == ("EnochRoot",)
    assert [s.name for s in only_enoch.unknown] == ["PeterNeumann"]


def test_mangled_keys_are_refused() -> None:
    for key, parse in ((PETER_VKEY, NoteVerifier.from_vkey), (PETER_SKEY, NoteSigner.from_skey)):
        raw = key.encode()
        for i in range(len(raw)):
            for j in range(i + 1, len(raw) + 1):
                if (i, j) != (0, len(raw)):
                    with pytest.raises(LedgerError):
                        parse(raw[i:j].decode())
        for i in range(len(raw)):
            changed = bytearray(raw)
            changed[i] += 1
            with pytest.raises((LedgerError, UnicodeDecodeError)):
                parse(changed.decode())
    # Wrong key length and unknown algorithm, each with a key id adjusted to match (Go tests).
    for bad in (
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ):
        with pytest.raises(LedgerError):
            NoteVerifier.from_vkey(bad)


def test_open_note_rules() -> None:
    peter = NoteVerifier.from_vkey(PETER_VKEY)
    note = GO_TEXT + "\n" + PETER_SIG
    # Same name, other id (or other name, same id): an unknown key, ignored, so nothing verified.
    other = NoteSigner("PeterNeumann", generate_private_key()).verifier()
    with pytest.raises(LedgerError) as unknown:
        open_note(note, [other])
    assert unknown.value.reason == Reason.CHECKPOINT_SIGNATURE
    # A known key whose signature fails rejects the whole note.
    forged = note.replace("ZJkuBS9U", "ZJkuBS9V")
    with pytest.raises(LedgerError) as bad:
        open_note(forged, [peter])
    assert "does not verify" in str(bad.value)
    edited = note.replace("cryptography", "cryptographY")
    with pytest.raises(LedgerError):
        open_note(edited, [peter])


@pytest.mark.parametrize(
    "message",
    [
        GO_TEXT + PETER_SIG,  # no blank line
        GO_TEXT + "\n" + PETER_SIG.rstrip("\n"),  # signature block not newline-terminated
        GO_TEXT + "\n" + PETER_SIG.replace(EM_DASH, "-"),
        GO_TEXT + "\n" + PETER_SIG.replace(" x08", "  x08"),
        GO_TEXT + "\n" + f"{EM_DASH} PeterNeumann AAAA\n",  # fewer than 5 bytes
        GO_TEXT + "\n" + f"{EM_DASH} Peter+Neumann AAAAAAAA\n",
        "tab\there\n\n" + PETER_SIG,
        GO_TEXT + "\n" + PETER_SIG * 65,  # too many signatures
    ],
)
def test_malformed_notes_are_refused(message: str) -> None:
    with pytest.raises(LedgerError):
        parse_note(message)


def test_checkpoint_body_round_trip_and_c2sp_example() -> None:
    # c2sp.org/tlog-checkpoint example body (its signature key is not published, so body only).
    example = (
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )
    cp = Checkpoint.parse(example)
    assert (cp.origin, cp.size) == ("example.com/behind-the-sofa", 20852163)
    assert cp.body() == example
    with_ext = Checkpoint(cp.origin, 0, bytes(32), ("ext one",))
    assert Checkpoint.parse(with_ext.body()) == with_ext


@pytest.mark.parametrize(
    "text",
    [
        "log\n012\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",  # leading zero
        "log\n-1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "log\n12\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2==\n",  # not 32 bytes
        "log\n12\n",
        "\n12\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "log\n12\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n",  # empty extension line
        "log\n12\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=",
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(LedgerError):
        Checkpoint.parse(text)


def test_signed_checkpoint_opens_and_reports_cosigners() -> None:
    log = NoteSigner("log.example/deconfliction", generate_private_key())
    mediator = NoteSigner("mediator.example", generate_private_key())
    cp = Checkpoint(log.name, 5, bytes(range(32)))
    note = cosign(cp.sign(log), mediator)
    opened_cp, opened = open_checkpoint(note, [log.verifier(), mediator.verifier()])
    assert opened_cp == cp
    assert opened.signers == (log.name, mediator.name)


def test_key_id_is_the_c2sp_ed25519_key_id() -> None:
    verifier = NoteVerifier.from_vkey(PETER_VKEY)
    assert key_id("PeterNeumann", verifier.public_key).hex() == "c74f20a3"
    raw = base64.b64decode(PETER_VKEY.split("+", 2)[2])[1:]
    assert raw == public_key_bytes(NoteSigner.from_skey(PETER_SKEY).private_key)


def test_names_with_spaces_or_plus_are_refused() -> None:
    for name in ("", "a b", "a+b", "a\u00a0b"):
        with pytest.raises(LedgerError):
            NoteSigner(name, generate_private_key())
    with pytest.raises(LedgerError):
        NoteSigner.from_skey(PETER_SKEY.replace("PRIVATE", "PUBLIC"))
