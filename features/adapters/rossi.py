"""Rossi, Berk & Lenihan's Maryland release study: a real dated weekly history.

432 men followed weekly for 52 weeks after release, with the week of the first arrest and the
weekly employment status ``emp1``...``emp52`` (blank after the arrest week). Two views:

:func:`load_rossi_canonical`
    the canonical tables (persons, events, outcomes) on a *relative calendar*: day 0, each
    man's release, is represented by the fixed date :data:`EPOCH` (a Monday). Weeks and days
    are real relative times; the calendar dates are a representation, not a claim about when
    anyone was released. Fields the source lacks get constant placeholders, listed in the
    ``placeholders`` extra table (:data:`PLACEHOLDERS`).
:func:`rossi_week26`
    a point-in-time assessment at the start of week 26 built here directly: features from
    ``emp1``...``emp25`` only, label = arrest in weeks 26-52, among men not arrested before.
    (The canonical pipeline cannot yet see weekly employment: the event vocabulary has no
    "employed this week" event, only ``job_loss``.)

Every mapping is listed in ``MAPPING.md`` beside this file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from features.adapters._common import Parser, RealFrame, read_csv, require_columns
from features.labels import DAYS_PER_MONTH
from features.schema import CaseTables, DataValidationError, Problem, validate_tables
from features.vocab import INTAKE_FLAGS, Education, EventType, Stage

log = logging.getLogger(__name__)

SOURCE = "rossi"
EPOCH = pd.Timestamp("2000-01-03")  # a Monday; represents day 0 = release, not a real date
WEEKS = 52
FOLLOWUP_DAYS = 7 * WEEKS
ASSESS_WEEK = 26
EMP = [f"emp{k}" for k in range(1, WEEKS + 1)]
STATIC = ["fin", "age", "race", "wexp", "mar", "paro", "prio", "educ"]
REQUIRED = ["rownames", "week", "arrest", *STATIC, *EMP]
#: educ codes (carData): 2 = grade 6 or less, 3 = grades 7-9, 4 = grades 10-11, 5 = grade 12, 6 = some college
EDUC_TO_EDUCATION = {
    2: Education.PRIMARY_OR_LESS,
    3: Education.JUNIOR_SECONDARY,
    4: Education.JUNIOR_SECONDARY,
    5: Education.SENIOR_SECONDARY,
    6: Education.TERTIARY,
}
#: label horizons (months) that fit the 52-week follow-up of each usable canonical stage
HORIZON_MONTHS = {Stage.INTAKE: FOLLOWUP_DAYS / DAYS_PER_MONTH, Stage.MIDTERM: (FOLLOWUP_DAYS // 2) / DAYS_PER_MONTH}
#: persons fields the source does not record: (constant placeholder, why)
PLACEHOLDERS: dict[str, tuple[object, str]] = {
    "employment": ("unemployed", "employment at release not recorded (emp1 is week 1, after day 0)"),
    "local": (True, "residence not recorded"),
    "supervision_type": (
        "parole",
        "the vocabulary has no 'released without supervision'; the true status is rossi_source.paro",
    ),
    "offence": ("other", "offence of the current sentence not recorded"),
    "sentence_months": (0.0, "sentence length not recorded"),
    "prior_supervisions": (0, "prior supervisions not recorded"),
    **{flag: (False, "not recorded") for flag in INTAKE_FLAGS},
}
CALENDAR_NOTE = (
    f"Relative calendar: day 0 (release) is represented as {EPOCH:%Y-%m-%d}; week k covers days "
    "7(k-1)..7k-1. Dates are a representation of time since release, not real dates."
)


def _parse(raw: pd.DataFrame) -> tuple[pd.Index, dict[str, np.ndarray], np.ndarray]:
    """Person ids, static columns (0/1 and numbers as float) and the n x 52 employment matrix."""
    p = Parser(raw, SOURCE, id_column="rownames")
    static = {c: p.flag(c, required=True) for c in ("fin", "wexp", "paro")}
    static["mar"] = np.asarray(p.category("mar", ["not married", "married"]).codes, dtype=float)
    static["race"] = np.asarray(p.category("race", ["black", "other"]).codes, dtype=float)
    for c in ("age", "prio", "educ", "week"):
        static[c] = p.number(c, required=True)
    static["arrest"] = p.flag("arrest", required=True)
    p.refuse(
        "educ",
        ~np.isin(static["educ"], list(EDUC_TO_EDUCATION)) & ~np.isnan(static["educ"]),
        p.text("educ"),
        "unknown education code",
    )
    p.refuse(
        "week",
        ~np.isin(static["week"], np.arange(1, WEEKS + 1)) & ~np.isnan(static["week"]),
        p.text("week"),
        "not a week 1..52",
    )
    emp = np.column_stack([p.flag(c) for c in EMP])
    p.check()
    return pd.Index([f"rossi-{i}" for i in p.ids], name="source_id"), static, emp


def employment_features(emp: np.ndarray, *, assess_week: int = ASSESS_WEEK) -> dict[str, np.ndarray]:
    """Employment features at the start of ``assess_week`` from weeks ``1 .. assess_week - 1`` only.

    ``emp`` is the person x week 0/1 matrix (column 0 = week 1); later columns are never read.
    """
    seen = emp[:, : assess_week - 1]
    weeks = seen.shape[1]
    employed = np.nan_to_num(seen, nan=0.0)
    last = np.where(employed.any(axis=1), weeks - 1 - np.argmax(employed[:, ::-1], axis=1), -1)
    run, longest = np.zeros(len(seen)), np.zeros(len(seen))
    for k in range(weeks):
        run = (run + 1) * employed[:, k]
        longest = np.maximum(longest, run)
    return {
        "emp_weeks": employed.sum(axis=1),
        "emp_share": employed.sum(axis=1) / weeks,
        "emp_last4": employed[:, max(weeks - 4, 0) :].sum(axis=1),
        "weeks_since_employed": np.where(last >= 0, weeks - last, np.nan),
        "emp_longest_spell": longest,
    }


def rossi_week26(path: str | Path, *, with_employment: bool, nrows: int | None = None) -> RealFrame:
    """The week-26 assessment: features known at the start of week 26, label = arrest in weeks 26-52.

    Parameters
    ----------
    path
        ``Rossi.csv`` (Rdatasets layout) or any file in the same format.
    with_employment
        Add the employment-history features of weeks 1-25 to the static columns.
    nrows
        Read only the first ``nrows`` rows.

    Returns
    -------
    RealFrame
        Men not arrested before week 26 (``week >= 26`` or ``arrest == 0``). Features: fin, age,
        wexp, mar, paro, prio, educ (0/1 and numbers as float; educ as its code 2-6), plus
        emp_weeks, emp_share, emp_last4, weeks_since_employed (NaN if never employed),
        emp_longest_spell. Groups: race, age_band.
    """
    raw = read_csv(path, SOURCE, nrows=nrows)
    require_columns(raw, REQUIRED, SOURCE)
    index, s, emp = _parse(raw)
    at_risk = (s["week"] >= ASSESS_WEEK) | (s["arrest"] == 0)
    _check_history(index, emp, at_risk)
    cols = {c: s[c] for c in ("fin", "age", "wexp", "mar", "paro", "prio", "educ")}
    if with_employment:
        cols.update(employment_features(emp))
    X = pd.DataFrame(cols, index=index)[at_risk]
    y = ((s["arrest"] == 1) & (s["week"] >= ASSESS_WEEK))[at_risk].astype(int)
    groups = pd.DataFrame(
        {
            "race": pd.Categorical.from_codes(s["race"].astype(int), pd.Index(["black", "other"])),
            "age_band": pd.cut(s["age"], [0, 20, 25, 30, 200], right=False, labels=["<20", "20-24", "25-29", "30+"]),
        },
        index=index,
    )[at_risk]
    notes = [
        f"Assessment at the start of week {ASSESS_WEEK} (day {7 * (ASSESS_WEEK - 1)} after release): employment "
        f"features use emp1..emp{ASSESS_WEEK - 1} only; label = arrest in weeks {ASSESS_WEEK}-{WEEKS} "
        f"({WEEKS - ASSESS_WEEK + 1}-week horizon, shorter than the project's 12-month default).",
        "race is a group column, not a feature; fin (financial aid) was randomly assigned in the study.",
        "educ is kept as its ordinal code 2-6 (2 = grade 6 or less ... 6 = some college).",
    ]
    if not with_employment:
        notes.append("Static columns only (without the employment history).")
    dropped = {f"arrested before week {ASSESS_WEEK} (not at risk at the assessment)": int((~at_risk).sum())}
    name = f"rossi_week{ASSESS_WEEK}" + ("" if with_employment else "_static")
    frame = RealFrame(
        X, y, groups, pd.DataFrame(index=X.index), name, f"arrest in weeks {ASSESS_WEEK}-{WEEKS}", notes, dropped
    )
    log.info("rossi week %d: %d at risk, base rate %.4f", ASSESS_WEEK, len(y), frame.base_rate)
    return frame


def _check_history(index: pd.Index, emp: np.ndarray, at_risk: np.ndarray) -> None:
    """Refuse a man at risk at week 26 whose employment before week 26 has a blank week."""
    blank = np.isnan(emp[:, : ASSESS_WEEK - 1]) & at_risk[:, None]
    if blank.any():
        rows, weeks = np.nonzero(blank)
        raise DataValidationError(
            [
                Problem(
                    SOURCE,
                    int(r),
                    index[int(r)],
                    EMP[w],
                    f"blank employment week before the week-{ASSESS_WEEK} assessment",
                )
                for r, w in zip(rows, weeks, strict=True)
            ]
        )


def load_rossi_canonical(path: str | Path, *, nrows: int | None = None) -> CaseTables:
    """The canonical tables of the Rossi study on the relative calendar (see the module docstring).

    persons: one row per man, birth_date = release - age years (the day of birth is unknown; age at
    release is exact to the year); supervision from release to the end of week 52. events:
    ``job_loss`` on the last day of each week without work that follows a week with work.
    outcomes: re-offence on the middle day of the arrest week, follow-up to the end of week 52.
    Extra tables: ``rossi_source`` (the source's static columns) and ``placeholders``.

    Returns
    -------
    CaseTables
        Validated by :func:`features.schema.validate_tables`.
    """
    raw = read_csv(path, SOURCE, nrows=nrows)
    require_columns(raw, REQUIRED, SOURCE)
    index, s, emp = _parse(raw)
    ids = index.to_numpy()
    day = pd.Timedelta(days=1)
    persons = pd.DataFrame(
        {
            "person_id": ids,
            "sex": "male",
            "birth_date": [EPOCH - pd.DateOffset(years=int(a)) for a in s["age"]],
            "education": [EDUC_TO_EDUCATION[int(e)].value for e in s["educ"]],
            "marital": np.where(s["mar"] == 1, "married", "single"),
            "supervision_start": EPOCH,
            "supervision_end": EPOCH + FOLLOWUP_DAYS * day,
            "prior_convictions": s["prio"].astype(int),
            **{name: value for name, (value, _) in PLACEHOLDERS.items()},
        }
    )
    lost = (emp[:, :-1] == 1) & (emp[:, 1:] == 0)  # worked in week k, not in week k + 1
    rows, k = np.nonzero(lost)
    events = pd.DataFrame(
        {
            "person_id": ids[rows],
            "date": EPOCH + pd.to_timedelta(7 * (k + 2) - 1, unit="D"),
            "event_type": EventType.JOB_LOSS.value,
            "value": np.nan,
        }
    )
    arrested = s["arrest"] == 1
    reoffence = EPOCH + pd.to_timedelta(np.where(arrested, 7 * (s["week"] - 1) + 3, np.nan), unit="D")
    outcomes = pd.DataFrame(
        {
            "person_id": ids,
            "reoffence_date": reoffence,
            "revocation_date": pd.NaT,
            "followup_end": EPOCH + FOLLOWUP_DAYS * day,
        }
    )
    source = pd.DataFrame({"person_id": ids, **{c: s[c] for c in (*STATIC, "week", "arrest")}})
    placeholders = pd.DataFrame(
        [(c, str(v), why) for c, (v, why) in PLACEHOLDERS.items()], columns=["column", "placeholder", "reason"]
    )
    tables = CaseTables(persons, events, outcomes, {"rossi_source": source, "placeholders": placeholders})
    log.info("rossi canonical: %d persons, %d job_loss events", len(persons), len(events))
    return validate_tables(tables)


def canonical_notes() -> list[str]:
    """The caveats of :func:`load_rossi_canonical`, for ``mapping.json``."""
    return [
        CALENDAR_NOTE,
        "birth_date = release - age years: the day of birth is unknown; age at release is exact to the year.",
        "supervision_end = release + 52 weeks is the end of the study's observation, not a legal term.",
        "job_loss = a week without work after a week with work, dated the last day of the week without work "
        "(when it is known); getting a job has no event type in the vocabulary and is not represented.",
        "reoffence_date = the middle day (day 3) of the arrest week; revocation is not recorded (NaT).",
        "race is kept in rossi_source (a group column), and 'not married' maps to 'single'.",
        "Placeholders (constant, carry no information): "
        + "; ".join(f"{c} = {v!r} ({why})" for c, (v, why) in PLACEHOLDERS.items() if c not in INTAKE_FLAGS)
        + "; intake flags = False (not recorded).",
        f"Label horizons that fit the 52-week follow-up: intake {HORIZON_MONTHS[Stage.INTAKE]:.4f} months "
        f"(364 days), mid-term {HORIZON_MONTHS[Stage.MIDTERM]:.4f} months (182 days); the release stage has no "
        "follow-up.",
    ]
