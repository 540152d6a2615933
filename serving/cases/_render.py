"""The review meeting's list as CSV and as a printable HTML page (Jinja2; in the run's language)."""

from __future__ import annotations

import csv
import io
from importlib import resources

from jinja2 import Environment, StrictUndefined, select_autoescape

from features.vocab import Lang, Stage, Tier
from models.tier_policy import Band, TierPolicy
from serving.cases._policy import Colour, ReviewPolicy
from serving.cases._schemas import ReviewRow, ReviewRun

#: The CSV's columns: first for people, in the run's language (labels and percentages), then the codes of
#: the same values for programs (their names never change with the language).
CSV_COLUMNS = {
    "zh": [
        "序号",
        "人员编号",
        "评估阶段",
        "风险概率",
        "风险等级",
        "预警",
        "按风险的等级",
        "执行等级",
        "依据",
        "现管理等级",
        "模型建议调整",
        "上次评估日期",
        "上次风险概率",
        "风险变化（百分点）",
        "变化因素",
        "评估编号",
    ],
    "en": [
        "rank",
        "person id",
        "stage",
        "risk",
        "risk band",
        "alert",
        "tier by risk",
        "effective tier",
        "basis",
        "current tier",
        "model would move",
        "previous assessment",
        "previous risk",
        "change (points)",
        "what moved",
        "assessment id",
    ],
}
CODE_COLUMNS = [
    "stage_code",
    "band_code",
    "alert_code",
    "tier_by_risk_code",
    "effective_tier_code",
    "rule_id",
    "current_tier_code",
    "mismatch_code",
]

_LABELS = {
    "zh": {
        "title": "风险研判分析会名单",
        "office": "司法所",
        "as_of": "研判日期",
        "count": "人数",
        "person": "人员编号",
        "stage": "评估阶段",
        "risk": "风险概率",
        "alert": "预警",
        "by_risk": "按风险的等级",
        "effective": "执行等级",
        "current": "现管理等级",
        "mismatch": "模型建议调整",
        # the console's words (serving/console/_i18n.py, mismatch_raise / mismatch_lower)
        "raise": "建议从严",
        "lower": "建议放宽",
        "none": "",
        "rule": "强制规则",
        "band": "风险等级",
        "run": "记录编号",
        "policy": "策略版本",
        "all": "全部",
        "summary": "变化",
        "legend": "预警颜色说明",
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
        "effective": "effective tier",
        "current": "current tier",
        "mismatch": "model would move",
        "raise": "to strict",
        "lower": "to ordinary",
        "none": "",
        "rule": "mandatory rule",
        "band": "risk band",
        "run": "run",
        "policy": "policy",
        "all": "all",
        "summary": "what moved",
        "legend": "What the alert colours mean",
    },
}


def _lang(run: ReviewRun, lang: str | None = None) -> Lang:
    """The language asked for (the reader's), else the run's own."""
    chosen = lang or run.lang
    return "zh" if chosen == "zh" else "en"


def _backdated(run: ReviewRun, lang: Lang) -> str:
    """What a backdated run says of itself, on paper as on the screen ("" for one run on its own date)."""
    if not run.backdated:
        return ""
    made = run.created_at[:10]
    if lang == "zh":
        return f"补做的研判：研判日期早于实际进行日期（{made}，{run.actor}）；其中的评分是研判评分，不计为正式评估。"
    return (
        f"A backdated review: dated before the day it was run ({made}, by {run.actor}); its scores are review "
        "scores, not formal assessments."
    )


def _pct(p: float | None) -> str:
    return "" if p is None else f"{100 * p:.1f}%"


def review_csv(run: ReviewRun, lang: str | None = None) -> str:
    """The run as CSV, one row per person sorted by risk as the run: labels in ``lang`` (default the run's)
    and probabilities in percent (one decimal), then the codes for programs. Starts with a byte order mark,
    so that Excel reads it as UTF-8 (on a Chinese Windows it guesses GBK otherwise); a backdated run says
    so in its last column (the words of what moved stay in the run's own language)."""
    lang = _lang(run, lang)
    words = _LABELS[lang]
    note = _backdated(run, lang)
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS[lang], *CODE_COLUMNS, "backdated"])
    for rank, r in enumerate(run.rows, 1):
        change = "" if r.previous_probability is None else f"{100 * (r.probability - r.previous_probability):+.1f}"
        writer.writerow(
            [
                rank,
                r.person_id,
                _stage(r.stage, lang),
                _pct(r.probability),
                _band(r.band, lang),
                _colour(r, lang),
                _tier(r.tier_by_risk, lang),
                _tier(r.effective_tier, lang),
                words["rule"] if r.rule_id else words["band"],
                _tier(r.current_tier, lang),
                words[r.mismatch],
                r.previous_as_of or "",
                _pct(r.previous_probability),
                change,
                ("；" if lang == "zh" else "; ").join(p.text for p in r.moved[:5]),
                r.assessment_id,
                r.stage,
                r.band,
                r.alert,
                r.tier_by_risk,
                r.effective_tier,
                r.rule_id or "",
                r.current_tier,
                r.mismatch,
                note,
            ]
        )
    return out.getvalue()


def review_html(
    run: ReviewRun, *, policy: ReviewPolicy | None = None, tiers: TierPolicy | None = None, lang: str | None = None
) -> str:
    """The run as a self-contained printable HTML page (no external assets), in the run's language, with what
    the alert colours mean (``policy``, ``tiers``: the review and tier policies, by default the shipped files;
    the legend is left out for a run made under another version of the review policy); ``lang``: the reader's
    language (default the run's). A backdated run says so at the top."""
    lang = _lang(run, lang)
    policy = policy or ReviewPolicy.load()
    tiers = tiers or TierPolicy.load()
    same = run.policy_version == policy.version
    env = Environment(autoescape=select_autoescape(default=True), undefined=StrictUndefined)
    template = env.from_string(resources.files("serving.cases").joinpath("templates/review.html.j2").read_text("utf-8"))
    return template.render(
        run=run,
        L=_LABELS[lang],
        stage=lambda code: _stage(code, lang),
        tier=lambda code: _tier(code, lang),
        why=lambda row: policy.alert_reason(row, run.policy_version, lang, tiers),
        legend=[(c.value, c.label(lang), ws) for c, ws in policy.legend(lang, tiers)] if same else [],
        notes=policy.legend_notes(lang, tiers) if same else [],
        backdated=_backdated(run, lang),
    )


def _stage(code: str, lang: Lang) -> str:
    return Stage(code).label(lang) if code in Stage.codes() else code


def _tier(code: str, lang: Lang) -> str:
    return Tier(code).label(lang) if code in Tier.codes() else code


def _band(code: str, lang: Lang) -> str:
    return Band(code).label(lang) if code in Band.codes() else code


def _colour(row: ReviewRow, lang: Lang) -> str:
    return Colour(row.alert).label(lang) if row.alert in Colour.codes() else row.alert_label
