"""The caseworker's day and the supervisor's step-down list: assigned caseworker, page visits, deferrals.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("persons") as batch:
        batch.add_column(sa.Column("caseworker", sa.String(128), nullable=True))
    op.create_index("ix_persons_caseworker", "persons", ["caseworker"])
    op.create_table(
        "page_visits",
        sa.Column("user", sa.String(128), primary_key=True),
        sa.Column("page", sa.String(32), primary_key=True),
        sa.Column("seen_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "step_down_deferrals",
        sa.Column("deferral_id", sa.String(36), primary_key=True),
        sa.Column("person_id", sa.String(64), sa.ForeignKey("persons.person_id"), nullable=False),
        sa.Column("office", sa.String(64), nullable=False),
        sa.Column("reason_code", sa.String(32), nullable=False),
        sa.Column("until", sa.Date, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.create_index("ix_step_down_deferrals_person_id", "step_down_deferrals", ["person_id"])
    op.create_index("ix_step_down_deferrals_office", "step_down_deferrals", ["office"])


def downgrade() -> None:
    op.drop_index("ix_step_down_deferrals_office", table_name="step_down_deferrals")
    op.drop_index("ix_step_down_deferrals_person_id", table_name="step_down_deferrals")
    op.drop_table("step_down_deferrals")
    op.drop_table("page_visits")
    op.drop_index("ix_persons_caseworker", table_name="persons")
    with op.batch_alter_table("persons") as batch:
        batch.drop_column("caseworker")
