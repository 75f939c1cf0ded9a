"""zones: schedules, altitude unit, import source for idempotent re-import

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 15:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("zones", schema=None) as batch_op:
        batch_op.add_column(sa.Column("schedule", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("altitude_unit", sa.String(length=4), nullable=True))
        batch_op.add_column(sa.Column("source_id", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("source_hash", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_zones_source", ["owner", "source_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("zones", schema=None) as batch_op:
        batch_op.drop_index("ix_zones_source")
        batch_op.drop_column("source_hash")
        batch_op.drop_column("source_id")
        batch_op.drop_column("altitude_unit")
        batch_op.drop_column("schedule")
