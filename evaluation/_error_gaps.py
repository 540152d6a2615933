"""False-positive and false-negative rate gaps between groups at the strict-tier cut-off.

The definition shared by the evaluation report, the model card, the promotion gate and ``/models``
(``training/promotion.yaml``, ``fairness.error_rates``). Flagging ``p >= threshold``, a group's

FPR
    is the share flagged among its people who did not re-offend, and it is *measurable* when the
    group has at least ``min_flagged`` flagged people and ``min_negatives`` who did not re-offend;
FNR
    is the share not flagged among its people who re-offended, measurable with at least
    ``min_flagged`` flagged and ``min_positives`` who re-offended.

A model that flags almost nobody has an FPR of 0 and an FNR of 1 in every group, and a gap of zero
then says nothing: hence the flagged minimum, per group. A grouping's gap is the largest minus the
smallest rate among its measurable groups (with two or more), and the largest gap is taken over the
``gated`` groupings. A group that is not measurable is shown as "not measurable (8 flagged)", and the
gate then passes with a warning instead of refusing: a small office's data must not leave a stage
without a model because too few people were flagged to compare groups.

Only the ``gated`` groupings (sex and household registration, the protected attributes that are not
model inputs by default) are held to the limits; the others (age band, offence category) are
reported. Age and offence are risk factors the model uses, their groups' base rates differ (on the
demo 11% of 18-24-year-olds re-offend within the intake horizon against 3% of those over 50), and
a calibrated model must then flag more of the riskier group, so equal error rates across them
cannot be asked of it alongside calibration within groups (Kleinberg, Mullainathan and Raghavan
2016; Chouldechova 2017). Calibration within those groups is gated instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict, Field

from evaluation._checks import check_binary_inputs, check_groups
from evaluation._group_calibration import group_labels

#: the two error rates compared between groups
ErrorRate = Literal["fpr", "fnr"]
RATE_NAMES: dict[str, str] = {"fpr": "false-positive rate", "fnr": "false-negative rate"}


class ErrorRateRule(BaseModel):
    """Minimum counts and limits of the FPR and FNR gaps (``training/promotion.yaml``, ``fairness.error_rates``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gated: tuple[str, ...] = Field(
        ("sex", "local"),
        description="groupings whose gaps the gate limits (the others are reported)",
        examples=[["sex", "local"]],
    )
    fpr_gap_limit: float = Field(0.25, gt=0, le=1, description="largest FPR gap allowed in a gated grouping")
    fnr_gap_limit: float = Field(0.25, gt=0, le=1, description="largest FNR gap allowed in a gated grouping")
    min_flagged: int = Field(10, ge=1, description="people flagged at the cut-off a group needs for either rate")
    min_negatives: int = Field(50, ge=1, description="people who did not re-offend a group needs (FPR denominator)")
    min_positives: int = Field(30, ge=1, description="people who re-offended a group needs (FNR denominator)")

    def limit(self, rate: ErrorRate) -> float:
        return self.fpr_gap_limit if rate == "fpr" else self.fnr_gap_limit

    def describe(self) -> str:
        return (
            f"flag when p >= the strict-tier cut-off; a group's FPR counts with >= {self.min_flagged} flagged and "
            f">= {self.min_negatives} who did not re-offend, its FNR with >= {self.min_flagged} flagged and "
            f">= {self.min_positives} who re-offended; gaps (max - min over counted groups) limited in "
            f"{', '.join(self.gated) or 'no grouping'} (FPR <= {self.fpr_gap_limit:g}, FNR <= {self.fnr_gap_limit:g}), "
            "reported elsewhere"
        )


@dataclass(frozen=True)
class ErrorRateGaps:
    """Every group's error rates at the cut-off, whether they count, and each grouping's gaps.

    Attributes
    ----------
    table : DataFrame
        One row per (grouping, group): ``n``, ``negatives``, ``positives``, ``flagged``, ``fpr``,
        ``fnr``, and for each rate whether it is measurable (``fpr_measurable``) and, when not, why
        (``fpr_note``: "8 flagged").
    gaps : DataFrame
        One row per grouping: ``gated``, ``fpr_gap``, ``fnr_gap`` (NaN with fewer than two measurable groups).
    threshold : float
        The cut-off.
    rule : ErrorRateRule
    absent : tuple of str
        Groupings asked for but not in the data.
    """

    table: pd.DataFrame
    gaps: pd.DataFrame
    threshold: float
    rule: ErrorRateRule
    absent: tuple[str, ...] = field(default=())

    def largest(self, rate: ErrorRate) -> tuple[float, str | None]:
        """The largest measured gap of ``rate`` over the gated groupings, and its grouping (NaN, None: none)."""
        measured = self.gaps.loc[self.gaps["gated"], f"{rate}_gap"].dropna()
        if measured.empty:
            return float("nan"), None
        worst = str(measured.idxmax())
        return float(measured[worst]), worst

    def unmeasured(self, rate: ErrorRate) -> pd.DataFrame:
        """The gated groupings' groups whose ``rate`` is not measurable."""
        gated = self.table["grouping"].isin(self.rule.gated)
        return self.table[gated & ~self.table[f"{rate}_measurable"].astype(bool)]

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "threshold": self.threshold,
            "rule": self.rule.model_dump(mode="json"),
            "absent": list(self.absent),
            "groups": self.table.to_dict(orient="records"),
            "gaps": self.gaps.reset_index().to_dict(orient="records"),
        }
        for rate in ("fpr", "fnr"):
            value, grouping = self.largest(rate)
            out[f"largest_{rate}_gap"] = None if np.isnan(value) else value
            out[f"largest_{rate}_gap_grouping"] = grouping
        return out


def error_rate_gaps(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    groups: pd.DataFrame,
    threshold: float,
    groupings: tuple[str, ...] | None = None,
    rule: ErrorRateRule | None = None,
) -> ErrorRateGaps:
    """FPR and FNR of each group at ``threshold`` (flag when ``y_prob >= threshold``), and the gaps.

    Parameters
    ----------
    y_true, y_prob : array-like of shape (n,)
        Outcomes (0/1) and predicted probabilities.
    groups : DataFrame
        Group columns, rows matched by position; missing values form a group of their own.
    threshold : float
        The strict-tier cut-off.
    groupings : tuple of str, optional
        The columns reported (default: every column of ``groups``).
    rule : ErrorRateRule, optional
        Minimum counts, gated groupings and limits (default :class:`ErrorRateRule`).
    """
    rule = rule or ErrorRateRule()
    y, p = check_binary_inputs(y_true, y_prob)
    frame = check_groups(groups, len(y), allow_no_columns=True)
    wanted = tuple(frame.columns) if groupings is None else tuple(groupings)
    flagged, negative = p >= threshold, y == 0
    rows: list[dict[str, object]] = []
    gaps: list[tuple[str, bool, float, float]] = []
    for grouping in (g for g in wanted if g in frame.columns):
        labels = group_labels(frame[grouping])
        first = len(rows)
        for group in sorted(set(labels)):
            inside = labels == group
            rows.append({"grouping": grouping, "group": group, **_rates(inside, negative, flagged, rule)})
        counted = pd.DataFrame(rows[first:])
        gaps.append((grouping, grouping in rule.gated, _gap(counted, "fpr"), _gap(counted, "fnr")))
    columns = ["grouping", "group", "n", "negatives", "positives", "flagged", "fpr", "fnr"]
    columns += ["fpr_measurable", "fpr_note", "fnr_measurable", "fnr_note"]
    gap_frame = pd.DataFrame(gaps, columns=["grouping", "gated", "fpr_gap", "fnr_gap"]).set_index("grouping")
    gap_frame["gated"] = gap_frame["gated"].astype(bool)
    absent = tuple(g for g in wanted if g not in frame.columns)
    return ErrorRateGaps(pd.DataFrame(rows, columns=columns), gap_frame, float(threshold), rule, absent)


def _rates(inside: np.ndarray, negative: np.ndarray, flagged: np.ndarray, rule: ErrorRateRule) -> dict[str, object]:
    n_neg, n_pos = int((inside & negative).sum()), int((inside & ~negative).sum())
    n_flag = int((inside & flagged).sum())
    fpr = float((inside & negative & flagged).sum() / n_neg) if n_neg else float("nan")
    fnr = float((inside & ~negative & ~flagged).sum() / n_pos) if n_pos else float("nan")
    fpr_note = _note(n_flag, rule.min_flagged, "flagged") or _note(n_neg, rule.min_negatives, "did not re-offend")
    fnr_note = _note(n_flag, rule.min_flagged, "flagged") or _note(n_pos, rule.min_positives, "re-offended")
    return {
        "n": int(inside.sum()),
        "negatives": n_neg,
        "positives": n_pos,
        "flagged": n_flag,
        "fpr": fpr,
        "fnr": fnr,
        "fpr_measurable": not fpr_note,
        "fpr_note": fpr_note,
        "fnr_measurable": not fnr_note,
        "fnr_note": fnr_note,
    }


def _note(count: int, needed: int, what: str) -> str:
    """Why a rate is not measurable ("8 flagged"), or "" when ``count`` suffices."""
    return "" if count >= needed else f"{count:,} {what}"


def _gap(counted: pd.DataFrame, rate: ErrorRate) -> float:
    values = counted.loc[counted[f"{rate}_measurable"].astype(bool), rate]
    return float(values.max() - values.min()) if len(values) >= 2 else float("nan")


def flag_counts(y_true: ArrayLike, y_prob: ArrayLike, threshold: float) -> dict[str, float]:
    """How many are flagged at the cut-off, and the share: a model flagging nobody or everybody says nothing."""
    y, p = check_binary_inputs(y_true, y_prob)
    flagged = int((p >= threshold).sum())
    return {
        "n": len(y),
        "flagged": flagged,
        "share_flagged": flagged / len(y) if len(y) else float("nan"),
        "positives_flagged": int(((p >= threshold) & (y == 1)).sum()),
        "max_score": float(np.max(p)),
    }
