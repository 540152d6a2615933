"""Fitting for the real-data benchmark: boosters, baselines and out-of-fold predictions.

Every prediction here is made on rows the model never saw: stratified K-fold out-of-fold
predictions on the training file, or, when a test file is given, a fit on the training file and
predictions on the test file. Two ways of fitting the booster (LightGBM, native categoricals,
depth-limited), each ending in a :class:`~models.estimator.Calibrator` (isotonic or Platt, chosen
by cross-validated Brier) of the booster's log-odds:

- :func:`fit_booster`: early stopping and calibration on a stratified 20% hold-out of the
  training rows (the benchmark default);
- :func:`fit_crossfit_booster`: K inner folds of the training rows, each booster early-stopping on
  its own inner fold; the calibrator is fitted on the inner out-of-fold log-odds of *every*
  training row, and the prediction averages the K boosters' log-odds (cross-fitting and bagging).

:func:`fit_logistic` is the baseline logistic regression; :func:`fit_sign_logistic` is the same
design with chosen coefficients bounded at zero or above, so that more of an adverse fact never
lowers the probability.

Comparison scores (the COMPAS decile, the Georgia agency's own risk score) are calibrated
out-of-fold on the same folds, so every row of a table is a probability judged the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from features.adapters import RealFrame
from models.estimator import BoosterParams, CalibrationMethod, Calibrator, fit_bounded_logistic

log = logging.getLogger(__name__)

#: a fitted model as a function from a feature frame to probabilities
Predict = Callable[[pd.DataFrame], np.ndarray]
#: ``fit(X, y, seed) -> predict``
Fit = Callable[[pd.DataFrame, np.ndarray, int], Predict]

#: the benchmark booster: depth-limited, slow learning rate, early stopping on the hold-out rows.
#: One thread: on a few thousand rows OpenMP threads cost more than they save, and they slow down
#: badly (spin-waiting) when the cores are shared with other jobs.
DEFAULT_PARAMS: dict[str, object] = {
    "num_leaves": 15,
    "max_depth": 4,
    "learning_rate": 0.03,
    "min_child_samples": 50,
    "max_rounds": 1000,
    "early_stopping": 50,
    "num_threads": 1,
}
#: Rossi's week-26 frame has 381 rows: a much smaller booster
SMALL_PARAMS: dict[str, object] = {"num_leaves": 4, "max_depth": 2, "min_child_samples": 20}
#: share of each training fold held out for early stopping and calibration
HOLDOUT = 0.2


def booster_params(params: dict[str, Any] | None = None) -> BoosterParams:
    """:data:`DEFAULT_PARAMS` updated with ``params``; keys that are not BoosterParams fields go to LightGBM."""
    merged = {**DEFAULT_PARAMS, **(params or {})}
    names = {f.name for f in fields(BoosterParams)} - {"extra"}
    return BoosterParams(
        **{k: v for k, v in merged.items() if k in names}, extra={k: v for k, v in merged.items() if k not in names}
    )


@dataclass
class FittedBooster:
    """A LightGBM booster and the calibrator of its log-odds; call it on a feature frame."""

    booster: lgb.Booster
    best_iteration: int
    calibrator: Calibrator

    def __call__(self, X: pd.DataFrame) -> np.ndarray:
        raw = self.booster.predict(X, raw_score=True, num_iteration=self.best_iteration)
        return self.calibrator.predict(np.asarray(raw))


def fit_booster(
    X: pd.DataFrame,
    y: np.ndarray,
    seed: int = 0,
    *,
    monotone: dict[str, int] | None = None,
    params: dict[str, Any] | None = None,
) -> FittedBooster:
    """Fit the booster on 80% of the rows, early-stop and calibrate on the other 20% (stratified).

    Parameters
    ----------
    X, y
        Features (pandas categoricals are split natively by LightGBM) and 0/1 labels.
    seed
        Seed of the hold-out split, the booster's bagging and the calibrator's choice.
    monotone
        Feature name -> +1 (score never decreases with it), -1 or 0; categoricals must be 0.
    params
        Overrides of :data:`DEFAULT_PARAMS` (BoosterParams fields or raw LightGBM keys).
    """
    constraints = _constraints(X, monotone)
    p = booster_params(params)
    X_fit, X_hold, y_fit, y_hold = train_test_split(
        X, np.asarray(y, int), test_size=HOLDOUT, stratify=y, random_state=seed
    )
    train = lgb.Dataset(X_fit, label=y_fit)
    booster = lgb.train(
        p.lgb_params(constraints, seed),
        train,
        num_boost_round=p.max_rounds,
        valid_sets=[lgb.Dataset(X_hold, label=y_hold, reference=train)],
        callbacks=[lgb.early_stopping(p.early_stopping, verbose=False)],
    )
    best = booster.best_iteration or booster.current_iteration()
    raw = booster.predict(X_hold, raw_score=True, num_iteration=best)
    calibrator = Calibrator("auto", random_state=seed).fit(np.asarray(raw), y_hold)
    log.debug("booster: %d rounds, calibration %s", best, calibrator.method_)
    return FittedBooster(booster, best, calibrator)


@dataclass
class CrossFitBooster:
    """K boosters of the inner folds and one calibrator of their averaged log-odds; call it on a frame."""

    boosters: list[tuple[lgb.Booster, int]]
    calibrator: Calibrator

    def raw_score(self, X: pd.DataFrame) -> np.ndarray:
        """The mean of the boosters' log-odds (each at its own early-stopping round)."""
        raw: np.ndarray = np.mean([b.predict(X, raw_score=True, num_iteration=it) for b, it in self.boosters], axis=0)
        return raw

    def __call__(self, X: pd.DataFrame) -> np.ndarray:
        return self.calibrator.predict(self.raw_score(X))


def fit_crossfit_booster(
    X: pd.DataFrame,
    y: np.ndarray,
    seed: int = 0,
    *,
    monotone: dict[str, int] | None = None,
    params: dict[str, Any] | None = None,
    inner: int = 5,
    calibration: CalibrationMethod = "auto",
) -> CrossFitBooster:
    """Cross-fitted booster: calibration on the inner out-of-fold log-odds of all training rows.

    The training rows are cut in ``inner`` stratified folds; for each, a booster is fitted on the
    other folds and early-stops on it, and its log-odds of that fold are kept. The calibrator
    (``calibration``: ``"auto"`` chooses isotonic or Platt by a cross-validated Brier on those
    log-odds) is fitted on the out-of-fold log-odds of every training row, four to five times as
    many rows as the 20% hold-out of :func:`fit_booster`; predictions average the ``inner``
    boosters' log-odds before calibrating. Parameters as in :func:`fit_booster`.
    """
    constraints = _constraints(X, monotone)
    p = booster_params(params)
    y = np.asarray(y, int)
    oof = np.full(len(y), np.nan)
    boosters = []
    for k, (fit, hold) in enumerate(StratifiedKFold(inner, shuffle=True, random_state=seed).split(X, y)):
        train = lgb.Dataset(X.iloc[fit], label=y[fit])
        booster = lgb.train(
            p.lgb_params(constraints, seed + 100 * k),
            train,
            num_boost_round=p.max_rounds,
            valid_sets=[lgb.Dataset(X.iloc[hold], label=y[hold], reference=train)],
            callbacks=[lgb.early_stopping(p.early_stopping, verbose=False)],
        )
        best = booster.best_iteration or booster.current_iteration()
        oof[hold] = booster.predict(X.iloc[hold], raw_score=True, num_iteration=best)
        boosters.append((booster, best))
    calibrator = Calibrator(calibration, random_state=seed).fit(oof, y)
    log.debug("cross-fit booster: rounds %s, calibration %s", [b for _, b in boosters], calibrator.method_)
    return CrossFitBooster(boosters, calibrator)


def _constraints(X: pd.DataFrame, monotone: dict[str, int] | None) -> list[int]:
    """Monotone constraints in column order; refuses names that are not columns of ``X``."""
    monotone = monotone or {}
    unknown = sorted(set(monotone) - set(X.columns))
    if unknown:
        raise ValueError(f"monotone constraints name unknown features {unknown}")
    return [int(monotone.get(c, 0)) for c in X.columns]


def fit_logistic(X: pd.DataFrame, y: np.ndarray, seed: int = 0, *, C: float = 1.0) -> Predict:
    """Logistic regression: one-hot categoricals (missing as a level), median-imputed scaled numbers."""
    cats = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    nums = [c for c in X.columns if c not in cats]
    prep = ColumnTransformer(
        [
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="(missing)"), OneHotEncoder(handle_unknown="ignore")
                ),
                cats,
            ),
            (
                "num",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True), StandardScaler()
                ),
                nums,
            ),
        ]
    )

    def as_object(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.astype({c: object for c in cats}).replace({None: np.nan})

    model = make_pipeline(prep, LogisticRegression(C=C, max_iter=2000, random_state=seed))
    model.fit(as_object(X), np.asarray(y, int))
    return lambda Z: model.predict_proba(as_object(Z))[:, 1]


@dataclass
class SignLogistic:
    """A fitted :func:`fit_sign_logistic` model: its design, coefficients and intercept; call it on a frame."""

    categories: dict[str, list[object]]
    medians: dict[str, float]
    with_missing: list[str]
    mean: np.ndarray
    scale: np.ndarray
    names: list[str]
    coef: np.ndarray
    intercept: float

    def design(self, X: pd.DataFrame) -> np.ndarray:
        """The standardised design matrix of ``X`` (the columns of :attr:`names`)."""
        columns: list[np.ndarray] = []
        for c, values in self.categories.items():
            codes = X[c].astype(object).to_numpy()
            columns += [pd.isna(codes) if v is None else codes == v for v in values]
        for c, median in self.medians.items():
            value = X[c].to_numpy(dtype=float)
            columns.append(np.where(np.isnan(value), median, value))
            if c in self.with_missing:
                columns.append(np.isnan(value))
        standardised: np.ndarray = (np.column_stack(columns).astype(float) - self.mean) / self.scale
        return standardised

    def __call__(self, X: pd.DataFrame) -> np.ndarray:
        probability: np.ndarray = expit(self.design(X) @ self.coef + self.intercept)
        return probability


def fit_sign_logistic(
    X: pd.DataFrame, y: np.ndarray, seed: int = 0, *, C: float = 1.0, increasing: tuple[str, ...] = ()
) -> SignLogistic:
    """L2 logistic regression whose effect of each ``increasing`` column never decreases.

    The design is :func:`fit_logistic`'s: a categorical column gives one indicator per category and
    one for missing; a numeric column gives its value (blanks take the training median) and, when
    the training rows have blanks, a missing indicator; every design column is standardised. The
    value column of each name in ``increasing`` gets a coefficient >= 0 (L-BFGS-B bounds), so one
    more of it never lowers the probability; its missing indicator is not bounded. The objective is
    scikit-learn's (``C * sum(log loss) + ||w||^2 / 2``, intercept unpenalised). ``seed`` is unused
    (the fit is deterministic); it keeps the signature of :data:`Fit`.

    Raises
    ------
    ValueError
        When ``increasing`` names a column that is not a numeric column of ``X``.
    """
    cats = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    nums = [c for c in X.columns if c not in cats]
    wrong = sorted(set(increasing) - set(nums))
    if wrong:
        raise ValueError(f"increasing names columns that are not numeric columns of X: {wrong}")
    categories = {c: [*X[c].cat.categories, None] for c in cats}
    medians = {c: float(np.nanmedian(X[c].to_numpy(dtype=float))) if X[c].notna().any() else 0.0 for c in nums}
    with_missing = [c for c in nums if X[c].isna().any()]
    names = [f"{c}={v}" for c, values in categories.items() for v in values]
    for c in nums:
        names += [c, f"{c} missing"] if c in with_missing else [c]
    model = SignLogistic(
        categories, medians, with_missing, np.zeros(len(names)), np.ones(len(names)), names, np.zeros(0), 0.0
    )
    raw = model.design(X)
    model.mean, scale = raw.mean(axis=0), raw.std(axis=0)
    model.scale = np.where(scale > 0, scale, 1.0)
    bounds: list[tuple[float | None, float | None]] = [(0.0, None) if n in increasing else (None, None) for n in names]
    model.coef, model.intercept = fit_bounded_logistic(model.design(X), np.asarray(y, float), C=C, bounds=bounds)
    return model


def fit_score_calibrator(X: pd.DataFrame, y: np.ndarray, seed: int = 0) -> Predict:
    """Calibrate an existing score (the first column of ``X``); blanks take the training median."""
    score = X.iloc[:, 0].to_numpy(dtype=float)
    fill = float(np.nanmedian(score))
    calibrator = Calibrator("auto", random_state=seed).fit(np.nan_to_num(score, nan=fill), y)
    return lambda Z: calibrator.predict(np.nan_to_num(Z.iloc[:, 0].to_numpy(dtype=float), nan=fill))


def fit_base_rate(X: pd.DataFrame, y: np.ndarray, seed: int = 0) -> Predict:
    """The training base rate for everyone (the forecast that knows nothing about the person)."""
    rate = float(np.mean(y))
    return lambda Z: np.full(len(Z), rate)


def fold_indices(y: np.ndarray, *, folds: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified K-fold (shuffled with ``seed``): the folds every out-of-fold prediction here shares."""
    y = np.asarray(y, int)
    return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def out_of_fold(fit: Fit, X: pd.DataFrame, y: np.ndarray, *, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold predictions of ``fit`` on the folds of :func:`fold_indices` (fold k fits with seed + k)."""
    y = np.asarray(y, int)
    out = np.full(len(y), np.nan)
    for k, (train, test) in enumerate(fold_indices(y, folds=folds, seed=seed)):
        out[test] = fit(X.iloc[train], y[train], seed + k)(X.iloc[test])
    return out


def cross_validate_real(
    frame: RealFrame,
    *,
    folds: int = 5,
    seed: int = 0,
    monotone: dict[str, int] | None = None,
    params: dict[str, Any] | None = None,
    crossfit: bool = False,
) -> np.ndarray:
    """Out-of-fold calibrated probabilities of the booster on ``frame`` (stratified K-fold).

    Parameters
    ----------
    frame
        A frame from :func:`features.adapters.load`.
    folds, seed
        Number of folds and the seed of the folds, hold-out splits and boosters.
    monotone, params
        See :func:`fit_booster`.
    crossfit
        Fit with :func:`fit_crossfit_booster` instead of :func:`fit_booster`.

    Returns
    -------
    ndarray of shape (n,)
        The probability of each row from the model of the fold that left it out.
    """
    fit = fit_crossfit_booster if crossfit else fit_booster
    return out_of_fold(partial(fit, monotone=monotone, params=params), frame.X, frame.y, folds=folds, seed=seed)


def logistic_oof(frame: RealFrame, *, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold probabilities of the logistic baseline (:func:`fit_logistic`) on the same folds."""
    return out_of_fold(fit_logistic, frame.X, frame.y, folds=folds, seed=seed)


def calibrate_score_oof(score: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold Platt/isotonic calibration of an existing score (e.g. the COMPAS decile).

    The folds are those of :func:`cross_validate_real` with the same ``y``, ``folds`` and ``seed``.
    """
    X = pd.DataFrame({"score": np.asarray(score, dtype=float)})
    return out_of_fold(fit_score_calibrator, X, y, folds=folds, seed=seed)


def fit_predict_real(
    train: RealFrame,
    test: RealFrame,
    *,
    seed: int = 0,
    monotone: dict[str, int] | None = None,
    params: dict[str, Any] | None = None,
    crossfit: bool = False,
) -> np.ndarray:
    """Fit the booster (and its calibrator) on ``train`` and return the probabilities of ``test``.

    ``crossfit`` selects :func:`fit_crossfit_booster` instead of :func:`fit_booster`.

    Raises
    ------
    ValueError
        When the two frames do not have the same feature columns.
    """
    check_same_features(train, test)
    fit = fit_crossfit_booster if crossfit else fit_booster
    return fit(train.X, train.y, seed, monotone=monotone, params=params)(test.X)


def check_same_features(train: RealFrame, test: RealFrame) -> None:
    """Refuse a test frame whose features differ from the training frame's."""
    if list(train.X.columns) != list(test.X.columns):
        raise ValueError(f"test features {list(test.X.columns)} differ from training features {list(train.X.columns)}")


def predictions(
    fit: Fit,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_test: pd.DataFrame | None = None,
    *,
    folds: int = 5,
    seed: int = 0,
) -> np.ndarray:
    """Out-of-fold predictions on the training rows, or, given ``X_test``, a fit on all training rows."""
    if X_test is None:
        return out_of_fold(fit, X_train, y_train, folds=folds, seed=seed)
    return fit(X_train, np.asarray(y_train, int), seed)(X_test)
