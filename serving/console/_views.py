"""What the pages show, computed from stored answers and explanations (no scoring here).

Everything is read from what the service returned and stored (``serving.audit``): the
console never recomputes a probability. The waterfall turns the stored log-odds contributions
into steps of probability along the path from the base value (a typical person of the stage)
to this person's raw score, and shows the calibration's own step to the probability returned.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from features.catalog import CATALOG
from features.vocab import Stage, Tier
from models.tier_policy import TierPolicy
from serving.audit import AuditRecord
from serving.cases import ReviewPolicy
from serving.console._charts import Point, Step, risk_history, waterfall
from serving.console._i18n import Lang, text
from serving.scoring import answer_in


def sigmoid(x: float) -> float:
    """Logistic function, stable at both ends."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def rule_text(policy: TierPolicy, lang: Lang) -> Callable[[str | None], str]:
    """A mandatory rule's words in ``lang`` by its id, from every stage of ``policy`` (the id itself if unknown)."""
    words = {r.id: (r.zh if lang == "zh" else r.en) for s in Stage for r in policy.stage(s).rules}
    return lambda rule_id: words.get(rule_id or "", rule_id or "")


def tier_label(code: str, lang: Lang) -> str:
    try:
        return Tier(code).label(lang)
    except ValueError:
        return code


def shown(backend: Any, record: AuditRecord, lang: Lang) -> dict[str, Any]:
    """A stored answer as the viewer reads it: its words in ``lang``, made from its codes and values
    (:func:`serving.scoring.answer_in`); the stored bytes stay as they were returned."""
    response = record.response
    typical = backend.typical(record.stage, str(response.get("model", {}).get("version", "")))
    return answer_in(response, record.explanation, lang, policy=backend.policy, typical=typical)


def reasons_chart(response: Mapping[str, Any], lang: Lang) -> Markup:
    """The waterfall of one answer's reasons, from the typical person's risk to this person's."""
    expl = response["explanation"]
    base, raw, prob = float(expl["base_value"]), float(expl["raw_score"]), float(response["probability"])
    steps, level = [], base
    for r in response["reasons"]:
        c = float(r["contribution"])
        steps.append(Step(f"{r['label']}: {r['value_text']}", sigmoid(level + c) - sigmoid(level)))
        level += c
    steps.append(Step(text("other_factors", lang), sigmoid(raw) - sigmoid(level)))
    steps.append(Step(text("calibration", lang), prob - sigmoid(raw)))
    return waterfall(
        start_label=text("typical", lang),
        start=sigmoid(base),
        steps=steps,
        end_label=text("this_person", lang),
        end=prob,
        title=text("waterfall", lang),
        points_unit="个百分点" if lang == "zh" else " pp",
    )


@dataclass(frozen=True)
class Moved:
    """One factor whose value or share changed between two assessments of the same stage."""

    label: str
    before: str
    after: str
    delta: float  # its share of the change in risk, in percentage points


def what_moved(before: AuditRecord, after: AuditRecord, lang: Lang, *, top: int = 8) -> list[Moved]:
    """Factors whose value changed between two assessments of one stage, largest share of the change first.

    Each factor's share is its change in log-odds contribution as a share of the change in the raw score,
    times the change in the calibrated probability, in percentage points (as the review meeting's "what
    moved"); factors whose share rounds to 0.0 points are left out.
    """
    eb, ea = before.explanation, after.explanation
    fb, fa = eb.get("features", {}), ea.get("features", {})
    cb, ca = eb.get("contributions", {}), ea.get("contributions", {})
    change = float(ea.get("raw_score", 0.0)) - float(eb.get("raw_score", 0.0))
    dp = float(after.response["probability"]) - float(before.response["probability"])
    out = []
    for name in ca:
        if name in fb and fb.get(name) == fa.get(name):
            continue
        d = float(ca[name]) - float(cb.get(name, 0.0))
        points = 100 * dp * d / change if abs(change) > 1e-12 else 0.0
        if abs(points) < 0.05:
            continue
        spec = CATALOG.get(name)
        label = spec.label(lang) if spec else name
        was, now = (spec.value_text(v, lang) if spec else str(v) for v in (fb.get(name), fa.get(name)))
        out.append(Moved(label, was, now, points))
    out.sort(key=lambda m: -abs(m.delta))
    return out[:top]


def history_chart(records: Sequence[AuditRecord], lang: Lang, policy: TierPolicy) -> Markup:
    """Risk over time: every stored assessment of a person, by assessment date."""
    points = []
    for rec in records:
        resp = rec.response
        stage = Stage(resp["stage"]["code"])
        points.append(
            Point(
                when=str(resp["as_of"]),
                probability=float(resp["probability"]),
                stage=stage.value,
                label=f"{stage.label(lang)} {resp['as_of']}: {float(resp['probability']):.1%}",
            )
        )
    return risk_history(points, title=text("history", lang))


def by_date(record: AuditRecord) -> tuple[str, int]:
    """The order of assessments in time: by assessment date, then by when they were recorded."""
    return str(record.response["as_of"]), record.seq


def latest_by_stage(records: Sequence[AuditRecord]) -> list[AuditRecord]:
    """Each stage's latest assessment (:func:`by_date`), in stage order."""
    latest: dict[str, AuditRecord] = {}
    for rec in records:
        have = latest.get(rec.stage)
        if have is None or by_date(rec) >= by_date(have):
            latest[rec.stage] = rec
    return [latest[s.value] for s in Stage if s.value in latest]


def previous_same_stage(records: Sequence[AuditRecord], current: AuditRecord) -> AuditRecord | None:
    """The latest assessment of the same stage before ``current`` in time (:func:`by_date`: an earlier date,
    or the same date recorded earlier), if any: "what moved" always runs from the earlier to the later,
    whatever order the two were recorded in."""
    now = by_date(current)
    earlier = [r for r in records if r.stage == current.stage and by_date(r) < now]
    return max(earlier, key=by_date) if earlier else None


def alert_legend(review: ReviewPolicy, tiers: TierPolicy, lang: Lang) -> dict[str, Any]:
    """The template values of ``_alert_legend.html``: each colour with its conditions (from the review policy,
    rules by their text in the tier policy) and how to read them (order, each stage's band cut-offs)."""
    return {
        "legend": [(c.value, c.label(lang), words) for c, words in review.legend(lang, tiers)],
        "legend_notes": review.legend_notes(lang, tiers),
        "legend_version": review.version,
    }
