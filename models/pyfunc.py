"""MLflow pyfunc wrapper: the registered artefact is the fitted :class:`~models.estimator.StageEstimator`.

``predict`` maps a stage feature frame to calibrated probabilities; :func:`load_stage_model`
returns the fitted object itself (booster included, for explanations).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import joblib
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel, PythonModelContext

from models.estimator import StageEstimator

ARTIFACT_KEY = "stage_model"
#: the project's packages a logged stage model imports when it is loaded (logged with it as code paths)
CODE_PACKAGES = ("features", "models")
#: the "model from code" script logged as the pyfunc's code (MLflow runs it on loading; no CloudPickle)
CODE_PATH = Path(__file__).with_name("_pyfunc_code.py")


# ``mlflow.pyfunc`` is a lazy loader in ``mlflow/__init__.py``: name the base class by its defining module.
class StageModelPyfunc(PythonModel):
    """Loads the joblib-pickled stage model logged as the ``stage_model`` artifact."""

    def load_context(self, context: PythonModelContext) -> None:
        self.model: StageEstimator = joblib.load(context.artifacts[ARTIFACT_KEY])

    def predict(
        self, context: PythonModelContext | None, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        return self.model.predict_proba(_restore_categories(self.model, model_input))


def _restore_categories(model: StageEstimator, frame: pd.DataFrame) -> pd.DataFrame:
    """Serving through MLflow's JSON drops pandas categories: restore the vocabularies' categories."""
    from features.catalog import CATALOG
    from features.vocab import CATEGORICAL_COLUMNS

    frame = frame.copy()
    for name in model.feature_names:
        if CATALOG[name].kind == "categorical" and not isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = pd.Categorical(frame[name].astype(str), categories=CATEGORICAL_COLUMNS[name].codes())
    return frame


def load_stage_model(model_uri: str) -> StageEstimator:
    """The fitted stage model (booster or logistic) behind an MLflow model URI.

    For example ``models:/reoffence-intake@champion``.
    """
    # MLflow puts a model's code paths first on sys.path; this process has the project's own modules already,
    # and a later import must not come from a downloaded copy of them
    saved = list(sys.path)
    try:
        model: StageEstimator = mlflow.pyfunc.load_model(model_uri).unwrap_python_model().model
    finally:
        sys.path[:] = saved
    return model
