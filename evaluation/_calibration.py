"""Calibration measures: binned reliability, expected calibration error, slope and intercept."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.special import expit, logit

from evaluation._checks import check_binary_inputs

log = logging.getLogger(__name__)

BinStrategy = Literal["uniform", "quantile"]

#: probabilities are clipped to this interval before taking the logit
LOGIT_CLIP = 1e-6


def _bin_edges(y_prob: np.ndarray, n_bins: int, strategy: BinStrategy) -> np.ndarray:
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    if strategy == "quantile":
        return np.asarray(np.percentile(y_prob, np.linspace(0.0, 100.0, n_bins + 1)))
    raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")


def calibration_bins(
    y_true: ArrayLike, y_prob: ArrayLike, *, n_bins: int = 10, strategy: BinStrategy = "uniform"
) -> pd.DataFrame:
    """Observed event rate against mean predicted probability in bins of the score.

    Bins are assigned as in :func:`sklearn.calibration.calibration_curve` (a score equal to an
    inner edge goes to the upper bin), so the non-empty rows match its output.

    Parameters
    ----------
    y_true, y_prob : array-like of shape (n,)
        Outcomes (0/1) and predicted probabilities.
    n_bins : int, default 10
        Number of bins.
    strategy : {"uniform", "quantile"}, default "uniform"
        Equal-width bins on [0, 1], or bins holding about the same number of rows.

    Returns
    -------
    DataFrame
        One row per non-empty bin: ``lower``, ``upper``, ``n``, ``mean_prob``, ``event_rate``.
    """
    y, p = check_binary_inputs(y_true, y_prob)
    edges = _bin_edges(p, n_bins, strategy)
    idx = np.searchsorted(edges[1:-1], p, side="right")
    n = np.bincount(idx, minlength=n_bins)
    sum_p = np.bincount(idx, weights=p, minlength=n_bins)
    sum_y = np.bincount(idx, weights=y, minlength=n_bins)
    keep = n > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        table = pd.DataFrame(
            {
                "lower": edges[:-1],
                "upper": edges[1:],
                "n": n,
                "mean_prob": sum_p / n,
                "event_rate": sum_y / n,
            }
        )
    return table[keep].reset_index(drop=True)


def expected_calibration_error(
    y_true: ArrayLike, y_prob: ArrayLike, *, n_bins: int = 10, strategy: BinStrategy = "uniform"
) -> float:
    """Expected calibration error: bin-size-weighted mean gap between event rate and score.

    ``ECE = sum_b (n_b / n) * |event_rate_b - mean_prob_b|`` over the non-empty bins of
    :func:`calibration_bins`.

    Parameters
    ----------
    y_true, y_prob : array-like of shape (n,)
        Outcomes (0/1) and predicted probabilities.
    n_bins : int, default 10
        Number of bins.
    strategy : {"uniform", "quantile"}, default "uniform"
        Equal-width bins on [0, 1], or bins of about equal size.

    Returns
    -------
    float
        0 for a perfectly calibrated score (up to sampling noise); at most 1.
    """
    table = calibration_bins(y_true, y_prob, n_bins=n_bins, strategy=strategy)
    weights = table["n"] / table["n"].sum()
    return float((weights * (table["event_rate"] - table["mean_prob"]).abs()).sum())


def ece_by_chance(
    y_prob: ArrayLike,
    *,
    n_bins: int = 10,
    strategy: BinStrategy = "uniform",
    level: float = 0.95,
    draws: int = 400,
    seed: int = 0,
) -> float:
    """The ECE a perfectly calibrated score reaches by chance on these rows (its ``level`` quantile).

    Outcomes are drawn as ``Bernoulli(y_prob)`` ``draws`` times (seeded) and the ECE of each draw
    computed with the same bins as :func:`expected_calibration_error`. On a few hundred rows at a low
    base rate a perfect score's ECE is often above 0.02: an observed ECE at or below this figure is no
    evidence of miscalibration, whatever its size.
    """
    p = np.asarray(y_prob, dtype=float)
    if p.size == 0:
        return float("nan")
    edges = _bin_edges(p, n_bins, strategy)
    idx = np.searchsorted(edges[1:-1], p, side="right")
    sum_p = np.bincount(idx, weights=p, minlength=n_bins)
    rng = np.random.default_rng(seed)
    eces = []
    for start in range(0, draws, 50):  # 50 draws at a time: memory stays at 50 x n booleans
        chunk = min(50, draws - start)
        y = rng.random((chunk, p.size)) < p
        sum_y = np.stack([np.bincount(idx, weights=row, minlength=n_bins) for row in y])
        eces.append(np.abs(sum_y - sum_p).sum(axis=1) / p.size)  # sum_b (n_b/n)|rate_b - mean_b|
    return float(np.quantile(np.concatenate(eces), level))


def _neg_loglik(y: np.ndarray, eta: np.ndarray) -> float:
    return float(np.sum(np.logaddexp(0.0, eta) - y * eta))


def _fit_logistic(y: np.ndarray, design: np.ndarray, offset: np.ndarray, *, max_iter: int = 100) -> np.ndarray | None:
    """Maximum-likelihood logistic regression by Newton steps with step halving.

    Returns the coefficients, or ``None`` when the fit does not converge (separated data,
    a singular design).
    """
    beta = np.zeros(design.shape[1])
    loss = _neg_loglik(y, offset + design @ beta)
    for _ in range(max_iter):
        mu = expit(offset + design @ beta)
        grad = design.T @ (mu - y)
        hess = design.T @ (design * (mu * (1.0 - mu))[:, None])
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            return None
        t = 1.0
        while True:
            candidate = beta - t * step
            new_loss = _neg_loglik(y, offset + design @ candidate)
            if new_loss <= loss + 1e-12 or t < 1e-10:
                break
            t /= 2.0
        beta, loss = candidate, new_loss
        if np.max(np.abs(t * step)) < 1e-10:
            return beta
    return None


def calibration_slope_intercept(y_true: ArrayLike, y_prob: ArrayLike) -> tuple[float, float]:
    """Calibration slope and calibration-in-the-large of a probability.

    The slope is ``b`` in the logistic regression ``logit P(y=1) = a + b * logit(p)``; the
    intercept is ``a`` in ``logit P(y=1) = a + logit(p)`` (``logit(p)`` as an offset). A
    calibrated score has slope 1 and intercept 0; slope < 1 means over-confident scores (too
    spread out), intercept > 0 means the score is too low on average. Scores are clipped to
    ``[1e-6, 1 - 1e-6]`` before the logit.

    Parameters
    ----------
    y_true, y_prob : array-like of shape (n,)
        Outcomes (0/1) and predicted probabilities.

    Returns
    -------
    slope, intercept : float
        NaN when the regression is undefined (one class only, constant scores for the slope,
        or a fit that does not converge).
    """
    y, p = check_binary_inputs(y_true, y_prob)
    if y.min() == y.max():
        return float("nan"), float("nan")
    x = logit(np.clip(p, LOGIT_CLIP, 1.0 - LOGIT_CLIP))
    ones = np.ones((len(y), 1))
    slope_fit = None
    if np.ptp(x) > 0:
        slope_fit = _fit_logistic(y, np.column_stack([ones, x]), np.zeros(len(y)))
    intercept_fit = _fit_logistic(y, ones, x)
    if (slope_fit is None and np.ptp(x) > 0) or intercept_fit is None:
        log.info("calibration regression did not converge on %d rows (separated data?)", len(y))
    slope = float("nan") if slope_fit is None else float(slope_fit[1])
    intercept = float("nan") if intercept_fit is None else float(intercept_fit[0])
    return slope, intercept
