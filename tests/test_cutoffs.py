"""Cut-offs that mean something on any data (issue 21): a probability, a multiple of the stage's base rate or
the share to flag, resolved against the reference statistics each model keeps of its training rows.

The stated tolerance: with a complete reference (at most ``MAX_LEVELS`` distinct risks, an isotonic
calibrator's steps) a share cut-off flags, on the training rows, exactly the share the reference reports,
and that share is the nearest to the policy's that the tied risks allow; with more distinct risks the
reference keeps a grid of quantiles, and on rows without ties the share flagged is within one grid step
(1/grid) plus one row (1/n) of the policy's.
"""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from service_support import ServiceModels

from evaluation import evaluate, model_card, policy_figures
from features.vocab import Stage, Tier
from models.cutoffs import RiskReference, percent
from models.estimator import StageEstimator
from models.tier_policy import Band, TierPolicy, TierPolicyError
from serving.scoring import Scorer, ServedModel, answer_in, requests_from_tables
from serving.scoring.schemas import ScoreRequest

SHIPPED = Path(__file__).parents[1] / "models" / "tier_policy.yaml"


def policy_with(medium: Any, high: Any, *, stage: str = "release") -> TierPolicy:
    """The shipped policy with ``stage``'s cut-offs written as given (as in the YAML file)."""
    raw: dict[str, Any] = yaml.safe_load(SHIPPED.read_text("utf-8"))
    raw["stages"][stage].update(medium_from=medium, high_from=high)
    return TierPolicy.model_validate(raw)


def achievable(risk: np.ndarray) -> np.ndarray:
    """Every share of the rows a cut-off can flag: at or above each distinct risk."""
    return np.array([(risk >= v).mean() for v in np.unique(risk)])


risks_with_ties = st.integers(2, 40).flatmap(
    lambda k: st.lists(st.integers(1, k).map(lambda i: round(i / (k + 1), 6)), min_size=5, max_size=300)
)
distinct_risks = st.lists(st.floats(0.001, 0.999, allow_nan=False), min_size=30, max_size=400, unique=True)


# ----------------------------------------------------------------------------- resolving against a reference
@settings(max_examples=150, deadline=None)
@given(risk=st.one_of(risks_with_ties, distinct_risks), share=st.floats(0.01, 0.6), seed=st.integers(0, 10**6))
def test_a_share_flags_the_nearest_share_the_training_rows_allow(risk: list[float], share: float, seed: int) -> None:
    p = np.asarray(risk)
    y = (np.random.default_rng(seed).random(len(p)) < p).astype(int)
    assume(y.sum() > 0)
    reference = RiskReference.from_scores("release", y_true=y, risk=p)
    assert reference.complete and reference.rows == len(p) and reference.base_rate == pytest.approx(y.mean())
    cutoffs = policy_with(0.001, {"riskiest_share": share}).cutoffs("release", reference)
    high = cutoffs.high_from
    flagged = float((p >= high.probability).mean())
    assert flagged == high.training_share  # exactly the share the answer and the card report
    assert abs(flagged - share) == pytest.approx(np.abs(achievable(p) - share).min(), abs=1e-12)
    assert round(high.probability, 6) == high.probability or high.probability in p  # a short decimal, else a risk


@settings(max_examples=60, deadline=None)
@given(risk=distinct_risks, share=st.floats(0.02, 0.6), grid=st.integers(5, 25))
def test_without_ties_a_grid_reference_flags_the_share_within_one_step(
    risk: list[float], share: float, grid: int
) -> None:
    p = np.asarray(risk)
    y = (p > np.median(p)).astype(int)
    reference = RiskReference.from_scores("release", y_true=y, risk=p, max_levels=4, grid=grid)
    assert not reference.complete and len(reference.levels) <= grid + 1
    cutoffs = policy_with(0.0001, {"riskiest_share": share}).cutoffs("release", reference)
    flagged = float((p >= cutoffs.high_from.probability).mean())
    assert flagged == cutoffs.high_from.training_share
    assert abs(flagged - share) <= 1 / grid + 1 / len(p) + 1e-12


@settings(max_examples=100, deadline=None)
@given(
    risk=st.one_of(risks_with_ties, distinct_risks),
    medium=st.floats(0.3, 3.0),
    factor=st.floats(1.05, 4.0),
    seed=st.integers(0, 10**6),
)
def test_a_multiple_of_the_base_rate(risk: list[float], medium: float, factor: float, seed: int) -> None:
    p = np.asarray(risk)
    y = (np.random.default_rng(seed).random(len(p)) < p).astype(int)
    assume(y.sum() > 0)
    reference = RiskReference.from_scores("midterm", y_true=y, risk=p)
    high = medium * factor
    policy = policy_with({"times_base_rate": medium}, {"times_base_rate": high}, stage="midterm")
    if high * y.mean() >= 1:
        with pytest.raises(TierPolicyError, match=r"stage 'midterm': high_from: .* not a probability below 1"):
            policy.cutoffs("midterm", reference)
        return
    cutoffs = policy.cutoffs("midterm", reference)
    assert cutoffs.medium_from.probability == pytest.approx(medium * y.mean(), rel=1e-12)
    assert cutoffs.high_from.probability == pytest.approx(high * y.mean(), rel=1e-12)
    assert cutoffs.base_rate == reference.base_rate and cutoffs.training_rows == len(p)
    for c in (cutoffs.medium_from, cutoffs.high_from):  # the share flagged on the training rows, exactly
        assert c.training_share == float((p >= c.probability).mean())


@settings(max_examples=100, deadline=None)
@given(risk=st.one_of(risks_with_ties, distinct_risks), high=st.floats(0.02, 0.5), more=st.floats(0.01, 0.45))
def test_two_shares_resolve_to_increasing_cutoffs(risk: list[float], high: float, more: float) -> None:
    p = np.asarray(risk)
    reference = RiskReference.from_scores("intake", y_true=(p > 0.5).astype(int), risk=p)
    policy = policy_with({"riskiest_share": high + more}, {"riskiest_share": high}, stage="intake")
    try:
        cutoffs = policy.cutoffs("intake", reference)
    except TierPolicyError as exc:  # only when the high band starts at the lowest risk: nothing is left below
        assert "medium_from" in str(exc) and "no risk of the model's training rows is below" in str(exc)
        assert reference.riskiest(high) <= min(p)
        return
    medium_p, high_p = cutoffs.edges
    assert medium_p < high_p
    # the medium cut-off flags the share nearest its own that a cut-off below the high one allows
    below = achievable(p)[np.unique(p) < high_p]
    nearest = np.abs(below - (high + more)).min()
    assert cutoffs.medium_from.training_share == float((p >= medium_p).mean())
    assert abs(cutoffs.medium_from.training_share - (high + more)) == pytest.approx(nearest, abs=1e-12)
    bands = [policy.band("intake", x, cutoffs=cutoffs) for x in p]
    assert np.mean([b is Band.HIGH for b in bands]) == cutoffs.high_from.training_share


def test_the_reference_refuses_what_is_not_a_training_row() -> None:
    with pytest.raises(ValueError, match="as many outcomes as risks"):
        RiskReference.from_scores("intake", y_true=np.array([0, 1]), risk=np.array([0.1]))
    with pytest.raises(ValueError, match="0 or 1"):
        RiskReference.from_scores("intake", y_true=np.array([0, 2]), risk=np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        RiskReference.from_scores("intake", y_true=np.array([0, 1]), risk=np.array([0.1, np.nan]))


def test_resolution_errors_name_the_stage_and_the_cutoffs() -> None:
    p = np.linspace(0.01, 0.6, 200)
    reference = RiskReference.from_scores("release", y_true=(p > 0.4).astype(int), risk=p)
    mixed = policy_with({"times_base_rate": 2}, {"riskiest_share": 0.3})  # 2 x 34% is above the riskiest 30%
    with pytest.raises(TierPolicyError, match=r"stage 'release': cut-offs must increase: medium_from \(2 × the base"):
        mixed.cutoffs("release", reference)
    with pytest.raises(TierPolicyError, match="the risk reference is of the release stage, not midterm"):
        policy_with(0.1, 0.2, stage="midterm").cutoffs("midterm", reference)
    none = RiskReference.from_scores("release", y_true=np.zeros(200, int), risk=p)
    with pytest.raises(TierPolicyError, match="no re-offence in the model's training rows"):
        policy_with({"times_base_rate": 1}, {"times_base_rate": 2}).cutoffs("release", none)
    with pytest.raises(TierPolicyError, match=r"stage 'release': medium_from and high_from are stated relative"):
        TierPolicy.load().band("release", 0.2)  # no model, no reference: the policy alone cannot place it
    probabilities = policy_with(0.15, 0.35)
    assert probabilities.cutoffs("release").edges == (0.15, 0.35) == probabilities.cutoffs("release", reference).edges


def test_a_reference_survives_json() -> None:
    p = np.random.default_rng(3).beta(1, 9, 3000)
    reference = RiskReference.from_scores("midterm", y_true=(p > 0.2).astype(int), risk=p)
    assert RiskReference.from_record(yaml.safe_load(yaml.safe_dump(reference.record()))) == reference
    assert percent(0.1) == "10%" and percent(0.07351) == "7.35%" and percent(0.2) == "20%"


# ----------------------------------------------------------------------------- with fitted models
def test_every_fitted_model_keeps_the_reference_of_its_training_rows(service_models: ServiceModels) -> None:
    """The starting policy flags about 10% high and 30% medium or above of the training persons, for both
    model kinds at every stage, within the stated tolerance."""
    _, fits = service_models
    policy = TierPolicy.load()
    for stage, fit in fits.items():
        built = fit.frame.subset(fit.parts != "test")
        for model in (fit.model, fit.baseline):
            reference = model.risk_reference
            assert reference is not None and reference.stage == stage.value
            assert reference.rows == len(built.y) and reference.base_rate == pytest.approx(built.y.mean())
            risk = model.predict_proba(built.X)
            cutoffs = policy.cutoffs(stage, reference)
            for cutoff, share in ((cutoffs.medium_from, 0.3), (cutoffs.high_from, 0.1)):
                flagged = float((risk >= cutoff.probability).mean())
                assert flagged == pytest.approx(cutoff.training_share, abs=1e-12)
                nearest = np.abs(achievable(risk) - share).min()
                tolerance = nearest if reference.complete else 1 / 1000 + 1 / reference.rows
                assert abs(flagged - share) <= tolerance + 1e-12, (stage, model.kind, cutoff)


def requests(service_models: ServiceModels, stage: Stage, n: int = 200, lang: str = "en") -> list[ScoreRequest]:
    tables, _ = service_models
    ended = tables.persons["supervision_end"] <= pd.Timestamp.today()
    persons = tables.persons[ended].head(n)
    events = tables.events[tables.events["person_id"].isin(persons["person_id"])]
    return [ScoreRequest.model_validate(r) for r in requests_from_tables(persons, events, stage, lang=lang)]


def round_trip(model: StageEstimator) -> StageEstimator:
    """The model as a served one is: pickled and loaded again."""
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    loaded: StageEstimator = joblib.load(buffer)
    return loaded


def served(stage: Stage, model: StageEstimator) -> ServedModel:
    return ServedModel(stage, model, f"reoffence-{stage.value}", "7", "t:1", {})


def test_a_policy_change_to_a_relative_form_needs_no_retrain(service_models: ServiceModels, tmp_path: Path) -> None:
    """One fitted model, three policy files: the served (pickled) model resolves each, and every answer gives
    the cut-offs its band came from, the ones the model was judged with."""
    _, fits = service_models
    stage = Stage.MIDTERM
    fit = fits[stage]
    model = round_trip(fit.model)
    asked = requests(service_models, stage)
    base_rate = fit.model.risk_reference.base_rate if fit.model.risk_reference else np.nan
    for medium, high in [
        (0.1, 0.25),
        ({"riskiest_share": 0.3}, {"riskiest_share": 0.1}),
        (0.05, {"times_base_rate": 2}),
    ]:
        policy = policy_with(medium, high, stage="midterm")
        path = tmp_path / "policy.yaml"
        path.write_text(yaml.safe_dump(policy.model_dump(mode="json"), allow_unicode=True), encoding="utf-8")
        loaded = TierPolicy.load(path)
        assert loaded == policy
        scorer = Scorer({stage: served(stage, model)}, loaded)
        judged = loaded.cutoffs(stage, fit.model.risk_reference)  # as training resolved them
        assert scorer.cutoffs[stage] == judged
        for s in scorer.score(asked):
            a = s.assessment
            assert a.band_cutoffs is not None and a.band_cutoffs.model_dump() == judged.record()
            medium_p, high_p = a.band_cutoffs.medium_from.probability, a.band_cutoffs.high_from.probability
            band = Band.HIGH if a.probability >= high_p else Band.MEDIUM if a.probability >= medium_p else Band.LOW
            assert a.band.code == band.value  # the stored answer shows why its band was given
            assert s.audit_fields("t")["response"]["band_cutoffs"] == judged.record()
            assert f">= {percent(high_p)}" in a.tier.text or band is not Band.HIGH
        if isinstance(high, dict):
            assert judged.high_from.form in ("riskiest_share", "times_base_rate")
    assert policy_with(0.05, {"times_base_rate": 2}, stage="midterm").cutoffs(
        stage, model.risk_reference
    ).high_from.probability == pytest.approx(2 * base_rate)


def test_a_model_pickled_before_the_reference_serves_only_with_probabilities(service_models: ServiceModels) -> None:
    _, fits = service_models
    stage = Stage.RELEASE
    old = copy.deepcopy(fits[stage].model)
    del old.risk_reference_  # as pickled before the reference existed
    old = round_trip(old)
    assert old.risk_reference is None
    absolute = policy_with(0.15, 0.35)
    scored = Scorer({stage: served(stage, old)}, absolute).score(requests(service_models, stage, n=30))
    assert all(s.assessment.band_cutoffs is not None for s in scored)
    assert {s.assessment.band_cutoffs.high_from.training_share for s in scored if s.assessment.band_cutoffs} == {None}
    with pytest.raises(TierPolicyError, match=r"reoffence-release version 7 .*stage 'release'.*retrain the model"):
        Scorer({stage: served(stage, old)}, TierPolicy.load())
    with pytest.raises(TierPolicyError, match="state this stage's cut-offs as probabilities"):
        TierPolicy.load().strict_cutoff(stage, old.risk_reference)


def test_a_stored_answer_is_worded_again_with_the_cutoffs_it_stored(service_models: ServiceModels) -> None:
    _, fits = service_models
    stage = Stage.RELEASE
    policy = TierPolicy.load()
    scorer = Scorer({stage: served(stage, fits[stage].model)}, policy)
    zh = scorer.score(requests(service_models, stage, n=40, lang="zh"))
    en = scorer.score(requests(service_models, stage, n=40, lang="en"))
    for a, b in zip(zh, en, strict=True):
        answer = a.assessment.model_dump(mode="json")
        worded = answer_in(answer, a.explanation, "en", policy=policy)
        assert worded["tier"]["text"] == b.assessment.tier.text  # made again with the stored cut-offs
        del answer["band_cutoffs"]  # an answer stored before it was given: a relative policy cannot word it again
        assert answer_in(answer, a.explanation, "en", policy=policy)["tier"]["text"] == a.assessment.tier.text


def test_the_card_shows_what_the_policy_in_force_flags(service_models: ServiceModels, tmp_path: Path) -> None:
    from sklearn.metrics import precision_score, recall_score

    _, fits = service_models
    policy = TierPolicy.load()
    for stage in (Stage.INTAKE, Stage.MIDTERM):
        fit = fits[stage]
        test = fit.part("test")
        prob = fit.model.predict_proba(test.X)
        cutoffs = policy.cutoffs(stage, fit.model.risk_reference)
        figures = policy_figures(policy, stage, y_true=test.y, y_prob=prob, features=test.X, cutoffs=cutoffs)
        for f in figures.at_cutoffs:
            flag = prob >= f.cutoff.probability
            assert f.flagged == flag.sum() and f.share_flagged == pytest.approx(flag.mean())
            assert f.precision == pytest.approx(precision_score(test.y, flag))
            assert f.recall == pytest.approx(recall_score(test.y, flag))
        assert [f.strict for f in figures.at_cutoffs] == [False, True]
        decisions = policy.decide_frame(stage, prob, test.X, cutoffs=cutoffs)
        assert figures.strict_by_rule == sum(d.reason == "rule" for d in decisions) == sum(figures.by_rule.values())
        assert figures.strict_in_effect == sum(d.tier is Tier.STRICT for d in decisions)
        assert figures.strict_by_risk == sum(d.band is Band.HIGH for d in decisions)
        if stage is Stage.INTAKE:  # everyone is strict for the first two months
            assert figures.by_rule["first_two_months"] + figures.by_rule["gang_terror_cult"] == figures.rows
        report = evaluate(test.y, prob, threshold=cutoffs.high_from.probability)
        card = model_card(
            name=f"reoffence-{stage.value}",
            version="3",
            stage=stage.value,
            data_description="synthetic cohort",
            period="p",
            label_definition="l",
            n_train=1,
            n_test=len(test.y),
            n_censored=0,
            report=report,
            limits=["l"],
            out_path=tmp_path / f"{stage.value}.md",
            policy=policy,
            policy_figures=figures,
        ).read_text("utf-8")
        section = card.split("## Tier policy")[1].split("\n## ")[0]
        assert "It aims to flag as high the riskiest 10% of the stage's persons" in section
        assert "as medium or above the riskiest 30% of the stage's persons" in section
        high = figures.at_cutoffs[1]
        row = next(line for line in section.splitlines() if line.startswith("| high_from (strict by risk)"))
        assert f"| the riskiest 10% | {percent(high.cutoff.probability)} |" in row
        assert f"{high.flagged:,} ({high.share_flagged:.1%})" in row and f"{high.recall:.1%}" in row
        assert f"Strict by a mandatory rule: {figures.strict_by_rule:,} of {figures.rows:,} test persons" in section
        assert "`first_two_months`" in section and "decided" in section
