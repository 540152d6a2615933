"""Monitoring without outcomes (evaluation.monitoring): PSI, CBPE, the reference profile and the monitor's checks."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import brier_score_loss, roc_auc_score

from evaluation.monitoring import (
    EPSILON,
    MonitorConfig,
    MonitorConfigError,
    PeriodRows,
    ProfileError,
    ReferenceProfile,
    band_reference_shares,
    build_profile,
    estimate_performance,
    expected_auc,
    monitor,
    psi,
    write_report,
)
from features.labels import StageFrame, make_stage_frame
from features.pipeline import assessment_dates
from features.schema import CaseTables

CONFIG = MonitorConfig.load()
CUTOFFS = {"medium_from": 0.1, "high_from": 0.25}

# ------------------------------------------------------------------ PSI against a direct computation


def test_psi_equals_a_direct_computation_over_the_profiles_bins() -> None:
    rng = np.random.default_rng(0)
    train, now = rng.normal(0, 1, 5000), rng.normal(0.3, 1.2, 3000)
    now[:100] = np.nan
    profile = build_profile(
        "midterm", pd.DataFrame({"x": train}), y_prob=np.full(5000, 0.2), y_true=np.r_[1, [0] * 4999]
    )
    edges = np.asarray(profile.feature("x").edges)
    # the reference computation: the same bins by np.histogram (right-closed bins via -x), missing apart
    bounds = np.concatenate([[-np.inf], edges, [np.inf]])
    ref = np.histogram(-train, bins=-bounds[::-1])[0][::-1] / len(train)
    present = now[~np.isnan(now)]
    cur = np.append(np.histogram(-present, bins=-bounds[::-1])[0][::-1], 100) / len(now)
    ref = np.append(ref, 0.0)
    r, c = np.maximum(ref, EPSILON), np.maximum(cur, EPSILON)
    direct = float(np.sum((c - r) * np.log(c / r)))
    counts = profile.feature("x").counts(now)
    assert counts.sum() == len(now)
    assert psi(profile.feature("x").shares, counts) == pytest.approx(direct, rel=1e-12)


@given(
    st.lists(st.integers(0, 50), min_size=2, max_size=12).filter(lambda v: sum(v) > 0),
    st.lists(st.integers(0, 50), min_size=2, max_size=12).filter(lambda v: sum(v) > 0),
)
def test_psi_is_symmetric_non_negative_and_zero_only_for_equal_shares(a: list[int], b: list[int]) -> None:
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    if sum(a) == 0 or sum(b) == 0:
        return
    value = psi(a, b)
    assert value >= 0
    assert value == pytest.approx(psi(b, a), rel=1e-9, abs=1e-12)
    assert psi(a, [2 * v for v in a]) == pytest.approx(0.0, abs=1e-12)
    ra, rb = np.maximum(np.array(a) / sum(a), EPSILON), np.maximum(np.array(b) / sum(b), EPSILON)
    if not np.allclose(ra, rb):
        assert value > 0


def test_psi_refuses_bins_that_do_not_match() -> None:
    with pytest.raises(ValueError, match="same bins"):
        psi([0.5, 0.5], [1, 0, 0])
    with pytest.raises(ValueError, match="non-negative"):
        psi([0.5, 0.5], [0, 0])


# ------------------------------------------------------------------ CBPE


def _pairwise_expected_auc(p: np.ndarray) -> float:
    """The reference computation: every ordered pair i != j, O(n^2)."""
    correct = pairs = 0.0
    for i in range(len(p)):
        for j in range(len(p)):
            if i == j:
                continue
            w = p[i] * (1 - p[j])
            pairs += w
            correct += w * (1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0)
    return correct / pairs


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.05, 0.1, 0.1, 0.3, 0.5, 0.9, 1.0]) | st.floats(0, 1), min_size=2, max_size=25))
def test_expected_auc_equals_the_pairwise_sum(values: list[float]) -> None:
    p = np.array(values)
    reference = _pairwise_expected_auc(p) if (p * (1 - p)).sum() < (p.sum() * (1 - p).sum()) else float("nan")
    got = expected_auc(p)
    if np.isnan(reference):
        assert np.isnan(got)
    else:
        assert got == pytest.approx(reference, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("a", "b"), [(1.2, 8.0), (2.5, 6.0), (0.6, 3.0)])
def test_cbpe_is_within_its_stated_tolerance_of_the_realised_figures(a: float, b: float) -> None:
    """Stated tolerance, 20,000 persons with calibrated probabilities of three populations (one with more high
    risks, one narrower): AUC within 0.015, Brier within 4%, the re-offence rate of each band within three
    binomial standard errors of its expected rate (the calibration estimate)."""
    rng = np.random.default_rng(int(10 * a))
    p = rng.beta(a, b, 20_000)
    y = rng.random(len(p)) < p
    est = estimate_performance(p)
    assert est.roc_auc == pytest.approx(roc_auc_score(y, p), abs=0.015)
    assert est.brier == pytest.approx(brier_score_loss(y, p), rel=0.04)
    assert est.expected_rate == pytest.approx(y.mean(), abs=3 * np.sqrt(est.expected_rate / len(p)))
    bands = np.digitize(p, [CUTOFFS["medium_from"], CUTOFFS["high_from"]])
    for band in range(3):
        inside = bands == band
        expected = p[inside].mean()
        se = np.sqrt(np.sum(p[inside] * (1 - p[inside]))) / inside.sum()
        assert abs(y[inside].mean() - expected) <= 3 * se


def test_cbpe_refuses_what_is_not_a_probability() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        estimate_performance([0.2, 1.5])
    assert np.isnan(estimate_performance([]).roc_auc)


# ------------------------------------------------------------------ the profile and the monitor on the synthetic cohort


def _half(frame: StageFrame, *, first: bool) -> StageFrame:
    """The rows of one half of the persons (by a hash of the id): the reference and a period of other persons."""
    ids = frame.meta["person_id"].astype(str)
    in_first = (pd.util.hash_pandas_object(ids, index=False).to_numpy() % 2) == 0
    return frame.subset(in_first if first else ~in_first)


@pytest.fixture(scope="module")
def reference(cohort: CaseTables) -> tuple[StageFrame, ReferenceProfile]:
    """The profile of half the cohort's persons, with the synthetic truth as the calibrated probability."""
    frame = _half(make_stage_frame(cohort, "midterm"), first=True)
    assert frame.meta["oracle"].notna().all()
    prob = frame.meta["oracle"].to_numpy()
    return frame, build_profile("midterm", frame.X, y_prob=prob, y_true=frame.y)


def _period(frame: StageFrame, *, decided_share: float = 0.05) -> PeriodRows:
    prob = frame.meta["oracle"].to_numpy()
    bands = np.array(["low", "medium", "high"], dtype=object)[
        np.digitize(prob, [CUTOFFS["medium_from"], CUTOFFS["high_from"]])
    ]
    decided = np.arange(len(prob)) < decided_share * len(prob)
    return PeriodRows(frame.X, prob, {"band": bands}, decided)


def _planted(tables: CaseTables) -> CaseTables:
    """Every person ten years older, and three more missed reports in the month before the mid-term assessment."""
    persons = tables.persons.copy()
    persons["birth_date"] = persons["birth_date"] - pd.DateOffset(years=10)
    when = assessment_dates(persons, "midterm")
    extra = pd.concat(
        [
            pd.DataFrame(
                {
                    "person_id": when["person_id"],
                    "date": when["as_of"] - pd.Timedelta(days=d),
                    "event_type": "report_missed",
                }
            )
            for d in (5, 12, 20)
        ]
    )
    extra["value"] = np.nan
    events = pd.concat([tables.events, extra[tables.events.columns]], ignore_index=True)
    return dataclasses.replace(tables, persons=persons, events=events)


def _shifted_family(columns: list[str]) -> set[str]:
    """The inputs the planted facts can move: age, the missed-report counts and the violation totals built on them."""
    return {"age"} | {c for c in columns if c.startswith(("report_missed", "violations_"))}


def test_an_unshifted_sample_stays_under_every_limit(
    reference: tuple[StageFrame, ReferenceProfile], cohort: CaseTables
) -> None:
    _, profile = reference
    now = _half(make_stage_frame(cohort, "midterm"), first=False)
    shares = {"band": band_reference_shares(profile, **CUTOFFS)}
    report = monitor(profile, _period(now), config=CONFIG, reference_shares=shares)
    assert report.judged
    assert report.crossed == []
    assert report.psi_table()["psi"].max() < CONFIG.psi.warn


def test_a_planted_shift_is_flagged_on_the_shifted_inputs_only(
    reference: tuple[StageFrame, ReferenceProfile], cohort: CaseTables
) -> None:
    _, profile = reference
    now = _half(make_stage_frame(_planted(cohort), "midterm"), first=False)
    report = monitor(profile, _period(now), config=CONFIG, reference_shares={})
    table = report.psi_table().set_index("name")
    flagged = {n for n, c in table.iterrows() if c["status"] != "ok" and n != "score"}
    family = _shifted_family(list(now.X.columns))
    assert {"age", "report_missed_30d", "report_missed_term"} <= flagged
    assert flagged <= family, f"flagged beyond the planted facts: {flagged - family}"
    assert table.loc[sorted(set(profile.names) - family), "psi"].max() < CONFIG.psi.warn
    assert {c.name for c in report.crossed} >= {"age", "report_missed_30d"}


def test_shares_and_decision_rate_are_judged_against_their_limits(
    reference: tuple[StageFrame, ReferenceProfile],
) -> None:
    frame, profile = reference
    period = _period(frame, decided_share=0.5)
    tiers = np.where(period.probability >= 0.0, "strict", "ordinary").astype(object)  # everyone strict
    period = dataclasses.replace(period, labels={**period.labels, "tier": tiers})
    report = monitor(
        profile, period, config=CONFIG, reference_shares={"band": band_reference_shares(profile, **CUTOFFS)}
    )
    crossed = {c.name for c in report.crossed}
    assert crossed == {"decision_rate", "tier=strict"}
    band = {c.name: c for c in report.checks if c.name.startswith("band=")}
    assert band["band=high"].value == pytest.approx(band["band=high"].reference, abs=1e-3)  # the training rows


def test_a_small_period_is_shown_not_judged(reference: tuple[StageFrame, ReferenceProfile]) -> None:
    frame, profile = reference
    small = frame.subset(np.arange(len(frame.y)) < 50)
    report = monitor(profile, _period(small, decided_share=1.0), config=CONFIG, reference_shares={})
    assert not report.judged and report.crossed == []
    assert {c.status for c in report.checks} == {"not judged"}


def test_the_profile_survives_its_json_record_and_refuses_another_version(
    reference: tuple[StageFrame, ReferenceProfile],
) -> None:
    _, profile = reference
    record = json.loads(json.dumps(profile.record()))
    assert ReferenceProfile.from_record(record) == profile
    with pytest.raises(ProfileError, match="version"):
        ReferenceProfile.from_record({**record, "profile_version": 99})
    broken = {**record, "features": [{**record["features"][0], "shares": [1.0]}]}
    with pytest.raises(ProfileError, match=record["features"][0]["name"]):
        ReferenceProfile.from_record(broken)


def test_a_period_without_a_profiled_input_is_refused_by_name(reference: tuple[StageFrame, ReferenceProfile]) -> None:
    frame, profile = reference
    period = _period(frame)
    with pytest.raises(ProfileError, match="age"):
        monitor(
            profile,
            dataclasses.replace(period, features=frame.X.drop(columns="age")),
            config=CONFIG,
            reference_shares={},
        )


def test_the_config_names_a_bad_key(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("version: x\npsi: {features: -1}\n", encoding="utf-8")
    with pytest.raises(MonitorConfigError, match=r"m.yaml: psi.features"):
        MonitorConfig.load(path)


def test_the_report_is_one_page_with_its_plots_and_nothing_from_elsewhere(
    reference: tuple[StageFrame, ReferenceProfile], cohort: CaseTables, tmp_path: Path
) -> None:
    _, profile = reference
    now = _half(make_stage_frame(_planted(cohort), "midterm"), first=False)
    report = monitor(profile, _period(now), config=CONFIG, reference_shares={}, model="reoffence-midterm/3")
    paths = write_report(report, tmp_path)
    page = paths["html"].read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") >= 3
    assert "http://" not in page and "https://" not in page
    assert json.loads(paths["json"].read_text())["crossed"] == [c.name for c in report.crossed]
    assert "report_missed_30d" in paths["markdown"].read_text(encoding="utf-8")
