"""Watching a model in service without waiting for outcomes: drift and label-free performance.

Re-offending outcomes arrive one to three years after an assessment, so a model that stopped fitting its
population is seen late unless its inputs and its answers are watched. This room compares a period's stored
assessments of one model version with the rows the model was trained on:

- :class:`ReferenceProfile` (:func:`build_profile`), made at training and kept with the model: each input's
  bins and the share of training rows in each (deciles of a number plus a bin of missing values; each
  category, one bin for an unseen category and one for missing), the calibrated probability's bins and its
  distribution on a fine grid (so the band shares of any cut-offs can be read), and the training rows' base
  rate, realised AUC and Brier and their label-free estimates. No training row is needed in service.
- :func:`psi`: the population stability index between two binned distributions.
- :func:`estimate_performance` (:class:`EstimatedPerformance`): confidence-based performance estimation
  (CBPE) of AUC, Brier and the re-offence rate from the calibrated probabilities alone.
- :func:`monitor` judges a :class:`PeriodRows` against a profile with the limits of :class:`MonitorConfig`
  (``monitoring.yaml``): PSI per input and for the score, shares by band and tier by risk against the
  training rows, shares of effective tiers and alerts against bounds, the decision rate, and the estimates
  against the training rows' own; it returns a :class:`MonitorReport` of :class:`Check` rows, which
  :func:`write_report` writes as HTML (with plots), markdown and JSON.

evidently and NannyML were considered: NannyML (which has CBPE) would downgrade LightGBM and sends usage
telemetry; evidently installs but has no CBPE and brings a web server, a telemetry client and some twenty
packages for what is here two short functions, tested against direct computations.
"""

from evaluation.monitoring._cbpe import EstimatedPerformance, estimate_performance, expected_auc
from evaluation.monitoring._config import MonitorConfig, MonitorConfigError
from evaluation.monitoring._monitor import Bins, Check, MonitorReport, PeriodRows, band_reference_shares, monitor
from evaluation.monitoring._profile import SCORE, FeatureProfile, ProfileError, ReferenceProfile, build_profile
from evaluation.monitoring._psi import EPSILON, psi
from evaluation.monitoring._render import render_html, render_markdown, report_record, write_report

__all__ = [
    "EPSILON",
    "SCORE",
    "Bins",
    "Check",
    "EstimatedPerformance",
    "FeatureProfile",
    "MonitorConfig",
    "MonitorConfigError",
    "MonitorReport",
    "PeriodRows",
    "ProfileError",
    "ReferenceProfile",
    "band_reference_shares",
    "build_profile",
    "estimate_performance",
    "expected_auc",
    "monitor",
    "psi",
    "render_html",
    "render_markdown",
    "report_record",
    "write_report",
]
