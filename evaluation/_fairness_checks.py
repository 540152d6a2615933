"""The fairness checks of a model at its cut-off, and their verdicts: one definition for report, card and gate.

Three verdicts, each ``pass``, ``warn`` (passed, with something a modeler must read) or ``FAIL``:

``calibration_within_groups``
    Always applied (:mod:`evaluation._group_calibration`): fails when a group's observed/expected
    interval lies wholly outside the tolerance band, naming the group; warns when a group is too
    small to judge or its interval crosses an edge of the band.
``largest_fpr_gap``, ``largest_fnr_gap``
    At the cut-off (:mod:`evaluation._error_gaps`): fail when a gated grouping's gap between
    measurable groups exceeds the limit; warn, never fail, when a gated group is not measurable
    ("not measurable (8 flagged)").

The gate turns each verdict into a criterion; the report and the model card print the same lines.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict, Field, model_validator

from evaluation._checks import check_binary_inputs, check_groups
from evaluation._error_gaps import RATE_NAMES, ErrorRate, ErrorRateGaps, ErrorRateRule, error_rate_gaps
from evaluation._group_calibration import CalibrationRule, GroupCalibration, group_calibration

#: how many groups a verdict's message names before "and N more"
_NAMED = 8


class FairnessRule(BaseModel):
    """Groupings, calibration rule and error-rate rule (``training/promotion.yaml``, ``fairness``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    groupings: tuple[str, ...] = Field(
        ("sex", "local", "age_band", "offence"),
        min_length=1,
        description="group columns within which calibration is judged and error rates are reported",
        examples=[["sex", "local", "age_band", "offence"]],
    )
    calibration: CalibrationRule = CalibrationRule()
    error_rates: ErrorRateRule = ErrorRateRule()

    @model_validator(mode="after")
    def _gated_are_groupings(self) -> FairnessRule:
        stray = [g for g in self.error_rates.gated if g not in self.groupings]
        if stray:
            raise ValueError(f"error_rates.gated lists {stray}, which are not in groupings {list(self.groupings)}")
        return self


@dataclass(frozen=True)
class FairnessVerdict:
    """One fairness criterion's outcome, as the gate records it and the report prints it."""

    name: str
    passed: bool
    warning: bool
    value: float
    limit: float
    message: str

    @property
    def verdict(self) -> str:
        if not self.passed:
            return "FAIL"
        return "warn" if self.warning else "pass"


@dataclass(frozen=True)
class FairnessChecks:
    """Calibration within groups and the error-rate gaps of one model on one set of rows."""

    calibration: GroupCalibration
    error_gaps: ErrorRateGaps
    rule: FairnessRule

    def verdicts(self) -> list[FairnessVerdict]:
        return [calibration_verdict(self.calibration), *(gap_verdict(self.error_gaps, r) for r in ("fpr", "fnr"))]

    def to_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule.model_dump(mode="json"),
            "calibration": self.calibration.to_dict(),
            "error_rates": self.error_gaps.to_dict(),
            "verdicts": [{**asdict(v), "verdict": v.verdict} for v in self.verdicts()],
        }


def fairness_checks(
    y_true: ArrayLike, y_prob: ArrayLike, *, groups: pd.DataFrame, threshold: float, rule: FairnessRule | None = None
) -> FairnessChecks:
    """Calibration within groups and FPR/FNR gaps at ``threshold``, by ``rule`` (default :class:`FairnessRule`).

    ``groups`` may lack some of the rule's groupings (they are named in the verdicts); rows are
    matched to ``y_true`` by position.
    """
    rule = rule or FairnessRule()
    y, p = check_binary_inputs(y_true, y_prob)
    groups = check_groups(groups, len(y), allow_no_columns=True)
    return FairnessChecks(
        group_calibration(y, p, groups=groups, groupings=rule.groupings, rule=rule.calibration),
        error_rate_gaps(y, p, groups=groups, threshold=threshold, groupings=rule.groupings, rule=rule.error_rates),
        rule,
    )


def calibration_verdict(cal: GroupCalibration) -> FairnessVerdict:
    """Fail on a miscalibrated group (named), warn on small or unclear ones or absent groupings, else pass."""
    low, high = cal.rule.band
    band = f"[{low:.2f}, {high:.2f}]"
    bad, unclear, small = (cal.with_status(s) for s in ("miscalibrated", "unclear", "small"))
    judged = len(cal.table) - len(small)
    if bad.empty:
        head = (
            f"calibration within groups: no group shown outside {band} (observed/expected, "
            f"{cal.rule.level:.0%} bootstrap interval; {judged} of {len(cal.table)} groups judged)"
        )
    else:
        head = f"calibration within groups: miscalibrated beyond {band}: " + _named(bad, _ratio_text)
    notes = []
    if not unclear.empty:
        notes.append("interval crosses the band: " + _named(unclear, _ratio_text))
    if not small.empty:
        notes.append(
            f"too small to judge (< {cal.rule.min_events} re-offences observed or expected): "
            + _named(small, lambda r: f"{r.grouping}={r.group} (n {r.n:,}, {r.observed} observed)")
        )
    if cal.absent:
        notes.append(f"not in the data: {', '.join(cal.absent)}")
    if len(cal.table) == 0:
        notes.append("no group to judge")
    message = head + "".join(f"; {note}" for note in notes)
    return FairnessVerdict(
        "calibration_within_groups", bad.empty, bool(notes), cal.worst_ratio, cal.rule.tolerance, message
    )


def gap_verdict(gaps: ErrorRateGaps, rate: ErrorRate) -> FairnessVerdict:
    """Fail when a gated grouping's measured gap exceeds the limit; warn when a gated group is not measurable."""
    rule, limit = gaps.rule, gaps.rule.limit(rate)
    name, short = RATE_NAMES[rate], rate.upper()
    gated = gaps.gaps[gaps.gaps["gated"]]
    measured = gated[f"{rate}_gap"].dropna()
    over = measured[measured > limit]
    value, grouping = gaps.largest(rate)
    if not over.empty:
        head = f"largest {short} gap above limit {limit:g}: " + ", ".join(f"{g} {v:.4f}" for g, v in over.items())
    elif grouping is not None:
        head = f"largest {short} gap {value:.4f} ({grouping}) <= limit {limit:g}"
    elif not rule.gated:
        head = f"{name} gaps reported, none gated"
    else:
        head = f"{name} gap not measurable in {', '.join(rule.gated)}"
    notes = []
    missing = gaps.unmeasured(rate)
    if not missing.empty:
        notes.append(
            "not measurable ("
            + f"{rule.min_flagged} flagged, {rule.min_negatives if rate == 'fpr' else rule.min_positives} "
            + f"{'non-re-offenders' if rate == 'fpr' else 're-offenders'} needed per group): "
            + _named(missing, lambda r: f"{r.grouping}={r.group} ({getattr(r, f'{rate}_note')})")
        )
    absent = [g for g in rule.gated if g in gaps.absent]
    if absent:
        notes.append(f"not in the data: {', '.join(absent)}")
    message = head + "".join(f"; {note}" for note in notes)
    return FairnessVerdict(f"largest_{rate}_gap", over.empty, bool(notes), value, limit, message)


def _ratio_text(row: Any) -> str:
    """A calibration table row (``itertuples``) as "sex=female 0.71 (0.48-0.95)"."""
    return f"{row.grouping}={row.group} {_num(row.ratio)} ({_num(row.low)}-{_num(row.high)})"


def _num(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.2f}"


def _named(rows: pd.DataFrame, describe: Callable[[Any], str]) -> str:
    """Up to :data:`_NAMED` rows described, then how many more."""
    texts = [describe(r) for r in rows.head(_NAMED).itertuples()]
    more = len(rows) - _NAMED
    return ", ".join(texts) + (f" and {more} more" if more > 0 else "")
