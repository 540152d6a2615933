"""Score requests as the columns the feature pipeline reads, from validated requests or from the audit trail.

:func:`request_columns` takes validated :class:`~serving.scoring.schemas.ScoreRequest` objects (everything that
comes from a caller). :func:`stored_request_columns` takes requests read back from the audit trail as JSON
objects and builds the same columns without making a ``ScoreRequest`` of each: shadow replay answers a
hundred thousand stored requests again, and validating each one anew was half its time (per event, the
schema's date and point-in-time checks run in Python).

Why a stored request may skip validation: the service stores a request only after it validated it, and
stores it as that validated request's ``model_dump(mode="json")`` (``Scored.audit_fields``), so the JSON in the
trail is the normal form of a request that passed every check; the trail's hash chains and signed
checkpoints (``riskctl audit verify``) are what show it is unchanged since. What may have changed since is
this code: a field added or renamed, a category taken out of a vocabulary. :func:`trusted_stored_request`
therefore checks, cheaply, that a stored request still has exactly the schema's fields, with values of the
right kinds and codes of the current vocabularies, and validates in full any request that does not (the error
names the field). Nothing that does not come from the trail takes this path.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

import numpy as np

from features.schema import PERSON_COLUMNS
from features.vocab import Stage
from serving.scoring.schemas import EventRecord, PersonRecord, ScoreRequest, default_assessment_date


@dataclass(frozen=True)
class RequestColumns:
    """A batch of requests as columns (:func:`features.pipeline.feature_columns` reads ``persons``, ``events``
    and ``assessments`` like DataFrames) and what the answers need of each request, in the batch's order."""

    persons: dict[str, Any]
    events: dict[str, Any]
    assessments: dict[str, Any]
    stages: list[Stage]
    langs: list[str]
    person_ids: list[str]
    supervision_starts: list[dt.date]
    assessment_dates: list[dt.date]

    def __len__(self) -> int:
        return len(self.stages)

    def tables(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """``persons``, ``events`` and ``assessments`` (what :func:`~serving.scoring.request_tables` returns)."""
        return self.persons, self.events, self.assessments


_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def _column(values: list[Any], *, date: bool = False) -> np.ndarray:
    """A column as an array; dates as ``datetime64[ns]`` via their ordinals (numpy's own conversion is ~20x slower)."""
    if date or (values and isinstance(values[0], dt.date)):
        days = np.fromiter((d.toordinal() for d in values), dtype=np.int64, count=len(values)) - _EPOCH_ORDINAL
        return days.astype("datetime64[D]").astype("datetime64[ns]")
    return np.asarray(values, dtype=object if values and isinstance(values[0], str) else None)


def _row_keys(n: int) -> np.ndarray:
    """Each request's own row key (``r0``, ``r1``...): a batch may hold one person twice without mixing."""
    return np.array([f"r{i}" for i in range(n)], dtype=object)


def request_columns(requests: Sequence[ScoreRequest]) -> RequestColumns:
    """The columns of validated requests."""
    keys = _row_keys(len(requests))
    people = [req.person for req in requests]
    persons: dict[str, Any] = {col: _column([getattr(p, col) for p in people]) for col in PERSON_COLUMNS}
    persons["person_id"] = keys
    rows = np.repeat(np.arange(len(requests)), [len(req.events) for req in requests])
    evs = [e for req in requests for e in req.events]
    events = {
        "person_id": keys[rows],
        "date": _column([e.date for e in evs], date=True),
        "event_type": np.array([e.event_type for e in evs], dtype=object),  # StrEnum: str() is the code
        "value": np.array([np.nan if e.value is None else e.value for e in evs], dtype=float),
        "row": rows,
    }
    as_of = [r.assessment_date for r in requests]
    return RequestColumns(
        persons=persons,
        events=events,
        assessments={"person_id": keys, "as_of": _column(as_of, date=True)},
        stages=[Stage(r.stage) for r in requests],
        langs=[r.lang for r in requests],
        person_ids=[p.person_id for p in people],
        supervision_starts=[p.supervision_start for p in people],
        assessment_dates=as_of,
    )


def _kind(annotation: Any) -> Any:
    """What a stored value of a field with this annotation must be: a date, a vocabulary's codes, or a type."""
    if annotation is dt.date:
        return "date"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return frozenset(str(m.value) for m in annotation)
    if get_origin(annotation) is Literal:
        return frozenset(get_args(annotation))
    if annotation is bool:
        return bool
    if annotation in (int, float):
        return annotation
    return str


_PERSON_KINDS: dict[str, Any] = {name: _kind(f.annotation) for name, f in PersonRecord.model_fields.items()}
_EVENT_TYPES: frozenset[str] = _kind(EventRecord.model_fields["event_type"].annotation)
_REQUEST_FIELDS = frozenset(ScoreRequest.model_fields)
_EVENT_FIELDS = frozenset(EventRecord.model_fields)
_STAGES = frozenset(s.value for s in Stage)
_LANGS = _kind(ScoreRequest.model_fields["lang"].annotation)
#: a person's column types as :func:`request_columns` makes them (bool, int and float fields)
_DTYPES = {name: kind for name, kind in _PERSON_KINDS.items() if kind in (bool, int, float)}


def _is_date(value: Any) -> bool:
    return type(value) is str and len(value) == 10 and value[4] == "-" and value[7] == "-"


def _fits(value: Any, kind: Any) -> bool:
    if kind == "date":
        return _is_date(value)
    if isinstance(kind, frozenset):
        return value in kind
    if kind is float:
        return type(value) in (float, int)
    return type(value) is kind


def _in_shape(body: Any) -> bool:
    """Whether a stored request has exactly the schema's fields, with values of the right kinds and codes of the
    current vocabularies (not the schema's range, date and point-in-time checks: those held when it was stored)."""
    if not (isinstance(body, dict) and body.keys() <= _REQUEST_FIELDS and "person" in body and "stage" in body):
        return False
    person, events = body["person"], body.get("events", [])
    if not (isinstance(person, dict) and person.keys() == _PERSON_KINDS.keys() and type(events) is list):
        return False
    if not all(_fits(person[name], kind) for name, kind in _PERSON_KINDS.items()):
        return False
    as_of = body.get("as_of")
    if body["stage"] not in _STAGES or body.get("lang", "zh") not in _LANGS or not (as_of is None or _is_date(as_of)):
        return False
    for e in events:
        if not (type(e) is dict and e.keys() <= _EVENT_FIELDS and _is_date(e.get("date"))):
            return False
        value = e.get("value")
        if e.get("event_type") not in _EVENT_TYPES or not (value is None or type(value) in (float, int)):
            return False
    return True


def trusted_stored_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """A request read back from the audit trail, ready for :func:`stored_request_columns`.

    Returned as it is when it has the schema's shape (see the module's docstring for why its checks are not run
    again); otherwise validated in full as a :class:`~serving.scoring.schemas.ScoreRequest` and returned in its
    normal form, so a stored request the schema now refuses raises ``pydantic.ValidationError`` naming the field.
    Only for requests from the trail: anything else is validated as a ``ScoreRequest``.
    """
    if _in_shape(body):
        return dict(body)
    return ScoreRequest.model_validate(body).model_dump(mode="json")


def _dates(values: list[str]) -> np.ndarray:
    return np.array(values, dtype="datetime64[D]").astype("datetime64[ns]")


def stored_request_columns(bodies: Sequence[Mapping[str, Any]]) -> RequestColumns:
    """The columns of stored requests passed through :func:`trusted_stored_request`: the same columns
    :func:`request_columns` makes of the same requests validated."""
    n = len(bodies)
    keys = _row_keys(n)
    people = [b["person"] for b in bodies]
    persons: dict[str, Any] = {}
    for col in PERSON_COLUMNS:
        values = [p[col] for p in people]
        kind = _PERSON_KINDS[col]
        if kind == "date":
            persons[col] = _dates(values)
        elif col in _DTYPES:
            persons[col] = np.array(values, dtype=np.dtype(_DTYPES[col]))
        else:
            persons[col] = np.array(values, dtype=object)
    persons["person_id"] = keys
    evs = [b.get("events", []) for b in bodies]
    rows = np.repeat(np.arange(n), [len(e) for e in evs])
    flat = [e for es in evs for e in es]
    events = {
        "person_id": keys[rows],
        "date": _dates([e["date"] for e in flat]),
        "event_type": np.array([e["event_type"] for e in flat], dtype=object),
        "value": np.array([e.get("value") for e in flat], dtype=float),  # None -> NaN
        "row": rows,
    }
    fromiso = dt.date.fromisoformat
    stages = [Stage(b["stage"]) for b in bodies]
    starts = [fromiso(p["supervision_start"]) for p in people]
    as_of = [
        fromiso(b["as_of"])
        if b.get("as_of") is not None
        else default_assessment_date(stage, start, fromiso(p["supervision_end"]))
        for b, p, stage, start in zip(bodies, people, stages, starts, strict=True)
    ]
    return RequestColumns(
        persons=persons,
        events=events,
        assessments={"person_id": keys, "as_of": _column(as_of, date=True)},
        stages=stages,
        langs=[b.get("lang", "zh") for b in bodies],
        person_ids=[str(p["person_id"]) for p in people],
        supervision_starts=starts,
        assessment_dates=as_of,
    )
