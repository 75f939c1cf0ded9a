"""live picture: latest track states, tactical alerts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import deconfliction.store.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "track_states",
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("track_id", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("callsign", sa.String(length=64), nullable=True),
        sa.Column("type", sa.String(length=64), nullable=True),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("alt_m", sa.Float(), nullable=False),
        sa.Column("gs_mps", sa.Float(), nullable=False),
        sa.Column("course_deg", sa.Float(), nullable=False),
        sa.Column("vs_mps", sa.Float(), nullable=False),
        sa.Column("time", deconfliction.store.types.UTCDateTime(), nullable=False),
        sa.Column("stale_at", deconfliction.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("party", "track_id"),
    )
    with op.batch_alter_table("track_states", schema=None) as batch_op:
        batch_op.create_index("ix_track_states_stale", ["stale_at"], unique=False)

    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("a", sa.String(length=160), nullable=False),
        sa.Column("b", sa.String(length=160), nullable=True),
        sa.Column("zone_id", sa.Integer(), nullable=True),
        sa.Column("party_a", sa.String(length=16), nullable=False),
        sa.Column("party_b", sa.String(length=16), nullable=False),
        sa.Column("parties", sa.JSON(), nullable=False),
        sa.Column("tcpa_s", sa.Float(), nullable=True),
        sa.Column("dcpa_m", sa.Float(), nullable=True),
        sa.Column("t_in_s", sa.Float(), nullable=False),
        sa.Column("t_out_s", sa.Float(), nullable=True),
        sa.Column("segment", sa.JSON(), nullable=False),
        sa.Column("altitudes_m", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("raised_at", deconfliction.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", deconfliction.store.types.UTCDateTime(), nullable=False),
        sa.Column("cleared_at", deconfliction.store.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["zone_id"], ["zones.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index("ix_alerts_state", ["state"], unique=False)
        batch_op.create_index("ix_alerts_party_a", ["party_a", "id"], unique=False)
        batch_op.create_index("ix_alerts_party_b", ["party_b", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_party_b")
        batch_op.drop_index("ix_alerts_party_a")
        batch_op.drop_index("ix_alerts_state")
    op.drop_table("alerts")
    with op.batch_alter_table("track_states", schema=None) as batch_op:
        batch_op.drop_index("ix_track_states_stale")
    op.drop_table("track_states")
