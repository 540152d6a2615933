"""What the tier policy in force does with one model on its test rows: the model card's "Tier policy" figures.

At each band cut-off (resolved for the model: :meth:`models.tier_policy.TierPolicy.cutoffs`) the share of the
rows flagged, the precision and the recall, beside the share of the model's training persons at or above
it; and how many persons the mandatory rules make strict, in all and rule by rule (design.md, "Face
validity": the card shows what the policy flags and how many are strict by rule).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from evaluation._checks import check_binary_inputs
from features.vocab import Stage, Tier
from models.cutoffs import BandCutoffs, ResolvedCutoff
from models.tier_policy import TierPolicy


@dataclass(frozen=True)
class CutoffFigures:
    """One cut-off and what it flags on the rows (``flagged``: risk at or above it)."""

    name: str
    cutoff: ResolvedCutoff
    strict: bool
    flagged: int
    share_flagged: float
    precision: float
    recall: float


@dataclass(frozen=True)
class PolicyFigures:
    """The policy in force for one model on its test rows (:func:`policy_figures`).

    Attributes
    ----------
    version, stage : str
        The tier policy's version and the stage.
    cutoffs : BandCutoffs
        The band cut-offs resolved for the model.
    rows, positives : int
        Test rows and, among them, re-offences.
    at_cutoffs : list of CutoffFigures
        ``medium_from`` then ``high_from``; ``strict`` marks the strict-tier cut-off by risk.
    strict_by_risk, strict_by_rule, strict_in_effect : int
        Rows strict by their band alone, rows whose tier a mandatory rule decided, and rows strict either way.
    rule_only : int
        Rows strict by a rule and not by their band: what the rules add.
    by_rule : dict
        Rows each rule decided (the first rule that holds), in policy order.
    """

    version: str
    stage: str
    cutoffs: BandCutoffs
    rows: int
    positives: int
    at_cutoffs: list[CutoffFigures]
    strict_by_risk: int
    strict_by_rule: int
    strict_in_effect: int
    rule_only: int
    by_rule: dict[str, int]


def policy_figures(
    policy: TierPolicy,
    stage: Stage | str,
    *,
    y_true: ArrayLike,
    y_prob: ArrayLike,
    features: pd.DataFrame,
    cutoffs: BandCutoffs,
) -> PolicyFigures:
    """The figures of ``policy`` at ``stage`` on rows with outcomes ``y_true``, calibrated risks ``y_prob`` and
    feature rows ``features`` (for the mandatory rules), under the model's ``cutoffs``."""
    y, p = check_binary_inputs(y_true, y_prob)
    if len(features) != len(y):
        raise ValueError(f"{len(features)} feature rows for {len(y)} outcomes")
    sp = policy.stage(stage)
    strict_from = sp.strict_from(cutoffs)
    positives = int(y.sum())
    at_cutoffs = []
    for name, cutoff in (("medium_from", cutoffs.medium_from), ("high_from", cutoffs.high_from)):
        flag = p >= cutoff.probability
        hits = int(y[flag].sum())
        at_cutoffs.append(
            CutoffFigures(
                name,
                cutoff,
                cutoff.probability == strict_from,
                int(flag.sum()),
                float(flag.mean()),
                hits / int(flag.sum()) if flag.any() else math.nan,
                hits / positives if positives else math.nan,
            )
        )
    decisions = policy.decide_frame(stage, p, features, cutoffs=cutoffs)
    by_risk = np.array([d.tier_by_risk is Tier.STRICT for d in decisions], dtype=bool)
    by_rule = np.array([d.reason == "rule" for d in decisions], dtype=bool)
    counts = Counter(d.rule_id for d in decisions if d.rule_id is not None)
    return PolicyFigures(
        policy.version,
        Stage(stage).value,
        cutoffs,
        len(y),
        positives,
        at_cutoffs,
        int(by_risk.sum()),
        int(by_rule.sum()),
        int((by_risk | by_rule).sum()),
        int((by_rule & ~by_risk).sum()),
        {rule.id: counts[rule.id] for rule in sp.rules},
    )


__all__ = ["CutoffFigures", "PolicyFigures", "policy_figures"]
