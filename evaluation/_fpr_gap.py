"""The one definition of "largest FPR gap" shared by the report, the promotion gate and ``/models``.

A group's false-positive rate (people flagged at the strict-tier cut-off among those who did not
re-offend) counts only when the group holds at least ``min_negatives`` people who did not re-offend,
and a grouping's gap counts only when its counted groups hold at least ``min_flagged`` flagged people
together: a model that flags almost nobody has an FPR of zero in every group, and a gap of zero then
says nothing. Otherwise the group, or the grouping, is "not measurable", never "pass". The largest
gap is the largest (max - min) over the groupings; it is measurable only when every grouping present
has at least two counted groups and enough flagged people.

The flagged minimum applies to the grouping, not to each group: on the demo's 20,000 people the
release model flags 24 of 2,199 test rows and none of the 290 women who did not re-offend; a women's
FPR of 0 out of 290 is measured (to within about 0.01), and a per-group flagged minimum would make
every release model unpromotable on that data. The per-group flagged counts are shown beside the rates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict, Field

from evaluation._checks import check_binary_inputs, check_groups


class FprGapRule(BaseModel):
    """Groupings and minimum counts of the largest false-positive-rate gap (``training/promotion.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    groupings: tuple[str, ...] = Field(
        ("sex", "age_band", "local"),
        min_length=1,
        description="group columns compared",
        examples=[["sex", "age_band", "local"]],
    )
    min_negatives: int = Field(50, ge=1, description="people who did not re-offend a group needs (FPR denominator)")
    min_flagged: int = Field(20, ge=1, description="people flagged at the cut-off a grouping's counted groups need")

    def describe(self) -> str:
        return (
            f"largest FPR gap over {', '.join(self.groupings)} at the strict-tier cut-off; a group counts with "
            f">= {self.min_negatives} non-re-offenders, a grouping with >= {self.min_flagged} flagged in its "
            "counted groups"
        )


@dataclass(frozen=True)
class FprGap:
    """The largest FPR gap of one model on one set of rows, with every group's counts.

    Attributes
    ----------
    value : float
        The largest gap among measurable groups (NaN when not measurable).
    measurable : bool
        Whether every grouping present had at least two measurable groups.
    grouping : str or None
        The grouping with the largest gap.
    table : DataFrame
        One row per (grouping, group): ``negatives``, ``flagged``, ``fpr``, ``measurable``.
    reason : str
        Why the gap is not measurable ("" when it is).
    """

    value: float
    measurable: bool
    grouping: str | None
    table: pd.DataFrame
    reason: str
    rule: FprGapRule

    @property
    def status(self) -> str:
        return f"{self.value:.4f}" if self.measurable else "not measurable"

    def to_dict(self) -> dict[str, object]:
        return {
            "largest_fpr_gap": self.value if self.measurable else None,
            "measurable": self.measurable,
            "grouping": self.grouping,
            "reason": self.reason,
            "rule": self.rule.model_dump(mode="json"),
            "groups": self.table.to_dict(orient="records"),
        }


def fpr_gap(
    y_true: ArrayLike, y_prob: ArrayLike, *, groups: pd.DataFrame, threshold: float, rule: FprGapRule | None = None
) -> FprGap:
    """The largest false-positive-rate gap between groups by ``rule`` (flag when ``y_prob >= threshold``)."""
    rule = rule or FprGapRule()
    y, p = check_binary_inputs(y_true, y_prob)
    frame = check_groups(groups, len(y))
    negative, flagged = y == 0, p >= threshold
    rows: list[dict[str, object]] = []
    gaps: dict[str, float] = {}
    problems: list[str] = []
    present = [g for g in rule.groupings if g in frame.columns]
    if not present:
        problems.append(f"none of the groupings {list(rule.groupings)} is in the data")
    for grouping in present:
        labels = frame[grouping].astype(object).where(frame[grouping].notna(), "(missing)").astype(str).to_numpy()
        fprs, n_flagged, first = [], 0, len(rows)
        for group in sorted(set(labels)):
            inside = labels == group
            n_neg, n_flag = int((inside & negative).sum()), int((inside & flagged).sum())
            fpr = float((inside & negative & flagged).sum() / n_neg) if n_neg else float("nan")
            ok = n_neg >= rule.min_negatives
            rows.append(
                {
                    "grouping": grouping,
                    "group": group,
                    "negatives": n_neg,
                    "flagged": n_flag,
                    "fpr": fpr,
                    "measurable": ok,
                }
            )
            if ok:
                fprs.append(fpr)
                n_flagged += n_flag
        if len(fprs) < 2:
            problems.append(f"{grouping}: {len(fprs)} group(s) with >= {rule.min_negatives} non-re-offenders, 2 needed")
        elif n_flagged < rule.min_flagged:
            problems.append(f"{grouping}: {n_flagged} flagged in its groups, {rule.min_flagged} needed")
            for row in rows[first:]:
                row["measurable"] = False
        else:
            gaps[grouping] = max(fprs) - min(fprs)
    table = pd.DataFrame(rows, columns=["grouping", "group", "negatives", "flagged", "fpr", "measurable"])
    if problems or not gaps:
        return FprGap(float("nan"), False, None, table, "; ".join(problems), rule)
    worst = max(gaps, key=lambda g: gaps[g])
    return FprGap(float(gaps[worst]), True, worst, table, "", rule)


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
