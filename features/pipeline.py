"""Point-in-time feature pipeline: canonical tables and assessment dates in, feature frame out.

The rule that makes or breaks the models: a feature for an assessment on date ``as_of`` uses only
facts dated strictly before ``as_of`` (events on or after it are ignored here; the service refuses
them outright). The same functions serve training (whole tables) and serving (one person's record
and events), so a model never sees in training what it cannot see in service.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from features.catalog import (
    CATALOG,
    EVENT_FAMILIES,
    GRADE_VALUES,
    VIOLATION_FAMILIES,
    features_for,
    window_suffix,
)
from features.vocab import CATEGORICAL_COLUMNS, INTAKE_FLAGS, EventType, Labelled, Stage, assessment_offset_days

DAY = np.timedelta64(1, "D")

Table: TypeAlias = pd.DataFrame | Mapping[str, Any]  # a canonical table: a DataFrame or its columns by name
ArrayLike: TypeAlias = pd.Series | np.ndarray | list[Any]


def assessment_dates(persons: pd.DataFrame, stage: Stage | str) -> pd.DataFrame:
    """The assessment of each person at ``stage``: columns ``person_id`` and ``as_of``.

    intake: supervision start; mid-term: the midpoint of the term (rounded down to the day);
    release: supervision end.
    """
    start = persons["supervision_start"].to_numpy(dtype="datetime64[D]")
    term_days = (persons["supervision_end"].to_numpy(dtype="datetime64[D]") - start).astype(np.int64)
    as_of = (start + assessment_offset_days(stage, term_days)).astype("datetime64[ns]")
    return pd.DataFrame({"person_id": persons["person_id"].to_numpy(), "as_of": as_of})


def build_features(
    persons: Table,
    events: Table,
    assessments: Table,
    *,
    stage: Stage | str,
) -> pd.DataFrame:
    """The feature frame of ``stage``: one row per assessment, columns in catalog order.

    Parameters
    ----------
    persons, events
        Validated canonical tables (see :func:`features.schema.validate_tables`): DataFrames, or
        mappings of column name to array with the same columns.
    assessments
        ``person_id`` and ``as_of`` of each assessment; a person may appear more than once.
    stage
        Selects the stage's features (``features.catalog.features_for``).

    Returns a frame aligned with ``assessments`` (same index); categorical columns use the
    vocabulary's full, fixed category list so that codes agree between training and serving.
    """
    frame = pd.DataFrame(feature_columns(persons, events, assessments, stage=stage))
    if isinstance(assessments, pd.DataFrame):
        frame.index = assessments.index
    return frame


def feature_columns(
    persons: Table, events: Table, assessments: Table, *, stage: Stage | str
) -> dict[str, np.ndarray | pd.Categorical]:
    """:func:`build_features` without the frame: the stage's columns by name, in catalog order.

    The service scores a few people per request; building DataFrames around them would cost
    more than computing their features, so it passes mappings of arrays and reads the columns
    from here. Categorical columns are ``pd.Categorical`` over the vocabulary's fixed categories.
    """
    stage = Stage(stage)
    person_ids = _column(assessments, "person_id")
    keys = persons["person_id"]
    person_row = _positions_in(keys, person_ids)
    if (person_row < 0).any():
        missing = person_ids[person_row < 0][:5]
        raise KeyError(f"assessments for unknown person_id(s): {list(missing)}")
    in_order = len(person_row) == len(keys) and bool((person_row == np.arange(len(keys))).all())
    people = _PersonRows(persons, None if in_order else person_row)
    as_of = _column(assessments, "as_of", "datetime64[ns]")
    columns: dict[str, Any] = _static_columns(people, as_of)  # arrays, and categoricals for the vocabularies
    columns.update(_event_columns(events, person_ids, as_of, people))
    columns["violations_term"] = sum(columns[f"{fam}_term"] for fam in VIOLATION_FAMILIES)
    months_served = np.maximum(columns["days_since_start"] / (365.25 / 12), 1.0)
    columns["violations_per_month"] = np.round(columns["violations_term"] / months_served, 3)
    return {name: columns[name] for name in features_for(stage)}


def _column(table: Table, name: str, dtype: Any = None) -> np.ndarray:
    """One column of ``table`` as a numpy array (missing numbers as NaN when ``dtype`` is float)."""
    col = table[name]
    if isinstance(col, pd.Series):
        if dtype is float:
            return col.to_numpy(dtype=float, na_value=np.nan)
        return col.to_numpy(dtype=dtype)
    return np.asarray(col, dtype=dtype)


class _PersonRows:
    """The persons' columns in assessment order, taken column by column as the features need them."""

    def __init__(self, persons: Table, rows: np.ndarray | None) -> None:
        self._persons, self._rows = persons, rows  # rows None: the persons are in assessment order

    def __call__(self, name: str, dtype: Any = None) -> np.ndarray:
        col = _column(self._persons, name, dtype)
        return col if self._rows is None else col[self._rows]


def _positions_in(keys: ArrayLike, values: ArrayLike) -> np.ndarray:
    """Position of each of ``values`` in ``keys`` (-1 where absent); a dict for a request's few keys."""
    if len(keys) <= 64:
        position = {k: i for i, k in enumerate(_as_list(keys))}
        if len(position) != len(keys):
            raise ValueError(f"repeated keys among {_as_list(keys)}: each person_id must be listed once")
        return np.fromiter((position.get(v, -1) for v in _as_list(values)), dtype=np.intp, count=len(values))
    return pd.Index(keys).get_indexer(pd.Index(values))


def _as_list(values: ArrayLike) -> list[Any]:
    return values.tolist() if hasattr(values, "tolist") else list(values)


def _static_columns(people: _PersonRows, as_of: np.ndarray) -> dict[str, np.ndarray | pd.Categorical]:
    start, end = (people(c, "datetime64[ns]") for c in ("supervision_start", "supervision_end"))
    term_days = (end - start) / DAY
    served = np.maximum((as_of - start) / DAY, 0.0)
    cols: dict[str, np.ndarray | pd.Categorical] = {
        "age": (as_of - people("birth_date", "datetime64[ns]")) / DAY / 365.25,
        "sentence_months": people("sentence_months", float),
        "term_months": np.round(term_days / (365.25 / 12), 1),
        "prior_convictions": people("prior_convictions", float),
        "prior_supervisions": people("prior_supervisions", float),
        "local": people("local", float),
        "days_since_start": served,
        "share_served": np.minimum(served / term_days, 1.0),
    }
    for name, vocab in CATEGORICAL_COLUMNS.items():
        cols[name] = categorical(people(name, object), vocab)
    for flag in INTAKE_FLAGS:
        cols[flag] = people(flag, float)
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
        codes: np.ndarray = np.array([position.get(str(v), -1) for v in values], dtype=np.int8)
    else:
        codes = dtype.categories.get_indexer(pd.Index(values.astype(str)))
    return pd.Categorical.from_codes(codes, dtype=dtype)


def category_values(values: pd.Categorical | pd.Series | np.ndarray) -> np.ndarray:
    """A column's values as Python objects (NaN where missing); for a categorical, from its codes.

    Cheaper than ``np.asarray(categorical, dtype=object)`` on a few rows, where pandas' string
    categories cost ~0.1 ms a call.
    """
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        values = values.array
    if isinstance(values, pd.Categorical):
        objects: np.ndarray = category_objects(values.dtype)[values.codes]
        return objects
    return np.asarray(values, dtype=object)


_CATEGORY_OBJECTS: dict[int, tuple[pd.CategoricalDtype, np.ndarray]] = {}


def category_objects(dtype: pd.CategoricalDtype) -> np.ndarray:
    """The categories of ``dtype`` as an object array, plus NaN last (where code -1, missing, points).

    Cached by identity, not by equality: pandas calls two unordered dtypes with the same
    categories in another order equal, but their codes mean different things. The pipeline's
    dtypes (:func:`category_dtype`) are built once, so they always hit.
    """
    hit = _CATEGORY_OBJECTS.get(id(dtype))
    if hit is None or hit[0] is not dtype:
        if len(_CATEGORY_OBJECTS) >= 256:
            _CATEGORY_OBJECTS.clear()
        hit = _CATEGORY_OBJECTS[id(dtype)] = (dtype, np.append(np.asarray(dtype.categories, dtype=object), np.nan))
    return hit[1]


@functools.cache
def _positions(vocab: type[Labelled]) -> dict[str, int]:
    return {code: i for i, code in enumerate(vocab.codes())}


def _event_columns(
    events: Table, person_ids: np.ndarray, as_of: np.ndarray, people: _PersonRows
) -> dict[str, np.ndarray]:
    """Counts, recency, grades and points from events dated before each ``as_of``."""
    n = len(person_ids)
    ev = _events_before(events, person_ids, as_of)
    row, age, etype = ev["row"], ev["age_days"], ev["event_code"]
    in_term = ev["date"] >= people("supervision_start", "datetime64[ns]")[row]
    cols: dict[str, np.ndarray] = {}
    for fam in EVENT_FAMILIES:
        mask = _member(*fam.event_types)[etype]
        r, a, t = row[mask], age[mask], in_term[mask]
        for window in fam.windows:
            hit = t if window is None else a <= window
            cols[f"{fam.name}_{window_suffix(window)}"] = np.bincount(r[hit], minlength=n).astype(float)
        if fam.recency:
            last = np.full(n, np.nan)
            if len(r):
                np.fmin.at(last, r, a.astype(float))
            cols[f"{fam.name}_days_since"] = last
    cols.update(_grade_and_points(ev, n))
    return cols


def _events_before(events: Table, person_ids: np.ndarray, as_of: np.ndarray) -> dict[str, np.ndarray]:
    """Pair each event with the assessments of its person; keep those dated before ``as_of``."""
    event_person = events["person_id"]
    if len(set(person_ids.tolist())) == len(person_ids):
        row = _positions_in(person_ids, event_person)
        keep = row >= 0
        ev_idx = np.flatnonzero(keep)
        row = row[keep]
    else:  # several assessments per person: one pair per (event, assessment)
        left = pd.DataFrame({"person_id": _column(events, "person_id"), "ev": np.arange(len(event_person))})
        right = pd.DataFrame({"person_id": person_ids, "row": np.arange(len(person_ids))})
        pairs = left.merge(right, on="person_id")
        ev_idx, row = pairs["ev"].to_numpy(), pairs["row"].to_numpy()
    dates = _column(events, "date", "datetime64[ns]")[ev_idx]
    age_days = (as_of[row] - dates) / DAY
    before = age_days > 0
    ev_idx, row = ev_idx[before], row[before]
    return {
        "row": row,
        "age_days": age_days[before],
        "date": dates[before],
        "event_code": _event_codes(events["event_type"])[ev_idx],
        "value": _column(events, "value", float)[ev_idx],
    }


def _grade_and_points(ev: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    row, age, etype, value = ev["row"], ev["age_days"], ev["event_code"], ev["value"]
    grade_of_code = np.full(len(EventType), np.nan)
    grade_of_code[_codes(*GRADE_VALUES)] = list(GRADE_VALUES.values())
    is_grade = _member(*GRADE_VALUES)[etype]
    grade_value = grade_of_code[etype[is_grade]]
    is_points = etype == _codes(EventType.MONTHLY_POINTS)[0]
    recent_points = is_points & (age <= 90)
    sums = np.bincount(row[recent_points], weights=value[recent_points], minlength=n)
    counts = np.bincount(row[recent_points], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_points = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return {
        "grade_latest": _latest(row[is_grade], age[is_grade], grade_value, n),
        "grade_unqualified_n": np.bincount(row[etype == _codes(EventType.GRADE_UNQUALIFIED)[0]], minlength=n).astype(
            float
        ),
        "grade_good_n": np.bincount(row[etype == _codes(EventType.GRADE_GOOD)[0]], minlength=n).astype(float),
        "points_latest": _latest(row[is_points], age[is_points], value[is_points], n),
        "points_mean_90d": mean_points,
    }


_EVENT_CODE = {t: i for i, t in enumerate(EventType)}


def _codes(*types: EventType) -> np.ndarray:
    """Integer codes of event types (their position in the vocabulary, as in :func:`category_dtype`)."""
    return np.array([_EVENT_CODE[t] for t in types])


@functools.cache
def _member(*types: EventType) -> np.ndarray:
    """Look-up table: ``_member(*types)[codes]`` tells which codes are of ``types`` (code -1, unknown, is not)."""
    table = np.zeros(len(EventType) + 1, dtype=bool)  # the extra last entry answers for code -1
    table[_codes(*types)] = True
    return table


def _event_codes(event_type: pd.Series | np.ndarray) -> np.ndarray:
    """Integer code of each event's type, reusing a categorical column's codes when they agree."""
    dtype = category_dtype(EventType)
    if isinstance(event_type, pd.Series) and isinstance(event_type.dtype, pd.CategoricalDtype):
        event_type = event_type.array
    if isinstance(event_type, pd.Categorical):
        remap = dtype.categories.get_indexer(event_type.categories.astype(str))
        return np.append(remap, -1)[event_type.codes]  # code -1 (missing) stays -1
    values = np.asarray(event_type, dtype=object)
    if len(values) <= 1000:  # a request's events: a dict look-up beats building an index engine
        position = _positions(EventType)
        return np.fromiter((position.get(str(v), -1) for v in values.tolist()), dtype=np.intp, count=len(values))
    return dtype.categories.get_indexer(pd.Index(values.astype(str)))


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


__all__ = [
    "CATALOG",
    "assessment_dates",
    "build_features",
    "category_objects",
    "category_values",
    "feature_columns",
    "feature_names",
]
