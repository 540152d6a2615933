"""Benchmarks on the real public data sets: the project's model beside the published figures.

Every figure is computed on rows the model never saw: stratified K-fold out-of-fold predictions
on the training file, or, when a test file in the same format is given, a fit on the training
file and predictions on the test file. The pieces live in submodules, re-exported here:

- :mod:`training.real_fit`: the boosters (hold-out or cross-fitted calibration), the baselines and
  out-of-fold predictions;
- :mod:`training.real_report`: :class:`BenchmarkResult`, metric helpers, Markdown formatting;
- :mod:`training.real_tables` (NIJ, Rossi) and :mod:`training.real_compas` (COMPAS): the tables
  of each source beside its published anchors.

:func:`benchmark_real` runs one source (NIJ Georgia parole, COMPAS Broward County, Rossi
Maryland release study), builds its tables, checks the project's targets and logs the run to
MLflow (experiment ``real-<source>``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from training.real_compas import COMPAS_MONOTONE, COMPAS_PARAMS, compas_tables
from training.real_fit import (
    DEFAULT_PARAMS,
    HOLDOUT,
    SMALL_PARAMS,
    CrossFitBooster,
    Fit,
    FittedBooster,
    Predict,
    booster_params,
    calibrate_score_oof,
    check_same_features,
    cross_validate_real,
    fit_base_rate,
    fit_booster,
    fit_crossfit_booster,
    fit_logistic,
    fit_predict_real,
    fit_score_calibrator,
    fold_indices,
    logistic_oof,
    out_of_fold,
    predictions,
)
from training.real_report import BenchmarkResult, format_cell, markdown_table, slug
from training.real_tables import (
    MIN_GROUP,
    NIJ_PARAMS,
    TARGET_COMPAS_AUC,
    TARGET_GROUP_ECE,
    TARGET_NIJ_BRIER,
    Tables,
    nij_monotone,
    nij_tables,
    rossi_tables,
)

__all__ = [
    "BUILDERS", "COMPAS_MONOTONE", "COMPAS_PARAMS", "DEFAULT_PARAMS", "EXPERIMENT_PREFIX", "HOLDOUT", "MIN_GROUP",
    "NIJ_PARAMS", "SMALL_PARAMS", "TARGET_COMPAS_AUC", "TARGET_GROUP_ECE", "TARGET_NIJ_BRIER", "BenchmarkResult",
    "CrossFitBooster", "Fit", "FittedBooster", "Predict", "Source", "benchmark_real", "booster_params",
    "calibrate_score_oof", "check_same_features", "cross_validate_real", "fit_base_rate", "fit_booster",
    "fit_crossfit_booster", "fit_logistic", "fit_predict_real", "fit_score_calibrator", "fold_indices",
    "format_cell", "log_benchmark", "logistic_oof", "markdown_table", "nij_monotone", "out_of_fold", "predictions",
]

log = logging.getLogger(__name__)

Source = Literal["nij", "compas", "rossi"]
EXPERIMENT_PREFIX = "real"
BUILDERS: dict[str, Callable[..., Tables]] = {"nij": nij_tables, "compas": compas_tables, "rossi": rossi_tables}


def benchmark_real(source: Source | str, train_path: str | Path, test_path: str | Path | None = None, *,
                   seed: int = 0, folds: int = 5, track: bool = True) -> BenchmarkResult:
    """Run the real-data benchmark of ``source`` and log it to MLflow (experiment ``real-<source>``).

    Parameters
    ----------
    source
        ``"nij"``, ``"compas"`` or ``"rossi"``.
    train_path
        The public training file (or any file in the same format).
    test_path
        Optional file in the same format: fit on ``train_path``, evaluate on it, instead of
        cross-validating on the training file.
    seed, folds
        Seed of every split and model; number of folds.
    track
        Log the run to MLflow (parameters, metrics, the tables as artefacts).
    """
    if source not in BUILDERS:
        raise ValueError(f"unknown source {source!r}: expected one of {sorted(BUILDERS)}")
    start = time.perf_counter()
    tables, notes, params, checks = BUILDERS[source](Path(train_path), test_path and Path(test_path),
                                                     seed=seed, folds=folds)
    params = {"source": source, "train": str(train_path), "test": str(test_path or ""), "seed": seed,
              "folds": folds, "holdout": HOLDOUT, **params}
    result = BenchmarkResult(str(source), tables, notes, params, checks, time.perf_counter() - start)
    log.info("real benchmark %s: %.1f s", source, result.seconds)
    if track:
        result.run_id = log_benchmark(result)
    return result


def log_benchmark(result: BenchmarkResult) -> str:
    """Log ``result`` as one MLflow run of the experiment ``real-<source>``; returns the run id."""
    import mlflow

    from features.settings import get_settings
    from training.tracking import configure_mlflow

    settings = get_settings()
    client = configure_mlflow(settings)
    name = f"{EXPERIMENT_PREFIX}-{result.source}"
    found = client.get_experiment_by_name(name)
    if found is not None:
        experiment_id = found.experiment_id
    else:
        remote = settings.resolved_tracking_uri().startswith("http")
        location = None if remote else settings.artifact_location()
        experiment_id = client.create_experiment(name, artifact_location=location)
    run_name = f"{result.source}-seed{result.params['seed']}"
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.set_tags({"kind": "real-benchmark", "source": result.source})
        mlflow.log_params({k: str(v)[:500] for k, v in result.params.items()})
        mlflow.log_metrics({**result.metrics(), "seconds": result.seconds})
        mlflow.log_text(result.to_markdown(), "benchmark.md")
        for title, table in result.tables.items():
            mlflow.log_text(table.to_csv(), f"tables/{slug(title).replace('/', '_').replace(' ', '_')}.csv")
    log.info("logged %s to MLflow run %s", name, run.info.run_id)
    return run.info.run_id
