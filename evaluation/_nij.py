"""The scoring rules of the NIJ Recidivism Forecasting Challenge (Georgia parole data)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from evaluation._checks import check_binary_inputs
from evaluation._metrics import brier, threshold_metrics

log = logging.getLogger(__name__)

#: the challenge's cut-off for the false-positive rates of its fairness penalty
NIJ_THRESHOLD = 0.5


def _labels(values: ArrayLike, n: int, name: str) -> np.ndarray:
    labels = pd.Series(np.asarray(values, dtype=object))
    if len(labels) != n:
        raise ValueError(f"{name} has {len(labels)} rows but the outcomes have {n}")
    if labels.isna().any():
        raise ValueError(f"{name} has {int(labels.isna().sum())} missing values")
    return labels.to_numpy()


def brier_by_sex_average(y_true: ArrayLike, y_prob: ArrayLike, sex: ArrayLike) -> float:
    """Brier score computed separately within each sex, then averaged without weights.

    This is the challenge's accuracy score: with far fewer women than men, the women's
    Brier score counts as much as the men's.

    Parameters
    ----------
    y_true, y_prob : array-like of shape (n,)
        Outcomes (0/1) and predicted probabilities.
    sex : array-like of shape (n,)
        Sex of each row (any labels; each distinct value is one group).

    Returns
    -------
    float
        Mean over the sexes present of the within-sex Brier score.
    """
    y, p = check_binary_inputs(y_true, y_prob)
    labels = _labels(sex, len(y), "sex")
    values = pd.unique(labels)
    if len(values) != 2:
        log.warning("brier_by_sex_average: %d distinct sex values, averaging over all", len(values))
    return float(np.mean([brier(y[labels == v], p[labels == v]) for v in values]))


def nij_fairness_adjusted(y_true: ArrayLike, y_prob: ArrayLike, *, race: ArrayLike, sex: ArrayLike) -> float:
    """The challenge's fairness-adjusted score ``(1 - Brier) * (1 - |FPR_Black - FPR_White|)``.

    Brier is :func:`brier_by_sex_average`; the false-positive rates are those of the decision
    ``y_prob >= 0.5`` among the Black and the White rows. Higher is better.

    Parameters
    ----------
    y_true, y_prob : array-like of shape (n,)
        Outcomes (0/1) and predicted probabilities.
    race : array-like of shape (n,)
        Race of each row; compared case-insensitively (after trimming) with "black" and "white",
        other values take part only in the Brier score.
    sex : array-like of shape (n,)
        Sex of each row.

    Returns
    -------
    float
        NaN when a false-positive rate is undefined (no negative outcome in a race group).

    Raises
    ------
    ValueError
        When no row is Black or no row is White.
    """
    y, p = check_binary_inputs(y_true, y_prob)
    labels = np.char.lower(np.char.strip(_labels(race, len(y), "race").astype(str)))
    fprs = {}
    for value in ("black", "white"):
        rows = labels == value
        if not rows.any():
            raise ValueError(f"race has no row equal to {value!r} (case-insensitive)")
        fprs[value] = threshold_metrics(y[rows], p[rows], NIJ_THRESHOLD)["fpr"]
    penalty = abs(fprs["black"] - fprs["white"])
    return float((1.0 - brier_by_sex_average(y, p, sex)) * (1.0 - penalty))
