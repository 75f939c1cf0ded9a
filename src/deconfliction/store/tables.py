"""The schema. Alembic migrations in `migrations/versions` create exactly these tables."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
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
    # Daily periods the zone is active in (null: all its validity); the unit the band was given in.
    Column("schedule", JSON),
    Column("altitude_unit", String(4)),
    # An imported zone's origin and a hash of the record, so that re-importing changes nothing.
    Column("source_id", String(200)),
    Column("source_hash", String(64)),
)
Index("ix_zones_source", zones.c.owner, zones.c.source_id)

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
    # The hour the volume's window starts, or the slot of long volumes (`detect.cells`).
    Column("slot", Integer, primary_key=True),
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

# --- The hotline (migration 0004) -------------------------------------------------------------

# Per party: the time zone its officers read local times in, and its escalation ladder (copied
# onto each message when it is sent; editing it later changes no message in flight).
hotline_parties = Table(
    "hotline_parties",
    metadata,
    Column("party", String(16), ForeignKey("parties.code"), primary_key=True),
    Column("time_zone", String(64), nullable=False),
    Column("ladder", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Per pair of parties ("IL-TR", codes sorted): channel state, acknowledgement deadlines per
# priority and the periodic comms check timer.
hotline_channels = Table(
    "hotline_channels",
    metadata,
    Column("pair", String(40), primary_key=True),
    Column("party_a", String(16), ForeignKey("parties.code"), nullable=False),
    Column("party_b", String(16), ForeignKey("parties.code"), nullable=False),
    Column("state", String(16), nullable=False),  # open | degraded | suspended
    Column("reason", String(500)),
    Column("state_since", UTCDateTime, nullable=False),
    Column("deadlines", JSON, nullable=False),  # {"FLASH": s, "URGENT": s, "ROUTINE": s}
    Column("comms_check_every_s", Integer, nullable=False),  # 0: no periodic checks
    Column("next_comms_check_at", UTCDateTime),
    Column("checks_sent", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_hotline_channels_next_check", hotline_channels.c.next_comms_check_at)

hotline_threads = Table(
    "hotline_threads",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subject", String(200), nullable=False),
    Column("conflict_id", Integer, ForeignKey("conflicts.id")),  # opened for a conflict
    Column("channel", String(40)),  # the comms checks of this channel ("IL-TR")
    Column("opened_by", String(16)),  # the party; null: the system
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_hotline_threads_conflict", hotline_threads.c.conflict_id, unique=True)
Index("ix_hotline_threads_channel", hotline_threads.c.channel, unique=True)

hotline_thread_parties = Table(
    "hotline_thread_parties",
    metadata,
    Column("thread_id", Integer, ForeignKey("hotline_threads.id"), primary_key=True),
    Column("party", String(16), ForeignKey("parties.code"), primary_key=True),
)
Index("ix_hotline_thread_parties_party", hotline_thread_parties.c.party)

hotline_messages = Table(
    "hotline_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("thread_id", Integer, ForeignKey("hotline_threads.id"), nullable=False),
    Column("sender_party", String(16)),  # null: sent by the system (comms checks, conflicts)
    Column("sender_officer", String(64)),
    Column("type", String(32), nullable=False),
    Column("priority", String(8), nullable=False),
    Column("content", JSON, nullable=False),  # the type's structured fields
    Column("text", Text),  # free text, as written
    Column("text_language", String(16)),
    Column("in_reply_to", Integer, ForeignKey("hotline_messages.id")),
    Column("conflict_id", Integer),
    Column("activity_id", Integer),
    Column("recipients", JSON, nullable=False),  # party codes
    Column("copied", JSON, nullable=False),  # the mediator parties
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_hotline_messages_thread", hotline_messages.c.thread_id, hotline_messages.c.id)

# One row per message and recipient party: receipts, the copied deadline and ladder, and the
# escalation timer (`next_escalation_at`), claimed by the scheduler with a conditional UPDATE.
hotline_recipients = Table(
    "hotline_recipients",
    metadata,
    Column("message_id", Integer, ForeignKey("hotline_messages.id"), primary_key=True),
    Column("party", String(16), ForeignKey("parties.code"), primary_key=True),
    Column("channel", String(40), nullable=False),
    Column("deadline_at", UTCDateTime, nullable=False),
    Column("ladder", JSON, nullable=False),
    Column("rung", Integer, nullable=False),
    Column("next_escalation_at", UTCDateTime),
    Column("escalated_at", UTCDateTime),
    Column("delivered_at", UTCDateTime),
    Column("delivered_by", String(64)),
    Column("read_at", UTCDateTime),
    Column("read_by", String(64)),
    Column("acknowledged_at", UTCDateTime),
    Column("acknowledged_by", String(64)),
)
Index("ix_hotline_recipients_due", hotline_recipients.c.next_escalation_at)
Index("ix_hotline_recipients_party", hotline_recipients.c.party, hotline_recipients.c.message_id)
Index("ix_hotline_recipients_channel", hotline_recipients.c.channel)

# The event stream: one row per event, written in the transaction of the change. Ids follow
# commit order (writers hold the log's lock when they publish), so `id > after` misses nothing.
stream_events = Table(
    "stream_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("audience", JSON, nullable=False),  # party codes; mediators read every event
    Column("payload", JSON, nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

stream_audience = Table(
    "stream_audience",
    metadata,
    Column("event_id", Integer, ForeignKey("stream_events.id"), primary_key=True),
    Column("party", String(16), primary_key=True),
)
Index("ix_stream_audience_party", stream_audience.c.party, stream_audience.c.event_id)

# --- The live picture (migration 0005) --------------------------------------------------------

# The latest state of each live track, written in one batch about once a second, so that a
# restarted server has its picture back (states already stale on reading are left out).
track_states = Table(
    "track_states",
    metadata,
    Column("party", String(16), primary_key=True),
    Column("track_id", String(128), primary_key=True),
    Column("source", String(16), nullable=False),  # cot | sbs1 | api | sim
    Column("callsign", String(64)),
    Column("type", String(64)),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("alt_m", Float, nullable=False),
    Column("gs_mps", Float, nullable=False),
    Column("course_deg", Float, nullable=False),
    Column("vs_mps", Float, nullable=False),
    Column("time", UTCDateTime, nullable=False),
    Column("stale_at", UTCDateTime, nullable=False),
)
Index("ix_track_states_stale", track_states.c.stale_at)

# Tactical alerts: a predicted loss of separation between tracks of two parties (kind "pair":
# a, b = "PARTY/track") or a predicted entry of a track into another party's zone ("zone").
# Raised once, updated while it lasts, cleared after N cycles out of conflict.
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),  # pair | zone
    Column("a", String(160), nullable=False),
    Column("b", String(160)),
    Column("zone_id", Integer, ForeignKey("zones.id")),
    Column("party_a", String(16), nullable=False),
    Column("party_b", String(16), nullable=False),  # b's party, or the zone's owner
    Column("parties", JSON, nullable=False),
    Column("tcpa_s", Float),
    Column("dcpa_m", Float),
    Column("t_in_s", Float, nullable=False),
    Column("t_out_s", Float),
    Column("segment", JSON, nullable=False),  # GeoJSON LineString: the CPA segment / entry
    Column("altitudes_m", JSON, nullable=False),
    Column("state", String(16), nullable=False),  # raised | updated | cleared
    Column("raised_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("cleared_at", UTCDateTime),
)
Index("ix_alerts_state", alerts.c.state)
Index("ix_alerts_party_a", alerts.c.party_a, alerts.c.id)
Index("ix_alerts_party_b", alerts.c.party_b, alerts.c.id)

# --- Agreements, violations and incidents (migration 0006) ------------------------------------

agreement_rounds = Table(
    "agreement_rounds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("number", Integer, nullable=False, unique=True),
    Column("held_on", Date, nullable=False),
    Column("venue", String(200), nullable=False),
    Column("host", String(16), ForeignKey("parties.code"), nullable=False),
    Column("delegations", JSON, nullable=False),  # [{"party", "lead"}]
    Column("outcome", String(16), nullable=False),  # no_agreement | partial | agreed
    Column("summary", Text, nullable=False),
    Column("recorded_by", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# A party's stated position: in its own language, with the English rendering it supplies.
agreement_positions = Table(
    "agreement_positions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("round_id", Integer, ForeignKey("agreement_rounds.id"), nullable=False),
    Column("party", String(16), ForeignKey("parties.code"), nullable=False),
    Column("language", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("english", Text, nullable=False),
    Column("source", String(500)),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_agreement_positions_round", agreement_positions.c.round_id)

# A commitment is a rule (kind + parameters); it binds once every named party consented.
commitments = Table(
    "commitments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("round_id", Integer, ForeignKey("agreement_rounds.id")),
    Column("title", String(200), nullable=False),
    Column("rule_kind", String(32), nullable=False),
    Column("rule", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # proposed | binding
    Column("proposed_by", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("bound_at", UTCDateTime),
)

commitment_parties = Table(
    "commitment_parties",
    metadata,
    Column("commitment_id", Integer, ForeignKey("commitments.id"), primary_key=True),
    Column("party", String(16), ForeignKey("parties.code"), primary_key=True),
    Column("consented_at", UTCDateTime),
    Column("consented_by", String(64)),
)

# A binding rule broken, with its evidence; `key` stores the same breach once.
violations = Table(
    "violations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("commitment_id", Integer, ForeignKey("commitments.id"), nullable=False),
    Column("rule_kind", String(32), nullable=False),
    Column("party", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("source", String(16), nullable=False),  # plan | tracks
    Column("description", Text, nullable=False),
    Column("evidence", JSON, nullable=False),
    Column("key", String(200), nullable=False, unique=True),
    Column("detected_at", UTCDateTime, nullable=False),
)
Index("ix_violations_party_at", violations.c.party, violations.c.at)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("reported_by", String(16), ForeignKey("parties.code"), nullable=False),
    Column("reporter", String(64), nullable=False),
    Column("other_party", String(16), ForeignKey("parties.code"), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("place", JSON, nullable=False),  # {"lon", "lat"}
    Column("description", Text, nullable=False),
    Column("state", String(24), nullable=False),
    Column("findings", Text),
    Column("duplicate_of", Integer, ForeignKey("incidents.id")),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_incidents_parties", incidents.c.reported_by, incidents.c.other_party)

incident_evidence = Table(
    "incident_evidence",
    metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id"), primary_key=True),
    Column("kind", String(16), primary_key=True),  # activity | conflict | alert | ...
    Column("ref", String(200), primary_key=True),
    Column("added_by", String(16), nullable=False),
    Column("added_at", UTCDateTime, nullable=False),
)

# Every step of an incident's life, by whom: the history, and the closing consents.
incident_steps = Table(
    "incident_steps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False),
    Column("action", String(24), nullable=False),
    Column("state", String(24), nullable=False),  # the state after the step
    Column("party", String(16), nullable=False),
    Column("officer", String(64), nullable=False),
    Column("note", Text),
    Column("at", UTCDateTime, nullable=False),
)
Index("ix_incident_steps_incident", incident_steps.c.incident_id, incident_steps.c.id)

# Leader leases: which replica runs a singleton job (scheduler, checkpoint signer, tactical
# loop) until when. Taken by a conditional UPDATE, renewed before it expires.
leader_leases = Table(
    "leader_leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("acquired_at", UTCDateTime, nullable=False),
)

# Track states a follower replica received, handed to the leader's tactical loop (PostgreSQL,
# several replicas): written by the follower from its own intake (the party is the one its
# binding or the poster's credentials gave), taken and deleted by the leader. Transient.
track_inbox = Table(
    "track_inbox",
    metadata,
    # 64 bits: thousands of states a second would use up 32 bits within weeks.
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("party", String(16), nullable=False),
    Column("track_id", String(128), nullable=False),
    Column("source", String(16), nullable=False),  # cot | sbs1 | api | sim
    Column("callsign", String(64)),
    Column("type", String(64)),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("alt_m", Float, nullable=False),
    Column("gs_mps", Float, nullable=False),
    Column("course_deg", Float, nullable=False),
    Column("vs_mps", Float, nullable=False),
    Column("time", UTCDateTime, nullable=False),
    Column("stale_at", UTCDateTime, nullable=False),
)
