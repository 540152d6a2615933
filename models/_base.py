"""What every stage estimator shares: the calibrator and the interface the scorer, reports and gate use.

:class:`StageEstimator` is the one estimator interface of the project: a fitted stage model maps a
stage feature frame (or its float :meth:`~StageEstimator.matrix`) to a raw score (log-odds), to a
calibrated probability, and to exact per-feature contributions in log-odds that add up to the raw
score. The boosted :class:`~models.estimator.StageModel` and the logistic
:class:`~models.estimator.LinearStageModel` both implement it, so either can be served.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast, get_args

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from features.catalog import CATALOG, PROTECTED_ATTRIBUTES, Typical, model_features, no_record_values
from features.pipeline import category_objects
from features.vocab import Stage
from models.cutoffs import RiskReference

#: how a raw score becomes a probability: ``auto`` picks platt or isotonic by cross-validated Brier
CalibrationMethod = Literal["auto", "platt", "isotonic"]
#: the kinds of stage model that can be trained, registered and served
ModelKind = Literal["lightgbm", "logistic"]


class Calibrator(BaseEstimator):
    """Maps the booster's raw score (log-odds) to a probability: isotonic or Platt, chosen by Brier."""

    def __init__(self, method: CalibrationMethod = "auto", *, random_state: int = 0):
        self.method = method
        self.random_state = random_state

    def fit(self, raw: np.ndarray, y: np.ndarray) -> Calibrator:
        if self.method not in get_args(CalibrationMethod):
            raise ValueError(f"unknown calibration method {self.method!r}: use one of {get_args(CalibrationMethod)}")
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
        methods: tuple[CalibrationMethod, ...] = ("platt", "isotonic")
        for method in methods:
            pred = np.empty(len(y))
            for train, test in folds.split(raw, y):
                model = Calibrator(method).fit(raw[train], y[train])
                pred[test] = model.predict(raw[test])
            scores[method] = brier_score_loss(y, pred)
        self.cv_brier_ = scores
        return min(scores, key=lambda m: scores[m])


class StageEstimator(BaseEstimator):
    """A stage model: feature frame -> raw score (log-odds) -> calibrated probability, with contributions.

    Subclasses fit the model, set ``calibrator_`` and the categories they were trained with, and
    implement :meth:`raw_score`, :meth:`contribution_matrix` and :attr:`size`.
    """

    kind: ModelKind
    stage: Stage | str
    protected_inputs: tuple[str, ...]
    calibrator_: Calibrator

    @property
    def feature_names(self) -> list[str]:
        """The model's inputs: the stage's features, sex and household registration only when named in
        ``protected_inputs`` (design.md, "Protected attributes")."""
        # a model pickled before protected_inputs existed used every stage feature, sex and local included
        protected = getattr(self, "protected_inputs", PROTECTED_ATTRIBUTES)
        return model_features(self.stage, protected_inputs=tuple(protected))

    @property
    def typical(self) -> dict[str, Typical]:
        """The typical value of each input in the training rows ({} for a model fitted before they were kept)."""
        return getattr(self, "typical_", {})

    @property
    def risk_reference(self) -> RiskReference | None:
        """The base rate and calibrated-risk distribution of the training rows, against which the tier policy's
        relative cut-offs resolve (None for a model fitted before they were kept)."""
        return getattr(self, "risk_reference_", None)

    def keep_risk_reference(self, X: pd.DataFrame, y: np.ndarray) -> StageEstimator:
        """Store the :attr:`risk_reference` of the rows ``X`` with outcomes ``y``: the model's training rows,
        once it is fitted and calibrated. Returns ``self``."""
        self.risk_reference_ = RiskReference.from_scores(self.stage, y_true=y, risk=self.predict_proba(X))
        return self

    @property
    def reference_profile(self) -> dict[str, Any] | None:
        """The monitoring profile of the training rows (a JSON-able record of
        :class:`evaluation.monitoring.ReferenceProfile`: per-input bins, the score's distribution, the training
        rows' figures), None for a model fitted before profiles were kept."""
        return getattr(self, "reference_profile_", None)

    def keep_reference_profile(self, record: Mapping[str, Any]) -> StageEstimator:
        """Store the :attr:`reference_profile` record (made by training from the model's training rows, so the
        monitor needs no training row in service). Returns ``self``."""
        self.reference_profile_ = dict(record)
        return self

    def points_of_risk(self, raw: np.ndarray, contributions: np.ndarray) -> np.ndarray:
        """Each contribution in percentage points of calibrated risk.

        The change in the calibrated probability when that feature's log-odds contribution is
        removed and the others are held: ``100 * (calibrate(raw) - calibrate(raw - contribution))``.
        ``raw`` is the raw score per row, ``contributions`` the rows' log-odds contributions
        (one column per feature). The calibrator is monotone, so a size has its contribution's sign
        (or is 0 on a flat step of an isotonic calibrator).
        """
        raw = np.asarray(raw, dtype=float).reshape(-1, 1)
        contributions = np.asarray(contributions, dtype=float)
        without = self.calibrator_.predict((raw - contributions).ravel()).reshape(contributions.shape)
        return np.asarray(100.0 * (self.calibrator_.predict(raw.ravel()).reshape(-1, 1) - without), dtype=float)

    def trained_categories(self) -> list[list[Any]]:
        """The categories of each categorical feature (in feature order) the model was trained with."""
        raise NotImplementedError

    def _learn_no_record(self) -> None:
        """Keep, at fit, how "nothing on record" is read (a model pickled before then reads NaN as before)."""
        names = self.feature_names
        fill = no_record_values(names)
        self.no_record_ = fill
        self.no_record_rises_ = np.array([CATALOG[n].direction > 0 for n in names])

    def encode_no_record(self, M: np.ndarray) -> np.ndarray:
        """The float matrix as the model reads it: "nothing on record" as the feature's lowest-risk value.

        For a feature of an adverse fact (``features.catalog.FeatureSpec.no_record``) a missing value
        becomes that value, and a value beyond it is held at it (an event older than the days-since
        cap reads as none). With the model's monotone constraints, one more adverse fact can then never
        lower the risk: the first event moves the feature from its lowest-risk value in the risky direction
        (design.md, "Face validity"). Returns a new matrix; ``M`` is not changed.
        """
        fill = getattr(self, "no_record_", None)
        if fill is None:
            return M
        cols = np.flatnonzero(~np.isnan(fill))
        sub = M[:, cols]
        sub = np.where(np.isnan(sub), fill[cols], sub)
        sub = np.where(self.no_record_rises_[cols], np.maximum(sub, fill[cols]), np.minimum(sub, fill[cols]))
        out = M.copy()
        out[:, cols] = sub
        return out

    def encode_no_record_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        """:meth:`encode_no_record` of a feature frame (for fitting on a frame with its categoricals)."""
        fill = getattr(self, "no_record_", None)
        if fill is None:
            return X
        X = X.copy()
        for name, value, rises in zip(self.feature_names, fill, self.no_record_rises_, strict=True):
            if not np.isnan(value):
                col = X[name].astype(float).fillna(value)
                X[name] = col.clip(lower=value) if rises else col.clip(upper=value)
        return X

    def _frame(self, X: pd.DataFrame) -> pd.DataFrame:
        self._require_features(X)
        return X if list(X.columns) == self.feature_names else X[self.feature_names]

    def _require_features(self, X: pd.DataFrame | Mapping[str, Any]) -> None:
        """Refuse a frame (or columns by name) that lacks one of the stage's features."""
        missing = [n for n in self.feature_names if n not in X]
        if missing:
            raise KeyError(f"feature frame lacks the {Stage(self.stage).value} features {missing[:5]}")

    def matrix(self, X: pd.DataFrame | Mapping[str, Any]) -> np.ndarray:
        """The features as a float matrix (categories as their codes, missing as NaN).

        ``X`` is a feature frame or its columns by name (:func:`features.pipeline.feature_columns`).
        LightGBM's own pandas conversion costs ~10 ms a call, which dominates scoring one person.
        The codes are those LightGBM would use: every frame's categoricals carry the vocabulary's
        full category list, checked here against the list the model was trained with.
        """
        names = self.feature_names
        self._require_features(X)
        columns = [X[name] for name in names]
        cats = [i for i, col in enumerate(columns) if isinstance(col.dtype, pd.CategoricalDtype)]
        trained_categories = self.trained_categories()
        if len(trained_categories) != len(cats):
            raise ValueError(
                f"the frame has {len(cats)} categorical features, the model was trained with {len(trained_categories)}"
            )
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
        """The model's log-odds (from a feature frame or its :meth:`matrix`)."""
        raise NotImplementedError

    def contribution_matrix(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Per-feature log-odds contributions, columns in :attr:`feature_names` order, base value last.

        Each row sums to :meth:`raw_score`.
        """
        raise NotImplementedError

    @property
    def size(self) -> dict[str, int]:
        """Trees, leaves and coefficients of the fitted model (explanation cost grows with them)."""
        raise NotImplementedError

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Calibrated probability of re-offence within the stage's horizon (1-D array)."""
        return self.calibrator_.predict(self.raw_score(X))

    def contributions(self, X: pd.DataFrame | np.ndarray, *, index: pd.Index | None = None) -> pd.DataFrame:
        """:meth:`contribution_matrix` as a frame, one column per feature plus ``base_value``."""
        if index is None and isinstance(X, pd.DataFrame):
            index = X.index
        return pd.DataFrame(self.contribution_matrix(X), columns=[*self.feature_names, "base_value"], index=index)


__all__ = ["CalibrationMethod", "Calibrator", "ModelKind", "StageEstimator"]
