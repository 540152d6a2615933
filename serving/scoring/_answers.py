"""Reading an answer back: what a stored or returned assessment says, for the rooms that show or act on it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from models.tier_policy import TierPolicy
from serving.scoring.schemas import Assessment


def answer_tier_by_risk(answer: Assessment | Mapping[str, Any], policy: TierPolicy) -> str:
    """The tier by risk an answer gave (its ``tier.tier_by_risk``), as a code.

    Answers stored before that field existed carry only the band: their tier by risk is the band's tier
    under ``policy`` (:meth:`~models.tier_policy.TierPolicy.tier_by_risk`, the one rule).
    """
    if isinstance(answer, Assessment):
        if answer.tier.tier_by_risk is not None:
            return answer.tier.tier_by_risk.code
        stage, band = answer.stage.code, answer.band.code
    else:
        given = (answer.get("tier") or {}).get("tier_by_risk")
        if isinstance(given, Mapping) and given.get("code"):
            return str(given["code"])
        stage, band = answer["stage"]["code"], answer["band"]["code"]
    return policy.tier_by_risk(stage, band).value


def answer_tier(answer: Mapping[str, Any]) -> str:
    """The effective tier an answer (as JSON) returned: after the mandatory rules (design.md, "Tiers")."""
    return str(answer["tier"]["tier"]["code"])
