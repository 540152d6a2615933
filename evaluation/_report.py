"""The evaluation report: every metric of a model on a test set, its figures, Markdown and JSON."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from numpy.typing import ArrayLike

from evaluation._checks import check_binary_inputs
from evaluation._fairness import GroupReport, group_metrics
from evaluation._fairness_checks import FairnessRule
from evaluation._markdown import fairness_section, figures_section, fmt, performance_section
from evaluation._metrics import classification_metrics
from evaluation._plots import plot_evaluation
from evaluation._serialize import to_jsonable

log = logging.getLogger(__name__)


@dataclass
class EvaluationReport:
    """Metrics of one model on one test set, with optional baseline, oracle and group metrics.

    Attributes
    ----------
    metrics : dict
        :func:`classification_metrics` of the model (with the threshold metrics).
    groups : GroupReport or None
        Metrics within groups and the gaps between them.
    oracle : dict or None
        The same metrics for the data generator's true probabilities (synthetic data only).
    baseline : dict or None
        The same metrics for a transparent baseline model on the same rows.
    figures : list of Path
        Figure files shown in the report.
    meta : dict
        Title, threshold, creation time and whatever the caller adds (stage, model version...).
    """

    metrics: dict[str, float]
    groups: GroupReport | None = None
    oracle: dict[str, float] | None = None
    baseline: dict[str, float] | None = None
    figures: list[Path] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def columns(self) -> dict[str, dict[str, float]]:
        """The metric dicts present, keyed ``model``, ``baseline``, ``oracle``."""
        cols = {"model": self.metrics, "baseline": self.baseline, "oracle": self.oracle}
        return {k: v for k, v in cols.items() if v is not None}

    def to_dict(self, *, relative_to: Path | None = None) -> dict[str, Any]:
        """The report as JSON-ready objects (NaN as ``None``).

        Parameters
        ----------
        relative_to : Path, optional
            Folder that figure paths are written relative to (else as given).
        """
        figures = [_relative(f, relative_to) for f in self.figures]
        jsonable: dict[str, Any] = to_jsonable(
            {
                "meta": self.meta,
                "metrics": self.metrics,
                "baseline": self.baseline,
                "oracle": self.oracle,
                "groups": None if self.groups is None else self.groups.to_dict(),
                "figures": figures,
            }
        )
        return jsonable

    def to_json(self, path: Path) -> Path:
        """Write every metric as JSON, NaN written as ``null``; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(relative_to=path.parent), indent=2, allow_nan=False)
        path.write_text(text + "\n", encoding="utf-8")
        log.info("wrote %s", path)
        return path

    def to_markdown(self, path: Path) -> Path:
        """Write the report as Markdown with the figures linked relative to it; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(self.markdown_lines(path.parent)), encoding="utf-8")
        log.info("wrote %s", path)
        return path

    def markdown_lines(self, base_dir: Path) -> list[str]:
        """The Markdown report as lines; figure links are relative to ``base_dir``."""
        title = self.meta.get("title") or "Evaluation report"
        lines = [f"# {title}", ""]
        lines += [f"- **{k}**: {fmt(v)}" for k, v in self.meta.items() if k != "title"] + [""]
        lines += performance_section(
            self.columns(), self.meta.get("threshold"), strict_in_effect=self.meta.get("share_strict_in_effect")
        )
        if self.groups is not None:
            lines += fairness_section(self.groups)
        lines += figures_section(self.figures, base_dir)
        return lines


def _relative(path: Path, base: Path | None) -> str:
    path = Path(path)
    if base is None:
        return path.as_posix()
    try:
        return path.resolve().relative_to(Path(base).resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _collect_extra_figures(extra: Iterable[Path], out_dir: Path | None) -> list[Path]:
    """Existing extra figures; copied into ``out_dir`` (when given) so the report stands alone."""
    kept = []
    for figure in map(Path, extra):
        if not figure.is_file():
            log.warning("extra figure %s does not exist; left out of the report", figure)
            continue
        if out_dir is not None and figure.resolve().parent != out_dir.resolve():
            target = out_dir / figure.name
            if target.exists():
                target = out_dir / f"extra_{figure.name}"
            figure = Path(shutil.copy2(figure, target))
        kept.append(figure)
    return kept


def evaluate(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    groups: pd.DataFrame | None = None,
    threshold: float,
    oracle_prob: ArrayLike | None = None,
    baseline_prob: ArrayLike | None = None,
    out_dir: Path | None = None,
    title: str = "",
    meta: dict[str, Any] | None = None,
    extra_figures: Iterable[Path] = (),
    min_group_size: int = 30,
    n_bins: int = 10,
    fairness: FairnessRule | None = None,
) -> EvaluationReport:
    """Evaluate a model's probabilities on a test set, optionally writing the report files.

    Parameters
    ----------
    y_true, y_prob : array-like of shape (n,)
        Outcomes (0/1) and the model's predicted probabilities.
    groups : DataFrame, optional
        Group columns (sex, age band, local/non-local, offence, race), rows matched by position.
    threshold : float
        The stage's strict-tier cut-off on the probability.
    oracle_prob : array-like of shape (n,), optional
        The generator's true probabilities on the same rows (synthetic data).
    baseline_prob : array-like of shape (n,), optional
        A transparent baseline model's probabilities on the same rows.
    out_dir : Path, optional
        When given, ``report.md``, ``metrics.json`` and the figures are written here.
    title : str, default ""
        Title of the report and figures.
    meta : dict, optional
        Extra facts shown at the top of the report (stage, model version, data period...).
    extra_figures : iterable of Path, default ()
        Figures made elsewhere (the SHAP summary) to include; copied into ``out_dir``.
    min_group_size : int, default 30
        Smallest group taking part in the fairness gaps.
    n_bins : int, default 10
        Bins of the expected calibration error.
    fairness : FairnessRule, optional
        Calibration within groups and the error-rate gaps, as the promotion gate judges them
        (``training/promotion.yaml``, ``fairness``; default :class:`FairnessRule`).

    Returns
    -------
    EvaluationReport
    """
    y, p = check_binary_inputs(y_true, y_prob)
    metrics = partial(classification_metrics, threshold=threshold, n_bins=n_bins)
    others = {
        name: check_binary_inputs(y, prob)[1]
        for name, prob in (("baseline", baseline_prob), ("oracle", oracle_prob))
        if prob is not None
    }
    report = EvaluationReport(
        metrics=metrics(y, p),
        groups=None
        if groups is None
        else group_metrics(
            y, p, groups=groups, threshold=threshold, min_group_size=min_group_size, n_bins=n_bins, fairness=fairness
        ),
        baseline=metrics(y, others["baseline"]) if "baseline" in others else None,
        oracle=metrics(y, others["oracle"]) if "oracle" in others else None,
        meta={
            "title": title,
            "threshold": float(threshold),
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            **(meta or {}),
        },
    )
    if out_dir is not None:
        out_dir = Path(out_dir)
        report.figures = plot_evaluation(
            y, p, groups=groups, out_dir=out_dir, title=title, threshold=threshold, compare=others, n_bins=n_bins
        )
    report.figures += _collect_extra_figures(extra_figures, out_dir)
    if out_dir is not None:
        report.to_markdown(out_dir / "report.md")
        report.to_json(out_dir / "metrics.json")
    log.info("evaluated %d rows: AUC %.4f, Brier %.4f", len(y), report.metrics["roc_auc"], report.metrics["brier"])
    return report
