"""Paired bootstrap of two models' metrics on the same rows: the difference and its confidence interval."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import roc_auc_score

from evaluation._checks import check_binary_inputs

#: metrics of the paired comparison; for AUC higher is better, for Brier and log loss lower is better
ComparedMetric = Literal["roc_auc", "brier", "log_loss"]
HIGHER_IS_BETTER: dict[str, bool] = {"roc_auc": True, "brier": False, "log_loss": False}
_EPS = 1e-12


@dataclass(frozen=True)
class Difference:
    """``metric(model) - metric(reference)`` on the same rows, with a percentile bootstrap interval."""

    metric: str
    model: float
    reference: float
    delta: float
    low: float
    high: float
    level: float

    def no_worse(self, margin: float) -> bool:
        """Non-inferiority: the interval's bound on the worse side stays within ``margin``."""
        return self.low >= -margin if HIGHER_IS_BETTER[self.metric] else self.high <= margin

    def better(self) -> bool:
        """Superiority: the whole interval lies on the better side of zero."""
        return self.low > 0 if HIGHER_IS_BETTER[self.metric] else self.high < 0

    def describe(self) -> str:
        return (
            f"{self.metric} {self.model:.4f} vs {self.reference:.4f}: difference {self.delta:+.4f} "
            f"({self.level:.0%} CI {self.low:+.4f} to {self.high:+.4f})"
        )


def _log_loss_rows(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.asarray(-(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _weighted_auc(inverse: np.ndarray, size: int, y: np.ndarray, w: np.ndarray) -> float:
    """ROC AUC with row weights (bootstrap counts), ties counted half: O(n) given the scores' ranks."""
    pos = np.bincount(inverse, weights=w * y, minlength=size)
    neg = np.bincount(inverse, weights=w * (1 - y), minlength=size)
    below = np.cumsum(neg) - neg
    total = pos.sum() * neg.sum()
    return float((pos * (below + 0.5 * neg)).sum() / total) if total else float("nan")


def paired_bootstrap(
    y_true: ArrayLike,
    y_model: ArrayLike,
    y_reference: ArrayLike,
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Difference]:
    """Differences in AUC, Brier and log loss between two models scored on the same rows.

    Each resample draws rows with replacement (seeded) and computes both models' metrics on the
    same draw, so the interval reflects the paired difference, not two independent errors.
    """
    y, p = check_binary_inputs(y_true, y_model)
    _, q = check_binary_inputs(y, y_reference)
    rng = np.random.default_rng(seed)
    brier_d = (p - y) ** 2 - (q - y) ** 2
    loss_d = _log_loss_rows(y, p) - _log_loss_rows(y, q)
    n = len(y)
    ranks = [np.unique(s, return_inverse=True) for s in (p, q)]
    draws: dict[str, list[float]] = {"roc_auc": [], "brier": [], "log_loss": []}
    for _ in range(resamples):
        w = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
        draws["brier"].append(float(brier_d @ w / n))
        draws["log_loss"].append(float(loss_d @ w / n))
        if 0 < (w * y).sum() < n:
            a, b = (_weighted_auc(inv, len(u), y, w) for u, inv in ranks)
            draws["roc_auc"].append(a - b)
    point = {
        "roc_auc": (roc_auc_score(y, p), roc_auc_score(y, q)) if 0 < y.sum() < n else (np.nan, np.nan),
        "brier": (float(np.mean((p - y) ** 2)), float(np.mean((q - y) ** 2))),
        "log_loss": (float(_log_loss_rows(y, p).mean()), float(_log_loss_rows(y, q).mean())),
    }
    tail = (1 - level) / 2 * 100
    out = {}
    for metric, values in draws.items():
        low, high = np.percentile(values, [tail, 100 - tail]) if values else (np.nan, np.nan)
        a, b = point[metric]
        out[metric] = Difference(metric, float(a), float(b), float(a - b), float(low), float(high), level)
    return out
