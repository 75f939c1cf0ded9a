"""The signed record: canonical JSON, Ed25519 entries, an RFC 6962 Merkle log, checkpoints.

Pure code: no I/O, no database, no clock. Services store what ``TreeState.append`` returns and
answer proofs through a ``get_node(level, index)`` callable; ``verify.verify_export`` checks an
export offline.
"""
