"""How much each input moves a model's scores: one table per model, whatever its kind."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.estimator import StageEstimator


def importance_table(model: StageEstimator, X: pd.DataFrame) -> pd.DataFrame:
    """One row per input feature of ``model``, the most influential first.

    Columns: ``feature``; ``mean_abs_contribution``, the mean absolute contribution to the raw score
    (log-odds) on the rows ``X`` (tree SHAP values for a booster, coefficient x centred value for the
    logistic model: comparable across kinds); ``share``, its share of the total; and the kind's own
    figures: for a booster ``gain`` and ``splits`` (LightGBM's importances, over the trees used), for
    the logistic model ``coefficient_l1`` (the sum of the absolute standardised coefficients of the
    feature's design columns) and ``design_columns``.
    """
    contributions = model.contribution_matrix(X)[:, :-1]
    mean_abs = np.abs(contributions).mean(axis=0) if len(contributions) else np.zeros(len(model.feature_names))
    total = float(mean_abs.sum())
    table = pd.DataFrame(
        {
            "feature": model.feature_names,
            "mean_abs_contribution": mean_abs,
            "share": mean_abs / total if total > 0 else np.zeros_like(mean_abs),
        }
    )
    booster = getattr(model, "booster_", None)
    if booster is not None:
        used = getattr(model, "best_iteration_", None)
        table["gain"] = booster.feature_importance("gain", iteration=used)
        table["splits"] = booster.feature_importance("split", iteration=used)
    elif hasattr(model, "coef_") and hasattr(model, "owner_"):
        coef, owner = np.abs(np.asarray(model.coef_)), np.asarray(model.owner_)
        table["coefficient_l1"] = np.bincount(owner, weights=coef, minlength=len(model.feature_names))
        table["design_columns"] = np.bincount(owner, minlength=len(model.feature_names))
    return table.sort_values("mean_abs_contribution", ascending=False, kind="stable").reset_index(drop=True)
