"""Tables of the case store (SQLAlchemy Core); the schema itself is made by the Alembic migrations.

Dates are SQL ``DATE``; person ids are the agency's ids (the case store holds the records
themselves, unlike the audit trail, which keys them). ``tiers`` holds each person's current tier:
the export's ``current_tier`` when it carries one (source ``export``), else strict when a person
first arrives (source ``arrival``); afterwards an approved decision changes it (source ``decision``),
and a later export only where no decision taken here set it.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text, false

from features.vocab import INTAKE_FLAGS

#: The table in which Alembic records the schema revision of the case store.
VERSION_TABLE = "case_store_version"
metadata = MetaData()

#: Columns of ``persons`` that hold dates / categories / numbers (the canonical table's).
PERSON_DATES = ("birth_date", "supervision_start", "supervision_end")

persons = Table(
    "persons",
    metadata,
    Column("person_id", String(64), primary_key=True),
    Column("office", String(64), nullable=True, index=True),
    Column("sex", String(32), nullable=False),
    Column("birth_date", Date, nullable=False),
    Column("education", String(32), nullable=False),
    Column("employment", String(32), nullable=False),
    Column("marital", String(32), nullable=False),
    Column("local", Boolean, nullable=False),
    Column("supervision_type", String(32), nullable=False),
    Column("offence", String(32), nullable=False),
    Column("sentence_months", Float, nullable=False),
    Column("supervision_start", Date, nullable=False),
    Column("supervision_end", Date, nullable=False),
    Column("prior_convictions", Integer, nullable=False),
    Column("prior_supervisions", Integer, nullable=False),
    *(Column(flag, Boolean, nullable=False) for flag in INTAKE_FLAGS),
    Column("caseworker", String(128), nullable=True, index=True),  # the assigned caseworker (user), if any
    Column("office_name", String(128), nullable=True),  # the office's name as the export gives it
)

events = Table(
    "events",
    metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("person_id", String(64), ForeignKey("persons.person_id"), nullable=False, index=True),
    Column("date", Date, nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("value", Float, nullable=True),
    Column("source", String(16), nullable=False),  # import | recorded
    Column("import_id", String(36), nullable=True),  # imported: the import (its time is in ``imports``)
    Column("recorded_by", String(128), nullable=True),  # recorded: who and when
    Column("recorded_at", String(40), nullable=True),
)

outcomes = Table(
    "outcomes",
    metadata,
    Column("person_id", String(64), ForeignKey("persons.person_id"), primary_key=True),
    Column("reoffence_date", Date, nullable=True),
    Column("revocation_date", Date, nullable=True),
    Column("followup_end", Date, nullable=False),
)

tiers = Table(
    "tiers",
    metadata,
    Column("person_id", String(64), ForeignKey("persons.person_id"), primary_key=True),
    Column("tier", String(16), nullable=False),
    Column("since", Date, nullable=False),
    Column("decision_id", String(36), nullable=True),
    Column("source", String(16), nullable=False),  # arrival | export | decision
)

assessments = Table(
    "case_assessments",
    metadata,
    Column("assessment_id", String(36), primary_key=True),
    Column("person_id", String(64), ForeignKey("persons.person_id"), nullable=False, index=True),
    Column("stage", String(16), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("probability", Float, nullable=False),
    Column("band", String(16), nullable=False),
    Column("tier_by_risk", String(16), nullable=False),
    Column("tier", String(16), nullable=False),
    Column("rule_id", String(64), nullable=True),
    Column("model", String(128), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("run_id", String(36), nullable=True),
)

decisions = Table(
    "decisions",
    metadata,
    Column("decision_id", String(36), primary_key=True),
    Column("person_id", String(64), ForeignKey("persons.person_id"), nullable=False, index=True),
    Column("office", String(64), nullable=False, index=True),
    Column("assessment_id", String(36), nullable=False),
    Column("from_tier", String(16), nullable=False),
    Column("to_tier", String(16), nullable=False),
    Column("tier_by_risk", String(16), nullable=False),
    Column("reason_code", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", String(16), nullable=False, index=True),  # proposed | approved | rejected
    Column("proposed_by", String(128), nullable=False),
    Column("proposed_at", String(40), nullable=False),
    Column("decided_by", String(128), nullable=True),
    Column("decided_at", String(40), nullable=True),
    Column("comment", Text, nullable=True),
)

review_runs = Table(
    "review_runs",
    metadata,
    Column("run_id", String(36), primary_key=True),
    Column("office", String(64), nullable=True, index=True),
    Column("as_of", Date, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("lang", String(4), nullable=False),
    Column("count", Integer, nullable=False),
    Column("payload", Text, nullable=False),  # the run's JSON exactly as returned
    Column("superseded_by", String(36), nullable=True),  # a later run of the same office and date
    Column("backdated", Boolean, nullable=False, server_default=false()),  # dated before the day it was run
    Index("ix_review_runs_office_as_of", "office", "as_of"),
)

imports = Table(
    "imports",
    metadata,
    Column("import_id", String(36), primary_key=True),
    Column("source", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("summary", Text, nullable=False),
)

#: When a user last opened a page that shows what is new since the last visit ("today").
page_visits = Table(
    "page_visits",
    metadata,
    Column("user", String(128), primary_key=True),
    Column("page", String(32), primary_key=True),
    Column("seen_at", String(40), nullable=False),
)

#: A supervisor's "not now" on the step-down list: the person returns to the list after ``until``.
step_down_deferrals = Table(
    "step_down_deferrals",
    metadata,
    Column("deferral_id", String(36), primary_key=True),
    Column("person_id", String(64), ForeignKey("persons.person_id"), nullable=False, index=True),
    Column("office", String(64), nullable=False, index=True),
    Column("reason_code", String(32), nullable=False),
    Column("until", Date, nullable=False),
    Column("comment", Text, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("created_at", String(40), nullable=False),
)
