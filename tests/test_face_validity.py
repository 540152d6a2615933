"""Face validity (design.md): one more adverse fact never lowers a person's risk, at any stage, for either model kind.

The metamorphic test adds each adverse fact of ``features.adverse`` to 300 synthetic persons the models
never saw, at every stage, for the booster and the logistic model, and counts anybody whose calibrated
risk fell by more than 0.001: every adverse event at seven dates before the assessment (and at any day in
the property test), the same event more recent, one more prior conviction or supervision, an adverse
intake flag. It also checks what makes that hold by construction (every feature an adverse fact moves has
a direction and moves that way), that the check catches a model that breaks it and the gate refuses one,
and that no reason says the absence of an adverse record raises the risk.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evaluation import AdverseVariants, face_validity
from features.adverse import ADVERSE_EVENT_TYPES, AdverseFact, adverse_facts
from features.catalog import CATALOG
from features.labels import make_stage_frame
from features.schema import CaseTables
from features.synthetic import CohortConfig, generate_cohort
from features.vocab import Stage
from models.estimator import LinearStageModel, StageEstimator
from serving.scoring import reasons
from training.config import FaceValidityConfig, GateConfig, TrainConfig
from training.fit import fit_stage
from training.promote import face_validity_criterion

STAGES = list(Stage)
KINDS = ("lightgbm", "logistic")


@pytest.fixture(scope="module")
def fresh() -> CaseTables:
    """300 persons no model was trained on."""
    return generate_cohort(CohortConfig(persons=300, seed=4242))


@pytest.fixture(scope="module")
def variants(fresh: CaseTables) -> dict[Stage, AdverseVariants]:
    """The fresh persons' features at each stage, and again with each adverse fact added (built once)."""
    return {stage: AdverseVariants.build(fresh.persons, fresh.events, stage) for stage in STAGES}


@pytest.fixture(scope="module")
def fitted() -> dict[tuple[Stage, str], StageEstimator]:
    """Both model kinds of every stage, trained on a small cohort with a one-point search."""
    tables = generate_cohort(CohortConfig(persons=6000, seed=7))
    config = TrainConfig.load().override(search={"budget": 1})
    out: dict[tuple[Stage, str], StageEstimator] = {}
    for stage in STAGES:
        fit = fit_stage(make_stage_frame(tables, stage), config=config, seed=0)
        out[stage, "lightgbm"], out[stage, "logistic"] = fit.model, fit.baseline
    return out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("stage", STAGES, ids=[s.value for s in STAGES])
def test_no_adverse_fact_lowers_anybodys_risk(
    fitted: dict[tuple[Stage, str], StageEstimator], variants: dict[Stage, AdverseVariants], stage: Stage, kind: str
) -> None:
    check = face_validity(fitted[stage, kind], variants=variants[stage])
    assert check.reversals == 0, check.describe()
    assert len(check.table) == len(adverse_facts())
    # the check is not vacuous: adverse facts move the risk of most persons, and upwards
    assert check.table["raised"].sum() > 0.5 * check.table["changed"].sum() > 0


@pytest.mark.parametrize("stage", STAGES, ids=[s.value for s in STAGES])
def test_every_feature_an_adverse_fact_moves_moves_towards_risk(
    variants: dict[Stage, AdverseVariants], stage: Stage
) -> None:
    """What makes the property hold by construction, whatever the model: every feature an adverse fact changes
    has a catalog direction, "nothing on record" reads as its lowest-risk value, and the change goes the risky way."""
    before = variants[stage].before
    for fact, after in zip(variants[stage].facts, variants[stage].after, strict=True):
        for name in before.columns:
            spec = CATALOG[name]
            if spec.kind == "categorical":
                assert before[name].equals(after[name]), (fact.name, name)
                continue
            old, new = (_model_value(spec, col[name].to_numpy(dtype=float)) for col in (before, after))
            moved = ~np.isclose(old, new, equal_nan=True)
            if not moved.any():
                continue
            assert spec.direction != 0, f"{fact.name} moves {name}, which has no direction"
            assert (np.sign(new[moved] - old[moved]) == spec.direction).all(), (fact.name, name)


def _model_value(spec: Any, values: np.ndarray) -> np.ndarray:
    """A feature's values as the models read them ("nothing on record" as the lowest-risk value)."""
    if spec.no_record is None:
        return values
    values = np.where(np.isnan(values), spec.no_record, values)
    bound = np.maximum if spec.direction > 0 else np.minimum
    return np.asarray(bound(values, spec.no_record), dtype=float)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    person=st.integers(0, 299),
    event_type=st.sampled_from(ADVERSE_EVENT_TYPES),
    days_before=st.integers(1, 4000),
    stage=st.sampled_from(STAGES),
    kind=st.sampled_from(KINDS),
)
def test_an_adverse_event_on_any_day_never_lowers_the_risk(
    fitted: dict[tuple[Stage, str], StageEstimator],
    fresh: CaseTables,
    person: int,
    event_type: Any,
    days_before: int,
    stage: Stage,
    kind: str,
) -> None:
    persons = fresh.persons.iloc[[person]].reset_index(drop=True)
    events = fresh.events[fresh.events["person_id"].astype(str) == persons["person_id"].iloc[0]]
    fact = AdverseFact("event", event_type, days_before)
    check = face_validity(fitted[stage, kind], persons, events, stage=stage, facts=[fact])
    assert check.reversals == 0, check.describe()


class _Rewarding(StageEstimator):
    """A model that lowers the risk of a person with police penalties: what the gate must refuse."""

    kind = "logistic"

    def __init__(self, inner: LinearStageModel) -> None:
        self.inner = inner
        self.stage = inner.stage
        self.protected_inputs = inner.protected_inputs
        self.calibrator_ = inner.calibrator_

    def trained_categories(self) -> list[list[Any]]:
        return self.inner.trained_categories()

    def raw_score(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        M = X if isinstance(X, np.ndarray) else self.matrix(X)
        penalties = M[:, self.feature_names.index("police_penalty_term")]
        return np.asarray(self.inner.raw_score(M) - 0.8 * penalties)


def test_the_check_finds_a_model_that_rewards_police_penalties_and_the_gate_refuses_it(
    fitted: dict[tuple[Stage, str], StageEstimator], variants: dict[Stage, AdverseVariants]
) -> None:
    inner = fitted[Stage.RELEASE, "logistic"]
    assert isinstance(inner, LinearStageModel)
    bad = _Rewarding(inner)
    check = face_validity(bad, variants=variants[Stage.RELEASE])
    reversed_facts = set(check.table.loc[check.table["reversals"] > 0, "fact"])
    assert reversed_facts and all(f.startswith("police_penalty") for f in reversed_facts), check.describe()
    gate = GateConfig.load().model_copy(update={"face_validity": FaceValidityConfig(persons=60, seed=3)})
    refused = face_validity_criterion(bad, Stage.RELEASE, gate)
    assert not refused.passed and "police_penalty" in refused.message
    assert face_validity_criterion(inner, Stage.RELEASE, gate).passed


@pytest.mark.parametrize("stage", STAGES, ids=[s.value for s in STAGES])
def test_no_reason_says_nothing_on_record_raises_the_risk(
    fitted: dict[tuple[Stage, str], StageEstimator], variants: dict[Stage, AdverseVariants], stage: Stage
) -> None:
    model = fitted[stage, "lightgbm"]  # TreeSHAP can give a lowest-risk value a positive share; the logistic cannot
    X = variants[stage].before
    contributions = model.contribution_matrix(X)[:, :-1]
    raw = model.raw_score(X)
    points = model.points_of_risk(raw, contributions)
    names = model.feature_names
    shown = 0
    for i in range(len(X)):
        values = [X[n].iloc[i] for n in names]
        for lang in ("zh", "en"):
            for reason in reasons(names, contributions[i], values, lang, points=points[i], typical=model.typical):
                shown += 1
                if reason.direction == "raises":
                    value = values[names.index(reason.feature)]
                    assert not CATALOG[reason.feature].is_no_record(value), (reason.feature, reason.text)
    assert shown > 0


def test_the_logistic_model_does_not_extrapolate_beyond_its_training_range(
    fitted: dict[tuple[Stage, str], StageEstimator], variants: dict[Stage, AdverseVariants]
) -> None:
    """A mid-term assessment made at the end of a term (share served 1 where training saw about 0.5) reads as the
    training edge, not as a line drawn far past it (which gave a risk of 0.0% in the demo)."""
    model = fitted[Stage.MIDTERM, "logistic"]
    assert isinstance(model, LinearStageModel)
    X = variants[Stage.MIDTERM].before.head(50).copy()
    j = model.feature_names.index("share_served")
    assert model.upper_[j] < 0.6  # mid-term training rows sit at the middle of the term
    edge, beyond = X.copy(), X.copy()
    edge["share_served"], beyond["share_served"] = model.upper_[j], 1.0
    np.testing.assert_allclose(model.predict_proba(beyond), model.predict_proba(edge))
