"""Reading an answer back: what a stored or returned assessment says, for the rooms that show or act on it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from features.catalog import CATALOG, Typical
from features.vocab import Lang, Stage, Tier
from models.cutoffs import BandCutoffs
from models.tier_policy import Band, TierPolicy
from models.tier_wording import tier_text
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


def answer_in(
    answer: Mapping[str, Any],
    explanation: Mapping[str, Any],
    lang: Lang,
    *,
    policy: TierPolicy,
    typical: Mapping[str, Typical] | None = None,
) -> dict[str, Any]:
    """A stored answer's words in ``lang``, made again from its codes and values (design.md, "Dates, rules
    and offices": stored answers keep their bytes; pages render them in the viewer's language).

    The stored answer itself is not changed: this returns a copy whose labels (stage, band, tiers) and
    reasons (label, value, typical value, sentence) are in ``lang``, from the stored feature values of
    ``explanation``. ``typical`` is the stage's typical values of the model that made the answer (None when
    that model is no longer served: the sentences then leave out the comparison). The tier's sentence is
    made again when ``policy`` is the version the answer was made under, with the band cut-offs the answer
    stored (or, for an answer stored before they were, the policy's own when they are probabilities); else it
    is kept as stored.
    """
    if answer.get("lang") == lang:
        return dict(answer)
    out = dict(answer)
    stage = Stage(answer["stage"]["code"])
    out["lang"] = lang
    out["stage"] = {"code": stage.value, "label": stage.label(lang)}
    out["band"] = {"code": answer["band"]["code"], "label": Band(answer["band"]["code"]).label(lang)}
    features = explanation.get("features", {})
    tier = dict(answer["tier"])
    for key in ("tier", "tier_by_risk", "tier_after_rule"):
        if isinstance(tier.get(key), Mapping):
            tier[key] = {"code": tier[key]["code"], "label": Tier(tier[key]["code"]).label(lang)}
    stored = answer.get("band_cutoffs")
    cutoffs = BandCutoffs.from_record(stored) if isinstance(stored, Mapping) else None
    if policy.version == answer.get("policy_version") and features and (cutoffs or not policy.stage(stage).relative):
        decision = policy.decide(stage, float(answer["probability"]), features, cutoffs=cutoffs)
        until = tier.get("rule_until")
        day = dt.date.fromisoformat(until) if isinstance(until, str) else until
        p = float(answer["probability"])
        tier["text"] = tier_text(policy, stage, decision, probability=p, lang=lang, until=day)
    out["tier"] = tier
    reasons = []
    for r in answer.get("reasons", []):
        name = r["feature"]
        if name not in CATALOG or name not in features:
            reasons.append(dict(r))
            continue
        spec, value = CATALOG[name], features[name]
        known = (typical or {}).get(name)
        reasons.append(
            {
                **r,
                "label": spec.label(lang),
                "value_text": spec.value_text(value, lang),
                "typical_text": spec.typical_text(value, known, lang) if known is not None else None,
                "text": spec.describe(value, lang, typical=known),
            }
        )
    out["reasons"] = reasons
    return out
