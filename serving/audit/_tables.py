"""The audit trail's tables: one hash chain per table, and the head of each chain.

``assessments`` keeps exactly what was asked and answered; ``overrides`` keeps caseworkers' tier overrides
of the earlier ``/override`` flow (kept readable); ``decision_steps`` keeps each step of a tier decision
(proposed, approved, rejected; serving/cases) beside the assessment that prompted it, never in place of
it; ``case_events`` keeps what users wrote into the case store (a recorded event, an import with its
files' hashes and counts); ``model_events`` keeps what people decided about the models in service (a
version promoted over the gate's refusal, with the reason, the user and the failed criteria);
``audit_chain_head`` keeps each chain's length and last hash, updated in the same transaction as an append.
Every chain row also keeps ``record_sig``, the signer's signature of its hash (not hashed itself).
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, Text

GENESIS = "0" * 64

metadata = MetaData()


def _hash_columns() -> tuple[Column[str], Column[str], Column[str]]:
    """The link, the hash, and the signer's signature of the hash (not hashed itself; serving.audit._signing)."""
    return (
        Column("prev_hash", String(64), nullable=False),
        Column("record_hash", String(64), nullable=False),
        Column("record_sig", String(100), nullable=True),
    )


assessments = Table(
    "assessments",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("assessment_id", String(36), nullable=False, unique=True),
    Column("created_at", String(40), nullable=False),
    Column("person_key", String(64), nullable=False, index=True),
    *(
        Column(name, Text, nullable=False)
        for name in (
            "stage",
            "model_name",
            "model_version",
            "policy_version",
            "request_json",
            "response_json",
            "explanation_json",
            "actor",
        )
    ),
    *_hash_columns(),
)
overrides = Table(
    "overrides",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("override_id", String(36), nullable=False, unique=True),
    Column("assessment_id", String(36), ForeignKey("assessments.assessment_id"), nullable=False, index=True),
    Column("created_at", String(40), nullable=False),
    *(Column(name, Text, nullable=False) for name in ("tier", "reason", "actor")),
    *_hash_columns(),
)
decision_steps = Table(  # each step of a tier decision (serving/cases): proposed, approved, rejected
    "decision_steps",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("step_id", String(36), nullable=False, unique=True),
    Column("decision_id", String(36), nullable=False, index=True),
    Column("assessment_id", String(36), ForeignKey("assessments.assessment_id"), nullable=False, index=True),
    Column("created_at", String(40), nullable=False),
    Column("person_key", String(64), nullable=False),
    *(
        Column(name, Text, nullable=False)
        for name in ("step", "office", "from_tier", "to_tier", "reason_code", "text", "actor")
    ),
    *_hash_columns(),
)
model_events = Table(  # decisions about the models in service, e.g. a promotion over the gate's refusal
    "model_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("created_at", String(40), nullable=False),
    *(
        Column(name, Text, nullable=False)
        for name in ("event", "stage", "model_name", "model_version", "reason", "detail_json", "actor")
    ),
    *_hash_columns(),
)
case_events = Table(  # what was recorded in the case store: an event by a caseworker, an import of an export
    "case_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("created_at", String(40), nullable=False),
    *(Column(name, Text, nullable=False) for name in ("kind", "office", "person_key", "detail_json", "actor")),
    *_hash_columns(),
)
chain_head = Table(
    "audit_chain_head",
    metadata,
    Column("chain", String(32), primary_key=True),
    Column("length", Integer, nullable=False),
    Column("last_hash", String(64), nullable=False),
)
CHAINS = {
    "assessments": (assessments, "assessment_id"),
    "overrides": (overrides, "override_id"),
    "decisions": (decision_steps, "step_id"),
    "models": (model_events, "event_id"),
    "cases": (case_events, "event_id"),
}
#: Each hash chain's table (an independent auditor reads these columns to recompute the hashes).
CHAIN_TABLES: dict[str, Table] = {chain: table for chain, (table, _) in CHAINS.items()}
DECISION_STEPS = ("proposed", "approved", "rejected")
#: what a model event records
MODEL_EVENTS = ("promotion_override", "champion_rollback")
#: what a case event records: an event recorded by a user, an import of an export (file hashes, counts)
CASE_EVENTS = ("event_recorded", "import")
RECORD_FIELDS = frozenset(
    {
        "assessment_id",
        "person_id",
        "stage",
        "model_name",
        "model_version",
        "policy_version",
        "request",
        "response",
        "explanation",
        "actor",
    }
)
OPTIONAL_FIELDS = {"explanation": {}, "actor": ""}
