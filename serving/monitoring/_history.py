"""Which model version served each stage from when to when, read from the audit trail."""

from __future__ import annotations

from dataclasses import dataclass

from serving.audit import AuditStore


@dataclass(frozen=True)
class ServedSpan:
    """One model version's answers at one stage in the trail: the first and last stored, and how many."""

    stage: str
    model_name: str
    model_version: str
    first: str
    last: str
    assessments: int


def served_history(store: AuditStore, *, stage: str | None = None) -> list[ServedSpan]:
    """Every (stage, model version) that answered, in the order each first answered (one pass over the trail).

    Two versions may overlap: replicas restarted one after the other serve the old version a while longer.
    """
    first: dict[tuple[str, str, str], str] = {}
    last: dict[tuple[str, str, str], str] = {}
    count: dict[tuple[str, str, str], int] = {}
    for record in store.iter_assessments(stage=stage, batch=5000):  # oldest first
        key = (record.stage, record.model_name, record.model_version)
        first.setdefault(key, record.created_at)
        last[key] = record.created_at
        count[key] = count.get(key, 0) + 1
    out = [ServedSpan(*key, first[key], last[key], count[key]) for key in first]
    return sorted(out, key=lambda s: (s.stage, s.first))
