"""Tests of the evaluation package: metrics against scikit-learn/fairlearn, fairness, reports."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Literal, NoReturn

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, false_negative_rate, false_positive_rate, selection_rate
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, logit
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from evaluation import (
    ErrorRateRule,
    EvaluationReport,
    FairnessRule,
    GroupReport,
    brier_by_sex_average,
    calibration_slope_intercept,
    classification_metrics,
    ece_by_chance,
    evaluate,
    expected_calibration_error,
    group_metrics,
    model_card,
    nij_fairness_adjusted,
    plot_evaluation,
    threshold_metrics,
)

THRESHOLD = 0.3


def _simulate(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated probabilities (low base rate, as in supervision data) and outcomes drawn from them."""
    p = expit(rng.normal(-2.0, 1.0, n))
    return rng.binomial(1, p), p


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    return _simulate(np.random.default_rng(7), 4_000)


@pytest.fixture
def large() -> tuple[np.ndarray, np.ndarray]:
    return _simulate(np.random.default_rng(11), 200_000)


@pytest.fixture
def groups(data: tuple[np.ndarray, np.ndarray]) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = len(data[0])
    return pd.DataFrame(
        {
            "sex": rng.choice(["male", "female"], n, p=[0.85, 0.15]),
            "age_band": pd.Categorical(
                rng.choice(["18-24", "25-34", "35-49", "50+"], n),
                categories=["18-24", "25-34", "35-49", "50+"],
                ordered=True,
            ),
            "residence": rng.choice(["local", "non-local"], n),
            "offence": rng.choice(["theft", "fraud", "violent", "drug", "rare"], n, p=[0.4, 0.2, 0.2, 0.195, 0.005]),
        }
    )


# --- overall metrics ---------------------------------------------------------------------------


def test_metrics_equal_sklearn(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = data
    m = classification_metrics(y, p, threshold=THRESHOLD)
    assert m["n"] == len(y)
    assert m["prevalence"] == pytest.approx(y.mean())
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert m["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert m["log_loss"] == pytest.approx(log_loss(y, p), abs=1e-12)


def test_threshold_metrics_equal_sklearn_and_fairlearn(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = data
    m = threshold_metrics(y, p, THRESHOLD)
    flag = (p >= THRESHOLD).astype(int)
    assert m["share_flagged"] == pytest.approx(selection_rate(y, flag))
    assert m["precision"] == pytest.approx(precision_score(y, flag))
    assert m["recall"] == pytest.approx(recall_score(y, flag))
    assert m["fpr"] == pytest.approx(false_positive_rate(y, flag))
    assert m["fnr"] == pytest.approx(false_negative_rate(y, flag))


def test_threshold_flags_scores_equal_to_the_cut_off() -> None:
    m = threshold_metrics([0, 1, 0], [0.5, 0.5, 0.49], 0.5)
    assert m["share_flagged"] == pytest.approx(2 / 3)
    assert m["fpr"] == pytest.approx(0.5)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_ece_agrees_with_sklearn_calibration_curve(
    data: tuple[np.ndarray, np.ndarray], strategy: Literal["uniform", "quantile"]
) -> None:
    y, p = data
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy=strategy)
    edges = np.linspace(0, 1, 11) if strategy == "uniform" else np.percentile(p, np.linspace(0, 100, 11))
    counts, _ = np.histogram(p, bins=edges)
    counts = counts[counts > 0]
    expected = np.sum(counts / len(y) * np.abs(prob_true - prob_pred))
    assert expected_calibration_error(y, p, strategy=strategy) == pytest.approx(expected, abs=1e-12)


def test_ece_small_when_calibrated_large_when_distorted(large: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = large
    assert expected_calibration_error(y, p) < 0.02
    assert expected_calibration_error(y, p, strategy="quantile") < 0.02
    assert expected_calibration_error(y, p**0.5) > 0.1


@pytest.mark.parametrize("n", [300, 3000])
def test_ece_by_chance_bounds_a_calibrated_score_and_not_a_distorted_one(n: int) -> None:
    """A perfectly calibrated score's ECE stays under its chance level about 95% of the time, at any size;
    a distorted one's exceeds it once the rows are enough to tell."""
    rng = np.random.default_rng(n)
    p = rng.beta(1.2, 12, n)
    level = ece_by_chance(p, seed=1)
    assert level == ece_by_chance(p, seed=1)  # seeded
    within = [expected_calibration_error(rng.random(n) < p, p) <= level for _ in range(200)]
    assert 0.90 <= np.mean(within) <= 0.99
    if n >= 3000:
        assert expected_calibration_error(rng.random(n) < np.minimum(1.0, 1.6 * p), p) > level


def test_calibration_slope_and_intercept(large: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = large
    slope, intercept = calibration_slope_intercept(y, p)
    assert slope == pytest.approx(1.0, abs=0.03)
    assert intercept == pytest.approx(0.0, abs=0.03)
    over_slope, _ = calibration_slope_intercept(y, expit(2 * logit(p)))
    assert over_slope < 0.6
    _, low_intercept = calibration_slope_intercept(y, expit(logit(p) - 0.5))
    assert low_intercept == pytest.approx(0.5, abs=0.05)


def test_calibration_slope_equals_unpenalised_logistic_regression(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = data
    x = logit(np.clip(p, 1e-6, 1 - 1e-6)).reshape(-1, 1)
    fit = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1_000).fit(x, y)
    slope, _ = calibration_slope_intercept(y, p)
    assert slope == pytest.approx(fit.coef_[0, 0], abs=1e-4)


def test_single_class_gives_nan_not_an_exception() -> None:
    y = np.zeros(50, dtype=int)
    p = np.linspace(0.01, 0.6, 50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(y, p, threshold=0.5)
    assert np.isnan(m["roc_auc"]) and np.isnan(m["pr_auc"])
    assert np.isnan(m["calibration_slope"]) and np.isnan(m["recall"])
    assert m["brier"] == pytest.approx(brier_score_loss(y, p))
    assert m["fpr"] == pytest.approx(np.mean(p >= 0.5))


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([0, 1, 2], [0.1, 0.2, 0.3], "only 0 and 1"),
        ([0, 1], [0.1, 1.2], r"\[0, 1\]"),
        ([0, 1], [0.1, np.nan], "missing"),
        ([0, 1, 1], [0.1, 0.2], "rows"),
    ],
)
def test_bad_inputs_are_refused(y: list[int], p: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classification_metrics(y, p)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.floats(0, 1)), min_size=2, max_size=60))
def test_auc_and_brier_match_sklearn_on_any_input(rows: list[tuple[int, float]]) -> None:
    y = np.array([r[0] for r in rows])
    p = np.array([r[1] for r in rows])
    m = classification_metrics(y, p)
    assert m["brier"] == pytest.approx(brier_score_loss(y, p, pos_label=1))
    assert 0.0 <= m["ece"] <= 1.0
    if y.min() == y.max():
        assert np.isnan(m["roc_auc"])
    else:
        assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))


# --- groups -------------------------------------------------------------------------------------


def test_group_values_equal_direct_computation_on_the_subset(
    data: tuple[np.ndarray, np.ndarray], groups: pd.DataFrame
) -> None:
    y, p = data
    report = group_metrics(y, p, groups=groups, threshold=THRESHOLD)
    assert set(report.by_group) == set(groups.columns)
    table = report.by_group["offence"]
    for value in ["theft", "fraud", "violent", "drug"]:
        rows = (groups["offence"] == value).to_numpy()
        ys, ps, flag = y[rows], p[rows], (p[rows] >= THRESHOLD).astype(int)
        got = table.loc[value]
        assert got["n"] == rows.sum()
        assert got["prevalence"] == pytest.approx(ys.mean())
        assert got["mean_score"] == pytest.approx(ps.mean())
        assert got["roc_auc"] == pytest.approx(roc_auc_score(ys, ps))
        assert got["brier"] == pytest.approx(brier_score_loss(ys, ps))
        assert got["ece"] == pytest.approx(expected_calibration_error(ys, ps))
        assert got["precision"] == pytest.approx(precision_score(ys, flag))
        assert got["recall"] == pytest.approx(recall_score(ys, flag))
        assert got["fpr"] == pytest.approx(false_positive_rate(ys, flag))


def test_group_values_equal_a_fairlearn_metricframe(data: tuple[np.ndarray, np.ndarray], groups: pd.DataFrame) -> None:
    y, p = data
    flag = (p >= THRESHOLD).astype(int)
    mf = MetricFrame(
        metrics={"fpr": false_positive_rate, "fnr": false_negative_rate, "share_flagged": selection_rate},
        y_true=y,
        y_pred=flag,
        sensitive_features=groups["sex"],
    )
    table = group_metrics(y, p, groups=groups, threshold=THRESHOLD).by_group["sex"]
    pd.testing.assert_frame_equal(
        table[["fpr", "fnr", "share_flagged"]].sort_index(),
        mf.by_group.sort_index(),
        check_names=False,
        check_dtype=False,
    )


def test_gaps_leave_out_small_groups_and_keep_category_order(
    data: tuple[np.ndarray, np.ndarray], groups: pd.DataFrame
) -> None:
    y, p = data
    report = group_metrics(y, p, groups=groups, threshold=THRESHOLD, min_group_size=30)
    assert list(report.by_group["age_band"].index) == ["18-24", "25-34", "35-49", "50+"]
    assert report.small_groups["offence"] == ["rare"]
    offence = report.by_group["offence"].drop(index="rare")
    assert report.gaps.loc["offence", "fpr"] == pytest.approx(offence["fpr"].max() - offence["fpr"].min())
    # the headline gaps follow the shared rule: groups with enough flagged and non-re-offenders / re-offenders,
    # largest over the gated groupings
    rates = ErrorRateRule(gated=tuple(groups.columns), min_flagged=1, min_negatives=30, min_positives=1)
    rule = FairnessRule(groupings=tuple(groups.columns), error_rates=rates)
    report = group_metrics(y, p, groups=groups, threshold=THRESHOLD, min_group_size=30, fairness=rule)
    frame = groups.assign(y=y, flag=p >= THRESHOLD)
    fpr_by_hand = max(
        fpr.max() - fpr.min()
        for column in groups.columns
        for fpr in [frame[y == 0].groupby(column).filter(lambda g: len(g) >= 30).groupby(column)["flag"].mean()]
    )
    assert report.checks is not None
    assert report.largest_fpr_gap == pytest.approx(fpr_by_hand)
    fnr_gaps = []
    for column in groups.columns:
        counts = frame.groupby(column, observed=True)[["flag", "y"]].sum()
        counted = counts.index[(counts["flag"] >= 1) & (counts["y"] >= 1)]
        fnr = 1 - frame[y == 1].groupby(column, observed=True)["flag"].mean().loc[counted]
        fnr_gaps.append(fnr.max() - fnr.min())
    fnr_by_hand = max(fnr_gaps)
    assert report.largest_fnr_gap == pytest.approx(fnr_by_hand)


def test_error_rate_gaps_on_a_hand_built_example() -> None:
    #              group a: 4 negatives, 1 flagged -> FPR 1/4     group b: 2 negatives, both flagged -> 1
    y = np.array([0, 0, 0, 0, 1, 0, 0, 1, 0])
    p = np.array([0.9, 0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.2, 0.9])
    groups = pd.DataFrame(
        {
            "g": ["a", "a", "a", "a", "a", "b", "b", "b", "c"],  # c has one non-re-offender: not counted
            "h": ["x", "x", "x", "x", "y", "y", "y", "y", "y"],  # x: FPR 1/4, y: negatives 3 of 3 flagged -> 1
        }
    )
    rates = ErrorRateRule(gated=("g", "h"), min_flagged=1, min_negatives=2, min_positives=1)
    report = group_metrics(
        y,
        p,
        groups=groups,
        threshold=0.5,
        min_group_size=2,
        fairness=FairnessRule(groupings=("g", "h"), error_rates=rates),
    )
    assert report.by_group["g"].loc["a", "fpr"] == pytest.approx(0.25)
    assert report.by_group["g"].loc["b", "fpr"] == pytest.approx(1.0)
    assert report.gaps.loc["g", "fpr"] == pytest.approx(0.75)
    assert report.gaps.loc["h", "fpr"] == pytest.approx(0.75)
    assert report.largest_fpr_gap == pytest.approx(0.75)
    assert report.checks is not None
    table = report.checks.error_gaps.table.set_index(["grouping", "group"])
    assert table.loc[("g", "c"), "fpr_note"] == "1 did not re-offend" and not table.loc[("g", "c"), "fpr_measurable"]
    # FNR: group a's one re-offender is flagged (0), group b's is not (1); group h=y: 1 of 2 missed
    assert report.checks.error_gaps.gaps.loc["g", "fnr_gap"] == pytest.approx(1.0)
    assert report.largest_fnr_gap == pytest.approx(1.0)
    groups["h"] = ["x", "x", "x", "x", "x", "x", "y", "y", "y"]  # x: 2 of 5 negatives flagged; y: 2 of 2
    report = group_metrics(
        y,
        p,
        groups=groups,
        threshold=0.5,
        min_group_size=2,
        fairness=FairnessRule(groupings=("g", "h"), error_rates=rates),
    )
    assert report.gaps.loc["h", "fpr"] == pytest.approx(1 - 2 / 5)
    assert report.largest_fpr_gap == pytest.approx(0.75)


def test_missing_group_values_form_their_own_group(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = data
    values = np.array([None if i % 10 == 0 else "local" for i in range(len(y))], dtype=object)
    report = group_metrics(y, p, groups=pd.DataFrame({"residence": values}), threshold=THRESHOLD)
    assert report.by_group["residence"]["n"].to_dict() == {"(missing)": 400, "local": 3_600}
    json.dumps(report.to_dict())


def test_groups_must_match_the_rows(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = data
    with pytest.raises(ValueError, match="rows"):
        group_metrics(y, p, groups=pd.DataFrame({"sex": ["m"] * 3}), threshold=THRESHOLD)


# --- NIJ challenge scores --------------------------------------------------------------------


def test_brier_by_sex_average_on_a_tiny_example() -> None:
    y = [1, 0, 1]
    p = [0.8, 0.2, 0.5]
    sex = ["M", "M", "F"]  # men: (0.04 + 0.04) / 2 = 0.04; women: 0.25
    assert brier_by_sex_average(y, p, sex) == pytest.approx((0.04 + 0.25) / 2)
    assert brier_score_loss(y, p) == pytest.approx(0.11)  # the pooled score differs


def test_nij_fairness_adjusted_on_a_tiny_example() -> None:
    y = [0, 0, 1, 0, 0, 1]
    p = [0.6, 0.2, 0.7, 0.1, 0.3, 0.4]
    race = ["BLACK", "Black", "black ", "WHITE", "white", "White"]  # FPR: black 1/2, white 0
    sex = ["M"] * 6
    brier = brier_score_loss(y, p)
    assert nij_fairness_adjusted(y, p, race=race, sex=sex) == pytest.approx((1 - brier) * (1 - 0.5))
    with pytest.raises(ValueError, match="white"):
        nij_fairness_adjusted(y, p, race=["black"] * 6, sex=sex)


# --- figures, report and card ----------------------------------------------------------------


def test_plot_evaluation_writes_the_figures(
    data: tuple[np.ndarray, np.ndarray], groups: pd.DataFrame, tmp_path: Path
) -> None:
    y, p = data
    paths = plot_evaluation(
        y,
        p,
        groups=groups[["sex", "age_band"]],
        out_dir=tmp_path,
        title="t",
        threshold=THRESHOLD,
        compare={"oracle": p},
    )
    assert [x.name for x in paths] == [
        "roc.png",
        "pr.png",
        "reliability.png",
        "reliability_by_sex.png",
        "reliability_by_age_band.png",
        "score_distribution.png",
    ]
    assert all(x.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for x in paths)


def test_evaluate_writes_report_json_and_figures(
    data: tuple[np.ndarray, np.ndarray], groups: pd.DataFrame, tmp_path: Path
) -> None:
    y, p = data
    extra = tmp_path / "elsewhere" / "shap_summary.png"
    extra.parent.mkdir()
    extra.write_bytes(b"\x89PNG\r\n\x1a\n")
    out = tmp_path / "report"
    report = evaluate(
        y,
        np.clip(p * 1.2, 0, 1),
        groups=groups,
        threshold=THRESHOLD,
        oracle_prob=p,
        baseline_prob=np.full(len(y), y.mean()),
        out_dir=out,
        title="intake (synthetic)",
        meta={"stage": "intake"},
        extra_figures=[extra],
    )
    assert isinstance(report, EvaluationReport) and isinstance(report.groups, GroupReport)
    assert (out / "report.md").is_file() and (out / "metrics.json").is_file()
    assert len(list(out.glob("*.png"))) == 5 + len(groups.columns)
    assert report.oracle is not None
    assert report.oracle["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert report.oracle["brier"] == pytest.approx(brier_score_loss(y, p))

    def refuse(constant: str) -> NoReturn:
        raise AssertionError(f"non-standard JSON constant {constant}")

    saved = json.loads((out / "metrics.json").read_text(), parse_constant=refuse)
    assert saved["baseline"]["calibration_slope"] is None  # constant scores: undefined
    assert saved["metrics"]["roc_auc"] == pytest.approx(report.metrics["roc_auc"])
    assert "shap_summary.png" in saved["figures"]
    text = (out / "report.md").read_text()
    for needle in [
        "| metric | model | baseline | oracle |",
        "### By offence",
        "### Fairness checks (the promotion gate's)",
        "### Calibration within groups",
        "### Error rates at the cut-off",
        "](roc.png)",
        "](shap_summary.png)",
    ]:
        assert needle in text


def test_evaluate_without_out_dir_writes_nothing(
    data: tuple[np.ndarray, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    y, p = data
    report = evaluate(y, p, threshold=THRESHOLD)
    assert report.figures == [] and report.groups is None and report.oracle is None
    assert list(tmp_path.iterdir()) == []
    assert set(report.to_dict()) == {"meta", "metrics", "baseline", "oracle", "groups", "figures"}


def test_model_card(data: tuple[np.ndarray, np.ndarray], groups: pd.DataFrame, tmp_path: Path) -> None:
    y, p = data
    report = evaluate(y, p, groups=groups, threshold=THRESHOLD, out_dir=tmp_path / "eval")
    path = model_card(
        name="reoffence-intake",
        version="4",
        stage="intake",
        data_description="synthetic cohort, seed 7",
        period="2016-01 to 2024-12",
        label_definition="new offence within 12 months of supervision start",
        n_train=10_000,
        n_test=len(y),
        n_censored=321,
        report=report,
        limits=["Synthetic data only."],
        out_path=tmp_path / "card" / "model_card.md",
    )
    text = path.read_text()
    for needle in [
        "# Model card: reoffence-intake (version 4)",
        "| censored (left out) | 321 |",
        "new offence within 12 months",
        "### By sex",
        "- Synthetic data only.",
        "](../eval/roc.png)",
    ]:
        assert needle in text


@given(st.integers(1, 80))
def test_every_group_of_a_reliability_figure_has_its_own_colour_and_style(n: int) -> None:
    """13 offences (or any number of groups) are told apart: no two curves share colour and line style."""
    from evaluation import group_styles

    styles = group_styles(n)
    assert len(styles) == n and len(set(styles)) == n
    if n <= 20:
        assert len({colour for colour, _ in styles}) == n
