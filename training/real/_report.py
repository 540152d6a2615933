"""Tables of the real-data benchmark: the result object, metric helpers and Markdown formatting."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import SupportsInt, cast

import numpy as np
import pandas as pd

from evaluation import classification_metrics, expected_calibration_error
from features.adapters import RealFrame


@dataclass
class BenchmarkResult:
    """The tables of one benchmark run, with its notes, parameters and target checks.

    Attributes
    ----------
    tables
        Title -> table (rows = models or groups; numbers, NaN for "not applicable", text cells
        for published anchors).
    checks
        One line per project target: the figure, the target and whether it is met.
    """

    source: str
    tables: dict[str, pd.DataFrame]
    notes: list[str]
    params: dict[str, object]
    checks: list[str] = field(default_factory=list)
    seconds: float = float("nan")
    run_id: str | None = None

    def metrics(self) -> dict[str, float]:
        """Every finite number of the computed rows as ``<table>/<row>/<column>`` (for MLflow)."""
        out = {}
        for title, table in self.tables.items():
            for row, values in table.iterrows():
                if str(values.get("basis", "")).startswith("published"):
                    continue
                for col, value in values.items():
                    if isinstance(value, (int, float, np.number)) and np.isfinite(value):
                        out[slug(f"{title}/{row}/{col}")] = float(value)
        return out

    def to_markdown(self) -> str:
        """The tables, target checks and notes as Markdown."""
        parts = []
        for title, table in self.tables.items():
            parts += [f"**{title}**", "", markdown_table(table), ""]
        if self.checks:
            parts += ["Targets:", "", *[f"- {c}" for c in self.checks], ""]
        parts += ["Notes:", "", *[f"- {n}" for n in self.notes]]
        return "\n".join(parts) + "\n"


def slug(text: str) -> str:
    """``text`` reduced to characters MLflow accepts in metric and artefact names."""
    return re.sub(r"[^A-Za-z0-9_./ -]+", "_", text).strip("_")


def format_cell(value: object, column: str = "") -> str:
    """A table cell: counts with separators, rates with 4 decimals, NaN as a dash."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, (int, np.integer)) or column == "n":
        return f"{int(cast(SupportsInt, value)):,}"
    if isinstance(value, (float, np.floating)):
        return f"{value:.4f}"
    return str(value).replace("|", "\\|")


def markdown_table(table: pd.DataFrame) -> str:
    """``table`` as a Markdown table, its index as the first column."""
    header = [str(table.index.name or ""), *map(str, table.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row, values in table.iterrows():
        lines.append("| " + " | ".join([str(row), *(format_cell(v, str(c)) for c, v in values.items())]) + " |")
    return "\n".join(lines)


def basis_label(test: RealFrame | None, folds: int, repeats: int = 1) -> str:
    """What the computed figures rest on: the test file or (repeated) K-fold CV."""
    if test is not None:
        return "test file"
    return f"{repeats}x{folds}-fold CV" if repeats > 1 else f"{folds}-fold CV"


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC, Brier and ECE of probabilities ``p``."""
    m = classification_metrics(y, p)
    return {"AUC": m["roc_auc"], "Brier": m["brier"], "ECE": m["ece"]}


def make_table(rows: dict[str, dict[str, object]], name: str) -> pd.DataFrame:
    """Rows -> table; the AUC of a base-rate forecast (constant within each fold) is left blank."""
    for row, values in rows.items():
        if row.startswith("base-rate"):
            values.update({k: float("nan") for k in ("AUC", "AUC mean", "AUC sd") if k in values})
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = name
    return table


def brier_within(y: np.ndarray, p: np.ndarray, rows: np.ndarray) -> float:
    """Brier score on the selected rows (NaN when none)."""
    return float(np.mean((p[rows] - y[rows]) ** 2)) if rows.any() else float("nan")


def ece_floor(p: np.ndarray, *, seed: int, draws: int = 200) -> float:
    """Mean ECE of a perfectly calibrated score with these values (outcomes drawn from ``p``): the noise floor."""
    rng = np.random.default_rng(seed)
    return float(np.mean([expected_calibration_error((rng.random(len(p)) < p).astype(int), p) for _ in range(draws)]))
