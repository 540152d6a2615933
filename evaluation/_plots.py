"""Figures of an evaluation: ROC, precision-recall, reliability (overall, per group), score densities."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.metrics import precision_recall_curve, roc_curve

from evaluation._calibration import calibration_bins
from evaluation._checks import check_binary_inputs, check_groups
from evaluation._metrics import pr_auc, roc_auc, threshold_metrics

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

#: reliability curves are drawn only for groups with at least this many rows
MIN_ROWS_PER_CURVE = 30


def _new_figure(nrows: int = 1, *, height_ratios: list[int] | None = None) -> tuple[Figure, list[Axes]]:
    """A figure drawn by the Agg canvas (no pyplot, no global backend state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.8 if nrows == 1 else 6.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, 1, squeeze=False, height_ratios=height_ratios)[:, 0]
    return fig, list(axes)


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    log.debug("wrote %s", path)
    return path


def _roc(y: np.ndarray, curves: Mapping[str, np.ndarray], threshold: float | None, title: str) -> Figure:
    fig, (ax,) = _new_figure()
    for label, p in curves.items():
        if y.min() == y.max():
            break
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{label} (AUC {roc_auc(y, p):.3f})")
    if threshold is not None and y.min() != y.max():
        first = next(iter(curves.values()))
        m = threshold_metrics(y, first, threshold)
        ax.plot(m["fpr"], m["recall"], "ko", label=f"cut-off {threshold:g}")
    ax.plot([0, 1], [0, 1], ls=":", color="grey", label="chance")
    ax.set(
        xlabel="false-positive rate",
        ylabel="true-positive rate (recall)",
        title=f"ROC curve — {title}" if title else "ROC curve",
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    ax.legend(loc="lower right")
    return fig


def _pr(y: np.ndarray, curves: Mapping[str, np.ndarray], threshold: float | None, title: str) -> Figure:
    fig, (ax,) = _new_figure()
    for label, p in curves.items():
        if y.min() == y.max():
            break
        precision, recall, _ = precision_recall_curve(y, p)
        ax.step(recall, precision, where="post", label=f"{label} (AP {pr_auc(y, p):.3f})")
    if threshold is not None and y.min() != y.max():
        m = threshold_metrics(y, next(iter(curves.values())), threshold)
        ax.plot(m["recall"], m["precision"], "ko", label=f"cut-off {threshold:g}")
    ax.axhline(y.mean(), ls=":", color="grey", label=f"prevalence {y.mean():.3f}")
    ax.set(
        xlabel="recall",
        ylabel="precision",
        xlim=(0, 1),
        ylim=(0, 1.01),
        title=f"Precision-recall — {title}" if title else "Precision-recall",
    )
    ax.legend(loc="upper right")
    return fig


def _reliability(y: np.ndarray, curves: Mapping[str, np.ndarray], n_bins: int, title: str) -> Figure:
    fig, (ax, hist) = _new_figure(2, height_ratios=[3, 1])
    ax.plot([0, 1], [0, 1], ls=":", color="grey", label="perfect calibration")
    for label, p in curves.items():
        bins = calibration_bins(y, p, n_bins=n_bins, strategy="quantile")
        ax.plot(bins["mean_prob"], bins["event_rate"], "o-", ms=4, label=label)
        hist.hist(p, bins=50, range=(0, 1), histtype="step", label=label)
    top = max(float(np.max(p)) for p in curves.values())
    lim = min(1.0, max(0.05, top * 1.05))
    ax.set(
        xlim=(0, lim),
        ylim=(0, lim),
        ylabel="observed event rate (quantile bins)",
        title=f"Reliability — {title}" if title else "Reliability",
    )
    ax.legend(loc="upper left")
    hist.set(xlim=(0, lim), xlabel="predicted probability", ylabel="rows")
    return fig


def group_styles(n: int) -> list[tuple[tuple[float, ...], str]]:
    """``n`` (colour, line style) pairs, no two alike: tab10's colours up to 10 lines, tab20's up to 20, then
    tab20's again with other line styles."""
    from matplotlib import colormaps

    palette = colormaps["tab10" if n <= 10 else "tab20"]
    size = 10 if n <= 10 else 20
    styles = ("-", "--", "-.", ":")
    return [(tuple(palette(i % size)), styles[(i // size) % len(styles)]) for i in range(n)]


def _reliability_by_group(y: np.ndarray, p: np.ndarray, values: pd.Series, n_bins: int, title: str) -> Figure:
    labels = values.astype(object).where(values.notna(), "(missing)").astype(str).to_numpy()
    groups = [g for g in pd.unique(labels) if (labels == g).sum() >= MIN_ROWS_PER_CURVE]
    fig, (ax,) = _new_figure()
    if len(groups) > 6:  # the legend beside the plot, not over the curves
        fig.set_size_inches(9.6, 4.8)
    ax.plot([0, 1], [0, 1], ls=":", color="grey", label="perfect calibration")
    for group, (colour, style) in zip(groups, group_styles(len(groups)), strict=True):
        rows = labels == group
        bins = calibration_bins(y[rows], p[rows], n_bins=n_bins, strategy="quantile")
        ax.plot(
            bins["mean_prob"],
            bins["event_rate"],
            marker="o",
            ls=style,
            color=colour,
            ms=3,
            label=f"{group} (n={rows.sum():,})",
        )
    lim = min(1.0, max(0.05, float(p.max()) * 1.05))
    ax.set(
        xlim=(0, lim),
        ylim=(0, lim),
        xlabel="predicted probability (quantile bins)",
        ylabel="observed event rate",
        title=f"Reliability by {values.name} — {title}".rstrip(" —"),
    )
    if len(groups) > 6:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small")
    else:
        ax.legend(loc="upper left", fontsize="small")
    return fig


def _score_distribution(y: np.ndarray, p: np.ndarray, threshold: float | None, title: str) -> Figure:
    fig, (ax,) = _new_figure()
    for outcome, label in ((0, "no re-offence"), (1, "re-offence")):
        if (y == outcome).any():
            ax.hist(
                p[y == outcome],
                bins=50,
                range=(0, 1),
                density=True,
                histtype="step",
                lw=1.5,
                label=f"{label} (n={(y == outcome).sum():,})",
            )
    if threshold is not None:
        ax.axvline(threshold, color="k", ls="--", label=f"cut-off {threshold:g}")
    ax.set(
        xlabel="predicted probability",
        ylabel="density",
        title=f"Scores by outcome — {title}" if title else "Scores by outcome",
    )
    ax.legend(loc="upper right")
    return fig


def safe_filename(name: str) -> str:
    """A column name made safe for a file name (letters, digits, ``_``, ``-``)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", str(name)).strip("_") or "group"


def plot_evaluation(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    groups: pd.DataFrame | None,
    out_dir: Path,
    title: str,
    threshold: float | None = None,
    compare: Mapping[str, ArrayLike] | None = None,
    n_bins: int = 10,
) -> list[Path]:
    """Draw the evaluation figures as PNG files.

    Parameters
    ----------
    y_true, y_prob : array-like of shape (n,)
        Outcomes (0/1) and the model's predicted probabilities.
    groups : DataFrame or None
        Group columns (rows matched by position); one per-group reliability diagram each.
    out_dir : Path
        Folder for the files (created if needed).
    title : str
        Shown in every figure title.
    threshold : float, optional
        Strict-tier cut-off, marked on the ROC and PR curves and the score distribution.
    compare : mapping of str to array-like, optional
        Other probabilities on the same rows (``{"baseline": ..., "oracle": ...}``) drawn
        beside the model on the ROC, PR and reliability figures.
    n_bins : int, default 10
        Quantile bins of the reliability diagrams.

    Returns
    -------
    list of Path
        ``roc.png``, ``pr.png``, ``reliability.png`` (with a histogram of the scores),
        ``reliability_by_<column>.png`` per group column, ``score_distribution.png``.
    """
    y, p = check_binary_inputs(y_true, y_prob)
    curves = {"model": p}
    curves.update({k: check_binary_inputs(y, v)[1] for k, v in (compare or {}).items()})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [
        _save(_roc(y, curves, threshold, title), out_dir / "roc.png"),
        _save(_pr(y, curves, threshold, title), out_dir / "pr.png"),
        _save(_reliability(y, curves, n_bins, title), out_dir / "reliability.png"),
    ]
    if groups is not None:
        frame = check_groups(groups, len(y))
        for column in frame.columns:
            fig = _reliability_by_group(y, p, frame[column].rename(str(column)), n_bins, title)
            paths.append(_save(fig, out_dir / f"reliability_by_{safe_filename(column)}.png"))
    paths.append(_save(_score_distribution(y, p, threshold, title), out_dir / "score_distribution.png"))
    return paths
