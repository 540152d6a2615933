"""How a tier decision is written for a caseworker, in Chinese and English (beside the tier policy).

A decision carries two tiers (design.md, "Tiers: what an answer says"): the tier by risk (the
band's) and the effective tier (after the mandatory rules). :func:`tier_text` says which decided
and, for a time-limited rule, until when it applies and which tier follows: at intake everyone is
strict for the first two months by rule, so the news is the tier by risk that applies after that.
"""

from __future__ import annotations

import datetime as dt

from features.vocab import Lang, Stage
from models.cutoffs import BandCutoffs, percent
from models.tier_policy import Band, TierDecision, TierPolicy

__all__ = ["band_range", "risk_clause", "tier_text"]


def band_range(cutoffs: BandCutoffs, band: Band) -> str:
    """The probabilities of ``band`` under ``cutoffs``, e.g. ``10%-25%`` or ``>= 23.15%``."""
    medium, high = (percent(p) for p in cutoffs.edges)
    if band is Band.LOW:
        return f"< {medium}"
    if band is Band.HIGH:
        return f">= {high}"
    return f"{medium}-{high}"


def risk_clause(policy: TierPolicy, stage: Stage | str, decision: TierDecision, probability: float, lang: Lang) -> str:
    """ "模型风险概率12.0%，属中风险（10%-25%），按风险等级为普管" / "... ordinary tier by risk".

    The band's range is that of the cut-offs that gave it (``decision.cutoffs``: the scoring model's).
    """
    cutoffs = decision.cutoffs or policy.cutoffs(stage)
    band, tier, span = decision.band, decision.tier_by_risk, band_range(cutoffs, decision.band)
    if lang == "zh":
        return f"模型风险概率{probability:.1%}，属{band.label('zh')}风险（{span}），按风险等级为{tier.label('zh')}"
    return (
        f"model probability {probability:.1%} is in the {band.label('en')} band ({span}): "
        f"{tier.label('en')} tier by risk"
    )


def tier_text(
    policy: TierPolicy,
    stage: Stage | str,
    decision: TierDecision,
    *,
    probability: float,
    lang: Lang,
    until: dt.date | None = None,
) -> str:
    """Why the effective tier is what it is, and what follows a time-limited rule (``until``: its last day)."""
    risk = risk_clause(policy, stage, decision, probability, lang)
    if decision.reason == "band":
        return risk
    rule = decision.rule_text(lang)
    if until is None or decision.then is None:
        return f"{rule}；{risk}" if lang == "zh" else f"{rule}; by risk alone: {risk}"
    then = decision.then
    if lang == "zh":
        after = (
            f"此后按风险等级为{then.tier.label('zh')}"
            if then.reason == "band"
            else f"此后仍为{then.tier.label('zh')}（{then.rule_text('zh')}）"
        )
        return f"{rule}，至{until.isoformat()}；{after}。{risk}"
    after = (
        f"after that the tier by risk applies: {then.tier.label('en')}"
        if then.reason == "band"
        else f"after that still {then.tier.label('en')} ({then.rule_text('en')})"
    )
    return f"{rule} until {until.isoformat()}; {after}. {risk[0].upper()}{risk[1:]}"
