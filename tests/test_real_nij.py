"""NIJ year 1: the held-out split, the selection by cross-validation, the sign-constrained logistic model.

Synthetic rows except where marked: the real-data tests are in ``test_real_benchmark.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evaluation import brier_by_sex_average
from training.real.fit import Fit, Predict, fit_sign_logistic
from training.real.nij import (
    Candidate,
    Mean,
    cross_validate,
    held_out_split,
    increasing,
    ordinal,
    predict_all,
    select,
    sex_average_interval,
    strata,
)


@pytest.fixture(scope="module")
def frame() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    n = 1200
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)}, index=[f"id{i}" for i in range(n)])
    y = (rng.random(n) < 1 / (1 + np.exp(-(X["a"] - 1)))).astype(int).to_numpy()
    sex = rng.choice(["male", "female"], n, p=[0.85, 0.15])
    return X, y, sex


@st.composite
def persons_and_strata(draw: st.DrawFn) -> tuple[list[str], list[str], float]:
    """Persons with one to three rows each, one stratum per person, every stratum with >= 2 persons."""
    n_strata = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.integers(2, 12), min_size=n_strata, max_size=n_strata))
    persons, labels = [], []
    for s, size in enumerate(sizes):
        for p in range(size):
            rows = draw(st.integers(1, 3))
            persons += [f"s{s}p{p}"] * rows
            labels += [f"stratum{s}"] * rows
    order = draw(st.permutations(range(len(persons))))
    share = draw(st.sampled_from([0.2, 0.25, 0.5]))
    return [persons[i] for i in order], [labels[i] for i in order], share


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=persons_and_strata(), seed=st.integers(0, 2**16))
def test_held_out_split_keeps_persons_whole_and_strata_in_proportion(
    case: tuple[list[str], list[str], float], seed: int
) -> None:
    persons, labels, share = case
    n_persons, n_strata = len(set(persons)), len(set(labels))
    held_count = math.ceil(share * n_persons)
    if min(held_count, n_persons - held_count) < n_strata:
        with pytest.raises(ValueError, match="fewer persons on one side"):
            held_out_split(persons, labels, share=share, seed=seed)
        return
    dev, held = held_out_split(persons, labels, share=share, seed=seed)
    assert sorted([*dev, *held]) == list(range(len(persons)))
    people = np.asarray(persons)
    assert not set(people[dev]) & set(people[held])
    per_person = pd.DataFrame({"person": persons, "stratum": labels}).drop_duplicates("person")
    held_people = set(people[held])
    for stratum, group in per_person.groupby("stratum"):
        taken = group["person"].isin(held_people).sum()
        assert abs(taken - share * len(group)) <= 1, (stratum, taken, len(group))
    again = held_out_split(persons, labels, share=share, seed=seed)
    assert np.array_equal(again[1], held)


def test_held_out_split_refuses_what_it_cannot_do() -> None:
    with pytest.raises(ValueError, match="more than one stratum"):
        held_out_split(["a", "a", "b", "c"], ["x", "y", "x", "y"])
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        held_out_split(["a", "b"], ["x", "x"], share=1.0)
    with pytest.raises(ValueError, match="at least 2 persons"):
        held_out_split(["a", "b", "c"], ["x", "x", "y"])
    with pytest.raises(ValueError, match="rows but strata"):
        held_out_split(["a", "b", "c"], ["x", "x"])


def test_strata_combine_sex_and_outcome() -> None:
    assert strata([0, 1, 1], ["male", "female", "male"]).tolist() == ["male:0", "female:1", "male:1"]


def test_cross_validation_fits_never_see_the_rows_they_score(
    frame: tuple[pd.DataFrame, np.ndarray, np.ndarray],
) -> None:
    X, y, sex = frame
    seen: list[set[str]] = []

    def recording(X_fit: pd.DataFrame, y_fit: np.ndarray, seed: int) -> Predict:
        seen.append(set(X_fit.index))
        rate = float(np.mean(y_fit))
        return lambda Z: np.full(len(Z), rate)

    oof = cross_validate({"rate": recording}, X, y, sex, folds=4, seed=0)
    assert np.isfinite(oof["rate"]).all() and len(seen) == 4
    scored = [set(X.index) - rows for rows in seen]
    assert all(len(rows) == len(X) // 4 for rows in scored)
    assert set().union(*scored) == set(X.index)  # every row scored once, by the one fit that left it out


def test_a_planted_leak_is_not_rewarded(frame: tuple[pd.DataFrame, np.ndarray, np.ndarray]) -> None:
    """A candidate that memorises its training labels scores like the base rate out of fold."""
    X, y, sex = frame

    def memoriser(X_fit: pd.DataFrame, y_fit: np.ndarray, seed: int) -> Predict:
        known = pd.Series(y_fit, index=X_fit.index)
        rate = float(np.mean(y_fit))
        return lambda Z: known.reindex(Z.index).fillna(rate).clip(0.01, 0.99).to_numpy()

    oof = cross_validate({"memoriser": memoriser}, X, y, sex, folds=5, seed=0)
    base_rate = brier_by_sex_average(y, np.full(len(y), y.mean()), sex)
    assert brier_by_sex_average(y, oof["memoriser"], sex) > 0.9 * base_rate


def _constant(value: float) -> Fit:
    def fit(X_fit: pd.DataFrame, y_fit: np.ndarray, seed: int) -> Predict:
        return lambda Z: np.full(len(Z), value)

    return fit


def test_a_mean_candidate_averages_its_parts(frame: tuple[pd.DataFrame, np.ndarray, np.ndarray]) -> None:
    X, y, _ = frame
    candidates: dict[str, Candidate] = {"low": _constant(0.1), "high": _constant(0.5), "mean": Mean(("low", "high"))}
    probs = predict_all(candidates, X, y, X.iloc[:10])
    assert list(probs) == ["low", "high", "mean"] and np.allclose(probs["mean"], 0.3)
    with pytest.raises(ValueError, match="not fitting candidates"):
        predict_all({"mean": Mean(("absent",))}, X, y, X)


def test_the_selection_takes_the_lowest_sex_averaged_brier_and_the_first_on_a_tie(
    frame: tuple[pd.DataFrame, np.ndarray, np.ndarray],
) -> None:
    _, y, sex = frame
    rate = np.full(len(y), y.mean())
    assert select({"far": np.full(len(y), 0.9), "near": rate}, y, sex) == "near"
    assert select({"first": rate, "second": rate.copy()}, y, sex) == "first"


def test_sex_average_interval_brackets_the_challenge_score(frame: tuple[pd.DataFrame, np.ndarray, np.ndarray]) -> None:
    X, y, sex = frame
    p = 1 / (1 + np.exp(-(X["a"].to_numpy() - 1)))
    interval = sex_average_interval(y, p, sex, resamples=300, seed=1)
    assert interval.value == pytest.approx(brier_by_sex_average(y, p, sex))
    assert interval.low < interval.value < interval.high
    same = sex_average_interval(y, p, sex, reference=p, resamples=50)
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
    better = sex_average_interval(y, p, sex, reference=np.full(len(y), y.mean()), resamples=300)
    assert better.high < 0  # the true probabilities beat the base rate on 1,200 rows


@st.composite
def logistic_data(draw: st.DrawFn) -> tuple[pd.DataFrame, np.ndarray, int]:
    n = draw(st.integers(20, 80))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 6, n).astype(float)
    counts[rng.random(n) < draw(st.sampled_from([0.0, 0.2]))] = np.nan
    X = pd.DataFrame(
        {
            "count": counts,
            "other": rng.normal(size=n),
            "kind": pd.Categorical(rng.choice(np.array(["a", "b", None], dtype=object), n), categories=["a", "b"]),
        }
    )
    # labels that fall with the count, so the bound is active
    y = (rng.random(n) < 1 / (1 + np.exp(np.nan_to_num(counts, nan=2.0) - 2))).astype(int)
    y[:2] = [0, 1]
    return X, y, seed


@settings(max_examples=40, deadline=None)
@given(data=logistic_data(), step=st.sampled_from([1.0, 2.0, 7.5]))
def test_sign_logistic_never_lowers_the_risk_for_more_of_an_increasing_column(
    data: tuple[pd.DataFrame, np.ndarray, int], step: float
) -> None:
    X, y, seed = data
    model = fit_sign_logistic(X, y, seed, C=1.0, increasing=("count",))
    assert model.coef[model.names.index("count")] >= 0
    known = X[X["count"].notna()]
    more = known.assign(count=known["count"] + step)
    assert (model(more) >= model(known) - 1e-12).all()


def test_sign_logistic_matches_an_unbounded_fit_when_the_bound_is_not_active() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"count": rng.integers(0, 6, 2000).astype(float), "other": rng.normal(size=2000)})
    logit = 0.5 * X["count"].to_numpy() - 1.5 + 0.3 * X["other"].to_numpy()
    y = (rng.random(2000) < 1 / (1 + np.exp(-logit))).astype(int)
    model = fit_sign_logistic(X, y, C=1.0, increasing=("count",))
    reference = LogisticRegression(C=1.0).fit((X - X.mean()) / X.std(ddof=0), y)
    assert np.allclose(model.coef, reference.coef_[0], atol=1e-3)
    assert np.allclose(model(X), reference.predict_proba((X - X.mean()) / X.std(ddof=0))[:, 1], atol=1e-4)


def test_sign_logistic_refuses_an_increasing_name_that_is_not_a_numeric_column() -> None:
    X = pd.DataFrame({"kind": pd.Categorical(["a", "b"]), "count": [0.0, 1.0]})
    with pytest.raises(ValueError, match="kind"):
        fit_sign_logistic(X, np.array([0, 1]), increasing=("kind",))


def test_increasing_names_the_adverse_history_and_ordinal_codes_the_ordered_columns() -> None:
    columns = ["prior_arrest_episodes_drug", "prior_revocations_parole", "gang_affiliated", "dependents", "age"]
    assert increasing(columns) == ("prior_arrest_episodes_drug", "prior_revocations_parole", "gang_affiliated")
    X = pd.DataFrame(
        {
            "band": pd.Categorical(["18-22", "48+", None, "23-27"], categories=["18-22", "23-27", "48+"], ordered=True),
            "kind": pd.Categorical(["x", "y", "x", "y"]),
        }
    )
    out = ordinal(X)
    assert out["band"].tolist()[:2] == [0.0, 2.0] and np.isnan(out["band"].iloc[2]) and out["band"].iloc[3] == 1.0
    assert isinstance(out["kind"].dtype, pd.CategoricalDtype)
