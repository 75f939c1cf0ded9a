"""The schema. Alembic migrations in `migrations/versions` create exactly these tables."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from deconfliction.store.types import UTCDateTime

metadata = MetaData()

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", JSON, nullable=False),
)

parties = Table(
    "parties",
    metadata,
    Column("code", String(16), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("language", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

officers = Table(
    "officers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("party", String(16), ForeignKey("parties.code"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    # SHA-256 of the token: the token itself is shown once and never stored.
    Column("hash", String(64), primary_key=True),
    Column("officer", String(64), ForeignKey("officers.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

# The signed record: one row per log entry, `idx` is the RFC 6962 leaf index. Officers' entries
# (party = the officer's party) say what they did; the log's own entries (party "_log") say what
# the server derived from them. Nothing is updated or deleted here.
entries = Table(
    "entries",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(64), nullable=False),
    Column("party", String(16), nullable=False),
    Column("author", String(64), nullable=False),
    Column("subject", String(64), nullable=False),  # what the entry is about, for visibility
    Column("payload", JSON, nullable=False),
    Column("payload_sha256", String(64), nullable=False),
    Column("client_time", String(40), nullable=False),
    Column("nonce", String(128), nullable=False),
    Column("key_id", String(8), nullable=False),
    Column("supersedes", String(64)),
    Column("server_held_key", Boolean, nullable=False),
    Column("signature", String(100), nullable=False),
    Column("leaf_hash", String(64), nullable=False),
    Column("integrated_at", UTCDateTime, nullable=False),
    # A nonce is used once per author: a replayed signed request fails here.
    UniqueConstraint("party", "author", "nonce", name="uq_entries_nonce"),
)
Index("ix_entries_subject", entries.c.subject)

# Complete Merkle subtree hashes, so that proofs need O(log n) reads.
ledger_nodes = Table(
    "ledger_nodes",
    metadata,
    Column("level", Integer, primary_key=True),
    Column("idx", BigInteger, primary_key=True),
    Column("hash", LargeBinary(32), nullable=False),
)

# One row: the tree size. Appending locks it, so the log has one order on every database.
ledger_state = Table(
    "ledger_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("size", BigInteger, nullable=False),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True),
    Column("note", Text, nullable=False),  # C2SP signed note, cosignature lines added in place
    Column("created_at", UTCDateTime, nullable=False),
)

# Public keys as certified in the log; a private key only where the officer chose a
# server-held key (an explicit convenience, marked in every entry it signs).
keys = Table(
    "keys",
    metadata,
    Column("key_id", String(8), primary_key=True),
    Column("party", String(16), nullable=False),
    Column("officer", String(64)),  # null for the party's root key
    Column("public_key", String(64), nullable=False),
    Column("private_key", String(64)),
    Column("certified_idx", BigInteger),
    Column("revoked_idx", BigInteger),
)
Index("ix_keys_officer", keys.c.officer)

idempotency = Table(
    "idempotency",
    metadata,
    Column("officer", String(64), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("response", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

zones = Table(
    "zones",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner", String(16), ForeignKey("parties.code"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("rule", String(16), nullable=False),
    Column("lead_time_s", Integer),
    Column("geometry", JSON, nullable=False),
    Column("lower_m", Float, nullable=False),
    Column("upper_m", Float, nullable=False),
    Column("altitude_ref", String(8), nullable=False),
    Column("valid_from", UTCDateTime, nullable=False),
    Column("valid_to", UTCDateTime),
    # Separation minima that apply inside this zone instead of the area's default (or null).
    Column("minima", JSON),
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("withdrawn_at", UTCDateTime),
)

zone_parties = Table(
    "zone_parties",
    metadata,
    Column("zone_id", Integer, ForeignKey("zones.id"), primary_key=True),
    Column("party", String(16), ForeignKey("parties.code"), primary_key=True),
    Column("consented_at", UTCDateTime),
    Column("consented_by", String(64)),
)

activities = Table(
    "activities",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("party", String(16), ForeignKey("parties.code"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("title", String(200), nullable=False),
    Column("callsign", String(64)),
    Column("state", String(16), nullable=False),
    # version: the resource's (ETag; cancel bumps it); plan_version: the current volumes' version.
    Column("version", Integer, nullable=False),
    Column("plan_version", Integer, nullable=False),
    Column("start", UTCDateTime, nullable=False),
    Column("end", UTCDateTime, nullable=False),
    Column("late", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_activities_party", activities.c.party)

activity_versions = Table(
    "activity_versions",
    metadata,
    Column("activity_id", Integer, ForeignKey("activities.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("volumes", JSON, nullable=False),
    Column("route", JSON),
    Column("late_zones", JSON, nullable=False),
    Column("author", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

activity_recipients = Table(
    "activity_recipients",
    metadata,
    Column("activity_id", Integer, ForeignKey("activities.id"), primary_key=True),
    Column("party", String(16), ForeignKey("parties.code"), primary_key=True),
)
Index("ix_activity_recipients_party", activity_recipients.c.party)

activity_acks = Table(
    "activity_acks",
    metadata,
    Column("activity_id", Integer, ForeignKey("activities.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("party", String(16), ForeignKey("parties.code"), primary_key=True),
    Column("officer", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

# Every notified volume, of every version: the detection index is built from these rows. Old
# versions' and cancelled activities' volumes stay with active = false.
volumes = Table(
    "volumes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("activity_id", Integer, ForeignKey("activities.id"), nullable=False),
    Column("plan_version", Integer, nullable=False),
    Column("idx", Integer, nullable=False),
    Column("party", String(16), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("lower_m", Float, nullable=False),
    Column("upper_m", Float, nullable=False),
    Column("start", UTCDateTime, nullable=False),
    Column("end", UTCDateTime, nullable=False),
    Column("geometry", JSON, nullable=False),
)
Index("ix_volumes_activity", volumes.c.activity_id, volumes.c.plan_version)

# The portable cell index: which grid cells each active volume's footprint touches.
volume_cells = Table(
    "volume_cells",
    metadata,
    Column("cell", BigInteger, primary_key=True),
    Column("volume_id", Integer, ForeignKey("volumes.id"), primary_key=True),
)
Index("ix_volume_cells_volume", volume_cells.c.volume_id)

conflicts = Table(
    "conflicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # activities | zone
    Column("severity", String(16), nullable=False),  # high | medium | advisory
    Column("state", String(16), nullable=False),
    Column("activity_a", Integer, ForeignKey("activities.id"), nullable=False),
    Column("version_a", Integer, nullable=False),
    Column("party_a", String(16), nullable=False),
    Column("activity_b", Integer, ForeignKey("activities.id")),
    Column("version_b", Integer),
    Column("zone_id", Integer, ForeignKey("zones.id")),
    Column("party_b", String(16), nullable=False),
    Column("region", JSON, nullable=False),
    Column("lower_m", Float, nullable=False),
    Column("upper_m", Float, nullable=False),
    Column("start", UTCDateTime, nullable=False),
    Column("end", UTCDateTime, nullable=False),
    Column("distance_m", Float, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("resolution", String(32)),
)
Index("ix_conflicts_a", conflicts.c.activity_a, conflicts.c.state)
Index("ix_conflicts_b", conflicts.c.activity_b, conflicts.c.state)

conflict_parties = Table(
    "conflict_parties",
    metadata,
    Column("conflict_id", Integer, ForeignKey("conflicts.id"), primary_key=True),
    Column("party", String(16), ForeignKey("parties.code"), primary_key=True),
    Column("acknowledged_at", UTCDateTime),
    Column("acknowledged_by", String(64)),
    Column("accepted_at", UTCDateTime),
    Column("accepted_by", String(64)),
)
Index("ix_conflict_parties_party", conflict_parties.c.party)
