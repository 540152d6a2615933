"""Benchmarks on the real public data sets: the project's models beside the published figures.

Every figure is computed on rows the model never saw: out-of-fold predictions of stratified K-fold
cross-validation on the training file (for NIJ, nested: every model choice is made inside the
training part of each outer fold, repeated over seeds), or, when a test file in the same format is
given, a fit on the training file and predictions on the test file.

:func:`benchmark_real` runs one source (NIJ Georgia parole, COMPAS Broward County, Rossi Maryland
release study), builds its tables beside the source's published anchors, checks the project's
targets and logs the run to MLflow (experiment ``real-<source>``); :func:`register` adds
``riskctl benchmark real`` to a typer application. The private modules hold the pieces: ``_fit``
(boosters, baselines, out-of-fold predictions), ``_nested`` (nested, repeated selection for NIJ),
``_tables`` and ``_compas`` (each source's tables), ``_report`` (:class:`BenchmarkResult`, Markdown)
and ``_cli``.

Importing the package does no work and loads no model library: the names resolve on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.real._benchmark import Source, benchmark_real, log_benchmark
    from training.real._cli import register, standalone_app
    from training.real._report import BenchmarkResult

__all__ = ["BenchmarkResult", "Source", "benchmark_real", "log_benchmark", "register", "standalone_app"]

_HOME = {
    "BenchmarkResult": "_report",
    "Source": "_benchmark",
    "benchmark_real": "_benchmark",
    "log_benchmark": "_benchmark",
    "register": "_cli",
    "standalone_app": "_cli",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'training.real' has no attribute {name!r}")
    return getattr(importlib.import_module(f"training.real.{_HOME[name]}"), name)
