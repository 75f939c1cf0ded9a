"""track inbox: states a follower replica received, handed to the leader's tactical loop

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 16:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import deconfliction.store.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "track_inbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
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
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("track_inbox")
