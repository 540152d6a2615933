"""NIJ year 1: the candidate models, their selection by cross-validation, and the held-out check.

The challenge scores a year-1 forecast by the Brier score computed within each sex and averaged
(:func:`evaluation.brier_by_sex_average`); the selection here uses that score. Three candidates,
none with sex as an input (design.md, "Protected attributes"), each face-valid: one more prior
arrest, conviction or revocation, gang affiliation or a higher agency risk score never lowers the
probability (:data:`INCREASING`):

- a logistic regression with those coefficients bounded at zero or above
  (:func:`training.real.fit.fit_sign_logistic`, L2 with ``C =`` :data:`LOGISTIC_C`);
- LightGBM cross-fitted (:func:`training.real.fit.fit_crossfit_booster`): :data:`INNER_FOLDS`
  boosters of two-level trees (:data:`BOOSTER_PARAMS`), each early-stopping on its own inner fold,
  monotone in :data:`INCREASING`, their mean log-odds calibrated by Platt scaling fitted on the
  inner out-of-fold log-odds of every training row; the residence area is left out of the booster
  (:data:`BOOSTER_LEAVES_OUT`);
- the mean of the two probabilities.

How the honest figure is made: :func:`held_out_split` sets aside a share of the persons of the
training file (stratified by sex and outcome, seeded) before anything else; :func:`cross_validate`
gives every candidate's out-of-fold probabilities on the rest (the development part) and
:func:`select` picks the lowest sex-averaged Brier; :func:`predict_all` refits on the whole
development part and scores the held-out persons, which no choice, tuning or calibration saw.
:func:`sex_average_interval` gives the held-out figure's bootstrap interval.

The settings above were chosen on the development part of seed 0 only (``docs/benchmarks.md``
lists what was tried); with another seed the held-out part overlaps rows that tuning saw.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.model_selection import StratifiedKFold, train_test_split

from evaluation import brier_by_sex_average
from training.real.fit import Fit, Predict, fit_crossfit_booster, fit_sign_logistic

log = logging.getLogger(__name__)

#: share of the persons of the training file set aside before any choice
HELD_OUT_SHARE = 0.2
#: inverse L2 strength of the logistic model (0.03-1 gave CV Brier within 0.0001 of each other)
LOGISTIC_C = 0.1
#: the booster: two-level trees, slow learning, strong L2, many rounds with patient early stopping
BOOSTER_PARAMS: dict[str, object] = {
    "learning_rate": 0.01,
    "num_leaves": 4,
    "max_depth": 2,
    "min_child_samples": 100,
    "feature_fraction": 0.7,
    "lambda_l2": 10.0,
    "max_rounds": 4000,
    "early_stopping": 200,
}
#: inner folds of the cross-fitted booster (boosters averaged, calibration on their out-of-fold log-odds)
INNER_FOLDS = 5
#: columns the booster leaves out: the 25 residence areas, split natively, cost it 0.0005 of CV Brier
BOOSTER_LEAVES_OUT = ("residence_puma",)
#: prefixes of the adverse history columns, and the other columns whose effect may only raise the risk
INCREASING_PREFIXES = ("prior_arrest", "prior_conviction", "prior_revocations")
INCREASING_COLUMNS = ("gang_affiliated", "supervision_risk_score_first")

LOGISTIC = "logistic (sign-constrained)"
BOOSTER = "LightGBM (cross-fitted, monotone)"
MEAN = "mean of LightGBM and logistic"


@dataclass(frozen=True)
class Mean:
    """A candidate that averages the probabilities of other candidates (named in the same mapping)."""

    parts: tuple[str, ...]


#: a candidate: a fitting function, or the mean of other candidates
Candidate = Fit | Mean


def increasing(columns: list[str] | pd.Index) -> tuple[str, ...]:
    """The columns of ``columns`` whose effect may only raise the risk (see :data:`INCREASING_PREFIXES`)."""
    return tuple(str(c) for c in columns if str(c).startswith(INCREASING_PREFIXES) or str(c) in INCREASING_COLUMNS)


def ordinal(X: pd.DataFrame) -> pd.DataFrame:
    """Ordered categoricals as their codes (missing as NaN): a tree splits an ordinal column by order, not by set."""
    out = X.copy()
    for c in X.columns:
        if isinstance(X[c].dtype, pd.CategoricalDtype) and X[c].cat.ordered:
            out[c] = X[c].cat.codes.astype(float).where(X[c].notna())
    return out


def fit_logistic_candidate(X: pd.DataFrame, y: np.ndarray, seed: int = 0, *, C: float = LOGISTIC_C) -> Predict:
    """The logistic candidate: :func:`~training.real.fit.fit_sign_logistic` bounded in :func:`increasing`."""
    return fit_sign_logistic(X, y, seed, C=C, increasing=increasing(X.columns))


def fit_booster_candidate(
    X: pd.DataFrame,
    y: np.ndarray,
    seed: int = 0,
    *,
    params: Mapping[str, object] | None = None,
    leaves_out: tuple[str, ...] = BOOSTER_LEAVES_OUT,
    inner: int = INNER_FOLDS,
) -> Predict:
    """The booster candidate: ordinal codes, ``leaves_out`` dropped, cross-fitted, monotone in :func:`increasing`.

    An increasing column with blanks in the training rows enters as its value, blanks at the column's
    lowest training value, plus a "not recorded" indicator without a constraint. A monotone split
    sends blanks to one side with the low or the high values; gang affiliation, blank for every
    woman, could then not carry the women's lower risk (CV Brier 0.1735 against 0.1715).
    """
    blanks = {c: float(X[c].min()) for c in increasing(X.columns) if X[c].isna().any()}

    def inputs(frame: pd.DataFrame) -> pd.DataFrame:
        out = ordinal(frame.drop(columns=[c for c in leaves_out if c in frame.columns]))
        for c, lowest in blanks.items():
            out[f"{c} not recorded"] = out[c].isna().astype(float)
            out[c] = out[c].fillna(lowest)
        return out

    Xb = inputs(X)
    model = fit_crossfit_booster(
        Xb,
        y,
        seed,
        monotone={c: 1 for c in increasing(Xb.columns)},
        params=dict(BOOSTER_PARAMS if params is None else params),
        inner=inner,
        calibration="platt",
    )
    return lambda Z: model(inputs(Z))


def nij_candidates(
    *, booster_params: Mapping[str, object] | None = None, C: float = LOGISTIC_C
) -> dict[str, Candidate]:
    """The year-1 candidates in order of simplicity (a tie in the selection goes to the first)."""
    return {
        LOGISTIC: partial(fit_logistic_candidate, C=C),
        BOOSTER: partial(fit_booster_candidate, params=booster_params),
        MEAN: Mean((BOOSTER, LOGISTIC)),
    }


def held_out_split(
    persons: ArrayLike, strata: ArrayLike, *, share: float = HELD_OUT_SHARE, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of the development part and of the held-out part: whole persons, stratified, seeded.

    Every row of a person falls on the same side; the persons are split by
    :func:`sklearn.model_selection.train_test_split` stratified by their stratum (for NIJ: sex and
    year-1 outcome, :func:`strata`), so each stratum loses about ``share`` of its persons.

    Raises
    ------
    ValueError
        When ``share`` is not strictly between 0 and 1, the arrays differ in length, a person's rows
        are in more than one stratum, a stratum has fewer than 2 persons, or a side of the split
        would have fewer persons than there are strata.
    """
    if not 0 < share < 1:
        raise ValueError(f"share must be strictly between 0 and 1, got {share}")
    people = pd.Series(np.asarray(persons, dtype=object)).astype(str)
    groups = pd.Series(np.asarray(strata, dtype=object)).astype(str)
    if len(people) != len(groups):
        raise ValueError(f"persons has {len(people)} rows but strata has {len(groups)}")
    per_person = pd.DataFrame({"person": people, "stratum": groups})
    mixed = per_person.groupby("person")["stratum"].nunique()
    if (mixed > 1).any():
        raise ValueError(
            f"{int((mixed > 1).sum())} persons have rows in more than one stratum (for example "
            f"{mixed[mixed > 1].index[0]!r}): stratify by a value that is constant within a person"
        )
    first = per_person.drop_duplicates("person")
    counts = first["stratum"].value_counts()
    if (counts < 2).any():
        raise ValueError(f"every stratum needs at least 2 persons to be split; persons per stratum: {counts.to_dict()}")
    held_count = math.ceil(share * len(first))
    if min(held_count, len(first) - held_count) < len(counts):
        raise ValueError(
            f"{len(first)} persons split {share:.0%} / {1 - share:.0%} leave fewer persons on one side than the "
            f"{len(counts)} strata"
        )
    _, held_persons = train_test_split(
        first["person"].to_numpy(), test_size=share, stratify=first["stratum"].to_numpy(), random_state=seed
    )
    held = people.isin(set(held_persons)).to_numpy()
    return np.flatnonzero(~held), np.flatnonzero(held)


def strata(y: ArrayLike, sex: ArrayLike) -> np.ndarray:
    """Sex and outcome of each row as one label ("male:1"...): the strata of the split and of the folds."""
    return np.asarray(pd.Series(np.asarray(sex, dtype=object)).astype(str) + ":" + pd.Series(np.asarray(y)).astype(str))


def predict_all(
    candidates: Mapping[str, Candidate], X: pd.DataFrame, y: np.ndarray, Z: pd.DataFrame, *, seed: int = 0
) -> dict[str, np.ndarray]:
    """Fit every fitting candidate on ``X, y`` once and return each candidate's probabilities of ``Z``."""
    out: dict[str, np.ndarray] = {}
    for name, candidate in candidates.items():
        if not isinstance(candidate, Mean):
            out[name] = np.asarray(candidate(X, np.asarray(y, int), seed)(Z), dtype=float)
    for name, candidate in candidates.items():
        if isinstance(candidate, Mean):
            missing = [p for p in candidate.parts if p not in out]
            if missing:
                raise ValueError(f"{name!r} averages {missing}, which are not fitting candidates")
            out[name] = np.mean([out[p] for p in candidate.parts], axis=0)
    return {name: out[name] for name in candidates}


def cross_validate(
    candidates: Mapping[str, Candidate],
    X: pd.DataFrame,
    y: np.ndarray,
    sex: ArrayLike,
    *,
    folds: int = 5,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Out-of-fold probabilities of every candidate on the same folds (stratified by sex and outcome).

    Fold ``k`` fits with seed ``seed + k``; a mean candidate averages its parts' out-of-fold
    probabilities of the same fold.
    """
    y = np.asarray(y, int)
    out = {name: np.full(len(y), np.nan) for name in candidates}
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for k, (train, test) in enumerate(splitter.split(np.zeros(len(y)), strata(y, sex))):
        fold = predict_all(candidates, X.iloc[train], y[train], X.iloc[test], seed=seed + k)
        for name, p in fold.items():
            out[name][test] = p
        log.info("nij cross-validation: fold %d of %d done", k + 1, folds)
    return out


def select(probabilities: Mapping[str, np.ndarray], y: ArrayLike, sex: ArrayLike) -> str:
    """The candidate with the lowest sex-averaged Brier score (the first listed on a tie)."""
    scores = {name: brier_by_sex_average(y, p, sex) for name, p in probabilities.items()}
    log.info("nij selection: %s", {k: round(v, 5) for k, v in scores.items()})
    return min(scores, key=lambda name: scores[name])


@dataclass(frozen=True)
class Interval:
    """A point estimate and its bootstrap interval."""

    value: float
    low: float
    high: float
    level: float

    def describe(self) -> str:
        return f"{self.value:.4f} ({self.level:.0%} interval {self.low:.4f} to {self.high:.4f})"


def sex_average_interval(
    y: ArrayLike,
    p: ArrayLike,
    sex: ArrayLike,
    *,
    reference: ArrayLike | None = None,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Bootstrap interval of the sex-averaged Brier score, or of its difference from ``reference``.

    Each resample draws persons with replacement within each sex (the sizes of the sexes stay as
    observed, as the challenge's score treats them); with ``reference``, both scores are computed
    on the same draw, so the interval is that of the paired difference ``p - reference``.
    """
    y_, p_ = np.asarray(y, float), np.asarray(p, float)
    loss = (p_ - y_) ** 2
    if reference is not None:
        loss = loss - (np.asarray(reference, float) - y_) ** 2
    labels = np.asarray(sex, dtype=object).astype(str)
    groups = [np.flatnonzero(labels == v) for v in pd.unique(labels)]
    rng = np.random.default_rng(seed)
    draws = [np.mean([loss[rng.choice(g, len(g))].mean() for g in groups]) for _ in range(resamples)]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    point = float(np.mean([loss[g].mean() for g in groups]))
    return Interval(point, float(low), float(high), level)
