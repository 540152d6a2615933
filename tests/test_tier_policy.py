"""Tier policy: bands, mandatory rules, vectorised decisions and clear errors for bad files."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from features.catalog import features_for
from features.vocab import Tier
from models.cutoffs import RelativeCutoff
from models.tier_policy import Band, TierPolicy, TierPolicyError

QUIET_MIDTERM = {  # a mid-term row that triggers no mandatory rule
    "days_since_start": 200.0,
    "warning_term": 0.0,
    "police_penalty_term": 0.0,
    "grade_unqualified_n": 0.0,
    "offence": "theft",
    "flag_gang": 0.0,
}


#: cut-offs written as probabilities (the policy's before version 2026.12-2): the band edges tested below
PROBABILITIES = {"intake": (0.10, 0.25), "midterm": (0.10, 0.25), "release": (0.15, 0.35)}


def shipped() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load((Path(__file__).parents[1] / "models" / "tier_policy.yaml").read_text("utf-8"))
    return raw


def with_probabilities(raw: dict[str, Any]) -> dict[str, Any]:
    """The policy with every stage's cut-offs written as probabilities (:data:`PROBABILITIES`)."""
    for stage, (medium, high) in PROBABILITIES.items():
        raw["stages"][stage].update(medium_from=medium, high_from=high)
    return raw


def absolute_policy() -> TierPolicy:
    """The shipped rules with cut-offs stated as probabilities: decisions need no model."""
    return TierPolicy.model_validate(with_probabilities(shipped()))


@pytest.fixture(scope="module")
def policy() -> TierPolicy:
    return absolute_policy()


@pytest.fixture()
def raw_policy() -> dict[str, Any]:
    return shipped()


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_packaged_policy_loads() -> None:
    policy = TierPolicy.load()
    assert policy.version == "2026.12-2"
    for stage in ("intake", "midterm", "release"):  # the starting policy: the riskiest 10% high, the next 20% medium
        sp = policy.stage(stage)
        assert sp.relative and sp.strict_bands == [Band.HIGH]
        assert (sp.medium_from, sp.high_from) == (
            RelativeCutoff(riskiest_share=0.3),
            RelativeCutoff(riskiest_share=0.1),
        )
    assert Tier.STRICT.zh == "严管" and Tier.ORDINARY.zh == "普管" and Band.HIGH.zh == "高"
    assert Tier.STRICT.label("en") == "strict" and Band.MEDIUM.label("zh") == "中" and Tier("ordinary") is Tier.ORDINARY


@pytest.mark.parametrize(
    ("stage", "p", "band"),
    [
        ("intake", 0.0, Band.LOW),
        ("intake", 0.0999, Band.LOW),
        ("intake", 0.10, Band.MEDIUM),
        ("intake", 0.2499, Band.MEDIUM),
        ("intake", 0.25, Band.HIGH),
        ("intake", 1.0, Band.HIGH),
        ("midterm", 0.10, Band.MEDIUM),
        ("midterm", 0.25, Band.HIGH),
        ("release", 0.1499, Band.LOW),
        ("release", 0.15, Band.MEDIUM),
        ("release", 0.3499, Band.MEDIUM),
        ("release", 0.35, Band.HIGH),
    ],
)
def test_band_edges(policy: TierPolicy, stage: str, p: float, band: Band) -> None:
    assert policy.band(stage, p) is band


@pytest.mark.parametrize("p", [-0.01, 1.01, math.nan])
def test_probability_outside_unit_interval_is_refused(policy: TierPolicy, p: float) -> None:
    with pytest.raises(ValueError, match="not in"):
        policy.band("intake", p)


def test_strict_cutoff(policy: TierPolicy) -> None:
    assert policy.strict_cutoff("intake") == 0.25
    assert policy.strict_cutoff("midterm") == 0.25
    assert policy.strict_cutoff("release") == 0.35


def test_band_decides_when_no_rule_applies(policy: TierPolicy) -> None:
    low = policy.decide("midterm", 0.05, QUIET_MIDTERM)
    assert (low.band, low.tier, low.reason, low.rule_id) == (Band.LOW, Tier.ORDINARY, "band", None)
    medium = policy.decide("midterm", 0.2, QUIET_MIDTERM)
    assert (medium.band, medium.tier) == (Band.MEDIUM, Tier.ORDINARY)
    high = policy.decide("midterm", 0.3, QUIET_MIDTERM)
    assert (high.band, high.tier, high.reason) == (Band.HIGH, Tier.STRICT, "band")
    assert high.policy_version == policy.version


@pytest.mark.parametrize(
    ("change", "rule_id"),
    [
        ({"days_since_start": 30.0}, "first_two_months"),
        ({"warning_term": 2.0}, "sanctions"),
        ({"warning_term": 1.0, "police_penalty_term": 1.0}, "sanctions"),
        ({"police_penalty_term": 3.0}, "sanctions"),
        ({"grade_unqualified_n": 1.0}, "unqualified_grade"),
        ({"offence": "gang"}, "gang_terror_cult"),
        ({"offence": "terror_cult"}, "gang_terror_cult"),
        ({"flag_gang": 1.0}, "gang_terror_cult"),
    ],
)
@pytest.mark.parametrize("stage", ["midterm", "release"])
def test_each_mandatory_rule_triggers_and_names_itself(
    policy: TierPolicy, stage: str, change: dict[str, Any], rule_id: str
) -> None:
    decision = policy.decide(stage, 0.01, {**QUIET_MIDTERM, **change})
    assert (decision.tier, decision.reason, decision.rule_id) == (Tier.STRICT, "rule", rule_id)
    assert decision.band is Band.LOW  # the band is still reported
    assert decision.rule_text_zh and decision.rule_text_en


def test_just_below_rule_thresholds_does_not_trigger(policy: TierPolicy) -> None:
    row = {**QUIET_MIDTERM, "days_since_start": 61.0, "warning_term": 1.0, "police_penalty_term": 0.0}
    assert policy.decide("midterm", 0.01, row).reason == "band"


def test_intake_everyone_strict_in_first_two_months(policy: TierPolicy) -> None:
    decision = policy.decide("intake", 0.01, {"offence": "theft", "flag_gang": 0.0})
    assert (decision.tier, decision.rule_id) == (Tier.STRICT, "first_two_months")
    assert decision.rule_text_zh == "入矫初期（前两个月）一律严管"
    assert policy.decide("intake", 0.01, {"offence": "gang"}).rule_id == "gang_terror_cult"


def test_absent_or_missing_feature_does_not_apply_the_rule(policy: TierPolicy) -> None:
    assert policy.decide("midterm", 0.01, {}).reason == "band"
    no_sanction_columns = {k: v for k, v in QUIET_MIDTERM.items() if k != "police_penalty_term"}
    assert policy.decide("midterm", 0.01, {**no_sanction_columns, "warning_term": 5.0}).reason == "band"
    assert policy.decide("midterm", 0.01, {**QUIET_MIDTERM, "grade_unqualified_n": math.nan}).reason == "band"
    assert policy.decide("midterm", 0.01, {**QUIET_MIDTERM, "offence": None}).reason == "band"


def test_decide_accepts_a_series(policy: TierPolicy) -> None:
    row = pd.Series({**QUIET_MIDTERM, "grade_unqualified_n": 2.0})
    assert policy.decide("release", 0.5, row).rule_id == "unqualified_grade"


# ----------------------------------------------------------------------------- decide_frame
RULE_COLUMNS = list(QUIET_MIDTERM)
maybe_nan = st.one_of(st.just(math.nan), st.integers(0, 4).map(float))
row_strategy = st.fixed_dictionaries(
    {
        "days_since_start": st.one_of(st.just(math.nan), st.floats(0, 400, allow_nan=False)),
        "warning_term": maybe_nan,
        "police_penalty_term": maybe_nan,
        "grade_unqualified_n": maybe_nan,
        "offence": st.sampled_from([None, "gang", "terror_cult", "theft", "fraud"]),
        "flag_gang": st.sampled_from([math.nan, 0.0, 1.0]),
        "p": st.floats(0, 1, allow_nan=False),
    }
)


@settings(max_examples=60, deadline=None)
@given(
    stage=st.sampled_from(["intake", "midterm", "release"]),
    rows=st.lists(row_strategy, min_size=1, max_size=25),
    dropped=st.sets(st.sampled_from(RULE_COLUMNS), max_size=3),
)
def test_decide_frame_equals_decide_row_by_row(stage: str, rows: list[dict[str, Any]], dropped: set[str]) -> None:
    policy = absolute_policy()
    frame = pd.DataFrame(rows)
    probabilities = frame.pop("p").to_numpy()
    frame["offence"] = pd.Categorical(frame["offence"], categories=["theft", "fraud", "gang", "terror_cult"])
    frame = frame.drop(columns=sorted(dropped))
    batch = policy.decide_frame(stage, probabilities, frame)
    one_by_one = [policy.decide(stage, probabilities[i], frame.iloc[i]) for i in range(len(frame))]
    assert batch == one_by_one
    rows = [{str(k): v for k, v in frame.iloc[i].to_dict().items()} for i in range(len(frame))]
    assert [policy.decide(stage, probabilities[i], row) for i, row in enumerate(rows)] == batch
    columns = {name: (frame[name].array if name == "offence" else frame[name].to_numpy()) for name in frame.columns}
    assert policy.decide_frame(stage, probabilities, columns) == batch  # the service passes columns, not a frame


def test_decide_frame_handles_thousands_of_rows(policy: TierPolicy) -> None:
    rng = np.random.default_rng(0)
    n = 5000
    frame = pd.DataFrame(
        {
            name: rng.integers(0, 3, n).astype(float)
            for name in features_for("release")
            if name not in ("offence", "sex", "education", "employment", "marital", "supervision_type")
        }
    )
    frame["days_since_start"] = 400.0
    frame["offence"] = rng.choice(["theft", "gang"], n)
    decisions = policy.decide_frame("release", rng.random(n), frame)
    assert len(decisions) == n and {d.tier for d in decisions} <= set(Tier)


def test_decide_frame_checks_lengths_and_probabilities(policy: TierPolicy) -> None:
    frame = pd.DataFrame([QUIET_MIDTERM, QUIET_MIDTERM])
    with pytest.raises(ValueError, match="2 feature rows"):
        policy.decide_frame("midterm", np.array([0.1]), frame)
    with pytest.raises(ValueError, match="row 1"):
        policy.decide_frame("midterm", np.array([0.1, np.nan]), frame)


# ----------------------------------------------------------------------------- file errors
def rule(raw: dict[str, Any], stage: str, rule_id: str) -> dict[str, Any]:
    return next(r for r in raw["stages"][stage]["rules"] if r["id"] == rule_id)


def test_unknown_feature_names_stage_and_rule(tmp_path: Path, raw_policy: dict[str, Any]) -> None:
    rule(raw_policy, "midterm", "unqualified_grade")["condition"]["feature"] = "grade_unqualifed_n"
    expected = r"stage 'midterm', rule 'unqualified_grade'.*unknown feature 'grade_unqualifed_n'"
    with pytest.raises(TierPolicyError, match=expected):
        TierPolicy.load(write(tmp_path, raw_policy))


def test_feature_absent_at_stage_is_an_error(tmp_path: Path, raw_policy: dict[str, Any]) -> None:
    raw_policy["stages"]["intake"]["rules"].append(
        {"id": "sanctions", "zh": "x", "en": "x", "condition": {"feature": "warning_term", "op": ">=", "value": 2}}
    )
    with pytest.raises(TierPolicyError, match=r"stage 'intake', rule 'sanctions'.*does not exist at stage intake"):
        TierPolicy.load(write(tmp_path, raw_policy))


def test_unknown_operator_names_stage_and_rule(tmp_path: Path, raw_policy: dict[str, Any]) -> None:
    rule(raw_policy, "release", "sanctions")["condition"]["op"] = "=>"
    with pytest.raises(TierPolicyError, match=r"stage 'release', rule 'sanctions' \(condition.op\)"):
        TierPolicy.load(write(tmp_path, raw_policy))


def test_unknown_category_code(tmp_path: Path, raw_policy: dict[str, Any]) -> None:
    rule(raw_policy, "intake", "gang_terror_cult")["condition"]["any_of"][0]["value"] = ["gang", "terror"]
    expected = r"stage 'intake', rule 'gang_terror_cult'.*unknown offence code\(s\) \['terror'\]"
    with pytest.raises(TierPolicyError, match=expected):
        TierPolicy.load(write(tmp_path, raw_policy))


@pytest.mark.parametrize(
    ("medium", "high", "message"),
    [
        (0.3, 0.2, r"stage 'release': cut-offs must increase"),
        (0.1, 1.0, r"stage 'release' \(high_from\): a probability cut-off must be greater than 0 and less than 1"),
        (0.0, 0.2, r"stage 'release' \(medium_from\): a probability cut-off must be greater than 0"),
        ({"times_base_rate": 3}, {"times_base_rate": 2}, r"stage 'release': cut-offs must increase.*3 × the base"),
        ({"riskiest_share": 0.1}, {"riskiest_share": 0.3}, r"stage 'release':.*medium_from must flag more"),
        (
            {"riskiest_share": 0.3},
            {"riskiest_share": 1},
            r"stage 'release' \(high_from\): riskiest_share .* less than 1",
        ),
        ({"riskiest_share": 0.3}, {"riskiest_share": 0}, r"stage 'release' \(high_from\): riskiest_share .* greater"),
        ({"times_base_rate": -1}, 0.3, r"stage 'release' \(medium_from\): times_base_rate must be a positive"),
        ({"times_base_rate": "2x"}, 0.3, r"stage 'release' \(medium_from\): times_base_rate must be a finite number"),
        ({"top_share": 0.3}, 0.3, r"stage 'release' \(medium_from\): unknown cut-off .*top_share.*riskiest_share"),
        ({"riskiest_share": 0.3, "times_base_rate": 2}, 0.5, r"stage 'release' \(medium_from\): unknown cut-off"),
        (True, 0.3, r"stage 'release' \(medium_from\): a cut-off must be a finite number, got True"),
        ("0.1", 0.3, r"stage 'release' \(medium_from\): a cut-off must be a finite number"),
    ],
)
def test_bad_cutoffs_name_the_stage_and_the_field(
    tmp_path: Path, raw_policy: dict[str, Any], medium: Any, high: Any, message: str
) -> None:
    raw_policy["stages"]["release"].update(medium_from=medium, high_from=high)
    with pytest.raises(TierPolicyError, match=message):
        TierPolicy.load(write(tmp_path, raw_policy))


def test_unknown_and_missing_stages(tmp_path: Path, raw_policy: dict[str, Any]) -> None:
    raw_policy["stages"]["parole"] = raw_policy["stages"].pop("release")
    with pytest.raises(TierPolicyError, match="stage 'parole'") as err:
        TierPolicy.load(write(tmp_path, raw_policy))
    assert "intake" in str(err.value)  # the message lists the known stages
    del raw_policy["stages"]["parole"]
    with pytest.raises(TierPolicyError, match=r"missing from the policy: \['release'\]"):
        TierPolicy.load(write(tmp_path, raw_policy))


def test_malformed_conditions(tmp_path: Path, raw_policy: dict[str, Any]) -> None:
    cond = rule(raw_policy, "midterm", "unqualified_grade")["condition"]
    cond["value"] = [1, 2]
    with pytest.raises(TierPolicyError, match=r"rule 'unqualified_grade'.*needs a single value"):
        TierPolicy.load(write(tmp_path, raw_policy))
    cond.update(value=1, always=True)
    with pytest.raises(TierPolicyError, match="exactly one of"):
        TierPolicy.load(write(tmp_path, raw_policy))


def test_strict_bands_must_be_an_upper_set(tmp_path: Path, raw_policy: dict[str, Any]) -> None:
    raw_policy["stages"]["midterm"]["strict_bands"] = ["medium"]
    with pytest.raises(TierPolicyError, match=r"stage 'midterm'.*strict_bands"):
        TierPolicy.load(write(tmp_path, raw_policy))


def test_medium_strict_lowers_the_cutoff(tmp_path: Path, raw_policy: dict[str, Any]) -> None:
    raw_policy = with_probabilities(raw_policy)
    raw_policy["stages"]["midterm"]["strict_bands"] = ["medium", "high"]
    policy = TierPolicy.load(write(tmp_path, raw_policy))
    assert policy.strict_cutoff("midterm") == 0.10
    assert policy.decide("midterm", 0.12, QUIET_MIDTERM).tier is Tier.STRICT


def test_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("version: [unclosed\n", encoding="utf-8")
    with pytest.raises(TierPolicyError, match="not valid YAML"):
        TierPolicy.load(path)


@pytest.mark.parametrize(("p", "by_risk"), [(0.05, Tier.ORDINARY), (0.5, Tier.STRICT)])
def test_intake_rule_is_time_limited_and_names_the_tier_that_follows(
    policy: TierPolicy, p: float, by_risk: Tier
) -> None:
    import datetime as dt

    decision = policy.decide("intake", p, {"offence": "theft", "flag_gang": 0.0})
    assert decision.tier is Tier.STRICT and decision.rule_id == "first_two_months"
    assert decision.tier_by_risk is by_risk and decision.band is policy.band("intake", p)
    assert decision.rule_until(dt.date(2024, 3, 1)) == dt.date(2024, 4, 30)  # 61 days: 1 March to 30 April
    assert decision.then is not None and decision.then.reason == "band" and decision.then.tier is by_risk


def test_after_a_time_limited_rule_a_lasting_rule_still_holds(policy: TierPolicy) -> None:
    row = {**QUIET_MIDTERM, "days_since_start": 20.0, "grade_unqualified_n": 1.0}
    first_two = policy.decide("midterm", 0.01, {**row, "grade_unqualified_n": 0.0})
    assert first_two.then is not None
    assert first_two.rule_id == "first_two_months" and first_two.then.tier is Tier.ORDINARY
    both = policy.decide("midterm", 0.01, row)
    assert both.rule_id == "unqualified_grade" and both.rule_days_after_start is None and both.then is None
    assert both.tier_by_risk is Tier.ORDINARY
    frame = pd.DataFrame([row, {**row, "grade_unqualified_n": 0.0}])
    assert policy.decide_frame("midterm", np.array([0.01, 0.01]), frame) == [both, first_two]


def test_a_bad_time_limit_is_refused(tmp_path: Path, raw_policy: dict[str, Any]) -> None:
    raw_policy["stages"]["intake"]["rules"][-1]["time_limit"] = {"days_after_start": 0}
    with pytest.raises(TierPolicyError, match=r"intake.*first_two_months"):
        TierPolicy.load(write(tmp_path, raw_policy))
