"""Figures made from a fitted model (the SHAP summary), for the evaluation report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.catalog import CATALOG
from models.estimator import StageEstimator


def shap_summary_png(
    model: StageEstimator, X: pd.DataFrame, path: Path, *, max_rows: int = 2000, seed: int = 0
) -> Path:
    """Beeswarm of the model's exact per-feature contributions (log-odds) on a sample of ``X``.

    TreeSHAP values for the booster; coefficient x centred value for the logistic model.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    sample = X.sample(min(max_rows, len(X)), random_state=seed) if len(X) > max_rows else X
    contrib = model.contributions(sample).drop(columns="base_value")
    shown = sample[model.feature_names].apply(
        lambda col: col.cat.codes.astype(float) if isinstance(col.dtype, pd.CategoricalDtype) else col.astype(float)
    )
    names = [CATALOG[n].en for n in model.feature_names]
    shap.summary_plot(
        contrib.to_numpy(),
        shown.to_numpy(dtype=float),
        feature_names=names,
        max_display=15,
        show=False,
        plot_size=(9.0, 7.0),  # wide enough for the longest feature name beside the swarm
        rng=np.random.default_rng(seed),
    )
    kind = "boosted" if model.kind == "lightgbm" else "logistic"
    figure = plt.gcf()
    figure.axes[0].set_title(f"{model.stage} {kind} model: contribution of each feature", fontsize=12)
    figure.axes[0].set_xlabel("contribution to the risk score (log-odds)", fontsize=11)
    # the whole figure, whatever the names' and the colour bar's widths: nothing cut off at the edges
    figure.savefig(path, dpi=110, bbox_inches="tight", pad_inches=0.2)
    plt.close("all")
    return Path(path)
