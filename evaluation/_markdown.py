"""Markdown pieces shared by the evaluation report and the model card."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from evaluation._fairness import GroupReport
from evaluation._fairness_checks import FairnessChecks
from evaluation._metrics import PROBABILITY_KEYS, THRESHOLD_KEYS

#: plain-words names of the metrics
LABELS = {
    "n": "rows",
    "prevalence": "prevalence (observed rate)",
    "mean_score": "mean score",
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC (average precision)",
    "brier": "Brier score",
    "log_loss": "log loss",
    "ece": "expected calibration error",
    "calibration_slope": "calibration slope (ideal 1)",
    "calibration_intercept": "calibration intercept (ideal 0)",
    "share_flagged": "share flagged by risk (strict by band)",
    "precision": "precision",
    "recall": "recall (share of re-offenders flagged)",
    "fpr": "false-positive rate",
    "fnr": "false-negative rate",
}
#: short column heads of the fairness tables
SHORT = {
    "n": "n",
    "prevalence": "prev.",
    "mean_score": "mean score",
    "roc_auc": "AUC",
    "brier": "Brier",
    "ece": "ECE",
    "calibration_slope": "cal. slope",
    "calibration_intercept": "cal. int.",
    "share_flagged": "flagged",
    "precision": "precision",
    "recall": "recall",
    "fpr": "FPR",
    "fnr": "FNR",
}


def fmt(value: Any, key: str = "") -> str:
    """A number for a table: counts with thousands separators, rates with 4 decimals, NaN as n/a."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if key == "n" or isinstance(value, int):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value).replace("|", "\\|")


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """A Markdown table (cells already formatted as strings)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def metrics_table(columns: Mapping[str, Mapping[str, float]], keys: Sequence[str]) -> list[str]:
    """Metrics side by side: one row per metric, one column per model (model, baseline, oracle)."""
    rows = [[LABELS.get(k, k)] + [fmt(c.get(k), k) for c in columns.values()] for k in keys]
    return table(["metric", *columns], rows)


def performance_section(
    columns: Mapping[str, Mapping[str, float]], threshold: float | None, *, strict_in_effect: float | None = None
) -> list[str]:
    """Overall metrics, then the metrics at the strict-tier cut-off and the share strict in effect.

    ``strict_in_effect`` is the share of the rows whose effective tier is strict once the mandatory
    rules apply (a rule makes a person strict whatever the score), beside the share flagged by risk.
    """
    lines = ["## Overall metrics", "", *metrics_table(columns, PROBABILITY_KEYS), ""]
    if "baseline" in columns:
        lines += ["*baseline*: a transparent model's probabilities on the same rows.", ""]
    if "oracle" in columns:
        lines += [
            "*oracle*: the data generator's true probabilities on the same rows — what the "
            "best possible model would score on these rows, up to sampling noise.",
            "",
        ]
    if threshold is not None:
        lines += [
            f"## At the strict-tier cut-off (flag when p ≥ {threshold:g})",
            "",
            *metrics_table(columns, THRESHOLD_KEYS),
            "",
        ]
    if strict_in_effect is not None:
        flagged = columns.get("model", {}).get("share_flagged")
        lines += [
            f"Two shares of strict: **flagged by risk {fmt_share(flagged)}** (the band's tier) and "
            f"**strict in effect {fmt_share(strict_in_effect)}** (after the tier policy's mandatory rules, "
            "e.g. everyone in the first two months of supervision).",
            "",
        ]
    return lines


def fmt_share(value: float | None) -> str:
    """A share as a percentage with one decimal (n/a when unknown)."""
    return "n/a" if value is None or math.isnan(value) else f"{value:.1%}"


def fairness_section(groups: GroupReport) -> list[str]:
    """Per-group tables, the gaps table, then the fairness checks the gate applies, with their tables."""
    lines = [
        "## Fairness by group",
        "",
        f"Threshold metrics at p ≥ {groups.threshold:g}. Groups with fewer than "
        f"{groups.min_group_size} rows (marked †) are shown but left out of the gaps.",
        "",
    ]
    for column, frame in groups.by_group.items():
        small = set(groups.small_groups.get(column, []))
        rows = [
            [fmt(g) + (" †" if str(g) in small else "")] + [fmt(v, str(k)) for k, v in row.items()]
            for g, row in frame.iterrows()
        ]
        lines += [f"### By {column}", "", *table([column, *(SHORT[k] for k in frame.columns)], rows), ""]
    gap_rows = [[column] + [fmt(v, str(k)) for k, v in row.items()] for column, row in groups.gaps.iterrows()]
    lines += [
        "### Largest gaps between groups (max − min)",
        "",
        *table(["group column", *(SHORT[k] for k in groups.gaps.columns)], gap_rows),
        "",
        *fairness_check_lines(groups),
    ]
    return lines


def fairness_check_lines(groups: GroupReport) -> list[str]:
    """The gate's fairness verdicts, calibration within groups and the error rates at the cut-off."""
    checks = groups.checks
    if checks is None:
        return [f"**Largest false-positive-rate gap: {fmt(groups.largest_fpr_gap)}**", ""]
    lines = [
        "### Fairness checks (the promotion gate's)",
        "",
        *(f"- {v.verdict}: {v.message}" for v in checks.verdicts()),
        "",
    ]
    return lines + calibration_lines(checks) + error_rate_lines(checks)


def calibration_lines(checks: FairnessChecks) -> list[str]:
    """One row per group: observed and expected re-offences, their ratio, its interval and status."""
    cal = checks.calibration
    level = f"{cal.rule.level:.0%}"
    rows = [
        [
            r["grouping"],
            fmt(r["group"]),
            f"{r['n']:,}",
            f"{r['observed']:,}",
            f"{r['expected']:.1f}",
            _ratio(r["ratio"]),
            f"{_ratio(r['low'])} to {_ratio(r['high'])}",
            _STATUS[r["status"]],
        ]
        for r in cal.table.to_dict(orient="records")
    ]
    head = ["grouping", "group", "n", "re-offended", "expected", "observed / expected", f"{level} interval", "status"]
    return [
        "### Calibration within groups",
        "",
        f"Definition: {cal.rule.describe()}.",
        "",
        *table(head, rows),
        "",
    ]


def error_rate_lines(checks: FairnessChecks) -> list[str]:
    """Each group's FPR and FNR at the cut-off, or why it is not measurable, and each grouping's gaps."""
    gaps = checks.error_gaps
    rows = [
        [
            r["grouping"],
            fmt(r["group"]),
            f"{r['flagged']:,}",
            f"{r['negatives']:,}",
            _rate(r["fpr"], r["fpr_note"]),
            f"{r['positives']:,}",
            _rate(r["fnr"], r["fnr_note"]),
        ]
        for r in gaps.table.to_dict(orient="records")
    ]
    gap_rows = [
        [str(g), "gated" if r.gated else "reported", fmt(r.fpr_gap, "fpr"), fmt(r.fnr_gap, "fnr")]
        for g, r in gaps.gaps.iterrows()
    ]
    return [
        f"### Error rates at the cut-off (flag when p ≥ {gaps.threshold:g})",
        "",
        f"Definition: {gaps.rule.describe()}.",
        "",
        *table(["grouping", "group", "flagged", "did not re-offend", "FPR", "re-offended", "FNR"], rows),
        "",
        *table(["grouping", "gaps", "FPR gap", "FNR gap"], gap_rows),
        "",
    ]


_STATUS = {
    "within": "within tolerance",
    "unclear": "unclear (interval crosses the band)",
    "miscalibrated": "**miscalibrated**",
    "small": "small group: not judged",
}


def _ratio(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.2f}"


def _rate(value: float, note: str) -> str:
    return f"not measurable ({note})" if note else fmt(value)


def figures_section(figures: Sequence[Path], base_dir: Path) -> list[str]:
    """Figures embedded as links relative to the folder of the Markdown file."""
    if not figures:
        return []
    lines = ["## Figures", ""]
    for path in figures:
        rel = Path(os.path.relpath(Path(path).resolve(), Path(base_dir).resolve())).as_posix()
        lines += [f"![{Path(path).stem}]({rel})", ""]
    return lines
