"""Point-in-time feature pipeline: canonical tables and assessment dates in, feature frame out.

The rule that makes or breaks the models: a feature for an assessment on date ``as_of`` uses only
facts dated strictly before ``as_of`` (events on or after it are ignored here; the service refuses
them outright). The same functions serve training (whole tables) and serving (one person's record
and events), so a model never sees in training what it cannot see in service.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from features.catalog import (
    CATALOG, EVENT_FAMILIES, GRADE_VALUES, VIOLATION_FAMILIES, features_for, window_suffix,
)
from features.vocab import CATEGORICAL_COLUMNS, INTAKE_FLAGS, EventType, Labelled, Stage

DAY = np.timedelta64(1, "D")
TREND_DAYS = 90


def assessment_dates(persons: pd.DataFrame, stage: Stage | str) -> pd.DataFrame:
    """The assessment of each person at ``stage``: columns ``person_id`` and ``as_of``.

    intake: supervision start; mid-term: the midpoint of the term (rounded down to the day);
    release: supervision end.
    """
    stage = Stage(stage)
    start, end = persons["supervision_start"], persons["supervision_end"]
    if stage is Stage.INTAKE:
        as_of = start
    elif stage is Stage.MIDTERM:
        as_of = (start + (end - start) / 2).dt.floor("D")
    else:
        as_of = end
    return pd.DataFrame({"person_id": persons["person_id"].to_numpy(), "as_of": as_of.to_numpy()})


def build_features(
    persons: pd.DataFrame,
    events: pd.DataFrame,
    assessments: pd.DataFrame,
    *,
    stage: Stage | str,
) -> pd.DataFrame:
    """The feature frame of ``stage``: one row per assessment, columns in catalog order.

    Parameters
    ----------
    persons, events
        Validated canonical tables (see :func:`features.schema.validate_tables`).
    assessments
        ``person_id`` and ``as_of`` of each assessment; a person may appear more than once.
    stage
        Selects the stage's features (``features.catalog.features_for``).

    Returns a frame aligned with ``assessments`` (same index); categorical columns use the
    vocabulary's full, fixed category list so that codes agree between training and serving.
    """
    stage = Stage(stage)
    person_row = pd.Index(persons["person_id"]).get_indexer(assessments["person_id"])
    if (person_row < 0).any():
        missing = assessments["person_id"].to_numpy()[person_row < 0][:5]
        raise KeyError(f"assessments for unknown person_id(s): {list(missing)}")
    people = persons.iloc[person_row].reset_index(drop=True)
    as_of = assessments["as_of"].to_numpy(dtype="datetime64[ns]")
    columns = _static_columns(people, as_of)
    columns.update(_event_columns(events, assessments["person_id"].to_numpy(), as_of, people))
    columns["violations_term"] = sum(columns[f"{fam}_term"] for fam in VIOLATION_FAMILIES)
    months_served = np.maximum(columns["days_since_start"] / (365.25 / 12), 1.0)
    columns["violations_per_month"] = np.round(columns["violations_term"] / months_served, 3)
    frame = pd.DataFrame({name: columns[name] for name in features_for(stage)})
    frame.index = assessments.index
    return frame


def _static_columns(people: pd.DataFrame, as_of: np.ndarray) -> dict[str, object]:
    start, end = (people[c].to_numpy(dtype="datetime64[ns]") for c in ("supervision_start", "supervision_end"))
    term_days = (end - start) / DAY
    served = np.maximum((as_of - start) / DAY, 0.0)
    cols: dict[str, object] = {
        "age": (as_of - people["birth_date"].to_numpy(dtype="datetime64[ns]")) / DAY / 365.25,
        "sentence_months": people["sentence_months"].to_numpy(dtype=float),
        "term_months": np.round(term_days / (365.25 / 12), 1),
        "prior_convictions": people["prior_convictions"].to_numpy(dtype=float),
        "prior_supervisions": people["prior_supervisions"].to_numpy(dtype=float),
        "local": people["local"].to_numpy(dtype=float),
        "days_since_start": served,
        "share_served": np.minimum(served / term_days, 1.0),
    }
    for name, vocab in CATEGORICAL_COLUMNS.items():
        cols[name] = categorical(people[name], vocab)
    for flag in INTAKE_FLAGS:
        cols[flag] = people[flag].to_numpy(dtype=float)
    return cols


@functools.cache
def category_dtype(vocab: type[Labelled]) -> pd.CategoricalDtype:
    """The fixed categorical dtype of a vocabulary (all codes, declaration order), built once."""
    return pd.CategoricalDtype(vocab.codes())


def categorical(values: pd.Series | np.ndarray, vocab: type[Labelled]) -> pd.Categorical:
    """``values`` as a categorical over the vocabulary's full code list (unknown codes become NaN)."""
    dtype = category_dtype(vocab)
    values = np.asarray(values, dtype=object)
    if len(values) <= 64:  # a request's few rows: a dict look-up beats building an index engine
        position = _positions(vocab)
        codes = np.array([position.get(str(v), -1) for v in values], dtype=np.int8)
    else:
        codes = dtype.categories.get_indexer(values.astype(str))
    return pd.Categorical.from_codes(codes, dtype=dtype)


@functools.cache
def _positions(vocab: type[Labelled]) -> dict[str, int]:
    return {code: i for i, code in enumerate(vocab.codes())}


def _event_columns(events: pd.DataFrame, person_ids: np.ndarray, as_of: np.ndarray,
                   people: pd.DataFrame) -> dict[str, np.ndarray]:
    """Counts, recency, trends, grades and points from events dated before each ``as_of``."""
    n = len(person_ids)
    ev = _events_before(events, person_ids, as_of)
    row, age, etype = ev["row"], ev["age_days"], ev["event_code"]
    in_term = ev["date"] >= people["supervision_start"].to_numpy()[row]
    cols: dict[str, np.ndarray] = {}
    for fam in EVENT_FAMILIES:
        mask = np.isin(etype, _codes(*fam.event_types))
        r, a, t = row[mask], age[mask], in_term[mask]
        for window in fam.windows:
            hit = t if window is None else a <= window
            cols[f"{fam.name}_{window_suffix(window)}"] = np.bincount(r[hit], minlength=n).astype(float)
        if fam.recency:
            last = np.full(n, np.nan)
            if len(r):
                np.fmin.at(last, r, a.astype(float))
            cols[f"{fam.name}_days_since"] = last
        if fam.trend:
            recent = np.bincount(r[a <= TREND_DAYS], minlength=n)
            before = np.bincount(r[(a > TREND_DAYS) & (a <= 2 * TREND_DAYS)], minlength=n)
            cols[f"{fam.name}_trend"] = (recent - before).astype(float)
    cols.update(_grade_and_points(ev, n))
    return cols


def _events_before(events: pd.DataFrame, person_ids: np.ndarray, as_of: np.ndarray) -> dict[str, np.ndarray]:
    """Pair each event with the assessments of its person; keep those dated before ``as_of``."""
    ids = pd.Index(person_ids)
    if ids.is_unique:
        row = ids.get_indexer(events["person_id"])
        keep = row >= 0
        ev_idx = np.flatnonzero(keep)
        row = row[keep]
    else:  # several assessments per person: one pair per (event, assessment)
        left = pd.DataFrame({"person_id": events["person_id"].to_numpy(), "ev": np.arange(len(events))})
        right = pd.DataFrame({"person_id": person_ids, "row": np.arange(len(person_ids))})
        pairs = left.merge(right, on="person_id")
        ev_idx, row = pairs["ev"].to_numpy(), pairs["row"].to_numpy()
    dates = events["date"].to_numpy(dtype="datetime64[ns]")[ev_idx]
    age_days = (as_of[row] - dates) / DAY
    before = age_days > 0
    ev_idx, row = ev_idx[before], row[before]
    return {
        "row": row,
        "age_days": age_days[before],
        "date": dates[before],
        "event_code": _event_codes(events["event_type"])[ev_idx],
        "value": events["value"].to_numpy(dtype=float, na_value=np.nan)[ev_idx],
    }


def _grade_and_points(ev: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    row, age, etype, value = ev["row"], ev["age_days"], ev["event_code"], ev["value"]
    grade_of_code = np.full(len(EventType), np.nan)
    grade_of_code[_codes(*GRADE_VALUES)] = list(GRADE_VALUES.values())
    is_grade = np.isin(etype, _codes(*GRADE_VALUES))
    grade_value = grade_of_code[etype[is_grade]]
    is_points = etype == _codes(EventType.MONTHLY_POINTS)[0]
    recent_points = is_points & (age <= 90)
    sums = np.bincount(row[recent_points], weights=value[recent_points], minlength=n)
    counts = np.bincount(row[recent_points], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_points = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return {
        "grade_latest": _latest(row[is_grade], age[is_grade], grade_value, n),
        "grade_unqualified_n": np.bincount(row[etype == _codes(EventType.GRADE_UNQUALIFIED)[0]], minlength=n)
        .astype(float),
        "grade_good_n": np.bincount(row[etype == _codes(EventType.GRADE_GOOD)[0]], minlength=n).astype(float),
        "points_latest": _latest(row[is_points], age[is_points], value[is_points], n),
        "points_mean_90d": mean_points,
    }


_EVENT_CODE = {t: i for i, t in enumerate(EventType)}


def _codes(*types: EventType) -> np.ndarray:
    """Integer codes of event types (their position in the vocabulary, as in :func:`category_dtype`)."""
    return np.array([_EVENT_CODE[t] for t in types])


def _event_codes(event_type: pd.Series) -> np.ndarray:
    """Integer code of each event's type, reusing a categorical column's codes when they agree."""
    dtype = category_dtype(EventType)
    if isinstance(event_type.dtype, pd.CategoricalDtype):
        remap = dtype.categories.get_indexer(event_type.cat.categories.astype(str))
        return np.append(remap, -1)[event_type.cat.codes.to_numpy()]  # code -1 (missing) stays -1
    return dtype.categories.get_indexer(event_type.to_numpy(dtype=object).astype(str))


def _latest(row: np.ndarray, age: np.ndarray, value: np.ndarray, n: int) -> np.ndarray:
    """The value of the most recent event per assessment row (NaN where there is none)."""
    out = np.full(n, np.nan)
    if len(row):
        order = np.lexsort((-age, row))  # by row, then oldest first: the last of each row is latest
        r, v = row[order], value[order]
        last_of_row = np.r_[r[1:] != r[:-1], True]
        out[r[last_of_row]] = v[last_of_row]
    return out


def feature_names(stage: Stage | str) -> list[str]:
    """Column order of the stage's feature frame (re-exported from the catalog for convenience)."""
    return features_for(stage)


__all__ = ["assessment_dates", "build_features", "feature_names", "CATALOG"]
