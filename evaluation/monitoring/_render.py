"""The monitor's report as files: a self-contained HTML page with its plots (PNG inlined, nothing loaded from
elsewhere), the same in markdown, and the figures as JSON."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluation.monitoring._monitor import Check, MonitorReport
from evaluation.monitoring._profile import SCORE

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: inputs whose bins are drawn (the largest PSI first)
SHOWN_INPUTS = 6


def write_report(report: MonitorReport, out_dir: Path) -> dict[str, Path]:
    """Write ``monitor.html``, ``monitor.md`` and ``monitor.json`` to ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"html": out_dir / "monitor.html", "markdown": out_dir / "monitor.md", "json": out_dir / "monitor.json"}
    paths["html"].write_text(render_html(report), encoding="utf-8")
    paths["markdown"].write_text(render_markdown(report), encoding="utf-8")
    paths["json"].write_text(json.dumps(report_record(report), indent=1, allow_nan=False), encoding="utf-8")
    return paths


def report_record(report: MonitorReport) -> dict[str, Any]:
    """The report's figures as a JSON-able record (NaN as null)."""
    return {
        "stage": report.stage,
        "model": report.model,
        "since": report.since,
        "until": report.until,
        "rows": report.rows,
        "judged": report.judged,
        "config_version": report.config_version,
        "crossed": [c.name for c in report.crossed],
        "checks": [
            {
                "name": c.name,
                "group": c.group,
                "value": _num(c.value),
                "reference": _num(c.reference),
                "limit": c.limit,
                "status": c.status,
            }
            for c in report.checks
        ],
        "estimate": {
            "rows": report.estimate.rows,
            "roc_auc": _num(report.estimate.roc_auc),
            "brier": _num(report.estimate.brier),
            "expected_rate": _num(report.estimate.expected_rate),
        },
        "reference": {k: _num(v) for k, v in report.reference.items()},
        "notes": report.notes,
    }


def _num(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _headline(report: MonitorReport) -> str:
    if not report.judged:
        return "not judged: " + "; ".join(report.notes)
    crossed = report.crossed
    if not crossed:
        return "every check within its limit"
    return f"{len(crossed)} check(s) past their limit: " + ", ".join(c.name for c in crossed)


def _check_rows(checks: list[Check]) -> list[list[str]]:
    return [[c.name, c.group, _fmt(c.value), _fmt(c.reference), c.limit, c.status] for c in checks]


HEADER = ["check", "kind", "period", "training rows", "limit", "status"]


def render_markdown(report: MonitorReport) -> str:
    """The report in markdown (tables of every check)."""
    lines = [
        f"# Monitoring: {report.stage}, {report.model}",
        "",
        f"Period {report.since} to {report.until}: {report.rows} assessments. Limits: monitoring.yaml version "
        f"{report.config_version}.",
        "",
        f"**{_headline(report)}**",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    order = sorted(report.checks, key=lambda c: (c.status != "crossed", c.status != "moderate"))
    lines += ["| " + " | ".join(row) + " |" for row in _check_rows(order)]
    lines += [
        "",
        "Label-free estimates (CBPE) assume the probabilities are still calibrated for the period's population; "
        "a change in how the inputs relate to re-offending is only seen by revalidation on matured outcomes.",
    ]
    return "\n".join(lines) + "\n"


def render_html(report: MonitorReport) -> str:
    """The report as one HTML page with its plots inlined."""
    esc = html.escape
    order = sorted(report.checks, key=lambda c: (c.status != "crossed", c.status != "moderate"))
    rows = "".join(
        f'<tr class="{esc(c.status.replace(" ", "-"))}">' + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>"
        for c, row in zip(order, _check_rows(order), strict=True)
    )
    images = "".join(
        f'<figure><img alt="{esc(t)}" src="data:image/png;base64,{b}"><figcaption>{esc(t)}</figcaption></figure>'
        for t, b in _figures(report)
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Monitoring {esc(report.stage)} {esc(report.model)}</title>
<style>
body{{font-family:sans-serif;margin:2em;max-width:70em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #bbb;padding:.2em .5em;text-align:left}} tr.crossed td{{background:#f8d0d0}}
tr.moderate td{{background:#fbeec0}} tr.not-judged td{{color:#777}} figure{{display:inline-block;margin:.5em}}
img{{max-width:34em}}
</style></head><body>
<h1>Monitoring: {esc(report.stage)}, {esc(report.model)}</h1>
<p>Period {esc(report.since)} to {esc(report.until)}: {report.rows} assessments. Limits: monitoring.yaml version
{esc(report.config_version)}.</p>
<p><strong>{esc(_headline(report))}</strong></p>
<table><tr>{"".join(f"<th>{esc(h)}</th>" for h in HEADER)}</tr>{rows}</table>
<p>Label-free estimates (CBPE) assume the probabilities are still calibrated for the period's population; a change
in how the inputs relate to re-offending is only seen by revalidation on matured outcomes.</p>
{images}
</body></html>
"""


def _figures(report: MonitorReport) -> list[tuple[str, str]]:
    """(title, base64 PNG) of each plot: PSI per input, the score's bins, the most shifted inputs' bins."""
    if report.rows == 0:
        return []
    out = [("PSI per input (largest first)", _png(_psi_figure(report)))]
    out.append(("calibrated probability: training rows and period", _png(_bins_figure(report, SCORE))))
    shown = [n for n in report.psi_table()["name"] if n != SCORE][:SHOWN_INPUTS]
    out += [(f"{name}: training rows and period", _png(_bins_figure(report, name))) for name in shown]
    return out


def _new_figure(height: float = 3.6) -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _psi_figure(report: MonitorReport) -> Figure:
    table = report.psi_table().iloc[::-1]
    fig, ax = _new_figure(max(2.5, 0.22 * len(table) + 1))
    colours = ["#c0392b" if s == "crossed" else "#e0a800" if s == "moderate" else "#4a7bb7" for s in table["status"]]
    ax.barh(table["name"], table["psi"].fillna(0), color=colours)
    ax.set_xlabel("PSI")
    ax.tick_params(axis="y", labelsize=7)
    return fig


def _bins_figure(report: MonitorReport, name: str) -> Figure:
    bins = report.bins[name]
    fig, ax = _new_figure()
    x = np.arange(len(bins.labels))
    ax.bar(x - 0.2, bins.reference, width=0.4, label="training rows")
    ax.bar(x + 0.2, bins.current, width=0.4, label="period")
    ax.set_xticks(x, bins.labels, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("share of rows")
    ax.legend()
    return fig
