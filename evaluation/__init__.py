"""Evaluation of the stage models: metrics, fairness, figures, reports and model cards.

A stage model answers with a probability of a new offence within the stage's horizon, and the
service turns it into a tier with the stage's strict-tier cut-off. The model is therefore judged
on four things, each computed on held-out rows that the model never saw:

Discrimination
    Does the score rank re-offenders above the others? ROC AUC and PR AUC (average precision,
    more telling than ROC AUC at low base rates). Both are NaN, not an error, when the rows
    hold only one outcome class.
Accuracy and calibration of the probability
    The Brier score and log loss (proper scoring rules); the expected calibration error
    (bin-size-weighted gap between observed rate and mean score in bins of the score); the
    calibration slope (logistic regression of the outcome on ``logit(p)``: 1 is ideal, below 1
    means over-confident scores) and calibration-in-the-large (intercept with ``logit(p)`` as an
    offset: 0 is ideal, above 0 means the scores are too low on average).
The decision at the cut-off
    Flagging ``p >= threshold`` as strict tier: the share flagged, precision, recall and the
    false-positive and false-negative rates.
Fairness
    The same metrics within each group of each group column (sex, age band, local/non-local,
    offence category, race where the data have it) through fairlearn's
    :class:`~fairlearn.metrics.MetricFrame`, and the largest gap (max − min) between groups large
    enough to judge (``min_group_size``). Three checks have one definition (:class:`FairnessRule`,
    :func:`fairness_checks`) shared with the promotion gate, the model card and ``/models``:
    *calibration within groups* (re-offences observed / expected in each group of sex, household
    registration, age band and offence category, with a seeded bootstrap interval; a group is
    miscalibrated only when the whole interval lies outside the tolerance band, and a group with
    too few re-offences is shown as small, never judged), always applied; and the *false-positive
    and false-negative rate gaps* at the cut-off, limited in the gated groupings when enough people
    are flagged in each group and shown as "not measurable (n flagged)" otherwise.

:func:`evaluate` computes all of it and, given a folder, writes ``report.md``,
``metrics.json`` (NaN as ``null``) and the figures. Two reference columns help read the
numbers: a *baseline* (a transparent model on the same rows: is the complex model worth it?)
and, on synthetic data, the *oracle* (the generator's true probabilities: the best any model
could do). :func:`model_card` writes the card of a registered model version from a report.
:func:`face_validity` adds each adverse fact to every person's record and counts anybody whose risk
fell (the gate refuses such a model). :func:`policy_figures` gives what the tier policy in force flags
with a model (share, precision and recall at each band cut-off, and how many are strict by rule), which
the card shows. :func:`paired_bootstrap` compares two models on the same rows (differences in AUC,
Brier and log loss with seeded bootstrap intervals), as the promotion gate does.
The NIJ Recidivism Forecasting Challenge's own scores are :func:`brier_by_sex_average` and
:func:`nij_fairness_adjusted`.

Nothing is computed or created at import time; figures are drawn on Agg canvases without
pyplot, so no global matplotlib backend is changed.
"""

from evaluation._bootstrap import Difference, paired_bootstrap
from evaluation._calibration import (
    calibration_bins,
    calibration_slope_intercept,
    ece_by_chance,
    expected_calibration_error,
)
from evaluation._card import model_card, relink_figures, with_gate_decision
from evaluation._error_gaps import ErrorRateGaps, ErrorRateRule, error_rate_gaps, flag_counts
from evaluation._face_validity import AdverseVariants, FaceValidity, face_validity
from evaluation._fairness import GROUP_METRICS, GroupReport, group_metrics
from evaluation._fairness_checks import FairnessChecks, FairnessRule, FairnessVerdict, fairness_checks
from evaluation._group_calibration import CalibrationRule, GroupCalibration, group_calibration
from evaluation._importance import importance_table
from evaluation._metrics import classification_metrics, threshold_metrics
from evaluation._nij import brier_by_sex_average, nij_fairness_adjusted
from evaluation._plots import group_styles, plot_evaluation
from evaluation._policy import CutoffFigures, PolicyFigures, policy_figures
from evaluation._report import EvaluationReport, evaluate

__all__ = [
    "GROUP_METRICS",
    "AdverseVariants",
    "CalibrationRule",
    "CutoffFigures",
    "Difference",
    "ErrorRateGaps",
    "ErrorRateRule",
    "EvaluationReport",
    "FaceValidity",
    "FairnessChecks",
    "FairnessRule",
    "FairnessVerdict",
    "GroupCalibration",
    "GroupReport",
    "PolicyFigures",
    "brier_by_sex_average",
    "calibration_bins",
    "calibration_slope_intercept",
    "classification_metrics",
    "ece_by_chance",
    "error_rate_gaps",
    "evaluate",
    "expected_calibration_error",
    "face_validity",
    "fairness_checks",
    "flag_counts",
    "group_calibration",
    "group_metrics",
    "group_styles",
    "importance_table",
    "model_card",
    "nij_fairness_adjusted",
    "paired_bootstrap",
    "plot_evaluation",
    "policy_figures",
    "relink_figures",
    "threshold_metrics",
    "with_gate_decision",
]
