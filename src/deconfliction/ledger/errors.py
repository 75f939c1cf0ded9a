"""The one error type of the ledger core, with a machine-readable reason.

The reason codes are shared by the entry checks, the key ring and the offline verifier, so a
service or a CLI can tell an edited payload from a revoked key without parsing messages.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a record, an entry or a checkpoint was refused."""

    MALFORMED = "malformed"  # not the shape the format defines
    GAP = "gap"  # an index is missing: a deleted row
    ORDER = "order"  # rows out of order, swapped or duplicated
    SIGNATURE = "signature"  # the entry signature does not verify: edited bytes
    UNCERTIFIED_KEY = "uncertified_key"  # no certificate from the party root before use
    REVOKED_KEY = "revoked_key"  # certificate revoked before this entry
    REPLAYED_NONCE = "replayed_nonce"  # an author's nonce seen before
    BAD_SUPERSEDES = "bad_supersedes"  # correction of an unknown or foreign entry
    CHECKPOINT_SIGNATURE = "checkpoint_signature"  # a checkpoint lacks a valid required signature
    FORK = "fork"  # a signed root differs from the root of the entries
    ROLLBACK = "rollback"  # a signed size smaller than one already signed
    TRUNCATED = "truncated"  # a checkpoint covers entries the export does not hold


class LedgerError(ValueError):
    """A refused input; `reason` says which rule it broke, the message says how."""

    def __init__(self, message: str, reason: Reason = Reason.MALFORMED) -> None:
        super().__init__(message)
        self.reason = reason
