"""The stage models: one estimator interface, a boosted and a logistic implementation.

:class:`StageEstimator` is the interface the scorer, the reports, the gate and the model store use:
feature frame -> raw score (log-odds) -> calibrated probability, with exact per-feature contributions
in log-odds that add up to the raw score. :class:`StageModel` is the monotone-constrained LightGBM
booster plus a calibrator (contributions: TreeSHAP); :class:`LinearStageModel` is the sign-constrained
logistic model on the same features (contributions: coefficient times centred value, one-hot columns
summed back to their feature). The logistic model is every comparison's baseline, and the candidate
for promotion when the booster is not better. Both follow scikit-learn's estimator contract.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from features.catalog import CATALOG, stage_typical_values
from features.vocab import Stage
from models._base import CalibrationMethod, Calibrator, ModelKind, StageEstimator
from models._linear import LinearStageModel, fit_bounded_logistic

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
            "objective": "binary",
            "metric": "binary_logloss",
            "verbosity": -1,
            "num_leaves": self.num_leaves,
            "max_depth": self.max_depth,
            "min_child_samples": self.min_child_samples,
            "learning_rate": self.learning_rate,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1,
            "lambda_l2": self.lambda_l2,
            "monotone_constraints": monotone,
            "monotone_constraints_method": "advanced",
            "seed": seed,
            "num_threads": self.num_threads,
            "deterministic": True,
            "force_row_wise": True,
            "cat_smooth": 20,
            "min_data_per_group": 50,
            **self.extra,
        }


class StageModel(StageEstimator):
    """Calibrated, monotone LightGBM model of one stage (feature frame -> probability).

    Sex and household registration (``features.catalog.PROTECTED_ATTRIBUTES``) are inputs only when
    named in ``protected_inputs``. Fitting also stores the stage's typical person (``typical_``: the
    median, or the share for flags and categories, of each input in the training rows), so that a
    served model can word its reasons without the training data.
    """

    kind: ModelKind = "lightgbm"

    def __init__(
        self,
        stage: Stage | str,
        params: BoosterParams = BoosterParams(),
        *,
        calibration: CalibrationMethod = "auto",
        random_state: int = 0,
        protected_inputs: tuple[str, ...] = (),
    ):
        self.stage = stage
        self.params = params
        self.calibration = calibration
        self.random_state = random_state
        self.protected_inputs = protected_inputs

    def monotone(self) -> list[int]:
        return [CATALOG[n].direction if CATALOG[n].kind != "categorical" else 0 for n in self.feature_names]

    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        *,
        X_valid: pd.DataFrame,
        y_valid: np.ndarray,
        X_calib: pd.DataFrame,
        y_calib: np.ndarray,
    ) -> StageModel:
        """Fit the booster with early stopping on the validation rows, then calibrate on separate rows."""
        X, X_valid, X_calib = (self._frame(f) for f in (X, X_valid, X_calib))
        self._learn_no_record()
        self.typical_ = stage_typical_values(X, self.feature_names)  # of the values as recorded
        train = lgb.Dataset(self.encode_no_record_frame(X), label=y, free_raw_data=False)
        valid = lgb.Dataset(self.encode_no_record_frame(X_valid), label=y_valid, reference=train)
        self.booster_ = lgb.train(
            self.params.lgb_params(self.monotone(), self.random_state),
            train,
            num_boost_round=self.params.max_rounds,
            valid_sets=[valid],
            callbacks=[lgb.early_stopping(self.params.early_stopping, verbose=False)],
        )
        self.best_iteration_ = self.booster_.best_iteration or self.booster_.current_iteration()
        calibrator = Calibrator(self.calibration, random_state=self.random_state)
        self.calibrator_ = calibrator.fit(self.raw_score(X_calib), y_calib)
        return self

    def refit(
        self, X: pd.DataFrame, y: np.ndarray, *, rounds: int, X_calib: pd.DataFrame, y_calib: np.ndarray
    ) -> StageModel:
        """Fit the booster on ``X`` for exactly ``rounds`` rounds (no early stopping), then calibrate anew.

        For use after :meth:`fit` has chosen the number of rounds on held-out validation rows: refitting on
        the training plus validation rows with that number uses every row the booster may see. The
        calibration rows must still be rows the booster did not train on.
        """
        if int(rounds) < 1:
            raise ValueError(f"rounds must be at least 1, got {rounds}")
        X, X_calib = self._frame(X), self._frame(X_calib)
        self._learn_no_record()
        self.booster_ = lgb.train(
            self.params.lgb_params(self.monotone(), self.random_state),
            lgb.Dataset(self.encode_no_record_frame(X), label=y, free_raw_data=False),
            num_boost_round=int(rounds),
        )
        self.best_iteration_ = self.booster_.current_iteration()
        self.typical_ = stage_typical_values(X, self.feature_names)
        calibrator = Calibrator(self.calibration, random_state=self.random_state)
        self.calibrator_ = calibrator.fit(self.raw_score(X_calib), y_calib)
        return self

    def trained_categories(self) -> list[list[Any]]:
        check_is_fitted(self, "booster_")
        return list(self.booster_.pandas_categorical or [])

    def raw_score(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The booster's log-odds (from a feature frame or its :meth:`matrix`)."""
        M = self.encode_no_record(X if isinstance(X, np.ndarray) else self.matrix(X))
        return np.asarray(
            self.booster_.predict(M, raw_score=True, num_iteration=self.best_iteration_, num_threads=PREDICT_THREADS)
        )

    def contribution_matrix(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """:meth:`contributions` as a bare matrix: columns in :attr:`feature_names` order, base value last."""
        M = self.encode_no_record(X if isinstance(X, np.ndarray) else self.matrix(X))
        return np.asarray(
            self.booster_.predict(M, pred_contrib=True, num_iteration=self.best_iteration_, num_threads=PREDICT_THREADS)
        )

    @property
    def size(self) -> dict[str, int]:
        """Trees and leaves of the fitted booster (explanation cost grows with both)."""
        dump = self.booster_.dump_model(num_iteration=self.best_iteration_)["tree_info"]
        return {
            "trees": len(dump),
            "leaves": int(sum(t["num_leaves"] for t in dump)),
            "max_depth": self.params.max_depth,
        }


__all__ = [
    "BoosterParams",
    "CalibrationMethod",
    "Calibrator",
    "LinearStageModel",
    "ModelKind",
    "StageEstimator",
    "StageModel",
    "fit_bounded_logistic",
]
