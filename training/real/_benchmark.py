"""Run one real-data benchmark (NIJ, COMPAS or Rossi) and log it to MLflow (experiment ``real-<source>``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from training.real._compas import compas_tables
from training.real._report import BenchmarkResult, slug
from training.real._tables import Tables, nij_tables, rossi_tables
from training.real.fit import HOLDOUT

log = logging.getLogger(__name__)

Source = Literal["nij", "compas", "rossi"]
EXPERIMENT_PREFIX = "real"
BUILDERS: dict[str, Callable[..., Tables]] = {"nij": nij_tables, "compas": compas_tables, "rossi": rossi_tables}


def benchmark_real(
    source: Source | str,
    train_path: str | Path,
    test_path: str | Path | None = None,
    *,
    seed: int = 0,
    folds: int = 5,
    track: bool = True,
) -> BenchmarkResult:
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
    tables, notes, params, checks = BUILDERS[source](
        Path(train_path), test_path and Path(test_path), seed=seed, folds=folds
    )
    params = {
        "source": source,
        "train": str(train_path),
        "test": str(test_path or ""),
        "seed": seed,
        "folds": folds,
        "holdout": HOLDOUT,
        **params,
    }
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
    return str(run.info.run_id)
