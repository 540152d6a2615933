"""Revalidation on matured outcomes (evaluation.revalidation): the censoring rule, the figures, the overrides."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import brier_score_loss, roc_auc_score

from evaluation.revalidation import MATURED, maturity, override_kind, revalidate, write_report

HORIZONS = {"intake": 12.0, "midterm": 12.0, "release": 24.0}
DAYS = {"intake": 365, "midterm": 365, "release": 730}  # features.labels.horizon_delta of the months
AS_OF = dt.date(2024, 1, 1)


def _cohort(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Assessments (two stages, two model versions) and outcomes with calibrated risks."""
    rng = np.random.default_rng(seed)
    keys = np.array([f"k{i:05d}" for i in range(n)])
    stage = rng.choice(["intake", "midterm"], n)
    as_of = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    p = rng.beta(1.5, 8, n)
    horizon = pd.to_timedelta([DAYS[s] for s in stage], unit="D")
    offends = rng.random(n) < p
    reoffence = pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns]")
    reoffence[offends] = (as_of + pd.to_timedelta(rng.integers(0, 365, n), unit="D"))[offends]
    followup = as_of + horizon + pd.to_timedelta(rng.integers(-200, 400, n), unit="D")
    rows = pd.DataFrame(
        {
            "assessment_id": [f"a{i}" for i in range(n)],
            "person_key": keys,
            "stage": stage,
            "model_version": rng.choice(["3", "4"], n),
            "policy_version": "2026-12-01",
            "as_of": as_of,
            "probability": p,
            "band": np.select([p >= 0.3, p >= 0.15], ["high", "medium"], "low"),
            "tier_by_risk": np.where(p >= 0.3, "strict", "ordinary"),
            "kind": "formal",
            "sex": rng.choice(["male", "female"], n, p=[0.8, 0.2]),
            "local": rng.choice([True, False], n),
            "age_band": rng.choice(["18-24", "25-34", "35-49", "50+"], n),
            "offence": rng.choice(["theft", "fraud", "assault"], n),
        }
    )
    outcomes = pd.DataFrame(
        {"person_key": keys, "reoffence_date": reoffence, "revocation_date": pd.NaT, "followup_end": followup}
    )
    return rows, outcomes


def _direct_label(rows: pd.DataFrame, outcomes: pd.DataFrame, as_of: dt.date) -> pd.Series:
    """The censoring rule written out: 1, 0, or NaN (immature), one row at a time."""
    day = pd.Timestamp(as_of)
    out: dict[str, dict[Any, Any]] = {str(o["person_key"]): o for o in outcomes.to_dict("records")}
    labels = []
    for key, stage, made in zip(rows["person_key"], rows["stage"], rows["as_of"], strict=True):
        start = pd.Timestamp(made)
        end = start + pd.Timedelta(days=DAYS[str(stage)])
        o = out[str(key)]
        known = o["reoffence_date"] if pd.notna(o["reoffence_date"]) and o["reoffence_date"] < day else None
        if known is not None and start <= known < end:
            labels.append(1.0)
        elif min(o["followup_end"], day) >= end:
            labels.append(0.0)
        else:
            labels.append(np.nan)
    return pd.Series(labels, index=rows.index)


def test_revalidation_equals_a_direct_evaluation_of_the_same_rows() -> None:
    rows, outcomes = _cohort()
    report = revalidate(rows, outcomes, as_of=AS_OF, horizons=HORIZONS)
    label = _direct_label(rows, outcomes, AS_OF)
    assert 0 < label.isna().sum() < len(rows)  # some immature, some matured
    matured = rows.assign(label=label).dropna(subset=["label"])
    perf: dict[tuple[str, str], dict[Any, Any]] = {
        (str(r["stage"]), str(r["model_version"])): r for r in report.performance.to_dict("records")
    }
    for (stage, version), part in matured.groupby(["stage", "model_version"]):
        row = perf[(str(stage), str(version))]
        assert row["n"] == len(part)
        assert row["observed"] == part["label"].sum()
        assert row["roc_auc"] == pytest.approx(roc_auc_score(part["label"], part["probability"]), rel=1e-12)
        assert row["brier"] == pytest.approx(brier_score_loss(part["label"], part["probability"]), rel=1e-12)
        assert row["oe_ratio"] == pytest.approx(part["label"].sum() / part["probability"].sum())
        bands = report.bands[(report.bands["stage"] == stage) & (report.bands["model_version"] == version)]
        direct = part.groupby("band")["label"].agg(["size", "sum"])
        assert dict(zip(bands["band"], bands["n"], strict=True)) == direct["size"].to_dict()
        assert dict(zip(bands["band"], bands["observed"], strict=True)) == direct["sum"].to_dict()
        groups = report.groups[(str(stage), str(version), "2026-12-01")].table
        assert set(groups["grouping"]) == {"sex", "local", "age_band", "offence"}
        assert groups.groupby("grouping")["n"].sum().eq(len(part)).all()
    counts = report.counts.set_index("stage")
    for stage, part in rows.assign(label=label).groupby("stage"):
        assert counts.loc[str(stage), "immature"] == part["label"].isna().sum()
        assert counts.loc[str(stage), MATURED] == part["label"].notna().sum()


def test_review_meeting_scores_are_judged_apart_never_as_formal_assessments() -> None:
    rows, outcomes = _cohort(1500, seed=1)
    review = rows.sample(400, random_state=0).assign(kind="review", assessment_id=lambda f: f["assessment_id"] + "r")
    alone = revalidate(rows, outcomes, as_of=AS_OF, horizons=HORIZONS)
    both = revalidate(pd.concat([rows, review], ignore_index=True), outcomes, as_of=AS_OF, horizons=HORIZONS)
    pd.testing.assert_frame_equal(alone.performance, both.performance)
    assert alone.review.empty
    matured_review = _direct_label(review, outcomes, AS_OF).notna().sum()
    assert both.review["n"].sum() == matured_review > 0
    assert set(both.counts["kind"]) == {"formal", "review"}


def test_the_override_analysis_gives_the_rates_of_constructed_decisions() -> None:
    """Forty matured assessments: ten raised (3 re-offend), ten lowered (4), ten followed (1), ten undecided (2)."""
    n = 40
    rows = pd.DataFrame(
        {
            "assessment_id": [f"a{i}" for i in range(n)],
            "person_key": [f"k{i}" for i in range(n)],
            "stage": "midterm",
            "model_version": "5",
            "policy_version": "p",
            "as_of": pd.Timestamp("2022-01-01"),
            "probability": 0.2,
            "band": "medium",
            "tier_by_risk": ["ordinary"] * 10 + ["strict"] * 10 + ["ordinary"] * 20,
            "kind": "formal",
        }
    )
    offended = [0, 1, 2, 10, 11, 12, 13, 20, 30, 31]  # 3 raised, 4 lowered, 1 followed, 2 undecided
    outcomes = pd.DataFrame(
        {
            "person_key": rows["person_key"],
            "reoffence_date": [pd.Timestamp("2022-06-01") if i in offended else pd.NaT for i in range(n)],
            "revocation_date": pd.NaT,
            "followup_end": pd.Timestamp("2023-06-01"),
        }
    )
    decisions = pd.DataFrame(
        {
            "assessment_id": [f"a{i}" for i in range(30)],
            "to_tier": ["strict"] * 10 + ["ordinary"] * 10 + ["ordinary"] * 10,
            "reason_code": ["family_crisis"] * 5 + ["other"] * 5 + ["compliance"] * 10 + ["other"] * 10,
        }
    )
    report = revalidate(rows, outcomes, as_of=AS_OF, horizons=HORIZONS, decisions=decisions)
    rates = report.overrides.set_index("override")
    assert rates["n"].to_dict() == {"followed": 10, "lowered": 10, "no decision": 10, "raised": 10}
    assert rates["observed_rate"].to_dict() == pytest.approx(
        {"followed": 0.1, "lowered": 0.4, "no decision": 0.2, "raised": 0.3}
    )
    assert rates.loc["lowered", "oe_ratio"] == pytest.approx(4 / (10 * 0.2))
    by_reason = report.override_reasons.set_index(["override", "reason_code"])
    assert by_reason.loc[("raised", "family_crisis"), "observed"] == 3
    assert by_reason.loc[("raised", "other"), "observed"] == 0
    assert "no decision" not in set(report.override_reasons["override"])


def test_override_kind_reads_departures_both_ways() -> None:
    by_risk = pd.Series(["ordinary", "strict", "strict", "ordinary"])
    decided = pd.Series(["strict", "ordinary", "strict", None])
    assert override_kind(by_risk, decided).tolist() == ["raised", "lowered", "followed", "no decision"]


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 1500), st.integers(1, 800))
def test_a_later_as_of_date_never_unmatures_an_assessment(seed: int, first: int, later: int) -> None:
    """For every cohort and pair of dates: what matured by a date stays matured, with the same label, later."""
    rows, outcomes = _cohort(60, seed=seed)
    d1 = dt.date(2021, 1, 1) + dt.timedelta(days=first)
    d2 = d1 + dt.timedelta(days=later)
    a = maturity(rows, outcomes, as_of=d1, horizons=HORIZONS)
    b = maturity(rows, outcomes, as_of=d2, horizons=HORIZONS)
    was = a["status"] == MATURED
    assert (b.loc[was, "status"] == MATURED).all()
    assert (b.loc[was, "label"] == a.loc[was, "label"]).all()


def test_bad_input_is_refused_by_name(tmp_path: Path) -> None:
    rows, outcomes = _cohort(50)
    with pytest.raises(ValueError, match="probability"):
        revalidate(rows.drop(columns="probability"), outcomes, as_of=AS_OF, horizons=HORIZONS)
    broken = outcomes.copy()
    broken.loc[3, "followup_end"] = pd.NaT
    with pytest.raises(ValueError, match="k00003: followup_end"):
        revalidate(rows, broken, as_of=AS_OF, horizons=HORIZONS)
    with pytest.raises(ValueError, match="horizon"):
        revalidate(rows, outcomes, as_of=AS_OF, horizons={"intake": 12.0})
    report = revalidate(rows, outcomes, as_of=dt.date(2021, 1, 2), horizons=HORIZONS)
    assert report.notes and report.performance.empty
    paths = write_report(report, tmp_path)
    assert "nothing to judge" in paths["markdown"].read_text()
