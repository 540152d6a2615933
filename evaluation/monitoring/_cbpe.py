"""Confidence-based performance estimation (CBPE): what the model's own calibrated probabilities say its
AUC, Brier score and re-offence rate will be once outcomes are known.

If the probabilities are calibrated for the period's population (the population moved, the relation
between inputs and outcome did not: covariate shift), each person's outcome is a draw with their
probability ``p_i``. The expectations then follow without a label:

``expected_rate``
    ``mean(p)``: the share that will re-offend; per band it is the band's expected observed rate, which
    revalidation later sets against the realised one (the calibration estimate).
``brier``
    ``mean(p (1 - p))``: the expected Brier score.
``roc_auc``
    The expected number of correctly ranked (re-offender, non-re-offender) pairs over the expected number
    of such pairs, ``sum_{i != j} p_i (1 - p_j) [p_i > p_j] (+ half for ties) / sum_{i != j} p_i (1 - p_j)``,
    the ratio of expectations NannyML's CBPE approximates through the expected ROC curve; computed exactly
    in ``O(n log n)`` from sums over the distinct probabilities.

What CBPE cannot see is a change in that relation (concept drift): a model that became wrong in the same
way for everybody estimates as well as before. Revalidation on matured outcomes is what shows that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class EstimatedPerformance:
    """The label-free estimates of one set of calibrated probabilities (NaN where undefined)."""

    rows: int
    roc_auc: float
    brier: float
    expected_rate: float


def estimate_performance(y_prob: ArrayLike) -> EstimatedPerformance:
    """The CBPE estimates of AUC, Brier score and re-offence rate from calibrated probabilities alone.

    Raises
    ------
    ValueError
        A probability missing or outside [0, 1], or not one-dimensional.
    """
    p = np.asarray(y_prob, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"y_prob must be 1-D, got shape {p.shape}")
    if len(p) and (not np.isfinite(p).all() or (p < 0).any() or (p > 1).any()):
        raise ValueError("y_prob must hold probabilities in [0, 1], none missing")
    if len(p) == 0:
        return EstimatedPerformance(0, float("nan"), float("nan"), float("nan"))
    return EstimatedPerformance(len(p), expected_auc(p), float(np.mean(p * (1 - p))), float(np.mean(p)))


def expected_auc(y_prob: ArrayLike) -> float:
    """``E[correctly ranked pairs] / E[pairs]`` when each outcome is a Bernoulli draw of its probability (ties
    count half; NaN when no pair can be formed: fewer than two rows, or every probability 0 or every 1)."""
    p = np.asarray(y_prob, dtype=float)
    values, inverse = np.unique(p, return_inverse=True)
    pos = np.bincount(inverse, weights=p, minlength=len(values))  # expected re-offenders at each value
    neg = np.bincount(inverse, weights=1 - p, minlength=len(values))
    own = np.bincount(inverse, weights=p * (1 - p), minlength=len(values))  # a person is no pair with themselves
    neg_below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])
    correct = float(np.sum(pos * neg_below) + 0.5 * np.sum(pos * neg - own))
    pairs = float(pos.sum() * neg.sum() - own.sum())
    return correct / pairs if pairs > 0 else float("nan")
