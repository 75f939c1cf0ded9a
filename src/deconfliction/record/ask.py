"""Answer "was activity X notified, to whom, when, and who acknowledged it when?" from an export.

Pure: it reads export records that `ledger.verify.verify_export` has accepted. The log's own
entries say what the server made of each officer statement (`activity.notified` names the
recipients); every cited entry comes with its inclusion proof in the newest checkpoint, so a
lawyer can check each answer against a checkpoint the parties cosigned.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any

from deconfliction.ledger.checkpoint import parse_note
from deconfliction.ledger.entry import LOG_PARTY, Entry
from deconfliction.ledger.merkle import NodeStore, TreeState, inclusion_proof

ACTIVITY_FACTS = (
    "activity.notified",
    "activity.amended",
    "activity.cancelled",
    "activity.acknowledged",
)


def ask_activity(records: Iterable[Mapping[str, Any]], activity: int) -> dict[str, Any]:
    """The history of one activity, each step with the entries that prove it."""
    entries: dict[int, Entry] = {}
    state, store = TreeState(), NodeStore()
    checkpoint_note: str | None = None
    for record in records:
        if record["type"] == "checkpoint":
            checkpoint_note = record["note"]
            continue
        entry = Entry.from_json(record["entry"])
        entries[record["index"]] = entry
        store.put(state.append(entry.leaf_hash))
    if checkpoint_note is None:
        raise ValueError("the export has no checkpoint to prove anything against")
    lines = parse_note(checkpoint_note).text.split("\n")
    size = int(lines[1])

    def proof(index: int) -> dict[str, Any]:
        return (
            {
                "index": index,
                "leaf_hash": entries[index].leaf_hash.hex(),
                "inclusion_proof": [
                    base64.b64encode(h).decode() for h in inclusion_proof(index, size, store.get)
                ],
            }
            if index < size
            else {"index": index, "note": "after the newest checkpoint"}
        )

    steps: list[dict[str, Any]] = []
    for index, entry in sorted(entries.items()):
        if entry.party != LOG_PARTY or entry.kind not in ACTIVITY_FACTS:
            continue
        fact = entry.payload
        if fact is None or fact.get("activity") != activity:
            continue
        statement = entries.get(fact.get("statement", -1))
        steps.append(
            {
                "what": entry.kind.split(".")[1],
                "version": fact.get("version"),
                "by": fact.get("by"),
                "party": fact.get("party"),
                "notified_to": fact.get("notified_to"),
                "recorded_at": entry.client_time,
                "said_at": statement.client_time if statement else None,
                "signed_by_key": statement.key_id if statement else None,
                "server_held_key": statement.server_held_key if statement else None,
                "proof": [proof(index)] + ([proof(fact["statement"])] if statement else []),
            }
        )
    if not steps:
        raise ValueError(
            f"the export holds no record of activity {activity} (or its "
            "payloads are redacted for you)"
        )
    return {
        "activity": activity,
        "checkpoint": checkpoint_note,
        "checkpoint_size": size,
        "history": steps,
    }
