"""The revalidation report in the shape of an annual revalidation: markdown and one HTML page (plots inlined)."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluation.revalidation._revalidate import RevalidationReport

SECTIONS = (
    ("Assessments by status on the as-of date", "counts"),
    ("Discrimination and calibration of the matured formal assessments", "performance"),
    ("Observed against predicted, by band", "bands"),
    ("Did the outcome follow the change of risk between two assessments?", "change"),
    ("Override analysis: approved decisions against the tier by risk", "overrides"),
    ("Override analysis by reason code", "override_reasons"),
    ("Review-meeting scores (apart from the formal assessments)", "review"),
)
INTRO = (
    "Only assessments whose whole horizon has passed by the as-of date count (a re-offence within the horizon "
    "known by then, or follow-up covering it); the immature are counted and left out. Review-meeting scores are "
    "never formal assessments and are judged apart. O/E is re-offences observed over re-offences expected (the "
    "sum of the probabilities): below 1 the risk was overstated, above 1 understated."
)


def _cell(value: Any) -> str:
    if isinstance(value, float | np.floating):
        number = float(value)
        return "n/a" if math.isnan(number) else f"{number:.4f}" if abs(number) < 10 else f"{number:,.0f}"
    return str(value)


def _md_table(frame: pd.DataFrame) -> list[str]:
    if frame.empty:
        return ["(none)"]
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return lines


def _groups(report: RevalidationReport) -> pd.DataFrame:
    parts = [
        cal.table.assign(stage=key[0], model_version=key[1], policy_version=key[2])
        for key, cal in report.groups.items()
    ]
    if not parts:
        return pd.DataFrame()
    columns = [
        "stage",
        "model_version",
        "policy_version",
        "grouping",
        "group",
        "n",
        "observed",
        "expected",
        "ratio",
        "low",
        "high",
        "status",
    ]
    return pd.concat(parts, ignore_index=True)[columns]


def render_markdown(report: RevalidationReport) -> str:
    lines = [f"# Revalidation on outcomes known by {report.as_of}", "", INTRO, ""]
    lines += [f"- {n}" for n in report.notes]
    for title, name in SECTIONS:
        lines += ["", f"## {title}", "", *_md_table(getattr(report, name))]
        if name == "bands":
            lines += ["", "## Calibration within groups (bootstrap intervals)", "", *_md_table(_groups(report))]
    return "\n".join(lines) + "\n"


def _html_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _band_plot(report: RevalidationReport) -> str | None:
    if report.bands.empty:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for key, part in report.bands.groupby(["stage", "model_version"], sort=True):
        expected = part["expected"] / part["n"]
        ax.plot(expected, part["observed_rate"], marker="o", label=f"{key[0]} v{key[1]}")
    top = float(np.nanmax([report.bands["observed_rate"].max(), (report.bands["expected"] / report.bands["n"]).max()]))
    ax.plot([0, top], [0, top], color="#999", linestyle="--", label="observed = predicted")
    ax.set_xlabel("predicted rate (mean probability) of the band")
    ax.set_ylabel("observed re-offence rate")
    ax.legend(fontsize=7)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def render_html(report: RevalidationReport) -> str:
    esc = html.escape
    parts = [f"<h1>Revalidation on outcomes known by {esc(str(report.as_of))}</h1>", f"<p>{esc(INTRO)}</p>"]
    parts += [f"<p><strong>{esc(n)}</strong></p>" for n in report.notes]
    for title, name in SECTIONS:
        parts += [f"<h2>{esc(title)}</h2>", _html_table(getattr(report, name))]
        if name == "bands":
            plot = _band_plot(report)
            if plot:
                parts.append(f'<img alt="observed against predicted by band" src="data:image/png;base64,{plot}">')
            parts += ["<h2>Calibration within groups (bootstrap intervals)</h2>", _html_table(_groups(report))]
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:75em} table{border-collapse:collapse;margin-bottom:1em}"
        " td,th{border:1px solid #bbb;padding:.2em .5em;text-align:left} img{max-width:36em}"
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Revalidation {esc(str(report.as_of))}'
        f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>\n"
    )


def report_record(report: RevalidationReport) -> dict[str, Any]:
    """The tables as JSON-able records (NaN as null)."""

    def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
        return json.loads(frame.to_json(orient="records"))  # type: ignore[no-any-return]

    out: dict[str, Any] = {"as_of": report.as_of.isoformat(), "notes": report.notes}
    out.update({name: records(getattr(report, name)) for _, name in SECTIONS})
    out["groups"] = records(_groups(report))
    return out


def write_report(report: RevalidationReport, out_dir: Path) -> dict[str, Path]:
    """Write ``revalidation.html``, ``revalidation.md`` and ``revalidation.json``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "html": out_dir / "revalidation.html",
        "markdown": out_dir / "revalidation.md",
        "json": out_dir / "revalidation.json",
    }
    paths["html"].write_text(render_html(report), encoding="utf-8")
    paths["markdown"].write_text(render_markdown(report), encoding="utf-8")
    paths["json"].write_text(json.dumps(report_record(report), indent=1), encoding="utf-8")
    return paths
