"""NIJ nested cross-validation: the selection never sees the outer fold it is scored on (synthetic rows)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.real.nested import Scorer, nested_cv, ordinal


@pytest.fixture(scope="module")
def frame() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    n = 1200
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)}, index=[f"id{i}" for i in range(n)])
    y = (rng.random(n) < 1 / (1 + np.exp(-(X["a"] - 1)))).astype(int).to_numpy()  # the labels as nested_cv takes them
    sex = rng.choice(["male", "female"], n, p=[0.85, 0.15])
    return X, y, sex


def test_selection_and_fit_see_only_the_outer_training_rows(frame: tuple[pd.DataFrame, np.ndarray, np.ndarray]) -> None:
    X, y, sex = frame
    seen: list[set[str]] = []

    def recording(X_fit: pd.DataFrame, y_fit: np.ndarray, sex_fit: np.ndarray, seed: int) -> Scorer:
        seen.append(set(X_fit.index))
        rate = float(np.mean(y_fit))
        return lambda Z: np.full(len(Z), rate)

    result = nested_cv(X, y, sex, candidates={"rate": recording, "rate again": recording}, folds=4, seeds=(0, 1))
    assert len(result.folds) == 8
    per_fold = len(seen) // len(result.folds)  # inner fits of the selection, then the refit
    for k, (train, test) in enumerate(result.folds):
        outer_test = set(X.index[test])
        assert len(set(train) & set(test)) == 0
        for rows in seen[k * per_fold : (k + 1) * per_fold]:
            assert not rows & outer_test


def test_a_planted_leak_is_not_rewarded(frame: tuple[pd.DataFrame, np.ndarray, np.ndarray]) -> None:
    """A candidate that memorises the labels of the rows it was fitted on scores like the base rate out of fold."""
    X, y, sex = frame
    labels = pd.Series(y, index=X.index)

    def memoriser(X_fit: pd.DataFrame, y_fit: np.ndarray, sex_fit: np.ndarray, seed: int) -> Scorer:
        known = pd.Series(y_fit, index=X_fit.index)
        rate = float(np.mean(y_fit))
        return lambda Z: known.reindex(Z.index).fillna(rate).clip(0.01, 0.99).to_numpy()

    result = nested_cv(X, y, sex, candidates={"memoriser": memoriser}, folds=5, seeds=(0,))
    base_rate_brier = float(np.mean((labels - labels.mean()) ** 2))
    assert result.briers[0] > 0.9 * base_rate_brier  # a leak would give a Brier near 0


def test_ordinal_columns_become_ordered_codes() -> None:
    X = pd.DataFrame(
        {
            "band": pd.Categorical(["18-22", "48+", None, "23-27"], categories=["18-22", "23-27", "48+"], ordered=True),
            "kind": pd.Categorical(["x", "y", "x", "y"]),
        }
    )
    out = ordinal(X)
    assert out["band"].tolist()[:2] == [0.0, 2.0] and np.isnan(out["band"].iloc[2]) and out["band"].iloc[3] == 1.0
    assert isinstance(out["kind"].dtype, pd.CategoricalDtype)


def test_a_test_file_is_scored_by_the_model_selected_on_the_training_file(
    frame: tuple[pd.DataFrame, np.ndarray, np.ndarray],
) -> None:
    """--test PATH: selection and fit on the training rows only, then scores for every test row."""
    from training.real.nested import fit_select_score

    X, y, sex = frame
    seen: list[set[str]] = []

    def rate(X_fit: pd.DataFrame, y_fit: np.ndarray, sex_fit: np.ndarray, seed: int) -> Scorer:
        seen.append(set(X_fit.index))
        value = float(np.mean(y_fit))
        return lambda Z: np.full(len(Z), value)

    train, test = X.iloc[:900], X.iloc[900:]
    name, prob = fit_select_score(train, y[:900], sex[:900], test, candidates={"rate": rate})
    assert name == "rate" and prob.shape == (300,) and np.allclose(prob, y[:900].mean())
    assert all(not rows & set(test.index) for rows in seen)
