"""Metrics within groups (sex, age band, residence, offence, race), the gaps between groups, the fairness checks.

The per-group tables are descriptive (fairlearn ``MetricFrame``); the fairness checks
(:func:`fairness_checks`: calibration within groups, FPR and FNR gaps at the cut-off) are the ones
the promotion gate applies, with the same verdicts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, count, mean_prediction
from numpy.typing import ArrayLike

from evaluation._calibration import calibration_slope_intercept, expected_calibration_error
from evaluation._checks import check_binary_inputs, check_groups
from evaluation._fairness_checks import FairnessChecks, FairnessRule, fairness_checks
from evaluation._metrics import THRESHOLD_KEYS, brier, roc_auc, threshold_metrics

log = logging.getLogger(__name__)

#: metrics computed within each group, in report order
GROUP_METRICS = (
    "n",
    "prevalence",
    "mean_score",
    "roc_auc",
    "brier",
    "ece",
    "calibration_slope",
    "calibration_intercept",
    *THRESHOLD_KEYS,
)
#: label given to rows whose group value is missing
MISSING_GROUP = "(missing)"


def _threshold_metric(key: str, threshold: float) -> Callable[[np.ndarray, np.ndarray], float]:
    def metric(y_true: np.ndarray, y_prob: np.ndarray) -> float:
        return threshold_metrics(y_true, y_prob, threshold)[key]

    metric.__name__ = key
    return metric


def _metric_functions(threshold: float, n_bins: int) -> dict[str, Callable[..., float]]:
    """The per-group metrics as ``f(y_true, y_prob)`` for fairlearn's MetricFrame."""
    functions: dict[str, Callable[..., float]] = {
        "n": count,
        "prevalence": lambda y, p: float(np.mean(y)),
        "mean_score": mean_prediction,
        "roc_auc": roc_auc,
        "brier": brier,
        "ece": lambda y, p: expected_calibration_error(y, p, n_bins=n_bins),
        "calibration_slope": lambda y, p: calibration_slope_intercept(y, p)[0],
        "calibration_intercept": lambda y, p: calibration_slope_intercept(y, p)[1],
    }
    functions.update({key: _threshold_metric(key, threshold) for key in THRESHOLD_KEYS})
    return functions


def _sensitive_column(values: pd.Series) -> pd.Series:
    """A group column with missing values turned into their own labelled group."""
    if not values.isna().any():
        return values
    log.warning(
        "group column %r: %d missing values grouped as %r", values.name, int(values.isna().sum()), MISSING_GROUP
    )
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.cat.add_categories([MISSING_GROUP])
    else:
        values = values.astype(object)
    return values.fillna(MISSING_GROUP)


def _in_category_order(table: pd.DataFrame, sensitive: pd.Series) -> pd.DataFrame:
    """Rows in the order of an ordered vocabulary (age bands) when the column is categorical."""
    if not isinstance(sensitive.dtype, pd.CategoricalDtype):
        return table.copy()
    order = [c for c in sensitive.cat.categories if c in table.index]
    return table.loc[order + [g for g in table.index if g not in order]].copy()


def _gaps(by_group: dict[str, pd.DataFrame], min_group_size: int) -> pd.DataFrame:
    """Max-min difference of each metric among groups with at least ``min_group_size`` rows."""
    metrics = [m for m in GROUP_METRICS if m != "n"]
    rows = {}
    for column, table in by_group.items():
        eligible = table.loc[table["n"] >= min_group_size, metrics].astype(float)
        if len(eligible) < 2:
            rows[column] = pd.Series(np.nan, index=metrics)
        else:
            rows[column] = eligible.max() - eligible.min()
    gaps = pd.DataFrame.from_dict(rows, orient="index", columns=metrics)
    gaps.index.name = "group"
    return gaps


@dataclass
class GroupReport:
    """Metrics within each group of each group column, and the largest gaps between groups.

    Attributes
    ----------
    by_group : dict of str to DataFrame
        For each group column, one row per group value and one column per metric of
        :data:`GROUP_METRICS` (fairlearn ``MetricFrame.by_group``).
    gaps : DataFrame
        One row per group column: for each metric, the largest minus the smallest value among
        the groups of at least ``min_group_size`` rows (NaN with fewer than two such groups).
    largest_fpr_gap, largest_fnr_gap : float
        The largest false-positive and false-negative rate gaps over the gated groupings by the
        shared rule (:class:`FairnessRule`; NaN when not measurable).
    threshold : float
        Cut-off of the threshold metrics.
    min_group_size : int
        Smallest group that takes part in the gaps.
    small_groups : dict of str to list of str
        For each group column, the groups smaller than ``min_group_size``.
    checks : FairnessChecks or None
        Calibration within groups and the error-rate gaps with their verdicts, as the gate judges them.
    """

    by_group: dict[str, pd.DataFrame]
    gaps: pd.DataFrame
    largest_fpr_gap: float
    threshold: float
    min_group_size: int
    small_groups: dict[str, list[str]] = field(default_factory=dict)
    checks: FairnessChecks | None = None
    largest_fnr_gap: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        """The report as plain Python objects (NaN kept as float NaN)."""
        by_group = {
            column: [
                {"group": str(g), **{k: _plain(v) for k, v in row.items()}}
                for g, row in table.to_dict(orient="index").items()
            ]
            for column, table in self.by_group.items()
        }
        gaps = {
            column: {k: _plain(v) for k, v in row.items()} for column, row in self.gaps.to_dict(orient="index").items()
        }
        return {
            "threshold": self.threshold,
            "min_group_size": self.min_group_size,
            "largest_fpr_gap": self.largest_fpr_gap,
            "largest_fnr_gap": self.largest_fnr_gap,
            "by_group": by_group,
            "gaps": gaps,
            "small_groups": self.small_groups,
            "fairness": None if self.checks is None else self.checks.to_dict(),
        }


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def group_metrics(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    groups: pd.DataFrame,
    threshold: float,
    min_group_size: int = 30,
    n_bins: int = 10,
    fairness: FairnessRule | None = None,
) -> GroupReport:
    """Compute the metrics within the groups of each column of ``groups``.

    One fairlearn :class:`~fairlearn.metrics.MetricFrame` per column (its values are the
    sensitive feature); missing group values form a group of their own.

    Parameters
    ----------
    y_true, y_prob : array-like of shape (n,)
        Outcomes (0/1) and predicted probabilities.
    groups : DataFrame
        One column per grouping (sex, age band, local/non-local, offence, race), rows in the
        order of ``y_true`` (matched by position, not index).
    threshold : float
        Strict-tier cut-off of the threshold metrics (flag when ``y_prob >= threshold``).
    min_group_size : int, default 30
        Groups smaller than this are reported but left out of the gaps.
    n_bins : int, default 10
        Bins of the per-group expected calibration error.
    fairness : FairnessRule, optional
        Calibration within groups and the error-rate gaps, as the promotion gate judges them
        (default :class:`FairnessRule`).

    Returns
    -------
    GroupReport
    """
    y, p = check_binary_inputs(y_true, y_prob)
    frame = check_groups(groups, len(y))
    metrics = _metric_functions(threshold, n_bins)
    by_group, small = {}, {}
    for column in frame.columns:
        name = str(column)
        sensitive = _sensitive_column(frame[column]).rename(name)
        mf = MetricFrame(metrics=metrics, y_true=y, y_pred=p, sensitive_features=sensitive)
        table = _in_category_order(mf.by_group[list(GROUP_METRICS)], sensitive)
        table["n"] = table["n"].astype(int)
        by_group[name] = table
        small[name] = [str(g) for g in table.index[table["n"] < min_group_size]]
    gaps = _gaps(by_group, min_group_size)
    checks = fairness_checks(y, p, groups=frame, threshold=threshold, rule=fairness)
    return GroupReport(
        by_group=by_group,
        gaps=gaps,
        largest_fpr_gap=checks.error_gaps.largest("fpr")[0],
        threshold=float(threshold),
        min_group_size=min_group_size,
        small_groups=small,
        checks=checks,
        largest_fnr_gap=checks.error_gaps.largest("fnr")[0],
    )
