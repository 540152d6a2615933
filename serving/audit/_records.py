"""What the audit store gives back: one stored assessment, override, decision step or model event, and a verdict."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class OverrideRecord:
    """A stored tier override."""

    seq: int
    override_id: str
    assessment_id: str
    created_at: str
    tier: str
    reason: str
    actor: str
    prev_hash: str
    record_hash: str
    record_sig: str | None = None  # the signer's signature of record_hash (serving.audit._signing)


@dataclass(frozen=True)
class DecisionStepRecord:
    """A stored step of a tier decision (the case store keeps the decision's state)."""

    seq: int
    step_id: str
    decision_id: str
    assessment_id: str
    created_at: str
    person_key: str
    step: str
    office: str
    from_tier: str
    to_tier: str
    reason_code: str
    text: str
    actor: str
    prev_hash: str
    record_hash: str
    record_sig: str | None = None  # the signer's signature of record_hash (serving.audit._signing)


@dataclass(frozen=True)
class ModelEventRecord:
    """A stored decision about a model in service (``event``: ``promotion_override``)."""

    seq: int
    event_id: str
    created_at: str
    event: str
    stage: str
    model_name: str
    model_version: str
    reason: str
    detail_json: str
    actor: str
    prev_hash: str
    record_hash: str
    record_sig: str | None = None  # the signer's signature of record_hash (serving.audit._signing)

    @property
    def detail(self) -> dict[str, Any]:
        """What else was recorded (for an override: the failed criteria, the champion it replaced, the gate)."""
        return _json_object(self.detail_json)


@dataclass(frozen=True)
class AuditRecord:
    """A stored assessment, with its overrides in the order they were recorded."""

    seq: int
    assessment_id: str
    created_at: str
    person_key: str
    stage: str
    model_name: str
    model_version: str
    policy_version: str
    request_json: str
    response_json: str
    explanation_json: str
    actor: str
    prev_hash: str
    record_hash: str
    record_sig: str | None = None  # the signer's signature of record_hash (serving.audit._signing)
    overrides: tuple[OverrideRecord, ...] = ()

    @property
    def request(self) -> dict[str, Any]:
        """The stored request (person ids replaced by their keys)."""
        return _json_object(self.request_json)

    @property
    def response(self) -> dict[str, Any]:
        """The stored response, as it was returned."""
        return _json_object(self.response_json)

    @property
    def explanation(self) -> dict[str, Any]:
        """The full explanation stored beside the response (every feature's value and contribution)."""
        return _json_object(self.explanation_json)


@dataclass(frozen=True)
class CaseEventRecord:
    """A stored case event: ``event_recorded`` (an event a user recorded for a person) or ``import``
    (an export imported into the case store: its files' SHA-256 and the counts)."""

    seq: int
    event_id: str
    created_at: str
    kind: str
    office: str
    person_key: str
    detail_json: str
    actor: str
    prev_hash: str
    record_hash: str
    record_sig: str | None = None

    @property
    def detail(self) -> dict[str, Any]:
        """What was recorded (the event's date, type and value; an import's files, hashes and counts)."""
        return _json_object(self.detail_json)


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :meth:`AuditStore.verify`.

    ``first_broken`` is the id of the first record that fails, or ``"<table> seq <n>"`` for a
    record that is missing; ``problem`` says what failed; ``checked`` counts the records found intact
    (before the first that fails).
    """

    ok: bool
    checked: int
    first_broken: str | None = None
    problem: str | None = None
    heads: dict[str, tuple[int, str]] | None = field(default=None, compare=False)  # of the snapshot checked
    #: records after the latest checkpoint, per chain (accepted only with ``allow_newer``)
    newer: dict[str, int] = field(default_factory=dict, compare=False)
    #: the signature of each chain's head record (a signer checks it before signing a checkpoint)
    head_proofs: dict[str, str | None] = field(default_factory=dict, compare=False)
    key_id: str | None = None  # the key the checkpoints and record signatures were checked with


def _json_object(text: str) -> dict[str, Any]:
    """A stored JSON object (request, answer or explanation) read back."""
    if text.startswith("enc:v1:"):
        raise ValueError(
            "this record is encrypted at rest: read it through a store given the encryption key "
            "(RISK_AUDIT_ENCRYPTION_KEY_FILE)"
        )
    value: dict[str, Any] = json.loads(text)
    return value
