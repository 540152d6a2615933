"""Face validity of a stage model: one more adverse fact never lowers anybody's risk.

A metamorphic check (design.md, "Face validity"): every person of a cohort is scored at the
model's stage, then again with each adverse fact of :func:`features.adverse.adverse_facts` added to
their record, through the real feature pipeline. A *reversal* is a person whose calibrated risk
drops by more than ``tolerance`` (0.001 by default: an isotonic calibrator may step between ties).
The promotion gate refuses a model with any reversal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.adverse import AdverseFact, adverse_facts, with_fact
from features.pipeline import assessment_dates, build_features
from features.vocab import Stage
from models.estimator import StageEstimator

TOLERANCE = 0.001


@dataclass(frozen=True)
class FaceValidity:
    """What the check found: per fact, how many persons' risk rose, stayed and fell (beyond the tolerance)."""

    stage: str
    persons: int
    tolerance: float
    table: pd.DataFrame = field(repr=False)  # one row per fact: fact, changed, raised, reversals, worst_drop

    @property
    def reversals(self) -> int:
        return int(self.table["reversals"].sum())

    @property
    def worst_drop(self) -> float:
        return float(self.table["worst_drop"].max()) if len(self.table) else 0.0

    @property
    def passed(self) -> bool:
        return self.reversals == 0

    def describe(self) -> str:
        """One line: the verdict, and the worst facts if any reversed."""
        head = (
            f"face validity at {self.stage}: {self.reversals} reversals in {len(self.table)} adverse facts x "
            f"{self.persons} persons (a risk lowered by more than {self.tolerance:g})"
        )
        if self.passed:
            return head
        worst = self.table[self.table["reversals"] > 0].sort_values("worst_drop", ascending=False).head(3)
        return (
            head
            + "; worst: "
            + ", ".join(f"{r.fact} ({r.reversals} persons, down to -{r.worst_drop:.4f})" for r in worst.itertuples())
        )


@dataclass(frozen=True)
class AdverseVariants:
    """A cohort's feature frame at one stage, and the frame again with each adverse fact added (built once).

    One set of variants serves every model of the stage (both kinds, the gate's candidate and a test's).
    """

    stage: Stage
    facts: list[AdverseFact]
    before: pd.DataFrame = field(repr=False)
    after: list[pd.DataFrame] = field(repr=False)

    @classmethod
    def build(
        cls, persons: pd.DataFrame, events: pd.DataFrame, stage: Stage | str, facts: list[AdverseFact] | None = None
    ) -> AdverseVariants:
        """The stage's feature frame of the cohort, and of the cohort with each fact added."""
        stage = Stage(stage)
        facts = adverse_facts() if facts is None else facts
        assessments = assessment_dates(persons, stage)
        before = build_features(persons, events, assessments, stage=stage)
        after = [
            build_features(*with_fact(persons, events, assessments, fact), assessments, stage=stage) for fact in facts
        ]
        return cls(stage, list(facts), before, after)


def face_validity(
    model: StageEstimator,
    persons: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
    *,
    stage: Stage | str | None = None,
    facts: list[AdverseFact] | None = None,
    variants: AdverseVariants | None = None,
    tolerance: float = TOLERANCE,
) -> FaceValidity:
    """Add each adverse fact to every person's record and count who got a lower risk.

    ``persons`` and ``events`` are canonical tables (a synthetic cohort will do: the property holds
    for every record); each person is assessed at the stage's date (:func:`assessment_dates`).
    Give ``variants`` instead to check several models on the same cohort without rebuilding it.
    """
    if variants is None:
        if persons is None or events is None:
            raise ValueError("face_validity needs persons and events, or variants")
        variants = AdverseVariants.build(persons, events, stage or model.stage, facts)
    elif Stage(stage or model.stage) != variants.stage:
        raise ValueError(f"variants of {variants.stage.value} for a {Stage(stage or model.stage).value} model")
    before = np.asarray(model.predict_proba(variants.before), dtype=float)
    after = np.asarray(model.predict_proba(pd.concat(variants.after, ignore_index=True)), dtype=float)
    n = len(before)
    rows = []
    for k, fact in enumerate(variants.facts):
        change = after[k * n : (k + 1) * n] - before
        rows.append(
            {
                "fact": fact.name,
                "changed": int(np.sum(np.abs(change) > 1e-12)),
                "raised": int(np.sum(change > 1e-12)),
                "reversals": int(np.sum(change < -tolerance)),
                "worst_drop": float(max(0.0, -change.min())) if n else 0.0,
            }
        )
    return FaceValidity(variants.stage.value, n, tolerance, pd.DataFrame(rows))


__all__ = ["TOLERANCE", "AdverseVariants", "FaceValidity", "face_validity"]
