"""Settings of a synthetic cohort (no heavy imports: the command line reads the defaults at start-up)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_BASE_RATE = 0.08
LOW_BASE_RATE = 0.01


@dataclass(frozen=True)
class CohortConfig:
    """Settings of one synthetic cohort.

    ``base_rate`` is the share re-offending within 12 months of intake (default 8%; the
    documented low-base-rate setting is :data:`LOW_BASE_RATE`, 1%).
    """

    persons: int = 10_000
    seed: int = 0
    base_rate: float = DEFAULT_BASE_RATE
    start_from: str = "2016-01-01"
    start_to: str = "2024-12-31"
    data_cut: str = "2025-12-31"
    #: move every date of the cohort so that its data cut falls on this day (the demo: today), keeping
    #: everything else as drawn: the same people, events and outcomes, only later in time
    shift_to: str | None = None
    loss_per_year: float = 0.01
