"""Shared fixtures: small synthetic cohorts made once per session (seconds)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from features.schema import CaseTables
from features.synthetic import CohortConfig, generate_cohort

if TYPE_CHECKING:
    from service_support import ServiceModels

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# BentoML reads BENTOML_HOME when it first touches its stores: tests get their own, never ~/bentoml.
BENTOML_TEST_HOME = tempfile.mkdtemp(prefix="bentoml-tests-")
os.environ["BENTOML_HOME"] = BENTOML_TEST_HOME


@pytest.fixture(scope="session", autouse=True)
def _remove_test_bentoml_home() -> Iterator[None]:
    """The test BentoML store (models, built Bentos) goes when the session ends."""
    yield
    shutil.rmtree(BENTOML_TEST_HOME, ignore_errors=True)


@pytest.fixture(autouse=True, scope="module")
def _forget_service_metrics() -> Iterator[None]:
    """Each test module may build its own in-process service (``RiskService.to_asgi()``); BentoML registers
    its request metrics in the process-wide Prometheus registry on an app's first request, so the next
    module's app would find them taken (DuplicateTimeseries). They are dropped when a module ends."""
    yield
    import sys

    if "bentoml" not in sys.modules:
        return
    from serving.api import forget_request_metrics

    forget_request_metrics()


@pytest.fixture(scope="session")
def cohort() -> CaseTables:
    """A 4,000-person synthetic cohort (canonical tables + truth)."""
    return generate_cohort(CohortConfig(persons=4000, seed=11))


@pytest.fixture(scope="session")
def large_cohort() -> CaseTables:
    """A 30,000-person cohort for statistical checks of the generator."""
    return generate_cohort(CohortConfig(persons=30000, seed=5))


@pytest.fixture(scope="session")
def service_models() -> ServiceModels:
    """Small stage models in the test BentoML store, with the cohort and fits they came from."""
    from service_support import train_and_store

    return train_and_store()
