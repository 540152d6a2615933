"""The review meeting's list as CSV and as a printable HTML page (Jinja2; in the run's language)."""

from __future__ import annotations

import csv
import io
from importlib import resources

from jinja2 import Environment, StrictUndefined, select_autoescape

from serving.cases._schemas import ReviewRun

CSV_COLUMNS = [
    "rank",
    "person_id",
    "stage",
    "probability",
    "band",
    "alert",
    "tier_by_risk",
    "effective_tier",
    "rule_id",
    "current_tier",
    "mismatch",
    "previous_as_of",
    "previous_probability",
    "change_log_odds",
    "what_moved",
    "assessment_id",
]

_LABELS = {
    "zh": {
        "title": "风险研判分析会名单",
        "office": "司法所",
        "as_of": "研判日期",
        "count": "人数",
        "person": "人员编号",
        "stage": "评估",
        "risk": "风险概率",
        "alert": "预警",
        "by_risk": "按风险等级",
        "current": "现管理等级",
        "mismatch": "不一致",
        "moved": "变化因素",
        "raise": "建议升为严管",
        "lower": "可降为普管",
        "none": "",
        "strict": "严管",
        "ordinary": "普管",
        "run": "记录编号",
        "policy": "策略版本",
        "all": "全部",
        "summary": "概况",
    },
    "en": {
        "title": "Monthly risk review list",
        "office": "office",
        "as_of": "date",
        "count": "people",
        "person": "person",
        "stage": "stage",
        "risk": "risk",
        "alert": "alert",
        "by_risk": "tier by risk",
        "current": "current tier",
        "mismatch": "mismatch",
        "moved": "what moved",
        "raise": "model: strict",
        "lower": "model: ordinary",
        "none": "",
        "strict": "strict",
        "ordinary": "ordinary",
        "run": "run",
        "policy": "policy",
        "all": "all",
        "summary": "summary",
    },
}


def review_csv(run: ReviewRun) -> str:
    """The run as CSV (UTF-8 text, one row per person, sorted by risk as the run)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for rank, r in enumerate(run.rows, 1):
        writer.writerow(
            [
                rank,
                r.person_id,
                r.stage,
                f"{r.probability:.6f}",
                r.band,
                r.alert,
                r.tier_by_risk,
                r.effective_tier,
                r.rule_id or "",
                r.current_tier,
                r.mismatch,
                r.previous_as_of or "",
                "" if r.previous_probability is None else f"{r.previous_probability:.6f}",
                "" if r.change_log_odds is None else f"{r.change_log_odds:.6f}",
                "; ".join(p.text for p in r.moved[:5]),
                r.assessment_id,
            ]
        )
    return out.getvalue()


def review_html(run: ReviewRun) -> str:
    """The run as a self-contained printable HTML page (no external assets)."""
    env = Environment(autoescape=select_autoescape(default=True), undefined=StrictUndefined)
    template = env.from_string(resources.files("serving.cases").joinpath("templates/review.html.j2").read_text("utf-8"))
    return template.render(run=run, L=_LABELS["zh" if run.lang == "zh" else "en"])
