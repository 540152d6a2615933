"""The synthetic cohort generator: determinism, shares, base rate, planted effects, oracle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.labels import make_stage_frame
from features.schema import CaseTables, validate_tables
from features.synthetic import LOW_BASE_RATE, CohortConfig, generate_cohort
from features.vocab import Stage


def test_deterministic_for_a_seed() -> None:
    a = generate_cohort(CohortConfig(persons=500, seed=3))
    b = generate_cohort(CohortConfig(persons=500, seed=3))
    c = generate_cohort(CohortConfig(persons=500, seed=4))
    for name in ("persons", "events", "outcomes"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    pd.testing.assert_frame_equal(a.extra["truth"], b.extra["truth"])
    assert not a.persons["birth_date"].equals(c.persons["birth_date"])


def test_output_is_valid_canonical_data(cohort: CaseTables) -> None:
    validate_tables(cohort)


def test_realistic_shares(large_cohort: CaseTables) -> None:
    p = large_cohort.persons
    shares = p["supervision_type"].value_counts(normalize=True)
    assert shares["probation"] == pytest.approx(0.88, abs=0.012)
    assert shares["parole"] == pytest.approx(0.10, abs=0.01)
    assert shares["medical"] == pytest.approx(0.02, abs=0.005)
    assert (~p["local"]).mean() == pytest.approx(0.40, abs=0.015)


def test_default_base_rate_about_eight_percent(large_cohort: CaseTables) -> None:
    intake = make_stage_frame(large_cohort, Stage.INTAKE)
    assert intake.label_rate == pytest.approx(0.08, abs=0.008)
    assert intake.meta["oracle"].mean() == pytest.approx(intake.label_rate, abs=0.006)


def test_low_base_rate_setting() -> None:
    tables = generate_cohort(CohortConfig(persons=30000, seed=2, base_rate=LOW_BASE_RATE))
    intake = make_stage_frame(tables, Stage.INTAKE)
    assert intake.label_rate == pytest.approx(0.01, abs=0.003)


def test_recent_family_change_raises_reoffence(large_cohort: CaseTables) -> None:
    """Planted effect: the re-offence hazard rises for 90 days after a family change."""
    f = make_stage_frame(large_cohort, Stage.MIDTERM)
    recent = f.X["family_change_90d"].to_numpy() > 0
    assert recent.sum() > 200
    rate_recent, rate_other = f.y[recent].mean(), f.y[~recent].mean()
    assert rate_recent > 1.5 * rate_other


def test_high_propensity_people_have_more_violations(large_cohort: CaseTables) -> None:
    f = make_stage_frame(large_cohort, Stage.RELEASE)
    z = f.meta["person_id"].map(large_cohort.extra["truth"].set_index("person_id")["z"])
    per_year = f.X["em_violation_term"] / f.X["days_since_start"].clip(lower=30) * 365
    assert np.corrcoef(z, per_year)[0, 1] > 0.2
    unqualified = f.X["grade_unqualified_n"].to_numpy()
    assert f.y[unqualified > 0].mean() > f.y[unqualified == 0].mean()


def test_oracle_is_calibrated_and_informative(large_cohort: CaseTables) -> None:
    for stage in (Stage.INTAKE, Stage.MIDTERM):
        f = make_stage_frame(large_cohort, stage)
        bins = pd.qcut(f.meta["oracle"], 5, labels=False)
        table = pd.DataFrame({"p": f.meta["oracle"], "y": f.y}).groupby(bins).mean()
        assert np.allclose(table["p"], table["y"], atol=0.02), table
        assert table["y"].iloc[-1] > 4 * table["y"].iloc[0]


def test_a_cohort_moved_in_time_is_the_same_cohort_later() -> None:
    """The demo moves its cohort so that its data end today (issue 20: pages dated today showed no recent
    records); the people, their features and their labels are exactly those of the cohort as drawn."""
    import datetime as dt

    import numpy as np

    from features.labels import make_stage_frame
    from features.synthetic import CohortConfig, generate_cohort
    from features.vocab import Stage

    drawn = generate_cohort(CohortConfig(persons=1500, seed=5))
    moved = generate_cohort(CohortConfig(persons=1500, seed=5, shift_to="2030-06-30"))
    assert moved.outcomes is not None and moved.outcomes["followup_end"].max() == np.datetime64("2030-06-30")
    assert moved.events["date"].max() <= np.datetime64("2030-06-30")
    days = (dt.date(2030, 6, 30) - dt.date(2025, 12, 31)).days
    assert (moved.persons["supervision_start"] - drawn.persons["supervision_start"]).dt.days.eq(days).all()
    for stage in Stage:
        a, b = make_stage_frame(drawn, stage), make_stage_frame(moved, stage)
        assert a.X.reset_index(drop=True).equals(b.X.reset_index(drop=True))
        assert np.array_equal(a.y, b.y)
