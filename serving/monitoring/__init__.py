"""Watching the models in service from what the service stored: the monitor's period, and shadow replay.

The audit trail keeps every request, answer and explanation (:mod:`serving.audit`); this room reads them
back through the store's public API (:meth:`~serving.audit.AuditStore.iter_assessments`) for two jobs:

- :func:`monitor_period`: a period's assessments of one stage, per model version, judged against the
  version's reference profile by :func:`evaluation.monitoring.monitor` (inputs as stored in the explanation,
  the calibrated probability, band, tier by risk, effective tier, the review policy's alert colour, and
  whether a tier decision was recorded beside the assessment). ``riskctl monitor``.
- :func:`shadow_replay`: the period's stored requests answered again by a candidate model, nothing stored,
  compared with the stored answers (:class:`ShadowReport`: changes by direction, score shift, reasons that
  move most, keyed ids of the persons whose tier would change; :class:`ShadowLimits` for the gate).
  ``riskctl shadow``.
- :func:`revalidate_stored`: every stored assessment before an as-of date joined with the outcomes known then
  (:func:`evaluation.revalidation.revalidate`; formal and review scores told apart by the case store's index,
  approved decisions read from the audit trail's decision chain). ``riskctl revalidate`` writes the report
  under :func:`revalidation_dir`; the auditor's console page reads it back (:func:`revalidation_dates`,
  :func:`stored_revalidation`).
- :func:`served_history`: which model version answered each stage from when to when (``riskctl models history``,
  beside the registry's versions and their model cards).
- ``/metrics``: :func:`observe_assessments`, :func:`observe_review` and :func:`observe_decision` count what the
  service answered and decided, with bounded labels, for an operator's Prometheus (docs/operations.md has
  example alert rules).
"""

from serving.monitoring._history import ServedSpan, served_history
from serving.monitoring._metrics import (
    PROBABILITY_BUCKETS,
    counted,
    observe_assessments,
    observe_decision,
    observe_review,
)
from serving.monitoring._period import MonitorError, ProfileSource, monitor_period, period_bounds, read_period
from serving.monitoring._revalidate import (
    keyed_outcomes,
    revalidate_stored,
    revalidation_dates,
    revalidation_dir,
    stored_assessments,
    stored_revalidation,
)
from serving.monitoring._shadow import ShadowError, ShadowLimits, ShadowReport, shadow_markdown, shadow_replay

__all__ = [
    "PROBABILITY_BUCKETS",
    "MonitorError",
    "ProfileSource",
    "ServedSpan",
    "ShadowError",
    "ShadowLimits",
    "ShadowReport",
    "counted",
    "keyed_outcomes",
    "monitor_period",
    "observe_assessments",
    "observe_decision",
    "observe_review",
    "period_bounds",
    "read_period",
    "revalidate_stored",
    "revalidation_dates",
    "revalidation_dir",
    "served_history",
    "shadow_markdown",
    "shadow_replay",
    "stored_assessments",
    "stored_revalidation",
]
