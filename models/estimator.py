"""The stage model: a monotone-constrained LightGBM booster plus a calibrator, as one fitted object.

:class:`StageModel` maps a stage feature frame (``features.build_features``) to a calibrated
probability and exposes the booster's exact TreeSHAP contributions (log-odds) for explanations.
:class:`BaselineModel` is the transparent logistic-regression baseline on the same features.
Both follow scikit-learn's estimator contract (``fit`` returns ``self``, learned state ends in ``_``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

from features.catalog import CATALOG, PROTECTED_ATTRIBUTES, Typical, model_features, stage_typical_values
from features.pipeline import category_objects
from features.vocab import Stage

log = logging.getLogger(__name__)
PREDICT_THREADS = 1  # scoring is one person or a few thousand rows: extra OpenMP threads only spin


@dataclass(frozen=True)
class BoosterParams:
    """LightGBM settings of one fit (the search varies ``num_leaves`` and ``min_child_samples``).

    ``num_threads`` defaults to 1: on a small shared machine LightGBM's OpenMP threads spin while
    they wait for a core, and a 2-thread fit sharing 2 cores with another process ran many times
    slower than a 1-thread fit (see docs/benchmarks.md, "Synthetic cohort").
    """

    num_leaves: int = 15
    max_depth: int = 4
    min_child_samples: int = 100
    learning_rate: float = 0.05
    max_rounds: int = 400
    early_stopping: int = 30
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    lambda_l2: float = 1.0
    num_threads: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def lgb_params(self, monotone: list[int], seed: int) -> dict[str, Any]:
        return {
            "objective": "binary", "metric": "binary_logloss", "verbosity": -1,
            "num_leaves": self.num_leaves, "max_depth": self.max_depth,
            "min_child_samples": self.min_child_samples, "learning_rate": self.learning_rate,
            "feature_fraction": self.feature_fraction, "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1, "lambda_l2": self.lambda_l2, "monotone_constraints": monotone,
            "monotone_constraints_method": "advanced", "seed": seed, "num_threads": self.num_threads,
            "deterministic": True, "force_row_wise": True, "cat_smooth": 20, "min_data_per_group": 50,
            **self.extra,
        }


class Calibrator(BaseEstimator):
    """Maps the booster's raw score (log-odds) to a probability: isotonic or Platt, chosen by Brier."""

    def __init__(self, method: str = "auto", *, random_state: int = 0):
        self.method = method
        self.random_state = random_state

    def fit(self, raw: np.ndarray, y: np.ndarray) -> Calibrator:
        raw, y = np.asarray(raw, float), np.asarray(y, int)
        self.method_ = self._choose(raw, y) if self.method == "auto" else self.method
        self.model_ = self._make(self.method_).fit(raw.reshape(-1, 1) if self.method_ == "platt" else raw, y)
        return self

    def predict(self, raw: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "model_")
        raw = np.asarray(raw, float)
        if self.method_ == "platt":
            # LogisticRegression.predict_proba's binary case bit for bit (tested), without its input
            # checks, which cost ~0.4 ms a call: a third of scoring one person.
            return np.asarray(expit(raw * self.model_.coef_[0, 0] + self.model_.intercept_[0]))
        return np.asarray(np.clip(self.model_.predict(raw), 1e-6, 1 - 1e-6))

    @staticmethod
    def _make(method: str) -> LogisticRegression | IsotonicRegression:
        if method == "platt":
            return LogisticRegression(C=1e6)
        return IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)

    def _choose(self, raw: np.ndarray, y: np.ndarray) -> str:
        """Cross-validated Brier of both methods on the calibration rows."""
        folds = StratifiedKFold(5, shuffle=True, random_state=self.random_state)
        scores: dict[str, float] = {}
        for method in ("platt", "isotonic"):
            pred = np.empty(len(y))
            for train, test in folds.split(raw, y):
                model = Calibrator(method).fit(raw[train], y[train])
                pred[test] = model.predict(raw[test])
            scores[method] = brier_score_loss(y, pred)
        self.cv_brier_ = scores
        return min(scores, key=scores.__getitem__)


class StageModel(BaseEstimator):
    """Calibrated, monotone LightGBM model of one stage (feature frame -> probability).

    Sex and household registration (``features.catalog.PROTECTED_ATTRIBUTES``) are inputs only when
    named in ``protected_inputs``. Fitting also stores the stage's typical person (``typical_``: the
    median, or the share for flags and categories, of each input in the training rows), so that a
    served model can word its reasons without the training data.
    """

    def __init__(self, stage: Stage | str, params: BoosterParams = BoosterParams(), *,
                 calibration: str = "auto", random_state: int = 0, protected_inputs: tuple[str, ...] = ()):
        self.stage = stage
        self.params = params
        self.calibration = calibration
        self.random_state = random_state
        self.protected_inputs = protected_inputs

    @property
    def feature_names(self) -> list[str]:
        # a model pickled before protected_inputs existed used every stage feature, sex and local included
        protected = getattr(self, "protected_inputs", PROTECTED_ATTRIBUTES)
        return model_features(self.stage, protected_inputs=tuple(protected))

    @property
    def typical(self) -> dict[str, Typical]:
        """The typical value of each input in the training rows ({} for a model fitted before they were kept)."""
        return getattr(self, "typical_", {})

    def monotone(self) -> list[int]:
        return [CATALOG[n].direction if CATALOG[n].kind != "categorical" else 0 for n in self.feature_names]

    def fit(self, X: pd.DataFrame, y: np.ndarray, *, X_valid: pd.DataFrame, y_valid: np.ndarray,
            X_calib: pd.DataFrame, y_calib: np.ndarray) -> StageModel:
        """Fit the booster with early stopping on the validation rows, then calibrate on separate rows."""
        X, X_valid, X_calib = (self._frame(f) for f in (X, X_valid, X_calib))
        train = lgb.Dataset(X, label=y, free_raw_data=False)
        valid = lgb.Dataset(X_valid, label=y_valid, reference=train)
        self.booster_ = lgb.train(
            self.params.lgb_params(self.monotone(), self.random_state), train,
            num_boost_round=self.params.max_rounds, valid_sets=[valid],
            callbacks=[lgb.early_stopping(self.params.early_stopping, verbose=False)],
        )
        self.best_iteration_ = self.booster_.best_iteration or self.booster_.current_iteration()
        self.typical_ = stage_typical_values(X, self.feature_names)
        calibrator = Calibrator(self.calibration, random_state=self.random_state)
        self.calibrator_ = calibrator.fit(self.raw_score(X_calib), y_calib)
        return self

    def refit(self, X: pd.DataFrame, y: np.ndarray, *, rounds: int, X_calib: pd.DataFrame,
              y_calib: np.ndarray) -> StageModel:
        """Fit the booster on ``X`` for exactly ``rounds`` rounds (no early stopping), then calibrate anew.

        For use after :meth:`fit` has chosen the number of rounds on held-out validation rows: refitting on
        the training plus validation rows with that number uses every row the booster may see. The
        calibration rows must still be rows the booster did not train on.
        """
        if int(rounds) < 1:
            raise ValueError(f"rounds must be at least 1, got {rounds}")
        X, X_calib = self._frame(X), self._frame(X_calib)
        self.booster_ = lgb.train(self.params.lgb_params(self.monotone(), self.random_state),
                                  lgb.Dataset(X, label=y, free_raw_data=False), num_boost_round=int(rounds))
        self.best_iteration_ = self.booster_.current_iteration()
        self.typical_ = stage_typical_values(X, self.feature_names)
        calibrator = Calibrator(self.calibration, random_state=self.random_state)
        self.calibrator_ = calibrator.fit(self.raw_score(X_calib), y_calib)
        return self

    def _frame(self, X: pd.DataFrame) -> pd.DataFrame:
        self._require_features(X)
        return X if list(X.columns) == self.feature_names else X[self.feature_names]

    def _require_features(self, X: pd.DataFrame | Mapping[str, Any]) -> None:
        """Refuse a frame (or columns by name) that lacks one of the stage's features."""
        missing = [n for n in self.feature_names if n not in X]
        if missing:
            raise KeyError(f"feature frame lacks the {Stage(self.stage).value} features {missing[:5]}")

    def matrix(self, X: pd.DataFrame | Mapping[str, Any]) -> np.ndarray:
        """The features as the booster's float matrix (categories as their codes, missing as NaN).

        ``X`` is a feature frame or its columns by name (:func:`features.pipeline.feature_columns`).
        LightGBM's own pandas conversion costs ~10 ms a call, which dominates scoring one person.
        The codes are those LightGBM would use: every frame's categoricals carry the vocabulary's
        full category list, checked here against the list the booster was trained with.
        """
        check_is_fitted(self, "booster_")
        names = self.feature_names
        self._require_features(X)
        columns = [X[name] for name in names]
        cats = [i for i, col in enumerate(columns) if isinstance(col.dtype, pd.CategoricalDtype)]
        trained_categories = self.booster_.pandas_categorical or []
        if len(trained_categories) != len(cats):
            raise ValueError(f"the frame has {len(cats)} categorical features, the model was trained with "
                             f"{len(trained_categories)}")
        M = np.empty((len(columns[0]) if columns else 0, len(names)))
        for i, trained in zip(cats, trained_categories, strict=True):
            col = columns[i].array if isinstance(columns[i], pd.Series) else columns[i]
            if tuple(category_objects(cast(pd.CategoricalDtype, col.dtype))[:-1]) != tuple(trained):
                raise ValueError(f"feature '{names[i]}' has other categories than the model was trained with")
            M[:, i] = np.where(col.codes < 0, np.nan, col.codes)
        for i in set(range(len(names))) - set(cats):
            col = columns[i]
            M[:, i] = col.to_numpy(dtype=float, na_value=np.nan) if isinstance(col, pd.Series) else col
        return M

    def raw_score(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The booster's log-odds (from a feature frame or its :meth:`matrix`)."""
        M = X if isinstance(X, np.ndarray) else self.matrix(X)
        return np.asarray(self.booster_.predict(M, raw_score=True, num_iteration=self.best_iteration_,
                                                num_threads=PREDICT_THREADS))

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Calibrated probability of re-offence within the stage's horizon (1-D array)."""
        return self.calibrator_.predict(self.raw_score(X))

    def points_of_risk(self, raw: np.ndarray, contributions: np.ndarray) -> np.ndarray:
        """Each contribution in percentage points of calibrated risk.

        The change in the calibrated probability when that feature's log-odds contribution is
        removed and the others are held: ``100 * (calibrate(raw) - calibrate(raw - contribution))``.
        ``raw`` is the booster's raw score per row, ``contributions`` the rows' log-odds contributions
        (one column per feature). The calibrator is monotone, so a size has its contribution's sign
        (or is 0 on a flat step of an isotonic calibrator).
        """
        raw = np.asarray(raw, dtype=float).reshape(-1, 1)
        contributions = np.asarray(contributions, dtype=float)
        without = self.calibrator_.predict((raw - contributions).ravel()).reshape(contributions.shape)
        return np.asarray(100.0 * (self.calibrator_.predict(raw.ravel()).reshape(-1, 1) - without), dtype=float)

    def contributions(self, X: pd.DataFrame | np.ndarray, *, index: pd.Index | None = None) -> pd.DataFrame:
        """Exact TreeSHAP contributions in log-odds, one column per feature plus ``base_value``.

        Each row sums to :meth:`raw_score` (additivity).
        """
        if index is None and isinstance(X, pd.DataFrame):
            index = X.index
        return pd.DataFrame(self.contribution_matrix(X), columns=[*self.feature_names, "base_value"], index=index)

    def contribution_matrix(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """:meth:`contributions` as a bare matrix: columns in :attr:`feature_names` order, base value last."""
        M = X if isinstance(X, np.ndarray) else self.matrix(X)
        return np.asarray(self.booster_.predict(M, pred_contrib=True, num_iteration=self.best_iteration_,
                                                num_threads=PREDICT_THREADS))

    @property
    def size(self) -> dict[str, int]:
        """Trees and leaves of the fitted booster (explanation cost grows with both)."""
        dump = self.booster_.dump_model(num_iteration=self.best_iteration_)["tree_info"]
        return {"trees": len(dump), "leaves": int(sum(t["num_leaves"] for t in dump)),
                "max_depth": self.params.max_depth}


class BaselineModel(BaseEstimator):
    """Regularised logistic regression on the same features (one-hot categoricals, imputed numerics)."""

    def __init__(self, stage: Stage | str, *, C: float = 0.5, random_state: int = 0,
                 protected_inputs: tuple[str, ...] = ()):
        self.stage = stage
        self.C = C
        self.random_state = random_state
        self.protected_inputs = protected_inputs

    @property
    def feature_names(self) -> list[str]:
        protected = getattr(self, "protected_inputs", PROTECTED_ATTRIBUTES)
        return model_features(self.stage, protected_inputs=tuple(protected))

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> BaselineModel:
        names = self.feature_names
        cats = [n for n in names if CATALOG[n].kind == "categorical"]
        nums = [n for n in names if n not in cats]
        prep = ColumnTransformer([
            ("cat", OneHotEncoder(handle_unknown="ignore"), cats),
            ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                                  StandardScaler()), nums),
        ])
        self.pipeline_ = make_pipeline(prep, LogisticRegression(C=self.C, max_iter=2000))
        self.pipeline_.fit(X[names].astype({c: object for c in cats}), y)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "pipeline_")
        names = self.feature_names
        cats = [n for n in names if CATALOG[n].kind == "categorical"]
        return np.asarray(self.pipeline_.predict_proba(X[names].astype({c: object for c in cats}))[:, 1])
