"""volume_cells keyed by time slot too: (cell, slot, volume_id)

Over a busy week a cell holds a thousand volumes and a check read them all before filtering by
time. Each row now carries its volume's time slot (`deconfliction.detect.cells.time_slot`), so a
check reads only the slots near its window. The table is an index of the active volumes, so it
is built again from them, with the same functions a write uses.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 02:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import deconfliction.store.types
from deconfliction.conflicts.detection import stored_volume_footprint
from deconfliction.detect.cells import cells_covering, time_slot

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 2_000


def upgrade() -> None:
    _rebuild(slotted=True)


def downgrade() -> None:
    _rebuild(slotted=False)


def _rebuild(slotted: bool) -> None:
    """Make volume_cells again, keyed with or without the slot, and file every active volume."""
    op.drop_index("ix_volume_cells_volume", table_name="volume_cells")
    op.drop_table("volume_cells")
    key = ["cell", "slot", "volume_id"] if slotted else ["cell", "volume_id"]
    cells = op.create_table(
        "volume_cells",
        sa.Column("cell", sa.BigInteger(), nullable=False),
        *([sa.Column("slot", sa.Integer(), nullable=False)] if slotted else []),
        sa.Column("volume_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["volume_id"], ["volumes.id"]),
        sa.PrimaryKeyConstraint(*key),
    )
    op.create_index("ix_volume_cells_volume", "volume_cells", ["volume_id"], unique=False)
    volumes = sa.table(
        "volumes",
        sa.column("id", sa.Integer()),
        sa.column("active", sa.Boolean()),
        sa.column("start", deconfliction.store.types.UTCDateTime()),
        sa.column("end", deconfliction.store.types.UTCDateTime()),
        sa.column("geometry", sa.JSON()),
    )
    conn = op.get_bind()
    last = 0
    while True:
        batch = conn.execute(
            sa.select(volumes.c.id, volumes.c.start, volumes.c.end, volumes.c.geometry)
            .where(volumes.c.active, volumes.c.id > last)
            .order_by(volumes.c.id)
            .limit(BATCH)
        ).all()
        if not batch:
            return
        rows = [
            {"cell": cell, "volume_id": v.id}
            | ({"slot": time_slot(v.start, v.end)} if slotted else {})
            for v in batch
            for cell in cells_covering(stored_volume_footprint(v.geometry))
        ]
        if rows:
            conn.execute(cells.insert(), rows)
        last = batch[-1].id
