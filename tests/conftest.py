"""Shared fixtures: small synthetic cohorts made once per session (seconds)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from features.synthetic import CohortConfig, generate_cohort

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# BentoML reads BENTOML_HOME when it first touches its stores: tests get their own, never ~/bentoml.
os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="bentoml-tests-")


@pytest.fixture(scope="session")
def cohort():
    """A 4,000-person synthetic cohort (canonical tables + truth)."""
    return generate_cohort(CohortConfig(persons=4000, seed=11))


@pytest.fixture(scope="session")
def large_cohort():
    """A 30,000-person cohort for statistical checks of the generator."""
    return generate_cohort(CohortConfig(persons=30000, seed=5))


@pytest.fixture(scope="session")
def service_models():
    """Small stage models in the test BentoML store, with the cohort and fits they came from."""
    from service_support import train_and_store

    return train_and_store()
