"""Nested, repeated cross-validation for NIJ year 1: every model choice inside the outer training part.

For each repeat (seed) and each outer fold, the candidates are fitted on an inner training part of
the outer training rows and compared on the inner validation part by the challenge's sex-averaged
Brier score; the winner is refitted on the whole outer training part and scores the outer fold.
The outer fold is never seen by the selection, the fit or the calibration: the figure is an honest
estimate of a held-out score, up to the difference between the training file's population and the
test sample's. Calibration is Platt scaling with men and women weighted equally (the metric
averages the two sexes' Brier scores), fitted on rows the booster did not train on.

Inputs: the product's default leaves sex out (design.md, "Protected attributes"); the benchmark
reports both settings side by side. Ordinal columns (age band, education, prison years) enter as
their ordered codes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split

from evaluation import brier_by_sex_average
from training.real.fit import booster_params, fit_logistic

log = logging.getLogger(__name__)

#: probability from a feature frame
Scorer = Callable[[pd.DataFrame], np.ndarray]
#: ``fit(X, y, sex, seed) -> scorer``: a candidate of the selection
Candidate = Callable[[pd.DataFrame, np.ndarray, np.ndarray, int], Scorer]

#: bounded grid (a few minutes on 2 shared cores): the booster, the logistic model and their mean (a stack
#: with equal weights, the shape of the challenge winners' blends of boosting and regression)
BOOSTERS: dict[str, dict[str, object]] = {
    "LightGBM lr 0.02, 7 leaves, depth 3": {
        "learning_rate": 0.02,
        "num_leaves": 7,
        "max_depth": 3,
        "max_rounds": 2000,
        "min_child_samples": 50,
    },
}
MEAN_OF = " + "


def ordinal(X: pd.DataFrame) -> pd.DataFrame:
    """Ordered categoricals as their codes (missing as NaN): an ordinal column is split by order, not by set."""
    out = X.copy()
    for c in X.columns:
        if isinstance(X[c].dtype, pd.CategoricalDtype) and X[c].cat.ordered:
            out[c] = X[c].cat.codes.astype(float).where(X[c].notna())
    return out


def _balanced_platt(raw: np.ndarray, y: np.ndarray, sex: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Platt scaling with each sex weighted to the same total, as the sex-averaged Brier counts them."""
    weights = np.ones(len(y))
    for value in np.unique(sex):
        inside = sex == value
        weights[inside] = len(y) / (len(np.unique(sex)) * inside.sum())
    model = LogisticRegression(C=1e6).fit(raw.reshape(-1, 1), y, sample_weight=weights)
    return lambda r: model.predict_proba(np.asarray(r).reshape(-1, 1))[:, 1]


def booster_candidate(params: dict[str, object]) -> Candidate:
    """LightGBM early-stopped and calibrated (sex-balanced Platt) on a stratified 20% of the given rows."""

    def fit(X: pd.DataFrame, y: np.ndarray, sex: np.ndarray, seed: int) -> Scorer:
        p = booster_params(params)
        idx_fit, idx_hold = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=seed)
        train = lgb.Dataset(X.iloc[idx_fit], label=y[idx_fit])
        booster = lgb.train(
            p.lgb_params([0] * X.shape[1], seed),
            train,
            num_boost_round=p.max_rounds,
            valid_sets=[lgb.Dataset(X.iloc[idx_hold], label=y[idx_hold], reference=train)],
            callbacks=[lgb.early_stopping(p.early_stopping, verbose=False)],
        )
        best = booster.best_iteration or booster.current_iteration()
        calibrate = _balanced_platt(
            np.asarray(booster.predict(X.iloc[idx_hold], raw_score=True, num_iteration=best)),
            y[idx_hold],
            sex[idx_hold],
        )
        return lambda Z: calibrate(np.asarray(booster.predict(Z, raw_score=True, num_iteration=best)))

    return fit


def logistic_candidate(X: pd.DataFrame, y: np.ndarray, sex: np.ndarray, seed: int) -> Scorer:
    return fit_logistic(X, y, seed)


def default_candidates() -> dict[str, Candidate]:
    return {**{name: booster_candidate(p) for name, p in BOOSTERS.items()}, "logistic": logistic_candidate}


def blends(candidates: dict[str, Candidate]) -> list[str]:
    """Names of the equal-weight means of each booster with the logistic model ("A + logistic")."""
    return [f"{name}{MEAN_OF}logistic" for name in candidates if name != "logistic" and "logistic" in candidates]


def _fit_named(
    candidates: dict[str, Candidate], name: str, X: pd.DataFrame, y: np.ndarray, sex: np.ndarray, seed: int
) -> Scorer:
    """Fit a candidate or a blend of two ("A + B": the mean of their probabilities)."""
    if name in candidates:
        return candidates[name](X, y, sex, seed)
    first, second = (candidates[part](X, y, sex, seed) for part in name.split(MEAN_OF))
    return lambda Z: (first(Z) + second(Z)) / 2


@dataclass
class NestedResult:
    """Per repeat: the out-of-fold probabilities and the candidate chosen in each outer fold."""

    briers: list[float] = field(default_factory=list)
    aucs: list[float] = field(default_factory=list)
    chosen: list[str] = field(default_factory=list)
    folds: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        b, a = np.asarray(self.briers), np.asarray(self.aucs)

        def sd(v: np.ndarray) -> float:
            return float(v.std(ddof=1)) if len(v) > 1 else float("nan")

        return {
            "Brier avg mean": float(b.mean()),
            "Brier avg sd": sd(b),
            "AUC mean": float(a.mean()),
            "AUC sd": sd(a),
            "repeats": len(b),
        }


def select(candidates: dict[str, Candidate], X: pd.DataFrame, y: np.ndarray, sex: np.ndarray, seed: int) -> str:
    """The candidate (or blend) with the best sex-averaged Brier on an inner 25% of the given (outer training) rows."""
    inner_fit, inner_val = train_test_split(np.arange(len(y)), test_size=0.25, stratify=y, random_state=seed)
    probs = {
        name: fit(X.iloc[inner_fit], y[inner_fit], sex[inner_fit], seed)(X.iloc[inner_val])
        for name, fit in candidates.items()
    }
    for name in blends(candidates):
        first, second = name.split(MEAN_OF)
        probs[name] = (probs[first] + probs[second]) / 2
    scores = {name: brier_by_sex_average(y[inner_val], p, sex[inner_val]) for name, p in probs.items()}
    log.info("inner selection (seed %d): %s", seed, {k: round(v, 5) for k, v in scores.items()})
    return min(scores, key=lambda k: scores[k])


def nested_cv(
    X: pd.DataFrame,
    y: np.ndarray,
    sex: np.ndarray,
    *,
    candidates: dict[str, Candidate] | None = None,
    folds: int = 5,
    seeds: tuple[int, ...] = (0, 1, 2),
) -> NestedResult:
    """Repeated nested cross-validation; the selection sees only each outer fold's training rows."""
    from sklearn.metrics import roc_auc_score

    candidates = candidates or default_candidates()
    y, sex = np.asarray(y, int), np.asarray(sex).astype(str)
    result = NestedResult()
    for seed in seeds:
        oof = np.full(len(y), np.nan)
        for k, (train, test) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y)):
            Xt, yt, st = X.iloc[train], y[train], sex[train]
            name = select(candidates, Xt, yt, st, seed * 100 + k)
            oof[test] = _fit_named(candidates, name, Xt, yt, st, seed * 100 + k)(X.iloc[test])
            result.chosen.append(name)
            result.folds.append((train, test))
        result.briers.append(brier_by_sex_average(y, oof, sex))
        result.aucs.append(float(roc_auc_score(y, oof)))
    return result


def fit_select_score(
    X: pd.DataFrame,
    y: np.ndarray,
    sex: np.ndarray,
    X_test: pd.DataFrame,
    *,
    seed: int = 0,
    candidates: dict[str, Candidate] | None = None,
) -> tuple[str, np.ndarray]:
    """With a test file: select on an inner split of the training file, refit on all of it, score the test file."""
    candidates = candidates or default_candidates()
    y, sex = np.asarray(y, int), np.asarray(sex).astype(str)
    name = select(candidates, X, y, sex, seed)
    return name, _fit_named(candidates, name, X, y, sex, seed)(X_test)
