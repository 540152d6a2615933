"""Benchmarks on the real public data sets: the project's models beside the published figures.

Every figure is computed on rows the model never saw: out-of-fold predictions of stratified K-fold
cross-validation on the training file, or, when a test file in the same format is given, a fit on
the training file and predictions on the test file. For NIJ year 1 a share of the persons is held
out first: the model is selected by cross-validation on the rest and scores the held-out persons once.

:func:`benchmark_real` runs one source (NIJ Georgia parole, COMPAS Broward County, Rossi Maryland
release study), builds its tables beside the source's published anchors, checks the project's
targets and logs the run to MLflow (experiment ``real-<source>``); :func:`register` adds
``riskctl benchmark real`` to a typer application. The methods are public modules:
:mod:`training.real.fit` (boosters, baselines, out-of-fold predictions) and :mod:`training.real.nij`
(the NIJ year-1 candidates, their selection and the held-out check); the private ones hold the
rest: ``_tables`` and ``_compas`` (each source's tables), ``_report`` (:class:`BenchmarkResult`,
Markdown) and ``_cli`` (the command, and :func:`update_docs`, which writes a run's tables between
the :func:`markers` of ``docs/benchmarks.md``).

Importing the package does no work and loads no model library: the names resolve on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.real._benchmark import Source, benchmark_real, log_benchmark
    from training.real._cli import DOCS_HEADER, markers, register, standalone_app, update_docs
    from training.real._compas import COMPAS_MONOTONE
    from training.real._report import BenchmarkResult

__all__ = [
    "COMPAS_MONOTONE",
    "DOCS_HEADER",
    "BenchmarkResult",
    "Source",
    "benchmark_real",
    "log_benchmark",
    "markers",
    "register",
    "standalone_app",
    "update_docs",
]

_HOME = {
    "COMPAS_MONOTONE": "_compas",
    "DOCS_HEADER": "_cli",
    "BenchmarkResult": "_report",
    "Source": "_benchmark",
    "benchmark_real": "_benchmark",
    "log_benchmark": "_benchmark",
    "register": "_cli",
    "standalone_app": "_cli",
    "markers": "_cli",
    "update_docs": "_cli",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'training.real' has no attribute {name!r}")
    return getattr(importlib.import_module(f"training.real.{_HOME[name]}"), name)
