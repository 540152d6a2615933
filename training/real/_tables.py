"""Per-source tables of the real-data benchmark: NIJ Georgia parole and Rossi (COMPAS: ``real_compas``).

Each builder takes the training file (and an optional test file in the same format), fits every
model of its table on the same folds (:mod:`training.real.fit`) and returns the tables, notes,
parameters and target checks that :func:`training.real.benchmark_real` assembles.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluation import brier_by_sex_average, nij_fairness_adjusted
from features.adapters import RealFrame, load
from training.real._report import basis_label, brier_within, make_table, scores
from training.real.fit import (
    DEFAULT_PARAMS,
    SMALL_PARAMS,
    Fit,
    check_same_features,
    fit_base_rate,
    fit_booster,
    fit_logistic,
    fit_score_calibrator,
    predictions,
)
from training.real.nested import fit_select_score, nested_cv, ordinal

#: NIJ year 1: chosen among seven settings by 5-fold CV on the training file with seeds 1 and 2
#: (folds other than the reported seed-0 folds); the defaults are reported beside it
NIJ_PARAMS: dict[str, object] = {"learning_rate": 0.02, "num_leaves": 7, "max_depth": 3, "max_rounds": 2000}
NIJ_PUBLISHED = {
    "published best entry, large teams": 0.1719,
    "published best entry, small teams": 0.1733,
    "published base-rate forecast": 0.196,
}
TARGET_NIJ_BRIER, TARGET_COMPAS_AUC, TARGET_GROUP_ECE, MIN_GROUP = 0.172, 0.735, 0.03, 100
Tables = tuple[dict[str, pd.DataFrame], list[str], dict[str, object], list[str]]
View = Callable[[RealFrame], pd.DataFrame]


def nij_monotone(columns: list[str] | pd.Index) -> dict[str, int]:
    """Prior arrest and conviction episodes and the agency's first risk score never lower the risk."""
    mono = {c: 1 for c in columns if str(c).startswith(("prior_arrest", "prior_conviction"))}
    return {**mono, **{c: 1 for c in ("supervision_risk_score_first",) if c in columns}}


def load_pair(
    source: str, train_path: Path, test_path: Path | None, **options: Any
) -> tuple[RealFrame, RealFrame | None]:
    """The training frame and, when a test file is given, the test frame (same features or refused)."""
    train = load(source, train_path, **options)
    test = load(source, test_path, **options) if test_path else None
    if test is not None:
        check_same_features(train, test)
    return train, test


def run_fit(
    fit: Fit, train: RealFrame, test: RealFrame | None, *, folds: int, seed: int, view: View = lambda f: f.X
) -> np.ndarray:
    """Out-of-fold predictions of ``fit`` on ``view(train)``, or a fit on it scoring ``view(test)``."""
    return predictions(fit, view(train), train.y, None if test is None else view(test), folds=folds, seed=seed)


def _nij_year1(train: RealFrame, test: RealFrame | None, *, seed: int, folds: int) -> pd.DataFrame:
    ev, basis = (test if test is not None else train), basis_label(test, folds)
    run = partial(run_fit, train=train, test=test, folds=folds, seed=seed)
    probs = {
        "LightGBM (lr 0.02, 7 leaves, depth 3, monotone priors)": run(
            partial(fit_booster, params=NIJ_PARAMS, monotone=nij_monotone(train.X.columns))
        ),
        "LightGBM (benchmark defaults)": run(fit_booster),
        "logistic baseline": run(fit_logistic),
        "agency's first risk score, calibrated": run(
            fit_score_calibrator, view=lambda f: f.extra[["supervision_risk_score_first"]]
        ),
        "base-rate forecast (training rate)": run(fit_base_rate),
    }
    sex, race = ev.groups["sex"].astype(str).to_numpy(), ev.groups["race"].astype(str).to_numpy()
    rows: dict[str, dict[str, object]] = {}
    for name, p in probs.items():
        s = scores(ev.y, p)
        rows[name] = {
            "Brier men": brier_within(ev.y, p, sex == "male"),
            "Brier women": brier_within(ev.y, p, sex == "female"),
            "Brier avg (challenge)": brier_by_sex_average(ev.y, p, sex),
            "AUC": s["AUC"],
            "ECE": s["ECE"],
            "fairness-adjusted": nij_fairness_adjusted(ev.y, p, race=race, sex=sex),
            "basis": basis,
        }
    rows.update(
        {k: {"Brier avg (challenge)": v, "basis": "published (official test sample)"} for k, v in NIJ_PUBLISHED.items()}
    )
    return make_table(rows, "model")


#: repeats (seeds) of the nested cross-validation
NESTED_REPEATS = 3
INPUT_SETTINGS = {"default inputs (no sex)": False, "with sex": True}


def _inputs(frame: RealFrame, with_sex: bool) -> pd.DataFrame:
    X = frame.X if with_sex else frame.X.drop(columns=["sex"], errors="ignore")
    return ordinal(X)


def nij_nested(
    train: RealFrame, test: RealFrame | None, *, seed: int, folds: int, repeats: int = NESTED_REPEATS
) -> pd.DataFrame:
    """Nested selection, repeated over seeds, for both input settings side by side (or scored on a test file)."""
    sex = train.groups["sex"].astype(str).to_numpy()
    rows: dict[str, dict[str, object]] = {}
    for label, with_sex in INPUT_SETTINGS.items():
        X = _inputs(train, with_sex)
        if test is None:
            result = nested_cv(X, train.y, sex, folds=folds, seeds=tuple(range(seed, seed + repeats)))
            chosen = "; ".join(f"{k} x{v}" for k, v in pd.Series(result.chosen).value_counts().items())
            rows[label] = {
                **result.summary(),
                "chosen (outer folds)": chosen,
                "basis": f"nested {folds}-fold CV x {repeats} seeds (training file)",
            }
        else:
            name, p = fit_select_score(X, train.y, sex, _inputs(test, with_sex), seed=seed)
            test_sex = test.groups["sex"].astype(str).to_numpy()
            rows[label] = {
                "Brier avg mean": brier_by_sex_average(test.y, p, test_sex),
                "AUC mean": scores(test.y, p)["AUC"],
                "chosen (outer folds)": name,
                "basis": "selected on the training file, scored on the test file",
            }
    return make_table(rows, "inputs")


def nij_tables(train_path: Path, test_path: Path | None, *, seed: int, folds: int) -> Tables:
    train, test = load_pair("nij", train_path, test_path, target="year1")
    year1 = _nij_year1(train, test, seed=seed, folds=folds)
    nested = nij_nested(train, test, seed=seed, folds=folds)
    later, later_test = load_pair("nij", train_path, test_path, target="years2_3")
    ev, ev2 = (test if test is not None else train), (later_test if later_test is not None else later)
    run = partial(run_fit, train=later, test=later_test, folds=folds, seed=seed)
    fits: dict[str, Fit] = {
        "LightGBM (benchmark defaults)": fit_booster,
        "logistic baseline": fit_logistic,
        "base-rate forecast (training rate)": fit_base_rate,
    }
    years23 = make_table(
        {name: {**scores(ev2.y, run(fit)), "basis": basis_label(test, folds)} for name, fit in fits.items()}, "model"
    )
    best = year1.iloc[0]["Brier avg (challenge)"]
    checks = [
        f"NIJ year-1 sex-averaged Brier of the LightGBM model {best:.4f} (target <= {TARGET_NIJ_BRIER}): "
        f"{'met' if best <= TARGET_NIJ_BRIER else 'missed'}; logistic baseline "
        f"{year1['Brier avg (challenge)'].loc['logistic baseline']:.4f}."
    ]
    notes = [
        f"Year 1: {len(ev.y):,} rows, base rate {ev.base_rate:.4f}; years 2-3: {len(ev2.y):,} rows (not "
        f"arrested in year 1), base rate {ev2.base_rate:.4f}.",
        "Published figures are on the challenge's official test sample; the computed rows are on "
        f"{'the test file' if test is not None else 'out-of-fold predictions of the training sample'} and are "
        "comparable in kind, not row for row. Fairness-adjusted = (1 - Brier avg) x (1 - |FPR Black - FPR "
        "White|) at 0.5.",
        f"The first LightGBM row's settings ({NIJ_PARAMS}, monotone increasing in the prior arrest and "
        "conviction episodes and the agency's score) were chosen among seven settings by 5-fold CV on the "
        "training file with seeds 1 and 2, i.e. on other folds than the seed-0 folds reported here; the "
        "defaults are reported beside them. The years 2-3 models are not tuned.",
        *later.notes,
    ]
    notes.append(
        "Nested: in each outer fold, three candidates (LightGBM with sex-balanced Platt calibration, "
        "the logistic model, and the mean of the two) are compared on an inner 25% of the outer "
        "training rows by the sex-averaged Brier; the winner is refitted on the outer training rows and "
        "scores the outer fold, which no choice has seen. Ordinal columns enter as ordered codes. Expect a "
        "held-out sample to differ from this figure by about its spread plus the shift between "
        "populations: on the official test sample the base rate alone scored 0.1960 against 0.1934 here."
    )
    tables = {
        "NIJ year-1 arrest (pre-release columns only)": year1,
        "NIJ year-1, nested repeated CV: default inputs (no sex) and with sex": nested,
        "NIJ arrest in years 2-3 (pre-release + undated supervision-activity counts)": years23,
    }
    return tables, notes, {"nij_params": NIJ_PARAMS, "booster_defaults": DEFAULT_PARAMS}, checks


def rossi_tables(train_path: Path, test_path: Path | None, *, seed: int, folds: int, repeats: int = 5) -> Tables:
    repeats = 1 if test_path else repeats
    rows: dict[str, dict[str, object]] = {}
    for with_employment in (True, False):
        train, test = load_pair("rossi", train_path, test_path, with_employment=with_employment)
        ev = test if test is not None else train
        label = "with employment weeks 1-25" if with_employment else "static columns only"
        fits: dict[str, Fit] = {
            "LightGBM small": partial(fit_booster, params=SMALL_PARAMS),
            "logistic": fit_logistic,
            "base-rate forecast (training rate)": fit_base_rate,
        }
        for name, fit in fits.items():
            if name.startswith("base-rate") and with_employment:
                continue
            runs = [scores(ev.y, run_fit(fit, train, test, folds=folds, seed=seed + r)) for r in range(repeats)]
            aucs = [s["AUC"] for s in runs]
            rows[name if name.startswith("base") else f"{name}, {label}"] = {
                "n": len(ev.y),
                "base rate": ev.base_rate,
                "AUC mean": float(np.mean(aucs)),
                "AUC sd": float(np.std(aucs, ddof=1)) if repeats > 1 else float("nan"),
                "Brier": float(np.mean([s["Brier"] for s in runs])),
                "ECE": float(np.mean([s["ECE"] for s in runs])),
                "basis": basis_label(test, folds, repeats),
            }
    notes = [
        f"{len(ev.y)} men at risk at week 26, {int(ev.y.sum())} arrested in weeks 26-52: the AUC sd over "
        "repeats (different folds) shows how much of any difference is noise; ECE on so few rows is mostly noise.",
        f"LightGBM small = {SMALL_PARAMS} on top of the benchmark defaults.",
        *train.notes[:-1],
    ]
    return (
        {"Rossi week-26 assessment: arrest in weeks 26-52": make_table(rows, "model")},
        notes,
        {"small_params": SMALL_PARAMS, "repeats": repeats},
        [],
    )
