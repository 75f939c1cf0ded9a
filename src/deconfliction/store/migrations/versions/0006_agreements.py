"""agreements, commitments, violations and incidents

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import deconfliction.store.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = deconfliction.store.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "agreement_rounds",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("venue", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=16), nullable=False),
        sa.Column("delegations", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["host"], ["parties.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
    )
    op.create_table(
        "agreement_positions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("english", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=True),
        sa.Column("created_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["party"], ["parties.code"]),
        sa.ForeignKeyConstraint(["round_id"], ["agreement_rounds.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_agreement_positions_round", "agreement_positions", ["round_id"])
    op.create_table(
        "commitments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("rule_kind", sa.String(length=32), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("proposed_by", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("bound_at", UTC(), nullable=True),
        sa.ForeignKeyConstraint(["round_id"], ["agreement_rounds.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "commitment_parties",
        sa.Column("commitment_id", sa.Integer(), nullable=False),
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("consented_at", UTC(), nullable=True),
        sa.Column("consented_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["commitment_id"], ["commitments.id"]),
        sa.ForeignKeyConstraint(["party"], ["parties.code"]),
        sa.PrimaryKeyConstraint("commitment_id", "party"),
    )
    op.create_table(
        "violations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("commitment_id", sa.Integer(), nullable=False),
        sa.Column("rule_kind", sa.String(length=32), nullable=False),
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("at", UTC(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("detected_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["commitment_id"], ["commitments.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_violations_party_at", "violations", ["party", "at"])
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reported_by", sa.String(length=16), nullable=False),
        sa.Column("reporter", sa.String(length=64), nullable=False),
        sa.Column("other_party", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", UTC(), nullable=False),
        sa.Column("place", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("findings", sa.Text(), nullable=True),
        sa.Column("duplicate_of", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("updated_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["duplicate_of"], ["incidents.id"]),
        sa.ForeignKeyConstraint(["other_party"], ["parties.code"]),
        sa.ForeignKeyConstraint(["reported_by"], ["parties.code"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_incidents_parties", "incidents", ["reported_by", "other_party"])
    op.create_table(
        "incident_evidence",
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=200), nullable=False),
        sa.Column("added_by", sa.String(length=16), nullable=False),
        sa.Column("added_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("incident_id", "kind", "ref"),
    )
    op.create_table(
        "incident_steps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("officer", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_incident_steps_incident", "incident_steps", ["incident_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_incident_steps_incident", table_name="incident_steps")
    op.drop_table("incident_steps")
    op.drop_table("incident_evidence")
    op.drop_index("ix_incidents_parties", table_name="incidents")
    op.drop_table("incidents")
    op.drop_index("ix_violations_party_at", table_name="violations")
    op.drop_table("violations")
    op.drop_table("commitment_parties")
    op.drop_table("commitments")
    op.drop_index("ix_agreement_positions_round", table_name="agreement_positions")
    op.drop_table("agreement_positions")
    op.drop_table("agreement_rounds")
