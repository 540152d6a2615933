"""Stored requests answered again without validating them anew (serving.scoring: ``trusted_stored_request``,
``stored_request_columns``, ``Scorer.brief``): the same columns, codes and numbers as the validated path."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from service_support import ServiceModels

from features.vocab import Stage
from models.tier_policy import TierPolicy
from serving.scoring import (
    RequestColumns,
    Scorer,
    ServedModel,
    request_columns,
    requests_from_tables,
    stored_request_columns,
    trusted_stored_request,
)
from serving.scoring.schemas import ScoreRequest


def _stored(body: dict[str, Any]) -> dict[str, Any]:
    """A request as the trail gives it back: the validated request's JSON form, through JSON text."""
    out: dict[str, Any] = json.loads(json.dumps(ScoreRequest.model_validate(body).model_dump(mode="json")))
    return out


@pytest.fixture(scope="module")
def stored(service_models: ServiceModels) -> dict[Stage, list[dict[str, Any]]]:
    """Up to 150 stored requests per stage (assessed by today), half in English, a third with the stage's date as
    an explicit as_of, and a third of the intake ones assessed late (three months after the start)."""
    tables, _ = service_models
    out: dict[Stage, list[dict[str, Any]]] = {}
    for stage in Stage:
        bodies = []
        for i, body in enumerate(requests_from_tables(tables.persons.head(600), tables.events, stage)):
            try:
                request = ScoreRequest.model_validate(body)
            except ValidationError as exc:  # assessed after today: never stored
                assert exc.errors()[0]["type"] == "as_of_in_future"
                continue
            body["lang"] = "en" if i % 2 else "zh"
            if i % 3 == 0:
                body["as_of"] = request.assessment_date.isoformat()
            elif i % 3 == 1 and stage is Stage.INTAKE:  # assessed late: past the first two months' rule
                late = request.assessment_date + dt.timedelta(days=90)
                if late <= min(request.person.supervision_end, dt.date.today()):
                    body["as_of"] = late.isoformat()
            bodies.append(_stored(body))
        out[stage] = bodies[:150]
    return out


def _scorer(service_models: ServiceModels, stage: Stage, *, baseline: bool = False) -> Scorer:
    fit = service_models[1][stage]
    model = fit.baseline if baseline else fit.model
    return Scorer({stage: ServedModel(stage, model, f"reoffence-{stage.value}", "7", "test", {})}, TierPolicy.load())


def _same_columns(a: RequestColumns, b: RequestColumns) -> None:
    for name, (x, y) in {
        **{f"persons.{k}": (a.persons[k], b.persons[k]) for k in a.persons},
        **{f"events.{k}": (a.events[k], b.events[k]) for k in a.events},
        **{f"assessments.{k}": (a.assessments[k], b.assessments[k]) for k in a.assessments},
    }.items():
        assert x.dtype == y.dtype, name
        if x.dtype.kind == "f":
            np.testing.assert_array_equal(x, y, err_msg=name)
        else:
            assert x.tolist() == y.tolist(), name
    assert a.persons.keys() == b.persons.keys() and a.events.keys() == b.events.keys()
    assert (a.stages, a.langs, a.person_ids) == (b.stages, b.langs, b.person_ids)
    assert (a.supervision_starts, a.assessment_dates) == (b.supervision_starts, b.assessment_dates)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_stored_requests_give_the_columns_of_the_same_requests_validated(
    stored: dict[Stage, list[dict[str, Any]]], data: st.DataObject
) -> None:
    """For every batch of stored requests (any stages, languages, dates given or not, in any order)."""
    pool = [b for bodies in stored.values() for b in bodies]
    batch = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=40))
    trusted = [trusted_stored_request(b) for b in batch]
    assert trusted == batch  # a stored request in the schema's shape is taken as it is
    _same_columns(stored_request_columns(trusted), request_columns([ScoreRequest.model_validate(b) for b in batch]))


@pytest.mark.parametrize("stage", list(Stage))
def test_brief_answers_are_the_full_answers_codes_and_numbers(
    service_models: ServiceModels, stored: dict[Stage, list[dict[str, Any]]], stage: Stage
) -> None:
    bodies = stored[stage]
    requests = [ScoreRequest.model_validate(b) for b in bodies]
    for scorer in (_scorer(service_models, stage), _scorer(service_models, stage, baseline=True)):
        full = [s.assessment for s in scorer.score(requests)]
        brief = scorer.brief(stored_request_columns([trusted_stored_request(b) for b in bodies]))
        assert brief == scorer.brief(request_columns(requests))
        for a, b in zip(full, brief, strict=True):
            assert b.probability == a.probability and b.band == a.band.code
            assert (b.tier, b.basis, b.rule_id) == (a.tier.tier.code, a.tier.basis, a.tier.rule_id)
            assert a.tier.tier_by_risk is not None and b.tier_by_risk == a.tier.tier_by_risk.code
            assert b.reasons == tuple((r.feature, r.points) for r in a.reasons)
    # the intake's time-limited rule decides some answers, and gives way to the band in others
    if stage is Stage.INTAKE:
        assert {b.basis for b in brief} == {"rule", "band"}


def test_a_brief_batch_is_of_one_served_stage(
    service_models: ServiceModels, stored: dict[Stage, list[dict[str, Any]]]
) -> None:
    scorer = _scorer(service_models, Stage.MIDTERM)
    assert scorer.brief(stored_request_columns([])) == []
    mixed = stored_request_columns([stored[Stage.MIDTERM][0], stored[Stage.RELEASE][0]])
    with pytest.raises(ValueError, match="one stage"):
        scorer.brief(mixed)
    from serving.scoring import NoModelError

    with pytest.raises(NoModelError):
        scorer.brief(stored_request_columns(stored[Stage.RELEASE][:2]))


def test_a_stored_request_out_of_the_schemas_shape_is_validated_in_full(
    stored: dict[Stage, list[dict[str, Any]]],
) -> None:
    body = stored[Stage.MIDTERM][0]
    assert body["events"], "a request with events"
    # a category no longer in the vocabulary: refused, naming the field
    gone = json.loads(json.dumps(body))
    gone["events"][0]["event_type"] = "telegram_received"
    with pytest.raises(ValidationError) as err:
        trusted_stored_request(gone)
    assert err.value.errors()[0]["loc"] == ("events", 0, "event_type")
    # a field the schema no longer has
    extra = json.loads(json.dumps(body))
    extra["person"]["shoe_size"] = 42
    with pytest.raises(ValidationError) as err:
        trusted_stored_request(extra)
    assert err.value.errors()[0]["loc"] == ("person", "shoe_size")
    # a value of another kind that the schema accepts: validated, and given in its normal form
    loose = json.loads(json.dumps(body))
    loose["person"]["prior_convictions"] = str(body["person"]["prior_convictions"])
    assert trusted_stored_request(loose) == body
    # what a stored request may leave out takes the schema's default without validation
    short = {k: v for k, v in body.items() if k not in ("lang", "as_of", "events")}
    assert trusted_stored_request(short) == short
    (columns,) = [stored_request_columns([short])]
    assert columns.langs == ["zh"] and len(columns.events["row"]) == 0
    assert columns.assessment_dates == [ScoreRequest.model_validate(short).assessment_date]
