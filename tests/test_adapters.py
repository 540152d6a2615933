"""Real-data adapters on the public files in ../shared/data (skipped when the folder is absent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if not DATA.is_dir():
    pytest.skip(
        f"../shared/data not found: real-data tests need /work/shared/data ({DATA} is absent)", allow_module_level=True
    )

from features.adapters import (  # noqa: E402
    RealFrame,
    import_to,
    load,
    load_compas,
    load_nij,
    load_rossi_canonical,
    read_frame,
    rossi_week26,
)
from features.adapters import nij as nij_mod  # noqa: E402
from features.adapters.compas import charge_family  # noqa: E402
from features.adapters.rossi import EPOCH, HORIZON_MONTHS, employment_features  # noqa: E402
from features.labels import make_stage_frame  # noqa: E402
from features.pipeline import build_features  # noqa: E402
from features.schema import CaseTables, DataValidationError  # noqa: E402
from features.vocab import EventType, Stage  # noqa: E402

pytestmark = pytest.mark.realdata

NIJ = DATA / "nij" / "nij_train.csv"
COMPAS = DATA / "compas" / "compas-scores-two-years.csv"
ROSSI = DATA / "rossi" / "Rossi.csv"
SLICE = 500


def _raw(path: Path, nrows: int | None = None) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, nrows=nrows)


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


# --- NIJ -------------------------------------------------------------------------------------


def test_nij_year1_uses_only_pre_release_columns() -> None:
    frame = load_nij(NIJ, target="year1", nrows=SLICE)
    activity = {c.lower() for c in nij_mod.ACTIVITY}
    assert not activity & set(frame.X.columns)
    assert "race" not in frame.X.columns and "race" in frame.groups.columns
    assert len(frame.X.columns) == len(nij_mod.PRE_RELEASE)
    raw = _raw(NIJ, SLICE)
    np.testing.assert_array_equal(frame.y, raw["Recidivism_Arrest_Year1"].astype(int).to_numpy())
    assert list(frame.X.index) == list(raw["ID"])


def test_nij_categories_are_fixed_by_the_documented_value_set() -> None:
    small = load_nij(NIJ, target="year1", nrows=20)
    assert list(small.X["age_at_release"].cat.categories) == nij_mod.AGE_BANDS
    assert small.X["age_at_release"].cat.ordered
    assert list(small.X["residence_puma"].cat.categories) == nij_mod.PUMA
    assert all(
        small.X[c].dtype == float for c in small.X.columns if not isinstance(small.X[c].dtype, pd.CategoricalDtype)
    )


def test_nij_quirks() -> None:
    frame = load_nij(NIJ, target="years2_3", nrows=SLICE)
    raw = _raw(NIJ, SLICE).set_index("ID").loc[frame.X.index]
    women = raw["Gender"] == "F"
    assert frame.X.loc[women.to_numpy(), "gang_affiliated"].isna().all()  # blank for women, not "no"
    assert frame.X.loc[(raw["Dependents"] == "3 or more").to_numpy(), "dependents"].eq(3).all()
    assert not (frame.X["avg_days_per_drugtest"] == 0).any()
    no_test = (raw["Avg_Days_per_DrugTest"].astype(float) == 0).to_numpy()
    assert frame.X.loc[no_test, "avg_days_per_drugtest"].isna().all()


def test_nij_years2_3_is_conditional_on_no_year1_arrest() -> None:
    frame = load_nij(NIJ, target="years2_3", nrows=SLICE)
    raw = _raw(NIJ, SLICE)
    at_risk = raw["Recidivism_Arrest_Year1"] == "0"
    assert len(frame.y) == at_risk.sum()
    assert frame.n_dropped == {"arrested in year 1 (not at risk in years 2-3)": int((~at_risk).sum())}
    np.testing.assert_array_equal(frame.y, raw.loc[at_risk, "Recidivism_Within_3years"].astype(int))
    assert {c.lower() for c in nij_mod.ACTIVITY} <= set(frame.X.columns)
    assert any("undated" in note for note in frame.notes)


def test_nij_refuses_unknown_values_naming_row_and_column(tmp_path: Path) -> None:
    raw = _raw(NIJ, 10)
    raw.loc[3, "Gender"] = "X"
    with pytest.raises(DataValidationError) as err:
        load_nij(_write(raw, tmp_path / "bad.csv"), target="year1")
    assert err.value.problems[0].field == "Gender" and err.value.problems[0].row == 3
    assert "'X'" in str(err.value)


def test_compas_problems_name_the_file_row_and_ids_must_be_unique(tmp_path: Path) -> None:
    raw = _raw(COMPAS, 40)
    raw.loc[30, "race"] = "Martian"
    raw.loc[31, "id"] = raw["id"].loc[32]
    with pytest.raises(DataValidationError) as err:
        load_compas(_write(raw, tmp_path / "bad.csv"))
    where = {(p.field, p.row) for p in err.value.problems}
    assert where == {("race", 30), ("id", 31), ("id", 32)}  # rows of the file, not of the filtered frame


# --- required columns (all sources) ----------------------------------------------------------


@pytest.mark.parametrize(
    "source, path, column, options",
    [
        ("nij", NIJ, "Prison_Years", {"target": "year1"}),
        ("nij", NIJ, "Percent_Days_Employed", {"target": "years2_3"}),
        ("compas", COMPAS, "c_charge_desc", {}),
        ("rossi", ROSSI, "emp13", {}),
    ],
)
def test_missing_required_column_is_refused_by_name(
    tmp_path: Path, source: str, path: Path, column: str, options: dict[str, str]
) -> None:
    raw = _raw(path, 50).drop(columns=[column])
    with pytest.raises(DataValidationError, match=column) as err:
        load(source, _write(raw, tmp_path / "missing.csv"), **options)
    assert [p.field for p in err.value.problems] == [column]
    assert "required column is missing" in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nij"):
        load("nij", tmp_path / "nope.csv")


# --- COMPAS ----------------------------------------------------------------------------------


def test_compas_propublica_filter_on_the_full_file() -> None:
    frame = load_compas(COMPAS)
    assert len(frame.y) == 6172
    assert frame.base_rate == pytest.approx(0.455, abs=0.001)
    assert sum(frame.n_dropped.values()) == 7214 - 6172
    assert not {"decile_score", "score_text", "sex", "race", "age_cat"} & set(frame.X.columns)
    assert set(frame.extra.columns) >= {"decile_score", "score_text"}
    assert list(frame.groups.columns) == ["race", "sex", "age_cat"]
    assert set(frame.X["c_charge_degree"].dropna().unique()) <= {"F", "M"}
    assert (frame.X["jail_days"].dropna() >= 0).all()


def test_compas_options() -> None:
    with_sex = load_compas(COMPAS, features="with_sex", jail_days=False, nrows=SLICE)
    assert "sex" in with_sex.X.columns and "jail_days" not in with_sex.X.columns


def test_compas_age_is_age_at_screening_and_the_file_age_is_only_an_option() -> None:
    frame = load_compas(COMPAS, nrows=SLICE)
    # id 1: born 1947-04-18, screened 2013-08-14 -> 66.3 years; the file's age (2016 data pull) says 69
    assert frame.X.loc["1", "age"] == pytest.approx(66.32, abs=0.01)
    assert load_compas(COMPAS, age="file", nrows=SLICE).X.loc["1", "age"] == 69
    for column in ("days_charge_to_screening", "jail_days_before_screening"):
        assert (frame.X[column].dropna() >= 0).all()
    with pytest.raises(ValueError, match="age option"):
        load_compas(COMPAS, age=cast(Any, "later"), nrows=10)  # an option the signature does not allow


def test_compas_point_in_time_features_ignore_everything_after_screening(tmp_path: Path) -> None:
    """Rewriting the outcome, the jail release, the file's age and later columns never changes X."""
    raw = _raw(COMPAS, SLICE)
    later = [
        "c_jail_out",
        "age",
        "r_offense_date",
        "r_jail_in",
        "r_jail_out",
        "r_days_from_arrest",
        "vr_offense_date",
        "in_custody",
        "out_custody",
        "start",
        "end",
        "event",
        "two_year_recid",
    ]
    changed = raw.copy()
    rng = np.random.default_rng(0)
    for column in later:
        if column in (
            "c_jail_out",
            "r_offense_date",
            "r_jail_in",
            "r_jail_out",
            "vr_offense_date",
            "in_custody",
            "out_custody",
        ):
            changed[column] = "2016-01-01"
        else:
            changed[column] = rng.integers(0, 2, len(raw)).astype(str)
    before = load_compas(_write(raw, tmp_path / "a.csv"), jail_days=False)
    after = load_compas(_write(changed, tmp_path / "b.csv"), jail_days=False)
    pd.testing.assert_frame_equal(before.X, after.X)
    assert (before.y != after.y).any()


def test_charge_family_mapping() -> None:
    desc = pd.Series(
        [
            "Battery",
            "Possession of Cocaine",
            "Grand Theft in the 3rd Degree",
            "Driving While License Revoked",
            "arrest case no charge",
            "Carrying Concealed Firearm",
            "Resist/Obstruct W/O Violence",
            "Corrupt Public Servant",
            "",
        ]
    )
    expected = ["violent", "drug", "property", "driving", "no_charge", "weapons", "other", "other", None]
    got = [None if pd.isna(v) else v for v in charge_family(desc)]
    assert got == expected


# --- Rossi -----------------------------------------------------------------------------------


def test_rossi_week26_population_and_label() -> None:
    raw = _raw(ROSSI)
    frame = rossi_week26(ROSSI, with_employment=True)
    week, arrest = raw["week"].astype(int), raw["arrest"].astype(int)
    at_risk = (week >= 26) | (arrest == 0)
    assert len(frame.y) == at_risk.sum()
    assert frame.y.sum() == ((arrest == 1) & (week >= 26)).sum()
    static = rossi_week26(ROSSI, with_employment=False)
    assert not [c for c in static.X.columns if c.startswith("emp") or "employed" in c]
    assert "race" not in frame.X.columns


def test_employment_features_by_hand() -> None:
    emp = np.zeros((2, 52))
    emp[0, [0, 1, 2, 10, 11, 23]] = 1  # weeks 1-3, 11-12, 24
    emp[0, 25:] = 1  # weeks 26..52: must not count
    got = employment_features(emp)
    assert got["emp_weeks"][0] == 6 and got["emp_longest_spell"][0] == 3
    assert got["emp_last4"][0] == 1 and got["weeks_since_employed"][0] == 2  # last worked in week 24
    assert got["emp_weeks"][1] == 0 and np.isnan(got["weeks_since_employed"][1])


@settings(max_examples=60, deadline=None, database=None)
@given(
    history=arrays(float, (8, 52), elements=st.sampled_from([0.0, 1.0])),
    later=arrays(float, (8, 27), elements=st.sampled_from([0.0, 1.0, np.nan])),
)
def test_week26_features_ignore_weeks_26_to_52(
    history: npt.NDArray[np.float64], later: npt.NDArray[np.float64]
) -> None:
    changed = history.copy()
    changed[:, 25:] = later
    before, after = employment_features(history), employment_features(changed)
    for name in before:
        np.testing.assert_array_equal(before[name], after[name])


def test_rossi_week26_file_is_point_in_time(tmp_path: Path) -> None:
    raw = _raw(ROSSI)
    base = rossi_week26(ROSSI, with_employment=True)
    rng = np.random.default_rng(0)
    later = [f"emp{k}" for k in range(26, 53)]
    for trial in range(5):
        changed = raw.copy()
        values = rng.choice(["yes", "no", ""], size=(len(raw), len(later)))
        changed[later] = values
        frame = rossi_week26(_write(changed, tmp_path / f"changed{trial}.csv"), with_employment=True)
        pd.testing.assert_frame_equal(frame.X, base.X)
        np.testing.assert_array_equal(frame.y, base.y)
    earlier = raw.copy()
    earlier["emp25"] = np.where(raw["emp25"] == "yes", "no", np.where(raw["emp25"] == "no", "yes", ""))
    moved = rossi_week26(_write(earlier, tmp_path / "earlier.csv"), with_employment=True)
    assert not moved.X.equals(base.X)  # week 25 is visible at the start of week 26


def test_rossi_canonical_tables() -> None:
    tables = load_rossi_canonical(ROSSI)
    raw = _raw(ROSSI)
    assert len(tables.persons) == len(raw)
    assert (tables.persons["supervision_start"] == EPOCH).all()
    assert set(tables.events["event_type"]) <= {EventType.JOB_LOSS.value}
    arrested = raw["arrest"] == "1"
    assert tables.outcomes is not None
    offence_day = (tables.outcomes["reoffence_date"] - EPOCH).dt.days
    np.testing.assert_array_equal(
        offence_day[arrested.to_numpy()], 7 * (raw.loc[arrested, "week"].astype(int).to_numpy() - 1) + 3
    )
    assert tables.outcomes.loc[~arrested.to_numpy(), "reoffence_date"].isna().all()
    age_at_start = (EPOCH.year - tables.persons["birth_date"].dt.year).to_numpy()
    np.testing.assert_array_equal(age_at_start, raw["age"].astype(int).to_numpy())


def test_rossi_canonical_runs_through_the_point_in_time_pipeline(tmp_path: Path) -> None:
    tables = load_rossi_canonical(ROSSI)
    frame = make_stage_frame(tables, Stage.MIDTERM, horizon_months=HORIZON_MONTHS[Stage.MIDTERM])
    assert frame.counts["censored"] == 0 and frame.counts["labelled"] > 0
    # the mid-term assessment is at day 182 (start of week 27): employment from week 27 on is invisible
    raw = _raw(ROSSI)
    changed = raw.copy()
    changed[[f"emp{k}" for k in range(27, 53)]] = np.where(raw[[f"emp{k}" for k in range(27, 53)]] == "", "", "no")
    other = load_rossi_canonical(_write(changed, tmp_path / "changed.csv"))
    assert len(other.events) != len(tables.events)  # the change is real, only later than the assessment
    assessments = frame.meta[["person_id", "as_of"]]
    pd.testing.assert_frame_equal(
        build_features(tables.persons, tables.events, assessments, stage=Stage.MIDTERM),
        build_features(other.persons, other.events, assessments, stage=Stage.MIDTERM),
    )


# --- import ----------------------------------------------------------------------------------


def test_import_frame_round_trip(tmp_path: Path) -> None:
    out = import_to("nij", NIJ, tmp_path / "nij", target="years2_3", nrows=SLICE)
    mapping = json.loads((out / "mapping.json").read_text())
    assert mapping["features"] and mapping["notes"] and mapping["n_dropped"]
    back = read_frame(out)
    original = load_nij(NIJ, target="years2_3", nrows=SLICE)
    pd.testing.assert_frame_equal(back.X, original.X)
    pd.testing.assert_frame_equal(back.groups, original.groups)
    np.testing.assert_array_equal(back.y, original.y)


def test_import_rossi_writes_canonical_tables(tmp_path: Path) -> None:
    out = import_to("rossi", ROSSI, tmp_path / "rossi")
    tables = CaseTables.read(out)
    assert len(tables.persons) == 432 and "placeholders" in tables.extra
    assert json.loads((out / "mapping.json").read_text())["notes"]


def test_import_is_atomic(tmp_path: Path) -> None:
    out = tmp_path / "compas"
    import_to("compas", COMPAS, out, nrows=SLICE)
    before = sorted(p.name for p in out.iterdir())
    bad = _write(_raw(COMPAS, 20).drop(columns=["two_year_recid"]), tmp_path / "bad.csv")
    with pytest.raises(DataValidationError, match="two_year_recid"):
        import_to("compas", bad, out)
    assert sorted(p.name for p in out.iterdir()) == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_import_failure_while_writing_leaves_nothing_partial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import features.adapters as adapters

    out = tmp_path / "compas"
    import_to("compas", COMPAS, out, nrows=SLICE)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    def half_written(frame: RealFrame, staging: Path) -> None:
        (staging / "frame.parquet").write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(adapters, "write_frame", half_written)
    with pytest.raises(OSError, match="disk full"):
        import_to("compas", COMPAS, out, nrows=SLICE)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compas"]
