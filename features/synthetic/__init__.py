"""Synthetic cohort generator with a documented causal structure (see CAUSAL_MODEL.md beside this file).

:func:`generate_cohort` draws persons, their dated events and outcomes as the three canonical
tables, plus a ``truth`` table with each person's latent propensity and the oracle probability
of each stage's label (default horizons), so that tests and evaluations can check that a model
finds what was planted. Everything is vectorised NumPy and deterministic for a seed.

The oracle columns ``p_<stage>`` are written for the default label horizons
(:data:`features.vocab.DEFAULT_HORIZON_MONTHS`, recorded in ``truth.attrs["horizon_months"]``).
The generator is imported on first use, so reading :class:`CohortConfig` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from features.synthetic._config import DEFAULT_BASE_RATE, LOW_BASE_RATE, CohortConfig

if TYPE_CHECKING:
    from features.synthetic._cohort import generate_cohort

__all__ = ["DEFAULT_BASE_RATE", "LOW_BASE_RATE", "CohortConfig", "generate_cohort"]


def __getattr__(name: str) -> Any:
    if name == "generate_cohort":
        from features.synthetic._cohort import generate_cohort

        return generate_cohort
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
