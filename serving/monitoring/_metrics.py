"""What the service did, for an operator's Prometheus: scores, bands, tiers, alerts and decisions on ``/metrics``.

Every label has a bounded set of values: the stage (3), the model version serving it (one per stage at a
time), the band (3), the tiers (2), the four alert colours, the decision step (3), its direction (2), whether
it departs from the tier by risk (2) and the reason code (the policy's controlled list). No person, office or
user is a label. The metrics are made on first use (nothing at import time) in prometheus_client's registry,
which BentoML's ``/metrics`` serves (across workers through its multiprocess directory).

- ``risk_assessments_total{stage, model_version, band, tier, tier_by_risk}``: answers given (scored and stored);
- ``risk_probability{stage, model_version}``: histogram of the calibrated probability;
- ``risk_review_alerts_total{stage, model_version, alert}``: the review meetings' four-colour alerts;
- ``risk_decisions_total{step, direction, departs, reason_code}``: tier decision steps (proposed, approved,
  rejected), raising or lowering, and whether the new tier departs from the tier by risk.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, TypeVar

D = TypeVar("D")

#: histogram buckets of the probability: fine where the base rates of the stages are
PROBABILITY_BUCKETS = (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)

_LOCK = threading.Lock()
_METRICS: dict[str, Any] = {}


def _metrics() -> dict[str, Any]:
    """The process's metrics, made once."""
    with _LOCK:
        if not _METRICS:
            from prometheus_client import Counter, Histogram

            _METRICS.update(
                assessments=Counter(
                    "risk_assessments",
                    "Assessments answered and stored, by stage, model version, band, tier and tier by risk",
                    ["stage", "model_version", "band", "tier", "tier_by_risk"],
                ),
                probability=Histogram(
                    "risk_probability",
                    "Calibrated probability of re-offence of the answers, by stage and model version",
                    ["stage", "model_version"],
                    buckets=PROBABILITY_BUCKETS,
                ),
                alerts=Counter(
                    "risk_review_alerts",
                    "Four-colour alerts of the review meetings, by stage, model version and colour",
                    ["stage", "model_version", "alert"],
                ),
                decisions=Counter(
                    "risk_decisions",
                    "Tier decision steps, by step, direction, departure from the tier by risk and reason code",
                    ["step", "direction", "departs", "reason_code"],
                ),
            )
        return _METRICS


def observe_assessments(answers: Iterable[Any]) -> None:
    """Count answers (:class:`~serving.scoring.schemas.Assessment`) once they are stored."""
    metrics = _metrics()
    for a in answers:
        stage, version = a.stage.code, a.model.version
        by_risk = a.tier.tier_by_risk.code if a.tier.tier_by_risk is not None else "unknown"
        metrics["assessments"].labels(stage, version, a.band.code, a.tier.tier.code, by_risk).inc()
        metrics["probability"].labels(stage, version).observe(a.probability)


def observe_review(rows: Iterable[Any], versions: dict[str, str]) -> None:
    """Count a stored review run's alerts (rows of :class:`~serving.cases.ReviewRun`); ``versions`` gives the
    model version serving each stage."""
    alerts = _metrics()["alerts"]
    for row in rows:
        alerts.labels(row.stage, versions.get(row.stage, "unknown"), row.alert).inc()


def observe_decision(decision: Any) -> None:
    """Count one decision step (:class:`~serving.cases.DecisionOut`) once it is stored."""
    direction = "raise" if decision.to_tier == "strict" else "lower"
    departs = "yes" if decision.to_tier != decision.tier_by_risk else "no"
    _metrics()["decisions"].labels(decision.status, direction, departs, decision.reason_code).inc()


def counted(decision: D) -> D:
    """:func:`observe_decision` of a stored decision step, handed back (``return counted(approve(...))``)."""
    observe_decision(decision)
    return decision
