"""Calibration within groups: re-offences observed over re-offences expected, with a seeded bootstrap interval.

The definition shared by the evaluation report, the model card and the promotion gate
(``training/promotion.yaml``, ``fairness.calibration``). For each group ``g`` of each grouping
(sex, household registration, age band, offence category):

``O_g``
    re-offences observed among the group's test rows;
``E_g``
    re-offences the model expected, the sum of its probabilities over the same rows;
``O_g / E_g``
    the observed/expected ratio (calibration-in-the-large as a ratio): 1 when the model is right
    on average for the group, 0.7 when the group re-offends 30% less than the model says (its risk
    is overstated), 1.3 when 30% more (understated).

The interval is a percentile bootstrap of ``O*/E*`` over resamples of the group's own rows with
replacement (``resamples`` draws, two-sided ``level``). The generator of a group is seeded from the
rule's ``seed`` and the group's name, and the group's rows are put in a canonical order first, so
the interval depends on the rows, not on their order nor on the other groups.

A group is *judged* when it holds at least ``min_events`` re-offences, observed or expected
(``max(O, E) >= min_events``); below that the bootstrap of a ratio of a few counts is not a fair
interval (a group with no re-offence resamples to a ratio of exactly 0), and the group is shown as
*small*. A judged group is *miscalibrated* only when its whole interval lies outside the tolerance
band ``[1/tolerance, tolerance]``: evidence, not a point estimate past the band. It is *within*
when its whole interval lies inside the band, and *unclear* when the interval crosses an edge (the
data can neither confirm nor refute that the group is calibrated). The gate refuses a model with a
miscalibrated group and passes it with a warning when a group is small or unclear.

The bootstrap is vectorised: each group's resamples are drawn as one integer matrix (in chunks of a
million cells), the observed count is a comparison with the first event row (rows are sorted
by outcome) and the expected count a gather-and-sum, so the cost is ``groupings x rows x
resamples`` cell operations with no Python loop per resample.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict, Field

from evaluation._checks import check_binary_inputs, check_groups

#: a group's calibration status (see the module docstring)
CalibrationStatus = Literal["within", "unclear", "miscalibrated", "small"]
#: label given to rows whose group value is missing (as in the per-group metric tables)
MISSING_LABEL = "(missing)"
#: cells of one chunk of the resampling matrix (int64: 8 MB)
_CHUNK_CELLS = 1_000_000


class CalibrationRule(BaseModel):
    """How calibration within groups is judged (``training/promotion.yaml``, ``fairness.calibration``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tolerance: float = Field(
        1.25,
        gt=1,
        description="observed/expected ratios in [1/tolerance, tolerance] count as calibrated",
        examples=[1.25],
    )
    min_events: int = Field(
        20, ge=1, description="re-offences (observed or expected) a group needs to be judged", examples=[20]
    )
    resamples: int = Field(1000, ge=100, description="bootstrap resamples of each group's rows")
    level: float = Field(0.99, gt=0.5, lt=1, description="two-sided confidence level of the intervals")
    seed: int = Field(0, description="seed of the resampling")

    @property
    def band(self) -> tuple[float, float]:
        """The tolerance band ``(1/tolerance, tolerance)`` of the observed/expected ratio."""
        return 1.0 / self.tolerance, self.tolerance

    def describe(self) -> str:
        low, high = self.band
        return (
            f"re-offences observed / expected (sum of probabilities) per group, {self.level:.0%} bootstrap "
            f"interval ({self.resamples:,} resamples of the group's rows, seed {self.seed}); a group is judged "
            f"with >= {self.min_events} re-offences observed or expected, and miscalibrated only when its whole "
            f"interval lies outside [{low:.2f}, {high:.2f}]"
        )


@dataclass(frozen=True)
class GroupCalibration:
    """Observed/expected re-offences of every group, their intervals and statuses.

    Attributes
    ----------
    table : DataFrame
        One row per (grouping, group): ``n``, ``observed``, ``expected``, ``ratio``, ``low``,
        ``high`` (the interval) and ``status`` (:data:`CalibrationStatus`).
    rule : CalibrationRule
        The rule the statuses follow.
    absent : tuple of str
        Groupings asked for but not in the data.
    """

    table: pd.DataFrame
    rule: CalibrationRule
    absent: tuple[str, ...] = field(default=())

    def with_status(self, status: CalibrationStatus) -> pd.DataFrame:
        return self.table[self.table["status"] == status]

    @property
    def worst_ratio(self) -> float:
        """The judged group's ratio furthest from 1 (on the log scale); NaN when no group is judged."""
        judged = self.table[self.table["status"] != "small"]
        if judged.empty:
            return float("nan")
        distance = np.abs(np.log(judged["ratio"].clip(lower=1e-12)))
        return float(judged["ratio"].to_numpy()[int(np.argmax(distance.to_numpy()))])

    def to_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule.model_dump(mode="json"),
            "absent": list(self.absent),
            "worst_ratio": self.worst_ratio,
            "groups": self.table.to_dict(orient="records"),
        }


def group_calibration(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    groups: pd.DataFrame,
    groupings: tuple[str, ...] | None = None,
    rule: CalibrationRule | None = None,
) -> GroupCalibration:
    """Observed/expected re-offences with a bootstrap interval in each group of each grouping.

    Parameters
    ----------
    y_true, y_prob : array-like of shape (n,)
        Outcomes (0/1) and predicted probabilities.
    groups : DataFrame
        Group columns, rows matched to ``y_true`` by position; missing values form a group of their own.
    groupings : tuple of str, optional
        The columns to judge (default: every column of ``groups``); those not in ``groups`` are
        listed in :attr:`GroupCalibration.absent`.
    rule : CalibrationRule, optional
        Tolerance, minimum events and the bootstrap's settings (default :class:`CalibrationRule`).

    Returns
    -------
    GroupCalibration
    """
    rule = rule or CalibrationRule()
    y, p = check_binary_inputs(y_true, y_prob)
    frame = check_groups(groups, len(y), allow_no_columns=True)
    wanted = tuple(frame.columns) if groupings is None else tuple(groupings)
    rows = []
    for grouping in (g for g in wanted if g in frame.columns):
        labels = group_labels(frame[grouping])
        for group in sorted(set(labels)):
            inside = labels == group
            rows.append(
                {"grouping": grouping, "group": group, **_one_group(y[inside], p[inside], grouping, group, rule)}
            )
    columns = ["grouping", "group", "n", "observed", "expected", "ratio", "low", "high", "status"]
    absent = tuple(g for g in wanted if g not in frame.columns)
    return GroupCalibration(pd.DataFrame(rows, columns=columns), rule, absent)


def group_labels(values: pd.Series) -> np.ndarray:
    """A group column as strings, a missing value as :data:`MISSING_LABEL`."""
    return values.astype(object).where(values.notna(), MISSING_LABEL).astype(str).to_numpy()


def _one_group(y: np.ndarray, p: np.ndarray, grouping: str, group: str, rule: CalibrationRule) -> dict[str, object]:
    observed, expected = int(y.sum()), math.fsum(p)  # fsum: exact, so the rows' order cannot move a rounding
    order = np.lexsort((p, y))  # canonical order: the interval does not depend on the rows' order
    draws = bootstrap_ratios(y[order], p[order], rng=_group_rng(rule.seed, grouping, group), resamples=rule.resamples)
    tail = (1 - rule.level) / 2
    low, high = np.quantile(draws, [tail, 1 - tail], method="inverted_cdf")
    return {
        "n": len(y),
        "observed": observed,
        "expected": expected,
        "ratio": _ratio(observed, expected),
        "low": float(low),
        "high": float(high),
        "status": _status(observed, expected, float(low), float(high), rule),
    }


def _group_rng(seed: int, grouping: str, group: str) -> np.random.Generator:
    """A generator seeded by the rule's seed and the group's name (stable across runs and platforms)."""
    return np.random.default_rng([seed, zlib.crc32(f"{grouping}={group}".encode())])


def bootstrap_ratios(y: np.ndarray, p: np.ndarray, *, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """``O*/E*`` over ``resamples`` resamples of the rows with replacement, rows sorted by outcome.

    ``y`` must be sorted (every 0 before every 1): a resample's observed count is then the number
    of drawn indices at or past the first 1, with no gather of ``y``.
    """
    n = len(y)
    first_event = n - int(y.sum())
    out = np.empty(resamples)
    step = max(1, _CHUNK_CELLS // max(n, 1))
    for start in range(0, resamples, step):
        b = min(step, resamples - start)
        idx = rng.integers(0, n, size=(b, n))
        observed = np.count_nonzero(idx >= first_event, axis=1)
        expected = p[idx].sum(axis=1)
        out[start : start + b] = _ratio(observed, expected)
    return out


def _ratio(observed: ArrayLike, expected: ArrayLike) -> np.ndarray | float:
    """O/E, with 0/0 as 1 (nothing expected, nothing observed) and k/0 as infinity."""
    o, e = np.asarray(observed, dtype=float), np.asarray(expected, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(e > 0, o / np.where(e > 0, e, 1.0), np.where(o > 0, np.inf, 1.0))
    return float(ratio) if ratio.ndim == 0 else ratio


def _status(observed: int, expected: float, low: float, high: float, rule: CalibrationRule) -> CalibrationStatus:
    if max(observed, expected) < rule.min_events:
        return "small"
    lower, upper = rule.band
    if high < lower or low > upper:
        return "miscalibrated"
    if lower <= low and high <= upper:
        return "within"
    return "unclear"
