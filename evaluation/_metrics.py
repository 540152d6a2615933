"""Overall classification metrics of a probability: discrimination, accuracy, calibration, cut-off."""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from evaluation._calibration import (
    BinStrategy,
    calibration_slope_intercept,
    expected_calibration_error,
)
from evaluation._checks import check_binary_inputs

log = logging.getLogger(__name__)

#: keys of the cut-off metrics, in report order
THRESHOLD_KEYS = ("share_flagged", "precision", "recall", "fpr", "fnr")
#: keys of the probability metrics, in report order
PROBABILITY_KEYS = (
    "n",
    "prevalence",
    "roc_auc",
    "pr_auc",
    "brier",
    "log_loss",
    "ece",
    "calibration_slope",
    "calibration_intercept",
)


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


def roc_auc(y_true: np.ndarray, y_prob: np.ndarray) -> float:
    """ROC AUC, NaN (with no warning) when only one class is present."""
    if y_true.min() == y_true.max():
        return float("nan")
    return float(roc_auc_score(y_true, y_prob))


def pr_auc(y_true: np.ndarray, y_prob: np.ndarray) -> float:
    """Area under the precision-recall curve as average precision; NaN with one class."""
    if y_true.min() == y_true.max():
        return float("nan")
    return float(average_precision_score(y_true, y_prob))


def brier(y_true: np.ndarray, y_prob: np.ndarray) -> float:
    """Brier score (mean squared error of the probability)."""
    return float(brier_score_loss(y_true, y_prob, pos_label=1))


def threshold_metrics(y_true: ArrayLike, y_prob: ArrayLike, threshold: float) -> dict[str, float]:
    """Metrics of the decision "flag when ``y_prob >= threshold``".

    Parameters
    ----------
    y_true, y_prob : array-like of shape (n,)
        Outcomes (0/1) and predicted probabilities.
    threshold : float
        Cut-off; a row is flagged (strict tier) when its probability is at least this.

    Returns
    -------
    dict
        ``share_flagged``, ``precision`` (NaN when nobody is flagged), ``recall`` and ``fnr``
        (NaN without positives), ``fpr`` (NaN without negatives).
    """
    y, p = check_binary_inputs(y_true, y_prob)
    flag = p >= threshold
    pos = y == 1
    tp = float(np.sum(flag & pos))
    fp = float(np.sum(flag & ~pos))
    n_pos = float(pos.sum())
    n_neg = float(len(y) - n_pos)
    return {
        "share_flagged": float(flag.mean()),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, n_pos),
        "fpr": _ratio(fp, n_neg),
        "fnr": _ratio(n_pos - tp, n_pos),
    }


def classification_metrics(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    threshold: float | None = None,
    n_bins: int = 10,
    strategy: BinStrategy = "uniform",
) -> dict[str, float]:
    """Discrimination, accuracy and calibration of a probability, and its cut-off metrics.

    Parameters
    ----------
    y_true, y_prob : array-like of shape (n,)
        Outcomes (0/1) and predicted probabilities of outcome 1.
    threshold : float, optional
        Strict-tier cut-off; when given, the metrics of :func:`threshold_metrics` are added.
    n_bins : int, default 10
        Bins of the expected calibration error.
    strategy : {"uniform", "quantile"}, default "uniform"
        Binning of the expected calibration error.

    Returns
    -------
    dict of str to float
        ``n``, ``prevalence``, ``roc_auc``, ``pr_auc`` (average precision), ``brier``,
        ``log_loss``, ``ece``, ``calibration_slope``, ``calibration_intercept`` and, with a
        threshold, ``share_flagged``, ``precision``, ``recall``, ``fpr``,
        ``fnr``. ``roc_auc``, ``pr_auc`` and the calibration regression are NaN when only one
        class is present.
    """
    y, p = check_binary_inputs(y_true, y_prob)
    if y.min() == y.max():
        log.warning("only one outcome class among %d rows: AUCs and calibration slope are NaN", len(y))
    slope, intercept = calibration_slope_intercept(y, p)
    out: dict[str, float] = {
        "n": len(y),
        "prevalence": float(y.mean()),
        "roc_auc": roc_auc(y, p),
        "pr_auc": pr_auc(y, p),
        "brier": brier(y, p),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "ece": expected_calibration_error(y, p, n_bins=n_bins, strategy=strategy),
        "calibration_slope": slope,
        "calibration_intercept": intercept,
    }
    if threshold is not None:
        out.update(threshold_metrics(y, p, threshold))
    return out
