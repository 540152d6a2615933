"""The caseworker's scoring form: the API's :class:`~serving.scoring.schemas.ScoreRequest`, field by field.

The form's fields are made from the request schema itself (enumerations become lists with
their zh/en labels, booleans check boxes, dates date fields), and what is posted is validated by
the same pydantic model as ``/score``: a refused field is shown beside its input, in the page's
language where the message is the console's own. Events are typed one a line:
``2024-05-10 report_missed`` or ``2024-08-31 monthly_points 72``.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError

from features.vocab import INTAKE_FLAGS, EventType, Labelled, Stage
from serving.console._i18n import Lang, text
from serving.scoring import message
from serving.scoring.schemas import PersonRecord, ScoreRequest, field_path

_LABELS: dict[str, tuple[str, str]] = {
    "person_id": ("人员编号", "Person id"),
    "sex": ("性别", "Sex"),
    "birth_date": ("出生日期", "Date of birth"),
    "education": ("文化程度", "Education"),
    "employment": ("入矫时就业状况", "Employment at intake"),
    "marital": ("婚姻状况", "Marital status"),
    "local": ("本地户籍", "Local resident"),
    "supervision_type": ("矫正类别", "Supervision type"),
    "offence": ("罪名类别", "Offence category"),
    "sentence_months": ("刑期（月）", "Sentence (months)"),
    "supervision_start": ("矫正开始日期", "Supervision start"),
    "supervision_end": ("矫正结束日期", "Supervision end"),
    "prior_convictions": ("前科次数", "Prior convictions"),
    "prior_supervisions": ("既往社区矫正次数", "Prior supervisions"),
}


@dataclass(frozen=True)
class FormField:
    """One input of the form."""

    name: str
    label: str
    kind: str  # select, checkbox, date, number, text
    options: list[tuple[str, str]] = field(default_factory=list)
    step: str = "1"


def person_fields(lang: Lang) -> list[FormField]:
    """The inputs of a person record, from :class:`PersonRecord`'s fields."""
    out = []
    for name, info in PersonRecord.model_fields.items():
        zh_en = _LABELS.get(name)
        if zh_en:
            label = zh_en[0] if lang == "zh" else zh_en[1]
        elif name in INTAKE_FLAGS:  # the vocabulary's own labels, not parsed back out of a description
            zh, en = INTAKE_FLAGS[name]
            label = zh if lang == "zh" else en
        else:
            label = name
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            options = [(m.value, m.label(lang) if isinstance(m, Labelled) else m.value) for m in annotation]
            out.append(FormField(name, label, "select", options))
        elif annotation is bool:
            out.append(FormField(name, label, "checkbox"))
        elif annotation is date:
            out.append(FormField(name, label, "date"))
        elif annotation in (int, float):
            out.append(FormField(name, label, "number", step="1" if annotation is int else "0.5"))
        else:
            out.append(FormField(name, label, "text"))
    return out


def stage_options(lang: Lang, *, unserved: Collection[Stage] = ()) -> list[tuple[str, str]]:
    """The stages as (code, label) choices; a stage no model serves says so in its label (it would get 503)."""
    return [(s.value, s.label(lang) + (text("stage_unserved", lang) if s in unserved else "")) for s in Stage]


def event_types(lang: Lang) -> list[tuple[str, str]]:
    return [(e.value, e.label(lang)) for e in EventType]


def parse_events(lines: str, lang: Lang = "en") -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Events from ``date type [value]`` lines; problems by field path (``events[2].date``)."""
    events: list[dict[str, Any]] = []
    problems: dict[str, str] = {}
    for i, line in enumerate(x for x in lines.splitlines() if x.strip()):
        parts = line.replace(",", " ").split()
        if len(parts) not in (2, 3):
            problems[f"events[{i}]"] = text("event_line", lang, line=i + 1, got=repr(line.strip()))
            events.append({})
            continue
        event: dict[str, Any] = {"date": parts[0], "event_type": parts[1]}
        if len(parts) == 3:
            event["value"] = parts[2]
        events.append(event)
    return events, problems


def score_request(form: Mapping[str, Any], *, lang: Lang) -> tuple[ScoreRequest | None, dict[str, str]]:
    """Validate a posted form with the API's own schema; returns the request or the problems by field."""
    person: dict[str, Any] = {}
    for f in person_fields(lang):
        raw = form.get(f.name)
        if f.kind == "checkbox":
            person[f.name] = raw == "on"
        elif raw not in (None, ""):
            person[f.name] = raw
    events, problems = parse_events(str(form.get("events") or ""), lang)
    body: dict[str, Any] = {"person": person, "events": events, "stage": form.get("stage"), "lang": lang}
    if form.get("as_of"):
        body["as_of"] = form.get("as_of")
    try:
        request = ScoreRequest.model_validate(body)
    except ValidationError as err:
        for e in err.errors(include_url=False):
            where = field_path(e["loc"])
            problems.setdefault(where, message(e, lang, path=False))
        return None, problems
    if problems:
        return None, problems
    return request, {}


def field_problem(problems: Mapping[str, str], name: str) -> str | None:
    """The problem of one person field (``person.birth_date``), if any."""
    return problems.get(f"person.{name}")
