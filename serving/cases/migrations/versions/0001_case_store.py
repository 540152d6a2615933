"""The case store: persons, events, outcomes, current tiers, assessments, decisions, review runs, imports.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

FLAGS = (
    "flag_mental_illness",
    "flag_serious_illness",
    "flag_three_withouts",
    "flag_gang",
    "flag_drug_use",
    "flag_abscond_tendency",
)


def upgrade() -> None:
    op.create_table(
        "persons",
        sa.Column("person_id", sa.String(64), primary_key=True),
        sa.Column("office", sa.String(64), nullable=True),
        sa.Column("sex", sa.String(32), nullable=False),
        sa.Column("birth_date", sa.Date, nullable=False),
        sa.Column("education", sa.String(32), nullable=False),
        sa.Column("employment", sa.String(32), nullable=False),
        sa.Column("marital", sa.String(32), nullable=False),
        sa.Column("local", sa.Boolean, nullable=False),
        sa.Column("supervision_type", sa.String(32), nullable=False),
        sa.Column("offence", sa.String(32), nullable=False),
        sa.Column("sentence_months", sa.Float, nullable=False),
        sa.Column("supervision_start", sa.Date, nullable=False),
        sa.Column("supervision_end", sa.Date, nullable=False),
        sa.Column("prior_convictions", sa.Integer, nullable=False),
        sa.Column("prior_supervisions", sa.Integer, nullable=False),
        *(sa.Column(flag, sa.Boolean, nullable=False) for flag in FLAGS),
    )
    op.create_index("ix_persons_office", "persons", ["office"])
    op.create_table(
        "events",
        sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("person_id", sa.String(64), sa.ForeignKey("persons.person_id"), nullable=False),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("import_id", sa.String(36), nullable=True),
        sa.Column("recorded_by", sa.String(128), nullable=True),
        sa.Column("recorded_at", sa.String(40), nullable=True),
    )
    op.create_index("ix_events_person_id", "events", ["person_id"])
    op.create_table(
        "outcomes",
        sa.Column("person_id", sa.String(64), sa.ForeignKey("persons.person_id"), primary_key=True),
        sa.Column("reoffence_date", sa.Date, nullable=True),
        sa.Column("revocation_date", sa.Date, nullable=True),
        sa.Column("followup_end", sa.Date, nullable=False),
    )
    op.create_table(
        "tiers",
        sa.Column("person_id", sa.String(64), sa.ForeignKey("persons.person_id"), primary_key=True),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("since", sa.Date, nullable=False),
        sa.Column("decision_id", sa.String(36), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
    )
    op.create_table(
        "case_assessments",
        sa.Column("assessment_id", sa.String(36), primary_key=True),
        sa.Column("person_id", sa.String(64), sa.ForeignKey("persons.person_id"), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("band", sa.String(16), nullable=False),
        sa.Column("tier_by_risk", sa.String(16), nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("rule_id", sa.String(64), nullable=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=True),
    )
    op.create_index("ix_case_assessments_person_id", "case_assessments", ["person_id"])
    op.create_table(
        "decisions",
        sa.Column("decision_id", sa.String(36), primary_key=True),
        sa.Column("person_id", sa.String(64), sa.ForeignKey("persons.person_id"), nullable=False),
        sa.Column("office", sa.String(64), nullable=False),
        sa.Column("assessment_id", sa.String(36), nullable=False),
        sa.Column("from_tier", sa.String(16), nullable=False),
        sa.Column("to_tier", sa.String(16), nullable=False),
        sa.Column("tier_by_risk", sa.String(16), nullable=False),
        sa.Column("reason_code", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("proposed_by", sa.String(128), nullable=False),
        sa.Column("proposed_at", sa.String(40), nullable=False),
        sa.Column("decided_by", sa.String(128), nullable=True),
        sa.Column("decided_at", sa.String(40), nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
    )
    for column in ("person_id", "office", "status"):
        op.create_index(f"ix_decisions_{column}", "decisions", [column])
    op.create_table(
        "review_runs",
        sa.Column("run_id", sa.String(36), primary_key=True),
        sa.Column("office", sa.String(64), nullable=True),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("lang", sa.String(4), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index("ix_review_runs_office", "review_runs", ["office"])
    op.create_table(
        "imports",
        sa.Column("import_id", sa.String(36), primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("imports", "review_runs", "decisions", "case_assessments", "tiers", "outcomes", "events", "persons"):
        op.drop_table(table)
