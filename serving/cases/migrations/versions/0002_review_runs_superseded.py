"""Review runs: one per office and date, a rerun supersedes the earlier; backdated runs are marked.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_runs") as batch:
        batch.add_column(sa.Column("superseded_by", sa.String(36), nullable=True))
        batch.add_column(sa.Column("backdated", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_index("ix_review_runs_office_as_of", "review_runs", ["office", "as_of"])


def downgrade() -> None:
    op.drop_index("ix_review_runs_office_as_of", table_name="review_runs")
    with op.batch_alter_table("review_runs") as batch:
        batch.drop_column("backdated")
        batch.drop_column("superseded_by")
