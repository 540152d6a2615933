"""NIJ Recidivism Forecasting Challenge (Georgia parole, training part) as model-ready frames.

The file has one row per person and only undated aggregates, so it maps to a stage feature
frame, not to the canonical tables. Two targets mirror the challenge's own periods:

``year1`` (intake analogue)
    new arrest within year 1 after release (``Recidivism_Arrest_Year1``), from the pre-release
    columns only. The supervision-activity columns are never used: they are undated and cover
    the period in which the outcome happens (the challenge withheld them from year-1 forecasts).
``years2_3`` (mid-term/release analogue)
    among people not arrested in year 1, new arrest in years 2-3 (``Recidivism_Within_3years``,
    which for these rows can only be a year-2 or year-3 arrest), adding the activity columns.

Race is never a feature; it is kept in ``groups`` with sex and the age band. Every mapping is
listed in ``MAPPING.md`` beside this file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from features.adapters._common import Parser, RealFrame, read_csv, require_columns

log = logging.getLogger(__name__)

SOURCE = "nij"
NijTarget = Literal["year1", "years2_3"]
ID = "ID"
YEAR1 = "Recidivism_Arrest_Year1"
WITHIN3 = "Recidivism_Within_3years"

AGE_BANDS = ["18-22", "23-27", "28-32", "33-37", "38-42", "43-47", "48 or older"]
EDUCATION = ["Less than HS diploma", "High School Diploma", "At least some college"]
PRISON_YEARS = ["Less than 1 year", "1-2 years", "Greater than 2 to 3 years", "More than 3 years"]
SUPERVISION_LEVEL = ["Standard", "High", "Specialized"]
PRISON_OFFENSE = ["Violent/Sex", "Violent/Non-Sex", "Property", "Drug", "Other"]
PUMA = [str(i) for i in range(1, 26)]
SEX = {"M": "male", "F": "female"}
RACE = {"BLACK": "black", "WHITE": "white"}

#: pre-release count columns written "0", "1", ..., "k or more" (top-coded at k)
PRE_COUNTS = [
    "Dependents",
    "Prior_Arrest_Episodes_Felony",
    "Prior_Arrest_Episodes_Misd",
    "Prior_Arrest_Episodes_Violent",
    "Prior_Arrest_Episodes_Property",
    "Prior_Arrest_Episodes_Drug",
    "Prior_Arrest_Episodes_PPViolationCharges",
    "Prior_Conviction_Episodes_Felony",
    "Prior_Conviction_Episodes_Misd",
    "Prior_Conviction_Episodes_Prop",
    "Prior_Conviction_Episodes_Drug",
]
#: pre-release yes/no columns (``true``/``false``; ``Gang_Affiliated`` as ``True``/``False``)
PRE_FLAGS = [
    "Gang_Affiliated",
    "Prior_Arrest_Episodes_DVCharges",
    "Prior_Arrest_Episodes_GunCharges",
    "Prior_Conviction_Episodes_Viol",
    "Prior_Conviction_Episodes_PPViolationCharges",
    "Prior_Conviction_Episodes_DomesticViolenceCharges",
    "Prior_Conviction_Episodes_GunCharges",
    "Prior_Revocations_Parole",
    "Prior_Revocations_Probation",
    "Condition_MH_SA",
    "Condition_Cog_Ed",
    "Condition_Other",
]
PRE_CATEGORIES = [
    "Gender",
    "Age_at_Release",
    "Residence_PUMA",
    "Supervision_Level_First",
    "Education_Level",
    "Prison_Offense",
    "Prison_Years",
]
PRE_RELEASE = [*PRE_CATEGORIES, "Supervision_Risk_Score_First", *PRE_COUNTS, *PRE_FLAGS]

ACTIVITY_FLAGS = [
    "Violations_ElectronicMonitoring",
    "Violations_Instruction",
    "Violations_FailToReport",
    "Violations_MoveWithoutPermission",
    "Employment_Exempt",
]
ACTIVITY_COUNTS = ["Delinquency_Reports", "Program_Attendances", "Program_UnexcusedAbsences", "Residence_Changes"]
DRUG_TESTS = [
    "DrugTests_THC_Positive",
    "DrugTests_Cocaine_Positive",
    "DrugTests_Meth_Positive",
    "DrugTests_Other_Positive",
]
AVG_DAYS = "Avg_Days_per_DrugTest"
EMPLOYMENT = ["Percent_Days_Employed", "Jobs_Per_Year"]
ACTIVITY = [*ACTIVITY_FLAGS, *ACTIVITY_COUNTS, AVG_DAYS, *DRUG_TESTS, *EMPLOYMENT]

NOTE_GANG = (
    "Gang_Affiliated is blank for every woman in this file (not recorded); it stays missing "
    "rather than being read as 'no'."
)
NOTE_TOP_CODED = (
    "Counts written 'k or more' are top-coded at k (e.g. Dependents '3 or more' -> 3, "
    "Prior_Arrest_Episodes_Felony '10 or more' -> 10)."
)
NOTE_UNDATED = (
    "Supervision-activity columns are undated aggregates 'during the entire time people were "
    "under supervision or until the date of recidivism for those arrested' (NIJ data description): "
    "they are not cut at the end of year 1, so they overlap the years 2-3 outcome period. This is "
    "the challenge's own year-2 design; treat the frame as an optimistic mid-term analogue, not a "
    "point-in-time assessment."
)
NOTE_DRUG = (
    "Avg_Days_per_DrugTest = 0 means no test (blank upstream, replaced by 0): set to NaN. "
    "DrugTests_* shares are set to NaN where Avg_Days_per_DrugTest = 0 and all four shares are 0 "
    "(indistinguishable from 'no test'); where a share is positive a test evidently happened and the "
    "shares are kept."
)
NOTE_EMPLOYMENT = (
    "Percent_Days_Employed and Jobs_Per_Year had blanks replaced by 0 upstream: a 0 may mean "
    "'no employment' or 'not recorded' and cannot be told apart; kept as 0."
)


def _snake(column: str) -> str:
    return column.lower()


def _pre_release(p: Parser) -> dict[str, object]:
    cols: dict[str, object] = {
        "sex": p.category("Gender", list(SEX.values()), mapping=SEX),
        "age_at_release": p.category("Age_at_Release", AGE_BANDS, ordered=True),
        "residence_puma": p.category("Residence_PUMA", PUMA),
        "supervision_risk_score_first": p.number("Supervision_Risk_Score_First"),
        "supervision_level_first": p.category("Supervision_Level_First", SUPERVISION_LEVEL),
        "education_level": p.category("Education_Level", EDUCATION, ordered=True),
        "prison_offense": p.category("Prison_Offense", PRISON_OFFENSE),
        "prison_years": p.category("Prison_Years", PRISON_YEARS, ordered=True),
    }
    cols.update({_snake(c): p.top_coded(c) for c in PRE_COUNTS})
    cols.update({_snake(c): p.flag(c) for c in PRE_FLAGS})
    return cols


def _activity(p: Parser) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {_snake(c): p.flag(c) for c in ACTIVITY_FLAGS}
    cols.update({_snake(c): p.top_coded(c) for c in ACTIVITY_COUNTS})
    avg_days = p.number(AVG_DAYS)
    shares = {c: p.number(c) for c in DRUG_TESTS}
    no_test = (avg_days == 0) & np.all([shares[c] == 0 for c in DRUG_TESTS], axis=0)
    cols[_snake(AVG_DAYS)] = np.where(avg_days == 0, np.nan, avg_days)
    cols.update({_snake(c): np.where(no_test, np.nan, v) for c, v in shares.items()})
    cols.update({_snake(c): p.number(c) for c in EMPLOYMENT})
    return cols


def required_columns(target: NijTarget) -> list[str]:
    """Columns a file must have for ``target``."""
    base = [ID, "Race", *PRE_RELEASE, YEAR1]
    return base if target == "year1" else [*base, *ACTIVITY, WITHIN3]


def load_nij(path: str | Path, *, target: NijTarget, nrows: int | None = None) -> RealFrame:
    """The NIJ frame for ``target`` ("year1" or "years2_3").

    Parameters
    ----------
    path
        ``nij_train.csv`` or any file in the same format (for example a held-out test file).
    target
        ``"year1"``: arrest in year 1, pre-release features only. ``"years2_3"``: among people not
        arrested in year 1, arrest in years 2-3, pre-release plus supervision-activity features.
    nrows
        Read only the first ``nrows`` rows (tests, quick looks).

    Returns
    -------
    RealFrame
        Indexed by the source ``ID`` (as text). Groups: sex, race, age_band. Extra: the agency's
        own first risk score (also a feature) for comparison.

    Raises
    ------
    DataValidationError
        A required column is missing (the message names it) or a value is outside the source's
        documented value set.
    """
    if target not in ("year1", "years2_3"):
        raise ValueError(f"unknown NIJ target {target!r}: expected 'year1' or 'years2_3'")
    raw = read_csv(path, SOURCE, nrows=nrows)
    require_columns(raw, required_columns(target), SOURCE)
    p = Parser(raw, SOURCE, id_column=ID)
    cols = _pre_release(p)
    race = p.category("Race", list(RACE.values()), mapping=RACE)
    year1 = p.flag(YEAR1, required=True)
    within3 = p.flag(WITHIN3, required=True) if target == "years2_3" else None
    if target == "years2_3":
        cols.update(_activity(p))
    p.check()
    index = pd.Index(p.ids.astype(str), name="source_id")
    X = pd.DataFrame(cols, index=index)
    groups = pd.DataFrame({"sex": X["sex"], "race": race, "age_band": X["age_at_release"]}, index=index)
    extra = pd.DataFrame({"supervision_risk_score_first": X["supervision_risk_score_first"]}, index=index)
    notes = [NOTE_GANG, NOTE_TOP_CODED]
    if target == "year1":
        frame = RealFrame(X, year1.astype(int), groups, extra, "nij_year1", YEAR1, notes)
    else:
        assert within3 is not None  # read above whenever the target is years2_3
        frame = _years2_3(X, groups, extra, year1, within3, notes)
    log.info("nij %s: %d rows, base rate %.4f, dropped %s", target, len(frame.y), frame.base_rate, frame.n_dropped)
    return frame


def _years2_3(
    X: pd.DataFrame, groups: pd.DataFrame, extra: pd.DataFrame, year1: np.ndarray, within3: np.ndarray, notes: list[str]
) -> RealFrame:
    """Keep people not arrested in year 1; their 3-year arrest can only fall in years 2-3."""
    inconsistent = int(((year1 == 1) & (within3 == 0)).sum())
    if inconsistent:
        log.warning("nij: %d rows arrested in year 1 but not within 3 years", inconsistent)
    at_risk = year1 == 0
    target = f"arrest in years 2-3 = {WITHIN3} among rows with {YEAR1} == 0"
    notes = [*notes, NOTE_UNDATED, NOTE_DRUG, NOTE_EMPLOYMENT]
    dropped = {"arrested in year 1 (not at risk in years 2-3)": int((~at_risk).sum())}
    return RealFrame(
        X[at_risk],
        within3[at_risk].astype(int),
        groups[at_risk],
        extra[at_risk],
        "nij_years2_3",
        target,
        notes,
        dropped,
    )
