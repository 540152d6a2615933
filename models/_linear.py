"""The logistic stage model: sign-constrained L2 logistic regression with exact per-feature contributions."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit, log_expit
from sklearn.utils.validation import check_is_fitted

from features.catalog import CATALOG, stage_typical_values
from features.pipeline import category_objects
from features.vocab import Stage
from models._base import CalibrationMethod, Calibrator, ModelKind, StageEstimator

log = logging.getLogger(__name__)


class LinearStageModel(StageEstimator):
    """Calibrated logistic regression of one stage on the same features as the booster.

    Design: each numeric or flag feature enters as its standardised value (missing imputed with the
    training median, or, for a feature of an adverse fact, with its "nothing on record" value) plus a
    missing indicator, held within the range seen in training (no extrapolation on data unlike the
    training rows); a numeric feature that is never negative and exceeds 1
    (counts, days, ages) also enters as its standardised ``log(1 + value)``, so diminishing effects fit;
    each categorical feature enters as one column per category and one for missing. The value
    columns of a feature with a catalog direction keep that sign (L-BFGS-B bounds): the feature's
    effect is monotone in the catalog's direction, so a reason never says a risk-raising factor
    lowered the risk, and the missing indicator of a feature of an adverse fact never adds risk, so one
    more adverse fact never lowers it. A feature's
    contribution is the sum over its columns of coefficient x (value - training mean): one-hot columns
    are summed back to their feature, and base value + contributions = raw score exactly.

    Parameters
    ----------
    stage : Stage or str
    C : float, default 0.5
        Inverse L2 strength, as scikit-learn's ``LogisticRegression(C=...)``.
    calibration : {"auto", "platt", "isotonic"}
        Calibration of the raw score on the calibration rows. ``auto`` means Platt here: the raw score
        is already a log-odds, Platt corrects its slope and intercept and keeps the ranking, while an
        isotonic step function ties scores and lost AUC (0.788 -> 0.782 at intake on 20,000 people).
    random_state : int
        Seed of the calibration method's choice.
    protected_inputs : tuple of str
        Sex and household registration are inputs only when named here (as for the booster).
    """

    kind: ModelKind = "logistic"

    def __init__(
        self,
        stage: Stage | str,
        *,
        C: float = 0.5,
        calibration: CalibrationMethod = "auto",
        random_state: int = 0,
        protected_inputs: tuple[str, ...] = (),
    ):
        self.stage = stage
        self.C = C
        self.calibration = calibration
        self.random_state = random_state
        self.protected_inputs = protected_inputs

    def fit(
        self, X: pd.DataFrame, y: np.ndarray, *, X_calib: pd.DataFrame | None = None, y_calib: np.ndarray | None = None
    ) -> LinearStageModel:
        """Fit the coefficients on ``X``; calibrate on ``X_calib`` (default: the training rows)."""
        X = self._frame(X)
        names = self.feature_names
        self.categories_ = [
            list(category_objects(dtype)[:-1]) for n in names if isinstance(dtype := X[n].dtype, pd.CategoricalDtype)
        ]
        self._learn_no_record()
        recorded = self.matrix(X)
        M = self.encode_no_record(recorded)  # NaN remains only where "missing" is not "nothing on record"
        self.typical_ = stage_typical_values(X, names)
        is_cat = np.array([isinstance(X[n].dtype, pd.CategoricalDtype) for n in names])
        self.is_categorical_ = is_cat
        self.medians_ = np.array(
            [0.0 if c or np.isnan(M[:, j]).all() else float(np.nanmedian(M[:, j])) for j, c in enumerate(is_cat)]
        )
        filled = np.where(np.isnan(M), self.medians_, M)
        std = filled.std(axis=0)
        self.scales_ = np.where(is_cat | (std == 0), 1.0, std)
        # the range seen in training: a value beyond it is read as its edge (a mid-term assessment dated at the
        # end of the term would otherwise extrapolate share_served from 0.5 to 1 along a line)
        self.lower_, self.upper_ = filled.min(axis=0), filled.max(axis=0)
        with np.errstate(invalid="ignore"):
            self.log_ = (
                ~is_cat
                & (np.nanmin(M, axis=0, initial=np.inf, where=~np.isnan(M)) >= 0)
                & (np.nanmax(M, axis=0, initial=-np.inf, where=~np.isnan(M)) > 1)
            )
        logged = np.log1p(np.where(self.log_, np.clip(filled, 0, None), 0.0))
        log_std = logged.std(axis=0)
        self.log_scales_ = np.where(log_std == 0, 1.0, log_std)
        self.n_levels_ = np.array(
            [len(self.categories_[int(is_cat[:j].sum())]) if c else 0 for j, c in enumerate(is_cat)]
        )
        D, owner = self._design(recorded)
        self.owner_ = owner
        self.design_means_ = D.mean(axis=0)
        bounds = self._bounds(owner, D.shape[1])
        self.coef_, self.intercept_ = fit_bounded_logistic(D, np.asarray(y, float), C=self.C, bounds=bounds)
        X_cal, y_cal = (X, y) if X_calib is None else (X_calib, y_calib)
        method = "platt" if self.calibration == "auto" else self.calibration
        self.calibrator_ = Calibrator(method, random_state=self.random_state).fit(
            self.raw_score(X_cal), np.asarray(y_cal, int)
        )
        return self

    def _design(self, M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Design matrix of the float matrix and the feature index (owner) of each design column.

        The missing indicators are read before "nothing on record" is encoded (:meth:`encode_no_record`):
        a feature of an adverse fact enters with its lowest-risk value and an indicator that says none
        was recorded (whose coefficient :meth:`_bounds` keeps from adding risk).
        """
        blocks, owner = [], []
        is_missing = np.isnan(M)
        M = self.encode_no_record(M)
        for j in range(M.shape[1]):
            col = M[:, j]
            missing = is_missing[:, j]
            if self.is_categorical_[j]:
                levels = int(self.n_levels_[j])
                codes = np.where(missing, levels, np.nan_to_num(col, nan=0.0)).astype(int)
                block = np.zeros((len(col), levels + 1))
                block[np.arange(len(col)), codes] = 1.0
            else:
                x = np.where(np.isnan(col), self.medians_[j], col)  # missing: median, or "nothing on record" (encoded)
                if hasattr(self, "lower_"):  # not in a model pickled before the range was kept
                    x = np.clip(x, self.lower_[j], self.upper_[j])
                columns = [(x - self.medians_[j]) / self.scales_[j]]
                if self.log_[j]:
                    columns.append((np.log1p(np.clip(x, 0, None)) - np.log1p(self.medians_[j])) / self.log_scales_[j])
                block = np.column_stack([*columns, missing.astype(float)])
            blocks.append(block)
            owner += [j] * block.shape[1]
        return np.hstack(blocks) if blocks else np.empty((len(M), 0)), np.asarray(owner)

    def _bounds(self, owner: np.ndarray, width: int) -> list[tuple[float | None, float | None]]:
        """Sign bounds of the coefficients.

        The value columns of a feature with a direction keep its sign. The missing indicator of a
        feature of an adverse fact is at most 0: "nothing on record" enters as the lowest-risk value
        plus the indicator, so it is never riskier than the least risky record (design.md, "Face validity").
        """
        bounds: list[tuple[float | None, float | None]] = [(None, None)] * width
        names = self.feature_names
        for k in range(width):
            j = int(owner[k])
            if self.is_categorical_[j]:
                continue
            position = k - int(np.argmax(owner == j))  # 0: the value, 1: its log (when logged), then missing
            spec = CATALOG[names[j]]
            if spec.direction and position < 1 + int(self.log_[j]):
                bounds[k] = (0.0, None) if spec.direction > 0 else (None, 0.0)
            elif spec.no_record is not None and position == 1 + int(self.log_[j]):
                bounds[k] = (None, 0.0)
        return bounds

    def trained_categories(self) -> list[list[Any]]:
        check_is_fitted(self, "categories_")
        return self.categories_

    def raw_score(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The logistic model's log-odds."""
        check_is_fitted(self, "coef_")
        D, _ = self._design(X if isinstance(X, np.ndarray) else self.matrix(X))
        return np.asarray(D @ self.coef_ + self.intercept_)

    def contribution_matrix(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Coefficient x centred value, summed per feature; the base value (raw score at the means) last."""
        check_is_fitted(self, "coef_")
        D, _ = self._design(X if isinstance(X, np.ndarray) else self.matrix(X))
        parts = (D - self.design_means_) * self.coef_
        out = np.zeros((len(D), len(self.feature_names) + 1))
        np.add.at(out.T, self.owner_, parts.T)
        out[:, -1] = self.intercept_ + float(self.design_means_ @ self.coef_)
        return out

    @property
    def size(self) -> dict[str, int]:
        check_is_fitted(self, "coef_")
        return {"trees": 0, "leaves": 0, "max_depth": 0, "coefficients": int(np.count_nonzero(self.coef_))}


def fit_bounded_logistic(
    D: np.ndarray, y: np.ndarray, *, C: float, bounds: list[tuple[float | None, float | None]]
) -> tuple[np.ndarray, float]:
    """L2-penalised logistic regression (intercept unpenalised) by L-BFGS-B with coefficient bounds.

    Minimises ``C * sum(log loss) + ||w||^2 / 2``, scikit-learn's objective, divided by ``C * n``.
    """
    n, p = D.shape
    sign = 2 * y - 1
    penalty = 1.0 / (C * n)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:p], theta[p]
        margin = sign * (D @ w + b)
        loss = -log_expit(margin).mean() + 0.5 * penalty * float(w @ w)
        g = -sign * expit(-margin) / n
        return float(loss), np.append(D.T @ g + penalty * w, g.sum())

    start = np.zeros(p + 1)
    start[p] = np.log(max(y.mean(), 1e-6) / max(1 - y.mean(), 1e-6))
    result = minimize(
        objective, start, jac=True, method="L-BFGS-B", bounds=[*bounds, (None, None)], options={"maxiter": 2000}
    )
    if not result.success:
        log.warning("logistic fit: %s", result.message)
    return result.x[:p], float(result.x[p])
