"""The monitor's judgement of one period of one model version: every check against its limit."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from evaluation.monitoring._cbpe import EstimatedPerformance, estimate_performance
from evaluation.monitoring._config import MonitorConfig
from evaluation.monitoring._profile import SCORE, ProfileError, ReferenceProfile
from evaluation.monitoring._psi import psi

Status = Literal["ok", "moderate", "crossed", "not judged"]
Group = Literal["input", "score", "share", "decision", "performance"]


@dataclass(frozen=True)
class Check:
    """One figure of the period against its limit (``reference``: the training rows' figure, when there is one)."""

    name: str
    group: Group
    value: float
    reference: float | None
    limit: str
    status: Status

    @property
    def crossed(self) -> bool:
        return self.status == "crossed"


@dataclass(frozen=True)
class PeriodRows:
    """A period's assessments of one model version, as the monitor reads them.

    ``features``: one column per profiled input (values as stored: numbers, category codes, None);
    ``probability``: the calibrated probabilities; ``labels``: per-row values of the categorical answers
    (``band``, ``tier_by_risk``, ``tier``, ``alert``...); ``decided``: whether a tier decision was recorded
    beside each assessment.
    """

    features: pd.DataFrame
    probability: np.ndarray
    labels: Mapping[str, np.ndarray]
    decided: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.probability)
        sizes = {"features": len(self.features), "decided": len(self.decided)}
        sizes.update({f"labels[{k}]": len(v) for k, v in self.labels.items()})
        wrong = {k: v for k, v in sizes.items() if v != n}
        if wrong:
            raise ProfileError(f"the period's parts have other lengths than its {n} probabilities: {wrong}")


@dataclass(frozen=True)
class Bins:
    """One input's (or the score's) bins: labels, training shares and the period's shares."""

    labels: list[str]
    reference: np.ndarray
    current: np.ndarray


@dataclass
class MonitorReport:
    """Everything ``riskctl monitor`` shows of one model version over one period."""

    stage: str
    model: str
    since: str
    until: str
    rows: int
    checks: list[Check]
    bins: dict[str, Bins]
    shares: pd.DataFrame
    estimate: EstimatedPerformance
    reference: Mapping[str, float]
    judged: bool
    config_version: str
    notes: list[str] = field(default_factory=list)

    @property
    def crossed(self) -> list[Check]:
        """The checks past their limit (none when the period was too small to judge)."""
        return [c for c in self.checks if c.crossed]

    def psi_table(self) -> pd.DataFrame:
        """Inputs and score by PSI, largest first."""
        rows = [(c.name, c.value, c.status) for c in self.checks if c.group in ("input", "score")]
        table = pd.DataFrame(rows, columns=["name", "psi", "status"])
        return table.sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)


def monitor(
    profile: ReferenceProfile,
    period: PeriodRows,
    *,
    config: MonitorConfig,
    reference_shares: Mapping[str, Mapping[str, float]],
    model: str = "",
    since: str = "",
    until: str = "",
) -> MonitorReport:
    """Judge ``period`` against the model's ``profile`` with the limits of ``config``.

    ``reference_shares`` gives, per label column (``band``, ``tier_by_risk``), each value's share in the
    training rows under the cut-offs the period's answers were given with; a label column without one is
    judged against ``config.shares.bounds`` when it names it. With fewer rows than ``config.min_rows`` every
    figure is shown with the status ``not judged``.

    Raises
    ------
    ProfileError
        The period lacks an input of the profile (named).
    """
    missing = [n for n in profile.names if n not in period.features.columns]
    if missing:
        raise ProfileError(f"the period's rows lack the profiled inputs {missing[:5]}")
    n = len(period.probability)
    judged = n >= config.min_rows
    checks: list[Check] = []
    bins: dict[str, Bins] = {}
    for feature in (*profile.features, profile.score):
        values = period.probability if feature.name == SCORE else period.features[feature.name]
        counts = feature.counts(values)
        current = counts / counts.sum() if n else np.zeros_like(counts)
        bins[feature.name] = Bins(feature.labels, np.asarray(feature.shares), current)
        value = psi(feature.shares, counts) if n else math.nan
        is_score = feature.name == SCORE
        limit = config.psi.score if is_score else config.psi.features
        checks.append(
            Check(
                feature.name,
                "score" if is_score else "input",
                value,
                None,
                f"< {limit:g}",
                _status(judged, value >= limit, value >= config.psi.warn),
            )
        )
    share_rows, share_checks = _share_checks(period, reference_shares, config, judged)
    checks.extend(share_checks)
    rate = float(np.mean(period.decided)) if n else math.nan
    limit = config.decision_rate.max
    checks.append(Check("decision_rate", "decision", rate, None, f"<= {limit:g}", _status(judged, rate > limit)))
    estimate = estimate_performance(period.probability)
    checks.extend(_performance_checks(estimate, profile.figures, config, judged))
    notes = [] if judged else [f"{n} assessments, fewer than the {config.min_rows} needed to judge: shown, not judged"]
    return MonitorReport(
        profile.stage,
        model,
        since,
        until,
        n,
        checks,
        bins,
        share_rows,
        estimate,
        dict(profile.figures),
        judged,
        config.version,
        notes,
    )


def _status(judged: bool, crossed: bool, moderate: bool = False) -> Status:
    if not judged:
        return "not judged"
    return "crossed" if crossed else "moderate" if moderate else "ok"


def _share_checks(
    period: PeriodRows,
    reference_shares: Mapping[str, Mapping[str, float]],
    config: MonitorConfig,
    judged: bool,
) -> tuple[pd.DataFrame, list[Check]]:
    rows, checks = [], []
    limit = config.shares.max_change_points
    for column, values in period.labels.items():
        counts = pd.Series(values, dtype=object).value_counts()
        total = max(int(counts.sum()), 1)
        reference = reference_shares.get(column, {})
        bounds = config.shares.bounds.get(column, {})
        for value in sorted(set(counts.index.astype(str)) | set(reference) | set(bounds)):
            share = float(counts.get(value, 0)) / total
            ref = reference.get(value)
            rows.append({"column": column, "value": value, "share": share, "reference": ref})
            name = f"{column}={value}"
            if ref is not None:
                change = 100 * (share - ref)
                crossed = abs(change) > limit
                checks.append(Check(name, "share", share, ref, f"within ±{limit:g} points", _status(judged, crossed)))
            elif value in bounds:
                low, high = bounds[value]
                crossed = not low <= share <= high
                checks.append(Check(name, "share", share, None, f"in [{low:g}, {high:g}]", _status(judged, crossed)))
    return pd.DataFrame(rows, columns=["column", "value", "share", "reference"]), checks


def _performance_checks(
    estimate: EstimatedPerformance, figures: Mapping[str, float], config: MonitorConfig, judged: bool
) -> list[Check]:
    limits = config.performance
    checks = []
    ref_auc = figures.get("estimated_roc_auc")
    if ref_auc is not None:
        drop = ref_auc - estimate.roc_auc
        checks.append(
            Check(
                "estimated_roc_auc",
                "performance",
                estimate.roc_auc,
                ref_auc,
                f">= {ref_auc - limits.max_auc_drop:.4f}",
                _status(judged and not math.isnan(drop), drop > limits.max_auc_drop),
            )
        )
    ref_brier = figures.get("estimated_brier")
    if ref_brier is not None:
        rise = estimate.brier - ref_brier
        checks.append(
            Check(
                "estimated_brier",
                "performance",
                estimate.brier,
                ref_brier,
                f"<= {ref_brier + limits.max_brier_rise:.4f}",
                _status(judged and not math.isnan(rise), rise > limits.max_brier_rise),
            )
        )
    base = figures.get("base_rate")
    if base:
        low, high = limits.rate_ratio
        ratio = estimate.expected_rate / base
        checks.append(
            Check(
                "expected_rate",
                "performance",
                estimate.expected_rate,
                base,
                f"in [{low * base:.4f}, {high * base:.4f}]",
                _status(judged and not math.isnan(ratio), not low <= ratio <= high),
            )
        )
    return checks


def band_reference_shares(profile: ReferenceProfile, *, medium_from: float, high_from: float) -> dict[str, float]:
    """Each band's share of the training rows under the cut-offs ``medium_from`` and ``high_from`` (probabilities)."""
    return {
        "low": profile.share_between(None, medium_from),
        "medium": profile.share_between(medium_from, high_from),
        "high": profile.share_between(high_from, None),
    }
