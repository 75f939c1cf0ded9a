"""C2SP tlog-checkpoint bodies in C2SP signed notes, with Ed25519 signatures and cosignatures.

A signed note is UTF-8 text ending in a newline, a blank line, then one or more lines
``— <key name> <base64(4-byte key id || signature)>`` (U+2014 EM DASH). The text of a
checkpoint is ``<origin>\\n<tree size>\\n<base64 root hash>\\n`` plus optional extension lines.
The log signs it; the mediator and the parties cosign by adding their own signature lines to
the same text. Keys are exchanged as text in the Go ``sumdb/note`` encoding:
verifier key ``<name>+<8 hex key id>+<base64(0x01 || public key)>`` and signer key
``PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 || seed)>``.

Verification follows the note rules: signatures by unknown keys (name and id not both known)
are ignored; a known key whose signature fails rejects the whole note; a note with no signature
from a known key is rejected. The caller learns which known keys signed.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from deconfliction.ledger.errors import LedgerError, Reason
from deconfliction.ledger.merkle import HASH_SIZE
from deconfliction.ledger.signing import (
    ED25519_TYPE,
    b64decode,
    key_id,
    load_public_key,
    private_key_from_seed,
    public_key_bytes,
    sign,
    verify,
)

EM_DASH = "\u2014"
MAX_SIGNATURES = 64  # the note spec asks verifiers to accept at least 16
_SIG_PREFIX = EM_DASH + " "
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_SIZE = re.compile(r"0|[1-9][0-9]*")


def valid_key_name(name: str) -> bool:
    """Key names are non-empty and hold no Unicode space and no ``+``."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note."""

    name: str
    key_id: bytes  # 4 bytes
    signature: bytes

    def line(self) -> str:
        """The signature line, newline included."""
        encoded = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{_SIG_PREFIX}{self.name} {encoded}\n"


@dataclass(frozen=True)
class Note:
    """A parsed, not yet verified, signed note."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def format(self) -> str:
        """The note as exchanged: text, blank line, signature lines."""
        return self.text + "\n" + "".join(sig.line() for sig in self.signatures)


@dataclass(frozen=True)
class NoteVerifier:
    """An Ed25519 note verifier key: a name and a raw public key."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        if not valid_key_name(self.name):
            raise LedgerError(f"invalid key name {self.name!r}")
        load_public_key(self.public_key)

    @property
    def key_id(self) -> bytes:
        """The 4-byte C2SP key id of this key."""
        return key_id(self.name, self.public_key)

    def vkey(self) -> str:
        """The verifier key text ``<name>+<hex id>+<base64(0x01 || key)>``."""
        material = base64.b64encode(bytes([ED25519_TYPE]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{material}"

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse a verifier key; the key id must match the name and key."""
        name, _, rest = vkey.partition("+")
        id_hex, _, material = rest.partition("+")
        raw = _typed_key(name, id_hex, material, "verifier key")
        verifier = cls(name, raw)
        if verifier.key_id != bytes.fromhex(id_hex):
            raise LedgerError(f"verifier key id {id_hex} does not match name and key")
        return verifier

    def verify(self, text: str, signature: NoteSignature) -> bool:
        """Whether ``signature`` is this key's valid signature of ``text``."""
        return (
            signature.name == self.name
            and signature.key_id == self.key_id
            and verify(load_public_key(self.public_key), text.encode("utf-8"), signature.signature)
        )


@dataclass(frozen=True)
class NoteSigner:
    """An Ed25519 note signer key: a name and a private key."""

    name: str
    private_key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        if not valid_key_name(self.name):
            raise LedgerError(f"invalid key name {self.name!r}")

    def verifier(self) -> NoteVerifier:
        """The matching verifier."""
        return NoteVerifier(self.name, public_key_bytes(self.private_key))

    def skey(self) -> str:
        """The signer key text ``PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>``."""
        seed = self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        material = base64.b64encode(bytes([ED25519_TYPE]) + seed).decode("ascii")
        return f"PRIVATE+KEY+{self.name}+{self.verifier().key_id.hex()}+{material}"

    @classmethod
    def from_skey(cls, skey: str) -> NoteSigner:
        """Parse a signer key; the key id must match the name and the derived public key."""
        private, _, rest = skey.partition("+")
        key_word, _, rest = rest.partition("+")
        name, _, rest = rest.partition("+")
        id_hex, _, material = rest.partition("+")
        if (private, key_word) != ("PRIVATE", "KEY"):
            raise LedgerError("signer key does not start with PRIVATE+KEY+")
        signer = cls(name, private_key_from_seed(_typed_key(name, id_hex, material, "signer key")))
        if signer.verifier().key_id != bytes.fromhex(id_hex):
            raise LedgerError(f"signer key id {id_hex} does not match name and key")
        return signer

    def sign(self, text: str) -> NoteSignature:
        """This key's signature line for ``text``."""
        _check_text(text)
        signature = sign(self.private_key, text.encode("utf-8"))
        return NoteSignature(self.name, self.verifier().key_id, signature)


@dataclass(frozen=True)
class OpenedNote:
    """A note whose signatures were checked: who signed, and which lines were not ours to check."""

    text: str
    signers: tuple[str, ...]  # names of known keys whose signatures verified, in note order
    unknown: tuple[NoteSignature, ...]


def parse_note(message: str) -> Note:
    """Split a signed note into its text and signature lines (nothing verified)."""
    _check_chars(message)
    split = message.rfind("\n\n")
    if split < 0:
        raise LedgerError("malformed note: no blank line before the signatures")
    text, block = message[: split + 1], message[split + 2 :]
    if not block or not block.endswith("\n"):
        raise LedgerError("malformed note: signature block missing or not newline-terminated")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise LedgerError(f"note has {len(lines)} signatures, more than {MAX_SIGNATURES}")
    signatures = []
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise LedgerError(f"malformed signature line {line!r}")
        name, _, encoded = line[len(_SIG_PREFIX) :].partition(" ")
        raw = b64decode(encoded, "note signature")
        if not valid_key_name(name) or len(raw) < 5:
            raise LedgerError(f"malformed signature line {line!r}")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    return Note(text, tuple(signatures))


def sign_note(text: str, signers: Iterable[NoteSigner]) -> str:
    """A new signed note of ``text`` with one signature line per signer."""
    signatures = tuple(signer.sign(text) for signer in signers)
    if not signatures:
        raise LedgerError("a note needs at least one signature")
    return Note(text, signatures).format()


def cosign(message: str, signer: NoteSigner) -> str:
    """Add ``signer``'s signature line to a signed note, keeping the lines already there."""
    note = parse_note(message)
    mine = signer.sign(note.text)
    kept = tuple(s for s in note.signatures if (s.name, s.key_id) != (mine.name, mine.key_id))
    return Note(note.text, (*kept, mine)).format()


def open_note(message: str, known: Iterable[NoteVerifier]) -> OpenedNote:
    """Verify a note against known keys; raise ``LedgerError`` unless at least one signed.

    A signature line whose name and key id both match a known key must verify, or the whole
    note is refused (reason ``checkpoint_signature``).
    """
    note = parse_note(message)
    by_id = {(v.name, v.key_id): v for v in known}
    signers: list[str] = []
    unknown: list[NoteSignature] = []
    for sig in note.signatures:
        verifier = by_id.get((sig.name, sig.key_id))
        if verifier is None:
            unknown.append(sig)
        elif not verifier.verify(note.text, sig):
            raise LedgerError(
                f"note signature by {sig.name}+{sig.key_id.hex()} does not verify",
                Reason.CHECKPOINT_SIGNATURE,
            )
        elif sig.name not in signers:
            signers.append(sig.name)
    if not signers:
        raise LedgerError("note has no signature from a known key", Reason.CHECKPOINT_SIGNATURE)
    return OpenedNote(note.text, tuple(signers), tuple(unknown))


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head: which log, how many leaves, and the root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise LedgerError(f"invalid checkpoint origin {self.origin!r}")
        if self.size < 0 or len(self.root) != HASH_SIZE:
            raise LedgerError("checkpoint size must be >= 0 and root a 32-byte hash")
        if any(not line or "\n" in line for line in self.extensions):
            raise LedgerError("checkpoint extension lines must be non-empty single lines")

    def body(self) -> str:
        """The note text of this checkpoint."""
        root = base64.b64encode(self.root).decode("ascii")
        return "".join(
            f"{line}\n" for line in (self.origin, str(self.size), root, *self.extensions)
        )

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint note text."""
        if not text.endswith("\n"):
            raise LedgerError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise LedgerError("checkpoint text needs origin, size and root lines")
        origin, size, root, *extensions = lines
        if not _SIZE.fullmatch(size):
            raise LedgerError(f"checkpoint size {size!r} is not a decimal without leading zeros")
        return cls(origin, int(size), b64decode(root, "checkpoint root"), tuple(extensions))

    def sign(self, signer: NoteSigner) -> str:
        """The checkpoint as a note signed by ``signer`` (normally the log key)."""
        return sign_note(self.body(), [signer])


def open_checkpoint(message: str, known: Iterable[NoteVerifier]) -> tuple[Checkpoint, OpenedNote]:
    """Verify a signed checkpoint note and parse its body."""
    opened = open_note(message, known)
    return Checkpoint.parse(opened.text), opened


def _typed_key(name: str, id_hex: str, material: str, what: str) -> bytes:
    if not valid_key_name(name) or not _HEX8.fullmatch(id_hex):
        raise LedgerError(f"malformed {what}")
    raw = b64decode(material, what)
    if len(raw) != 33 or raw[0] != ED25519_TYPE:
        raise LedgerError(f"{what} is not an Ed25519 key (type 0x01 and 32 bytes)")
    return raw[1:]


def _check_chars(message: str) -> None:
    # Notes are UTF-8 without control characters other than newline (signed-note "Format").
    bad = next((c for c in message if c < " " and c != "\n"), None)
    if bad is not None:
        raise LedgerError(f"note holds control character {bad!r}")
    try:
        message.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LedgerError("note is not valid UTF-8") from exc


def _check_text(text: str) -> None:
    _check_chars(text)
    if not text.endswith("\n"):
        raise LedgerError("note text must be non-empty and end with a newline")
