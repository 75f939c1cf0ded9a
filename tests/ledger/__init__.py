"""Tests of the ledger core (canonical JSON, Merkle tree, entries, checkpoints, verifier)."""
