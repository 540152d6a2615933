"""Shared fixtures: small synthetic cohorts made once per session (seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.synthetic import CohortConfig, generate_cohort

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def cohort():
    """A 4,000-person synthetic cohort (canonical tables + truth)."""
    return generate_cohort(CohortConfig(persons=4000, seed=11))


@pytest.fixture(scope="session")
def large_cohort():
    """A 30,000-person cohort for statistical checks of the generator."""
    return generate_cohort(CohortConfig(persons=30000, seed=5))
