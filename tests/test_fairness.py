"""Fairness that can always be measured: calibration within groups, error-rate gaps that warn when few are flagged."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, mean_prediction
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, logit
from scipy.stats import norm

from evaluation import (
    CalibrationRule,
    ErrorRateRule,
    EvaluationReport,
    FairnessRule,
    classification_metrics,
    error_rate_gaps,
    fairness_checks,
    group_calibration,
    group_metrics,
)
from training.config import GateConfig
from training.promote import Criterion, judge

THRESHOLD = 0.3


def _cohort(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Calibrated probabilities, outcomes drawn from them, and the four groupings of the gate."""
    rng = np.random.default_rng(seed)
    meta = pd.DataFrame(
        {
            "sex": rng.choice(["female", "male"], n, p=[0.15, 0.85]),
            "local": rng.choice(["local", "non-local"], n, p=[0.6, 0.4]),
            "age_band": rng.choice(["18-24", "25-34", "35-49", "50+"], n),
            "offence": rng.choice(["theft", "fraud", "assault", "drug"], n),
        }
    )
    truth = expit(rng.normal(-1.6, 1.0, n) + 0.6 * (meta["age_band"] == "18-24"))
    y = (rng.random(n) < truth).astype(int)
    return y, truth, meta


@pytest.fixture(scope="module")
def large() -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    return _cohort(8000, 1)


def _by_name(criteria: list[Criterion]) -> dict[str, Criterion]:
    return {c.name: c for c in criteria}


# --- the gate's three fairness criteria -----------------------------------------------------------


def test_a_small_cohort_warns_on_unmeasurable_error_rates_and_is_still_promotable() -> None:
    """300 test rows, a handful flagged: the gaps are "not measurable (n flagged)", a warning, not a refusal."""
    y, truth, meta = _cohort(300, 2)
    gate = GateConfig.load()
    gate = gate.model_copy(update={"ece_limit": 0.1})  # ECE on 300 rows is mostly noise; this test is about fairness
    criteria = judge(y, truth, meta, threshold=0.5, gate=gate)
    by_name = _by_name(criteria)
    flagged = int((truth >= 0.5).sum())
    assert 0 < flagged < 30
    assert all(c.passed for c in criteria), [c.message for c in criteria if not c.passed]
    for name in ("largest_fpr_gap", "largest_fnr_gap"):
        assert by_name[name].verdict == "warn" and "not measurable" in by_name[name].message
    women = int(((truth >= 0.5) & (meta["sex"] == "female")).sum())
    assert f"sex=female ({women} flagged)" in by_name["largest_fpr_gap"].message
    # calibration is still judged where re-offences are enough, and names the groups too small to judge
    calibration = by_name["calibration_within_groups"]
    assert calibration.verdict == "warn" and "too small to judge" in calibration.message
    assert "sex=female (n " in calibration.message and "interval crosses the band" in calibration.message


def test_a_model_miscalibrated_for_one_sex_is_refused_naming_the_group(
    large: tuple[np.ndarray, np.ndarray, pd.DataFrame],
) -> None:
    y, truth, meta = large
    women = (meta["sex"] == "female").to_numpy()
    shifted = np.where(women, expit(logit(truth) + 0.8), truth)  # women's risk overstated
    criteria = _by_name(judge(y, shifted, meta, threshold=THRESHOLD, gate=GateConfig.load()))
    refused = criteria["calibration_within_groups"]
    assert not refused.passed
    assert "miscalibrated beyond [0.80, 1.25]: sex=female" in refused.message
    assert "sex=male" not in refused.message.split(";")[0]
    assert refused.value < 0.8  # the worst group's observed / expected
    fair = _by_name(judge(y, truth, meta, threshold=THRESHOLD, gate=GateConfig.load()))
    assert fair["calibration_within_groups"].passed


def test_an_fnr_gap_is_gated_in_a_gated_grouping_and_only_reported_in_another(
    large: tuple[np.ndarray, np.ndarray, pd.DataFrame],
) -> None:
    y, truth, meta = large
    local = (meta["local"] == "local").to_numpy()
    # re-offenders from elsewhere are never flagged: their FNR is 1, the locals' far lower
    prob = np.where(~local & (y == 1), np.minimum(truth, THRESHOLD - 0.01), truth)
    criteria = _by_name(judge(y, prob, meta, threshold=THRESHOLD, gate=GateConfig.load()))
    assert not criteria["largest_fnr_gap"].passed
    assert "largest FNR gap above limit 0.25: local" in criteria["largest_fnr_gap"].message
    # the same gap between offence categories, a reported grouping, refuses nothing
    theft = (meta["offence"] == "theft").to_numpy()
    prob = np.where(theft & (y == 1), np.minimum(truth, THRESHOLD - 0.01), truth)
    checks = fairness_checks(y, prob, groups=meta, threshold=THRESHOLD, rule=GateConfig.load().fairness)
    assert checks.error_gaps.gaps["fnr_gap"]["offence"] > 0.25
    fnr = next(v for v in checks.verdicts() if v.name == "largest_fnr_gap")
    assert fnr.passed and fnr.value < 0.25


def test_absent_groupings_are_named_as_a_warning(large: tuple[np.ndarray, np.ndarray, pd.DataFrame]) -> None:
    y, truth, meta = large
    verdicts = {
        v.name: v
        for v in fairness_checks(
            y, truth, groups=meta[["age_band"]], threshold=THRESHOLD, rule=FairnessRule()
        ).verdicts()
    }
    assert verdicts["calibration_within_groups"].warning
    assert "not in the data: sex, local, offence" in verdicts["calibration_within_groups"].message
    assert verdicts["largest_fpr_gap"].passed and "not in the data: sex, local" in verdicts["largest_fpr_gap"].message
    none = fairness_checks(y, truth, groups=pd.DataFrame(index=meta.index), threshold=THRESHOLD).verdicts()
    assert all(v.passed and v.warning for v in none)


# --- calibration within groups --------------------------------------------------------------------


def test_observed_over_expected_equals_fairlearn_by_group(large: tuple[np.ndarray, np.ndarray, pd.DataFrame]) -> None:
    y, truth, meta = large
    table = group_calibration(y, truth, groups=meta).table.set_index(["grouping", "group"])
    for column in meta.columns:
        mf = MetricFrame(
            metrics={"prevalence": lambda yt, yp: float(np.mean(yt)), "mean_score": mean_prediction},
            y_true=y,
            y_pred=truth,
            sensitive_features=meta[column],
        )
        expected = mf.by_group["prevalence"] / mf.by_group["mean_score"]
        got = table.xs(column)["ratio"]
        pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False, rtol=1e-12)


def test_the_interval_is_seeded_reproducible_and_covers_the_ratio(
    large: tuple[np.ndarray, np.ndarray, pd.DataFrame],
) -> None:
    y, truth, meta = large
    first = group_calibration(y, truth, groups=meta, rule=CalibrationRule(seed=3)).table
    again = group_calibration(y, truth, groups=meta, rule=CalibrationRule(seed=3)).table
    pd.testing.assert_frame_equal(first, again)
    other = group_calibration(y, truth, groups=meta, rule=CalibrationRule(seed=4)).table
    assert not np.allclose(first["low"], other["low"])
    pd.testing.assert_series_equal(first["ratio"], other["ratio"])
    assert (first["low"] <= first["ratio"]).all() and (first["ratio"] <= first["high"]).all()
    # a group's interval depends on its own rows only: judging one grouping alone gives the same
    alone = group_calibration(y, truth, groups=meta[["sex"]], rule=CalibrationRule(seed=3)).table
    pd.testing.assert_frame_equal(alone, first[first["grouping"] == "sex"].reset_index(drop=True))


def test_the_interval_matches_the_delta_method_on_a_large_group() -> None:
    """For a large calibrated group the percentile interval is close to ratio * exp(+-z SE(log ratio))."""
    rng = np.random.default_rng(9)
    p = expit(rng.normal(-1.5, 0.8, 40_000))
    y = (rng.random(len(p)) < p).astype(int)
    rule = CalibrationRule(resamples=4000)
    row = group_calibration(y, p, groups=pd.DataFrame({"g": ["a"] * len(p)}), rule=rule).table.iloc[0]
    # delta method for log(O/E) with O, E sums of n i.i.d. (y, p) pairs
    o, e, n = y.sum(), p.sum(), len(p)
    var = n * (np.var(y) / o**2 + np.var(p) / e**2 - 2 * np.cov(y, p, bias=True)[0, 1] / (o * e))
    half_width = norm.ppf(1 - (1 - rule.level) / 2) * np.sqrt(var)
    assert np.log(row["ratio"] / row["low"]) == pytest.approx(half_width, rel=0.1)
    assert np.log(row["high"] / row["ratio"]) == pytest.approx(half_width, rel=0.1)
    assert row["status"] == "within"


def test_vectorised_bootstrap_equals_a_plain_loop() -> None:
    """The chunked draws are the resamples of a plain loop, on the rows in canonical order, by the documented seed."""
    rng = np.random.default_rng(4)
    y = (rng.random(2_500) < 0.2).astype(int)
    p = rng.random(2_500) * 0.4
    rule = CalibrationRule(resamples=900, seed=7)  # 900 x 2,500 cells: three chunks
    row = group_calibration(y, p, groups=pd.DataFrame({"g": ["a"] * len(y)}), rule=rule).table.iloc[0]
    order = np.lexsort((p, y))  # by outcome, then probability
    ys, ps = y[order], p[order]
    draws = np.random.default_rng([rule.seed, zlib.crc32(b"g=a")])
    plain = []
    for _ in range(rule.resamples):
        idx = draws.integers(0, len(y), size=(1, len(y)))[0]
        plain.append(ys[idx].sum() / ps[idx].sum())
    tail = (1 - rule.level) / 2
    low, high = np.quantile(plain, [tail, 1 - tail], method="inverted_cdf")
    assert (row["low"], row["high"]) == pytest.approx((low, high), rel=1e-12)


def test_a_small_group_without_reoffences_is_small_not_miscalibrated() -> None:
    """30 people, none re-offended, 1.5 expected: the bootstrap says [0, 0], the rule says "small"."""
    rng = np.random.default_rng(6)
    y = np.r_[np.zeros(30, int), (rng.random(3000) < 0.2).astype(int)]
    p = np.r_[np.full(30, 0.05), np.full(3000, 0.2)]
    groups = pd.DataFrame({"offence": ["rare"] * 30 + ["common"] * 3000})
    cal = group_calibration(y, p, groups=groups)
    rare = cal.table.set_index("group").loc["rare"]
    assert (rare["low"], rare["high"], rare["status"]) == (0.0, 0.0, "small")
    rule = FairnessRule(groupings=("offence",), error_rates=ErrorRateRule(gated=()))
    verdict = fairness_checks(y, p, groups=groups, threshold=THRESHOLD, rule=rule).verdicts()[0]
    assert verdict.passed and verdict.warning and "offence=rare (n 30, 0 observed)" in verdict.message
    # with 24 re-offences expected (min_events is 20) the same [0, 0] is evidence
    p[:30] = 0.8
    assert group_calibration(y, p, groups=groups).table.set_index("group").loc["rare", "status"] == "miscalibrated"


def test_the_report_shows_small_groups_and_unmeasurable_rates(
    large: tuple[np.ndarray, np.ndarray, pd.DataFrame],
) -> None:
    y, truth, meta = large
    meta = meta.assign(offence=np.where(np.arange(len(y)) < 20, "rare", meta["offence"]))
    groups = group_metrics(y, truth, groups=meta, threshold=0.7, fairness=GateConfig.load().fairness)
    report = EvaluationReport(metrics=classification_metrics(y, truth, threshold=0.7), groups=groups)
    text = "\n".join(report.markdown_lines(Path(".")))
    assert "| offence | rare | 20 |" in text and "small group: not judged" in text
    assert "not measurable (" in text and "flagged)" in text
    assert "- warn: calibration within groups" in text


# --- invariants -----------------------------------------------------------------------------------


@st.composite
def _rows(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, np.ndarray]:
    n = draw(st.integers(40, 240))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    p = rng.beta(draw(st.floats(0.5, 3)), draw(st.floats(1, 8)), n)
    p = np.round(p, draw(st.sampled_from([2, 6])))  # ties (as isotonic calibration makes) or none
    y = (rng.random(n) < np.clip(p * draw(st.floats(0.5, 2.0)), 0, 1)).astype(int)
    groups = pd.DataFrame(
        {
            "sex": rng.choice(["female", "male"], n, p=[0.3, 0.7]),
            "local": rng.choice(np.array(["local", "non-local", None], dtype=object), n, p=[0.5, 0.45, 0.05]),
            "age_band": rng.choice(["18-24", "25-34", "50+"], n),
        }
    )
    return y, p, groups, rng.permutation(n)


@settings(max_examples=25, deadline=None)
@given(_rows())
def test_permuting_rows_changes_no_verdict_nor_interval(
    rows: tuple[np.ndarray, np.ndarray, pd.DataFrame, np.ndarray],
) -> None:
    y, p, groups, order = rows
    rule = FairnessRule(
        groupings=("sex", "local", "age_band"),
        calibration=CalibrationRule(resamples=200, min_events=3),
        error_rates=ErrorRateRule(min_flagged=2, min_negatives=5, min_positives=2),
    )
    before = fairness_checks(y, p, groups=groups, threshold=0.2, rule=rule)
    after = fairness_checks(y[order], p[order], groups=groups.iloc[order], threshold=0.2, rule=rule)
    assert [(v.verdict, v.message) for v in before.verdicts()] == [(v.verdict, v.message) for v in after.verdicts()]
    pd.testing.assert_frame_equal(before.calibration.table, after.calibration.table)
    pd.testing.assert_frame_equal(before.error_gaps.table, after.error_gaps.table)


@settings(max_examples=25, deadline=None)
@given(_rows(), st.integers(1, 40))
def test_error_rate_table_counts_add_up(rows: tuple[np.ndarray, np.ndarray, pd.DataFrame, np.ndarray], k: int) -> None:
    """In every grouping the groups' counts sum to the whole, and a rate counts only with its minimums."""
    y, p, groups, _ = rows
    rule = ErrorRateRule(gated=("sex",), min_flagged=k, min_negatives=k, min_positives=k)
    gaps = error_rate_gaps(y, p, groups=groups, threshold=0.2, rule=rule)
    for _, table in gaps.table.groupby("grouping"):
        assert table["n"].sum() == len(y) and table["positives"].sum() == y.sum()
        assert table["flagged"].sum() == (p >= 0.2).sum()
    ok = gaps.table["flagged"] >= k
    assert (gaps.table["fpr_measurable"] == (ok & (gaps.table["negatives"] >= k))).all()
    assert (gaps.table["fnr_measurable"] == (ok & (gaps.table["positives"] >= k))).all()
