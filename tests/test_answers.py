"""What a caseworker reads: sentences, sizes in points of risk, two tiers, no protected attribute as a reason."""

from __future__ import annotations

import copy
import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from service_support import ServiceModels

from features.catalog import CATALOG, PROTECTED_ATTRIBUTES, Typical, ValueKind, check_sentence
from features.labels import make_stage_frame
from features.schema import CaseTables
from features.vocab import Stage
from models.estimator import Calibrator, StageEstimator
from models.tier_policy import TierPolicy
from serving.scoring import Scored, Scorer, ServedModel, reasons, requests_from_tables
from serving.scoring.schemas import Assessment, ScoreRequest
from training.config import TrainConfig
from training.fit import fit_stage

PEOPLE = 200


def served(stage: Stage, model: StageEstimator) -> ServedModel:
    return ServedModel(
        stage=stage, model=model, name=f"reoffence-{stage.value}", version="7", bento_tag="t:1", metadata={}
    )


def requests_of(tables: CaseTables, stage: Stage, lang: str, n: int = PEOPLE) -> list[ScoreRequest]:
    ended = tables.persons["supervision_end"] <= pd.Timestamp(dt.date.today())  # no assessment dated after today
    persons = tables.persons[ended].head(n)
    events = tables.events[tables.events["person_id"].isin(persons["person_id"])]
    return [ScoreRequest.model_validate(body) for body in requests_from_tables(persons, events, stage, lang=lang)]


def sentence_problems(answer: Assessment) -> list[str]:
    """The reader's checks on every reason sentence of one answer."""
    out = []
    for r in answer.reasons:
        kind = CATALOG[r.feature].wording.kind
        found = check_sentence(
            r.text, answer.lang, decimals=kind in (ValueKind.RATE, ValueKind.POINTS), percent=kind is ValueKind.SHARE
        )
        out += [f"{r.feature}: {r.text!r}: {p}" for p in found]
    return out


@pytest.fixture(scope="module")
def scorer(service_models: ServiceModels) -> Scorer:
    _, fits = service_models
    return Scorer({stage: served(stage, fits[stage].model) for stage in Stage}, TierPolicy.load())


@pytest.fixture(scope="module")
def answers(scorer: Scorer, service_models: ServiceModels) -> dict[tuple[Stage, str], list[Scored]]:
    tables, _ = service_models
    return {(stage, lang): scorer.score(requests_of(tables, stage, lang)) for stage in Stage for lang in ("zh", "en")}


def test_every_sentence_of_200_people_at_3_stages_in_zh_and_en_reads_right(
    answers: dict[tuple[Stage, str], list[Scored]],
) -> None:
    failing = [(key, p) for key, scored in answers.items() for s in scored for p in sentence_problems(s.assessment)]
    assert failing == []
    assert sum(len(v) for v in answers.values()) == 2 * 3 * PEOPLE
    for (_, lang), scored in answers.items():
        texts = [r.text for s in scored for r in s.assessment.reasons]
        marker = "同阶段" if lang == "zh" else ("typical" if lang == "en" else "")
        assert sum(marker in t or "at this stage" in t for t in texts) > 0.9 * len(texts)


def test_zero_counts_equal_values_and_facts_read_as_a_caseworker_expects(
    answers: dict[tuple[Stage, str], list[Scored]], scorer: Scorer
) -> None:
    """Issue 20, reasons as read by a caseworker: a zero count has its own words ("无前科", "no prior
    convictions"), a value that reads the same as the stage's typical one is no reason, and one fact (an
    event family's counts and recency) gives at most one reason."""
    for (stage, lang), scored in answers.items():
        typical = scorer.models[stage].model.typical
        for s in scored:
            facts = [CATALOG[r.feature].fact_key for r in s.assessment.reasons]
            assert len(facts) == len(set(facts)), [r.text for r in s.assessment.reasons]
            for r in s.assessment.reasons:
                spec, value = CATALOG[r.feature], s.explanation["features"][r.feature]
                assert not spec.equals_typical(value, typical.get(r.feature)), r.text
                # a count of zero in a reason's own clause (before the comparison) has words of its own
                own = r.text.split("（")[0].split(" (typical")[0]
                assert not re.search(r"(?<![\d.])0(次| [a-z])", own), r.text
                if spec.wording.kind is ValueKind.COUNT and value is not None and round(float(value)) == 0:
                    assert ("无" in own) if lang == "zh" else ("no " in own), r.text


def test_zero_count_sentences() -> None:
    spec = CATALOG["prior_convictions"]
    assert spec.describe(0.0, "zh", typical=Typical(median=1.0)) == "无前科（同阶段一般有1次）"
    assert spec.describe(0.0, "en", typical=Typical(median=1.0)) == "no prior convictions (typical: 1)"
    family = CATALOG["family_change_90d"]
    assert family.describe(0.0, "zh").startswith("近90天无重大家庭变故")
    assert family.describe(2.0, "zh").startswith("近90天重大家庭变故2次")


def test_points_of_risk_have_the_sign_of_the_log_odds_and_come_from_the_calibrated_probability(
    answers: dict[tuple[Stage, str], list[Scored]], scorer: Scorer
) -> None:
    for (stage, _), scored in answers.items():
        calibrate = scorer.models[stage].model.calibrator_.predict
        for s in scored:
            e = s.explanation
            assert calibrate(np.array([e["raw_score"]]))[0] == pytest.approx(s.assessment.probability, abs=1e-12)
            for r in s.assessment.reasons:
                expected = 100 * (
                    calibrate(np.array([e["raw_score"]]))[0]
                    - calibrate(np.array([e["raw_score"] - e["contributions"][r.feature]]))[0]
                )
                assert r.points == round(expected, 1)
                assert np.sign(e["points_of_risk"][r.feature]) in (np.sign(r.contribution), 0.0)


def test_with_a_strictly_increasing_calibration_every_size_has_the_sign_of_its_contribution(
    service_models: ServiceModels,
) -> None:
    _, fits = service_models
    fit = fits[Stage.MIDTERM]
    model = copy.deepcopy(fit.model)
    calib = fit.part("calib")
    model.calibrator_ = Calibrator("platt").fit(model.raw_score(calib.X), calib.y)
    M = model.matrix(fit.part("test").X)
    contrib = model.contribution_matrix(M)[:, :-1]
    points = model.points_of_risk(model.raw_score(M), contrib)
    nonzero = np.abs(contrib) > 1e-9
    assert nonzero.sum() > 1000
    assert (np.sign(points[nonzero]) == np.sign(contrib[nonzero])).all()


def test_at_intake_the_rule_is_strict_until_a_date_and_the_tier_by_risk_follows(
    answers: dict[tuple[Stage, str], list[Scored]], scorer: Scorer
) -> None:
    policy = scorer.policy
    for lang in ("zh", "en"):
        for s in answers[Stage.INTAKE, lang]:
            a, start = s.assessment, s.request.person.supervision_start
            tier = a.tier
            band = policy.band(Stage.INTAKE, a.probability, cutoffs=scorer.cutoffs[Stage.INTAKE])
            by_risk = policy.tier_by_risk(Stage.INTAKE, band)
            assert tier.tier_by_risk is not None
            assert (tier.tier.code, tier.basis, tier.tier_by_risk.code) == ("strict", "rule", by_risk.value)
            if tier.rule_id == "gang_terror_cult":  # a lasting rule: no end date, nothing follows
                assert tier.rule_until is None and tier.tier_after_rule is None
                continue
            assert tier.rule_id == "first_two_months" and tier.rule_until == start + dt.timedelta(days=60)
            assert tier.tier_after_rule is not None
            assert tier.tier_after_rule.code == by_risk.value and tier.rule_until.isoformat() in tier.text
    intake = [s.assessment.tier for s in answers[Stage.INTAKE, "en"]]
    assert sum(t.rule_id == "first_two_months" for t in intake) > 0.8 * PEOPLE
    assert "ordinary" in {
        t.tier_by_risk.code for t in intake if t.tier_by_risk is not None
    }  # the intake answer's news: the tier after two months


def test_a_stored_answer_from_before_the_two_tiers_is_still_readable(
    answers: dict[tuple[Stage, str], list[Scored]],
) -> None:
    new = answers[Stage.MIDTERM, "en"][0].assessment.model_dump(mode="json")
    old = copy.deepcopy(new)
    for key in ("tier_by_risk", "rule_until", "tier_after_rule"):
        old["tier"].pop(key)
    for r in old["reasons"]:
        r.pop("points"), r.pop("typical_text")
    back = Assessment.model_validate(old)
    assert back.tier.tier_by_risk is None and back.reasons[0].points is None


def test_default_training_leaves_out_sex_and_household_registration(service_models: ServiceModels) -> None:
    _, fits = service_models
    for fit in fits.values():
        assert not set(PROTECTED_ATTRIBUTES) & set(fit.model.feature_names)
        assert not set(PROTECTED_ATTRIBUTES) & set(fit.baseline.feature_names)
        assert "sex" in fit.frame.X and "local" in fit.frame.X  # still in the records and the fairness groups
    assert TrainConfig.load().protected_inputs == []


def test_the_setting_adds_them_the_card_says_so_and_no_reason_names_them(cohort: CaseTables, tmp_path: Path) -> None:
    from evaluation import evaluate, model_card

    config = TrainConfig.load().override(
        protected_inputs=["sex", "local"], search={"budget": 1}, booster={"max_rounds": 60}
    )
    fit = fit_stage(make_stage_frame(cohort, Stage.INTAKE), config=config, temporal=False)
    assert {"sex", "local"} <= set(fit.model.feature_names) and "sex" in fit.baseline.feature_names
    test = fit.part("test")
    report = evaluate(test.y, fit.model.predict_proba(test.X), threshold=0.25)
    card = model_card(
        name="reoffence-intake",
        version="9",
        stage="intake",
        data_description="synthetic cohort",
        period="p",
        label_definition="l",
        n_train=1,
        n_test=1,
        n_censored=0,
        report=report,
        limits=[],
        out_path=tmp_path / "card.md",
        inputs=fit.model.feature_names,
        protected_inputs=config.protected_inputs,
        data_kind="synthetic",
        policy=TierPolicy.load(),
    )
    text = card.read_text()
    assert "sex (性别, `sex`): a model input**" in text
    assert "local resident (本地户籍, `local`): a model input**" in text
    assert "a score informs a decision; it does not make it" in text.lower() and "first_two_months" in text
    default = model_card(
        name="reoffence-intake",
        version="9",
        stage="intake",
        data_description="d",
        period="p",
        label_definition="l",
        n_train=1,
        n_test=1,
        n_censored=0,
        report=report,
        limits=[],
        out_path=tmp_path / "default.md",
        inputs=[n for n in fit.model.feature_names if n not in PROTECTED_ATTRIBUTES],
    )
    assert "`sex`): excluded, not a model input" in default.read_text()
    contributions = np.abs(fit.model.contributions(test.X)[["sex", "local"]].to_numpy())
    assert contributions.max() > 0  # they do move the score, and still never show
    scored = Scorer({Stage.INTAKE: served(Stage.INTAKE, fit.model)}, TierPolicy.load()).score(
        requests_of(cohort, Stage.INTAKE, "en")
    )
    assert not {r.feature for s in scored for r in s.assessment.reasons} & set(PROTECTED_ATTRIBUTES)


def test_a_protected_attribute_is_never_a_reason_even_with_the_largest_contribution() -> None:
    names, values = ["sex", "local", "age", "prior_convictions"], ["male", False, 30.0, 2.0]
    got = reasons(names, [2.0, 1.5, 0.3, 0.2], values, "zh")
    assert [r.feature for r in got] == ["age", "prior_convictions"]


def test_an_unknown_protected_input_is_refused() -> None:
    raw = TrainConfig.load().model_dump()
    with pytest.raises(ValueError, match="protected_inputs"):
        TrainConfig.model_validate({**raw, "protected_inputs": ["race"]})


def test_an_intake_assessment_made_after_the_first_two_months_is_not_held_strict_by_them(
    scorer: Scorer, service_models: ServiceModels
) -> None:
    """The walk-through's contradiction: a late intake said "strict by the first-two-months rule, until <a past
    date>"; a time-limited rule whose last day is before the assessment date no longer decides."""
    tables, _ = service_models
    late = []
    for body in requests_of(tables, Stage.INTAKE, "zh", n=40):
        start = body.person.supervision_start
        late.append(body.model_copy(update={"as_of": start + dt.timedelta(days=100)}))
    for s in scorer.score(late):
        tier = s.assessment.tier
        assert tier.rule_id != "first_two_months", tier.text
        if tier.basis == "band":
            assert tier.tier_by_risk is not None and tier.tier.code == tier.tier_by_risk.code
