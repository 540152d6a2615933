"""ProPublica's Broward County COMPAS file as a model-ready frame.

One row per person, with the two-year recidivism outcome ``two_year_recid`` after ProPublica's
usual filter. The features are the defendant's record at screening; COMPAS's own outputs
(``decile_score``, ``score_text``) are kept in ``extra`` as the comparison, never as features;
race, sex and the age category are ``groups`` (sex may be added as a feature with
``features="with_sex"``). Every mapping is listed in ``MAPPING.md`` beside this file.

Point-in-time: every default feature is a fact dated on or before the COMPAS screening date. The
file's own ``age`` column is the age at ProPublica's data pull (about April 2016), not at
screening, so its offset from the true age encodes the screening date, and through the file's
construction (people screened after March 2014 are nearly all recidivists) the outcome; the
adapter therefore computes the age at screening from ``dob`` (``age="file"`` keeps the file's
column, for comparison only). ``jail_days`` (optional) is not point-in-time either.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from features.adapters._common import Parser, RealFrame, read_csv, require_columns

log = logging.getLogger(__name__)

SOURCE = "compas"
CompasFeatures = Literal["default", "with_sex"]
CompasAge = Literal["screening", "file"]
TARGET = "two_year_recid"

SEX = {"Male": "male", "Female": "female"}
RACES = ["African-American", "Caucasian", "Hispanic", "Other", "Asian", "Native American"]
AGE_CATS = ["Less than 25", "25 - 45", "Greater than 45"]
SCORE_TEXT = ["Low", "Medium", "High"]
DEGREES = ["F", "M", "O"]
COUNTS = ["juv_fel_count", "juv_misd_count", "juv_other_count", "priors_count"]

#: c_charge_desc -> family: the first pattern that matches the lower-cased text wins; no match -> "other".
#: The early "other" entry keeps non-violent charges that share a word with a later family
#: (prostitution "assignation", sex-offender registration, evidence or witness tampering).
CHARGE_FAMILIES: tuple[tuple[str, str], ...] = (
    ("no_charge", r"^arrest case no charge$"),
    ("other", r"prostitut|lewdness|assignation|sex offend|tamper|occup lic"),
    (
        "violent",
        r"batt|assault|robb|murder|homicide|manslaught|kidnap|false imprison|carjack|home invasion"
        r"|\bsex|lewd|rape|molest|stalk|strang|w/violence|child abuse|aggrav|deadly missile|shoot",
    ),
    (
        "drug",
        r"cocaine|cannabi|marijuana|heroin|\bmeth|oxycodone|alprazolam|hydrocod|hydromorph|morphine"
        r"|codeine|fentanyl|mdma|ecstasy|\blsd\b|\bpcp\b|amphetamine|cathinone|pyrrolidino|methylenediox"
        r"|ethylone|butylone|carisoprodol|azepam|steroid|butanediol|barbital|\brx\b|xlr11|buprenorphine"
        r"|contr(?:olled)? sub|cont sub|subst|drug|narcotic"
        r"|paraphernalia|prescript|tetrahydro|phentermine|benzylpiperazine|deliver|traffick",
    ),
    (
        "property",
        r"theft|\bburg|stolen|shoplift|forg|utter|fraud|defraud|counterfeit|mischief|pawn|personal id"
        r"|embezzle|worthless|credit card|larceny|insurance|hired? vehicle|hire/leas|arson",
    ),
    (
        "driving",
        r"driv|\bdui\b|d\.u\.i|\bdwi\b|\bdwls\b|\bdl\b|\blicen|\blic\b|susp|operat|traffic|elud|flee"
        r"|leav\w* (?:the )?sc|\blve\b|leav\w* acc|\bacc\b|accident|reckless|hit and run|vehicle|\bveh\b"
        r"|\btag\b|breath",
    ),
    ("weapons", r"firearm|weapon|\bwep\b|f/arm|concealed|ammunition"),
)
FAMILIES = list(dict.fromkeys([name for name, _ in CHARGE_FAMILIES] + ["other"]))

FILTER_REASONS = {
    "screening": "days_b_screening_arrest missing or outside -30..30",
    "is_recid": "is_recid == -1 (no COMPAS case found)",
    "degree": "c_charge_degree == 'O' (ordinary traffic offence)",
    "score": "score_text == 'N/A'",
}
REQUIRED = [
    "id",
    "sex",
    "dob",
    "age",
    "age_cat",
    "race",
    *COUNTS,
    "days_b_screening_arrest",
    "c_jail_in",
    "c_jail_out",
    "c_offense_date",
    "c_arrest_date",
    "c_charge_degree",
    "c_charge_desc",
    "is_recid",
    "decile_score",
    "score_text",
    "compas_screening_date",
    TARGET,
]
DAYS_PER_YEAR = 365.25


def charge_family(descriptions: pd.Series) -> pd.Categorical:
    """Map ``c_charge_desc`` to a small family (see ``FAMILIES``); blank descriptions stay missing.

    The patterns of ``CHARGE_FAMILIES`` are tried in order; the first match wins.
    """
    text = descriptions.astype(str).str.strip().str.lower()
    family = pd.Series("other", index=descriptions.index, dtype=object)
    unassigned = pd.Series(True, index=descriptions.index)
    for name, pattern in CHARGE_FAMILIES:
        hit = unassigned & text.str.contains(pattern, regex=True, flags=re.IGNORECASE)
        family[hit] = name
        unassigned &= ~hit
    family[text == ""] = None
    return pd.Categorical(family.to_numpy(dtype=object), categories=FAMILIES)


def _date(p: Parser, column: str, *, required: bool = False) -> pd.Series:
    """A date (the day part of a date or timestamp) as a normalised timestamp; blank as NaT."""
    s = p.text(column)
    out = pd.to_datetime(s.where(s != ""), errors="coerce", format="mixed").dt.normalize()
    blank = (s == "").to_numpy()
    p.refuse(column, out.isna().to_numpy() & ~blank, s, "not a date")
    if required:
        p.refuse(column, blank, s, "required value is missing")
    return out


def _point_in_time(p: Parser) -> dict[str, np.ndarray]:
    """Features dated on or before the screening date: age at screening, days from the charge's
    arrest (or offence, when no arrest date) to screening, days in jail before screening.

    A jail entry or arrest dated after the screening date is not known at screening: it counts as 0
    days (the same as an entry on the screening day).
    """
    screening = _date(p, "compas_screening_date", required=True)
    dob = _date(p, "dob", required=True)
    charge = _date(p, "c_arrest_date").fillna(_date(p, "c_offense_date"))
    jail_in = _date(p, "c_jail_in")

    def days(start: pd.Series) -> np.ndarray:
        return (screening - start).dt.days.clip(lower=0).to_numpy(dtype=float, na_value=np.nan)

    return {
        "age": ((screening - dob).dt.days / DAYS_PER_YEAR).to_numpy(dtype=float, na_value=np.nan),
        "days_charge_to_screening": days(charge),
        "jail_days_before_screening": days(jail_in),
    }


def _jail_days(raw: pd.DataFrame) -> tuple[np.ndarray, int]:
    """Calendar days from jail entry to release (ProPublica's length of stay) and the count of
    rows whose release is after the screening date."""
    jail_in = pd.to_datetime(raw["c_jail_in"].where(raw["c_jail_in"] != ""), errors="coerce").dt.normalize()
    jail_out = pd.to_datetime(raw["c_jail_out"].where(raw["c_jail_out"] != ""), errors="coerce").dt.normalize()
    screening = pd.to_datetime(
        raw["compas_screening_date"].where(raw["compas_screening_date"] != ""), errors="coerce"
    ).dt.normalize()
    days = ((jail_out - jail_in).dt.days).to_numpy(dtype=float, na_value=np.nan)
    days[days < 0] = np.nan
    return days, int((jail_out > screening).sum())


def _filter(raw: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """ProPublica's filter, applied in their order; returns the kept rows and drops per reason."""
    days = pd.to_numeric(raw["days_b_screening_arrest"].where(raw["days_b_screening_arrest"] != ""), errors="coerce")
    steps = {
        "screening": days.between(-30, 30),
        "is_recid": raw["is_recid"].str.strip() != "-1",
        "degree": raw["c_charge_degree"].str.strip() != "O",
        "score": ~raw["score_text"].str.strip().isin(["N/A", ""]),
    }
    keep = pd.Series(True, index=raw.index)
    dropped: dict[str, int] = {}
    for key, ok in steps.items():
        dropped[FILTER_REASONS[key]] = int((keep & ~ok).sum())
        keep &= ok
    return raw[keep], dropped  # keeps the file's row positions for error messages


def load_compas(
    path: str | Path,
    *,
    features: CompasFeatures = "default",
    jail_days: bool = True,
    age: CompasAge = "screening",
    nrows: int | None = None,
) -> RealFrame:
    """The COMPAS two-year recidivism frame after ProPublica's filter.

    Parameters
    ----------
    path
        ``compas-scores-two-years.csv`` or any file in the same format.
    features
        ``"default"``: age at screening, juvenile and adult prior counts, charge degree, charge
        family, days from the charge's arrest to screening, days in jail before screening, and jail
        days when ``jail_days``. ``"with_sex"``: the same plus sex.
    jail_days
        Include the length of the jail stay for the current charge. It is not point-in-time: the
        release is after the screening date for many rows (see ``notes``).
    age
        ``"screening"``: age at the screening date from ``dob`` (point-in-time). ``"file"``: the
        file's ``age`` column, the age at the 2016 data pull, which encodes the screening date
        (for comparison only; see the module docstring).
    nrows
        Read only the first ``nrows`` rows.

    Returns
    -------
    RealFrame
        Indexed by the source ``id``. Groups: race, sex, age_cat. Extra: decile_score,
        score_text and ``compas_medium_high`` (ProPublica's medium/high cut).

    Raises
    ------
    DataValidationError
        A required column is missing (the message names it) or a value is outside the
        documented value set.
    """
    if features not in ("default", "with_sex"):
        raise ValueError(f"unknown features option {features!r}: expected 'default' or 'with_sex'")
    if age not in ("screening", "file"):
        raise ValueError(f"unknown age option {age!r}: expected 'screening' or 'file'")
    raw = read_csv(path, SOURCE, nrows=nrows)
    require_columns(raw, REQUIRED, SOURCE)  # pandas names the file's second decile_score 'decile_score.1'
    kept, dropped = _filter(raw)
    p = Parser(kept, SOURCE, id_column="id")
    sex = p.category("sex", list(SEX.values()), mapping=SEX)
    timed = _point_in_time(p)
    file_age = p.number("age", required=True)
    cols: dict[str, object] = {"age": file_age if age == "file" else timed["age"]}
    if features == "with_sex":
        cols["sex"] = sex
    cols.update({c: p.number(c, required=True) for c in COUNTS})
    cols["c_charge_degree"] = p.category("c_charge_degree", ["F", "M"])
    cols["charge_family"] = charge_family(kept["c_charge_desc"])
    cols.update({c: timed[c] for c in ("days_charge_to_screening", "jail_days_before_screening")})
    late_release = 0
    if jail_days:
        cols["jail_days"], late_release = _jail_days(kept)
    groups = {"race": p.category("race", RACES), "sex": sex, "age_cat": p.category("age_cat", AGE_CATS, ordered=True)}
    score_text = p.category("score_text", SCORE_TEXT, ordered=True)
    extra = {
        "decile_score": p.number("decile_score", required=True),
        "score_text": score_text,
        "compas_medium_high": np.asarray(score_text.isin(["Medium", "High"]), dtype=float),
    }
    y = p.flag(TARGET, required=True)
    p.check()
    index = pd.Index(p.ids.astype(str), name="source_id")
    frame = RealFrame(
        pd.DataFrame(cols, index=index),
        y.astype(int),
        pd.DataFrame(groups, index=index),
        pd.DataFrame(extra, index=index),
        "compas_two_year",
        TARGET,
        _notes(jail_days, late_release, len(kept), age),
        dropped,
    )
    log.info("compas: %d rows kept, base rate %.4f, dropped %s", len(frame.y), frame.base_rate, dropped)
    return frame


def _notes(jail_days: bool, late_release: int, n: int, age: str) -> list[str]:
    notes = [
        "age = age at the COMPAS screening date (from dob), not the file's age column: that is the age at "
        "ProPublica's data pull (about April 2016; it matches for 95% of rows), 1-4 years above the age at "
        "screening, and its offset encodes the screening date, which predicts the label through the file's "
        "construction (people screened after March 2014 are nearly all recidivists)."
        if age == "screening"
        else "age = the file's age column (age at the 2016 data pull), NOT point-in-time: its offset from the age "
        "at screening encodes the screening date and, through the file's construction, the outcome.",
        "days_charge_to_screening = days from c_arrest_date (c_offense_date when blank) to the screening date; "
        "jail_days_before_screening = days from c_jail_in to the screening date; dates after screening count "
        "as 0 (not known at screening).",
        "ProPublica's filter applied (days_b_screening_arrest within -30..30, is_recid != -1, "
        "c_charge_degree != 'O', score_text != 'N/A'); n_dropped counts each step in that order.",
        "COMPAS outputs (decile_score, score_text) are comparison columns in extra, never features; "
        "race, sex and age_cat are groups (sex is a feature only with features='with_sex').",
        "charge_family is a keyword mapping of c_charge_desc (CHARGE_FAMILIES, first match wins); "
        "'arrest case no charge' is its own family.",
    ]
    if jail_days:
        notes.append(
            f"jail_days = calendar days from c_jail_in to c_jail_out (ProPublica's length of stay). It is not "
            f"point-in-time: for {late_release} of {n} rows the release is after the COMPAS screening date, and "
            f"time in jail also overlaps the two-year follow-up. Compare with jail_days=False."
        )
    return notes
