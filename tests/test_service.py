"""The scoring service in-process: every endpoint for every role, bad input, audit trail, explanations."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from service_support import ROLES, ServiceModels, headers, in_process_service, write_auth
from starlette.testclient import TestClient

from features.schema import PERSON_COLUMNS
from features.vocab import Stage
from serving.scoring import requests_from_tables
from serving.scoring.schemas import PersonRecord

Bodies = dict[Stage, list[dict[str, Any]]]  # the ``bodies`` fixture: score requests by stage

ENDPOINTS = {  # route -> the role allowed to call it
    "/score": "caseworker",
    "/score_batch": "caseworker",
    "/assessment": "auditor",
    "/person_assessments": "auditor",
    "/verify": "auditor",
    "/models": "modeler",
}


@pytest.fixture()
def home(tmp_path: Path, service_models: ServiceModels) -> Path:
    """Each test's own RISK_HOME: its own audit trail, keys and checkpoints."""
    write_auth(tmp_path)
    return tmp_path


@pytest.fixture()
def client(home: Path) -> Iterator[TestClient]:
    with in_process_service(home) as c:
        yield c


@pytest.fixture(scope="module")
def bodies(service_models: ServiceModels) -> Bodies:
    tables, _ = service_models
    people = tables.persons.head(40)
    return {stage: requests_from_tables(people, tables.events, stage, lang="en") for stage in Stage}


@pytest.fixture()
def scored(client: TestClient, bodies: Bodies) -> dict[str, Any]:
    r = client.post("/score", json=bodies[Stage.MIDTERM][3], headers=headers("caseworker"))
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def audit_count(home: Path) -> int:
    with sqlite3.connect(home / "audit.db") as db:
        count: int = db.execute("select count(*) from assessments").fetchone()[0]
        return count


def valid_body(route: str, bodies: Bodies, scored: dict[str, Any]) -> dict[str, Any]:
    return {
        "/score": bodies[Stage.INTAKE][0],
        "/score_batch": {"records": bodies[Stage.RELEASE][:3]},
        "/assessment": {"assessment_id": scored["assessment_id"]},
        "/person_assessments": {"person_id": scored["person_id"]},
        "/verify": {},
        "/models": {},
    }[route]


@pytest.mark.parametrize("route", ENDPOINTS)
@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_only_its_endpoints(
    client: TestClient, bodies: Bodies, scored: dict[str, Any], route: str, role: str
) -> None:
    r = client.post(route, json=valid_body(route, bodies, scored), headers=headers(role))
    if ENDPOINTS[route] == role:
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 403
        assert role in r.json()["error"]


@pytest.mark.parametrize("route", ENDPOINTS)
def test_no_or_unknown_token_is_401(client: TestClient, route: str) -> None:
    r = client.post(route, json={})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = client.post(route, json={}, headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401 and "not-a-token" not in r.text


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz"])  # /metrics: live-server test
def test_platform_endpoints_stay_open(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


def test_score_answers_with_calibrated_probability_tier_and_reasons(
    scored: dict[str, Any], service_models: ServiceModels
) -> None:
    _, _fits = service_models
    a = scored
    assert 0 < a["probability"] < 1 and a["stage"]["code"] == "midterm" and a["horizon_months"] == 12
    assert a["band"]["code"] in ("low", "medium", "high") and a["tier"]["tier"]["code"] in ("strict", "ordinary")
    assert a["tier"]["basis"] in ("band", "rule") and a["tier"]["text"]
    if a["tier"]["basis"] == "band":
        assert f"{a['band']['label']} band" in a["tier"]["text"] and "%" in a["tier"]["text"]
    raising = [r for r in a["reasons"] if r["direction"] == "raises"]
    lowering = [r for r in a["reasons"] if r["direction"] == "lowers"]
    assert 1 <= len(raising) <= 4 and len(lowering) <= 2 and a["reasons"] == raising + lowering
    assert [r["contribution"] for r in raising] == sorted((r["contribution"] for r in raising), reverse=True)
    assert all(r["contribution"] > 0 for r in raising) and all(r["contribution"] < 0 for r in lowering)
    assert all(r["text"] and r["label"] for r in a["reasons"])
    assert a["model"] == {"name": "reoffence-midterm", "version": "7", "bento_tag": a["model"]["bento_tag"]}
    assert a["explanation"]["scale"] == "log-odds"


def test_contributions_add_up_to_the_boosters_raw_score(
    client: TestClient,
    scored: dict[str, Any],
    service_models: ServiceModels,
    bodies: Bodies,
) -> None:
    """Additivity: base value + every contribution = the booster's raw score for this person."""
    stored = client.post(
        "/assessment", json={"assessment_id": scored["assessment_id"]}, headers=headers("auditor")
    ).json()
    e = stored["explanation"]
    total = e["base_value"] + sum(e["contributions"].values())
    assert total == pytest.approx(scored["explanation"]["raw_score"], abs=1e-9)
    _, fits = service_models
    from features.labels import make_stage_frame  # the booster's own raw score on the training pipeline

    tables, _ = service_models
    frame = make_stage_frame(tables, Stage.MIDTERM)
    pid = bodies[Stage.MIDTERM][3]["person"]["person_id"]
    row = frame.X[(frame.meta["person_id"] == pid).to_numpy()]
    if len(row):  # the person is labelled at midterm: compare with the model on the training features
        assert fits[Stage.MIDTERM].model.raw_score(row)[0] == pytest.approx(total, abs=1e-9)
        assert fits[Stage.MIDTERM].model.predict_proba(row)[0] == pytest.approx(scored["probability"], abs=1e-12)


def test_reasons_in_chinese(client: TestClient, bodies: Bodies) -> None:
    body = dict(bodies[Stage.RELEASE][5], lang="zh")
    a = client.post("/score", json=body, headers=headers("caseworker")).json()
    assert a["stage"]["label"] == "解矫评估" and a["tier"]["tier"]["label"] in ("严管", "普管")
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in r["text"]) for r in a["reasons"])


def test_batch_and_single_give_identical_answers(client: TestClient, bodies: Bodies) -> None:
    records = bodies[Stage.MIDTERM][:6] + bodies[Stage.INTAKE][:3]
    batch = client.post("/score_batch", json={"records": records}, headers=headers("caseworker")).json()
    assert batch["count"] == len(records)
    volatile = {"assessment_id", "assessed_at"}
    for body, from_batch in zip(records, batch["assessments"], strict=True):
        single = client.post("/score", json=body, headers=headers("caseworker")).json()
        assert {k: v for k, v in single.items() if k not in volatile} == {
            k: v for k, v in from_batch.items() if k not in volatile
        }


def test_auditor_sees_exactly_what_was_returned(client: TestClient, scored: dict[str, Any]) -> None:
    s = client.post("/assessment", json={"assessment_id": scored["assessment_id"]}, headers=headers("auditor")).json()
    returned = dict(scored, person_id=s["person_key"])  # the stored copy keys the person id
    assert s["response"] == returned
    assert s["request"]["person"]["person_id"] == s["person_key"] != scored["person_id"]
    assert s["model_name"] == "reoffence-midterm" and s["model_version"] == "7" and s["actor"] == "caseworker-user"
    assert set(s["explanation"]["contributions"]) == set(s["explanation"]["features"])
    by_person = client.post(
        "/person_assessments", json={"person_id": scored["person_id"]}, headers=headers("auditor")
    ).json()
    assert scored["assessment_id"] in [x["assessment_id"] for x in by_person["assessments"]]
    assert (
        client.post("/assessment", json={"assessment_id": "no-such-id"}, headers=headers("auditor")).status_code == 404
    )


def test_override_route_is_gone(client: TestClient, scored: dict[str, Any]) -> None:
    """Tier changes are decisions now (serving/cases); the old route answers 404, its records stay readable."""
    r = client.post(
        "/override",
        json={
            "assessment_id": scored["assessment_id"],
            "tier": "strict",
            "reason": "home visit: see case note 2024-117",
        },
        headers=headers("caseworker"),
    )
    assert r.status_code == 404


def _bad_requests(body: dict[str, Any]) -> dict[str, tuple[dict[str, Any], str]]:
    person = body["person"]
    late = {"date": "2099-01-01", "event_type": "warning"}
    return {
        "wrong type": (dict(body, person=dict(person, prior_convictions="many")), "prior_convictions"),
        "unknown category": (dict(body, person=dict(person, offence="piracy")), "offence"),
        "unknown event type": (dict(body, events=[{"date": "2020-01-01", "event_type": "party"}]), "event_type"),
        "event after as_of": (dict(body, events=[*body["events"], late]), "after as_of"),
        "event before birth": (
            dict(body, events=[{"date": "1900-01-01", "event_type": "warning"}]),
            "before person.birth_date",
        ),
        "end before start": (dict(body, person=dict(person, supervision_end="1999-01-01")), "supervision_end"),
        "missing field": ({k: v for k, v in body.items() if k != "stage"}, "stage"),
        "unknown field": (dict(body, colour="red"), "colour"),
    }


@pytest.mark.parametrize("case", list(_bad_requests({"person": {}, "events": []})))
def test_bad_input_is_refused_with_the_field_and_nothing_stored(
    client: TestClient, home: Path, bodies: Bodies, case: str
) -> None:
    body, needle = _bad_requests(bodies[Stage.MIDTERM][1])[case]
    before = audit_count(home)
    r = client.post("/score", json=body, headers=headers("caseworker"))
    assert r.status_code == 400, r.text
    assert needle in r.text
    batch = client.post(
        "/score_batch", json={"records": [bodies[Stage.MIDTERM][2], body]}, headers=headers("caseworker")
    )
    assert batch.status_code == 400 and "records" in batch.text
    assert audit_count(home) == before


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


@pytest.mark.parametrize("case", list(_bad_requests({"person": {}, "events": []})))
def test_a_refusal_with_lang_zh_is_in_chinese_with_the_same_field_paths(
    client: TestClient, home: Path, bodies: Bodies, case: str
) -> None:
    body, _ = _bad_requests(bodies[Stage.MIDTERM][1])[case]
    before = audit_count(home)
    english = client.post("/score", json=dict(body, lang="en"), headers=headers("caseworker"))
    chinese = client.post("/score", json=dict(body, lang="zh"), headers=headers("caseworker"))
    assert english.status_code == chinese.status_code == 400
    en, zh = english.json(), chinese.json()
    assert [(d["loc"], d["type"]) for d in zh["detail"]] == [(d["loc"], d["type"]) for d in en["detail"]]
    assert _has_chinese(zh["error"]) and all(_has_chinese(d["msg"]) for d in zh["detail"])
    assert not _has_chinese(english.text)
    batch = client.post(
        "/score_batch",
        json={"records": [dict(bodies[Stage.MIDTERM][2], lang="zh"), dict(body, lang="zh")]},
        headers=headers("caseworker"),
    )
    assert batch.status_code == 400 and all(d["loc"][:2] == ["records", 1] for d in batch.json()["detail"])
    assert all(_has_chinese(d["msg"]) for d in batch.json()["detail"])
    assert audit_count(home) == before


def test_a_proposal_refusal_follows_accept_language(client: TestClient) -> None:
    body = {"person_id": "S1", "to_tier": "lenient", "reason_code": "other", "reason": "ok", "assessment_id": "x"}
    zh = client.post("/cases/propose", json=body, headers={**headers("caseworker"), "Accept-Language": "zh-CN"})
    assert zh.status_code == 400 and {tuple(d["loc"]) for d in zh.json()["detail"]} == {("to_tier",), ("reason",)}
    assert "取值不在允许范围内，应为：strict、ordinary" in zh.text and "至少应有5个字符" in zh.text
    en = client.post("/cases/propose", json=dict(body, lang="en"), headers=headers("caseworker"))
    assert "Input should be" in en.text


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_refused_input_is_logged_by_field_never_by_value(client: TestClient, bodies: Bodies) -> None:
    """BentoML logs a failed validation at ERROR with a traceback quoting the input; the service keeps
    one WARNING naming the fields, so no birth date, category or record reaches the server log."""
    person = dict(
        bodies[Stage.MIDTERM][1]["person"],
        person_id="SECRET-PERSON-7",
        birth_date="1990-13-45",
        offence="piracy",
        **{"SECRET-KEY-9": 1},
    )
    # the logger BentoML logs a failed request on (serving.api's BentoML adapter installs the filter there)
    logger, handler = logging.getLogger("bentoml._internal.server.http_app"), _Records()
    logger.addHandler(handler)
    try:
        r = client.post("/score", json=dict(bodies[Stage.MIDTERM][1], person=person), headers=headers("caseworker"))
        late = dict(bodies[Stage.MIDTERM][2], events=[{"date": "2099-01-01", "event_type": "warning"}])
        late["person"] = dict(late["person"], person_id="SECRET-PERSON-8")
        r_late = client.post("/score", json=late, headers=headers("caseworker"))
    finally:
        logger.removeHandler(handler)
    assert r.status_code == 400 and "birth_date" in r.text and "offence" in r.text  # the caller is told
    assert r_late.status_code == 400
    text = "\n".join(logging.Formatter().format(rec) for rec in handler.records)
    assert [rec.levelname for rec in handler.records] == ["WARNING", "WARNING"]
    assert "person.<unknown field>, person.birth_date, person.offence" in text and "/score [POST]" in text
    assert "invalid field(s): request" in text  # the point-in-time check is on the whole request
    for value in ("1990-13-45", "piracy", "SECRET-PERSON", "SECRET-KEY", "2099-01-01", "Traceback"):
        assert value not in text


def test_a_validation_error_while_answering_stays_an_error_with_its_traceback() -> None:
    """Only the request schemas' errors are refused input; one raised building an answer is a server fault."""
    import sys

    from pydantic import ValidationError

    from serving.api import RefusedInputLogFilter
    from serving.scoring.schemas import Assessment

    try:
        Assessment.model_validate({"probability": 2.0})
    except ValidationError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "bentoml", logging.ERROR, __file__, 1, "Exception on %s [%s]", ("/score", "POST"), exc_info
    )
    assert RefusedInputLogFilter({"ScoreRequestIODescriptor"}).filter(record)
    assert record.levelname == "ERROR" and record.exc_info is exc_info
    assert "probability" in logging.Formatter().format(record)


def test_empty_and_oversize_batches_are_refused(
    client: TestClient, home: Path, bodies: Bodies, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = audit_count(home)
    assert client.post("/score_batch", json={"records": []}, headers=headers("caseworker")).status_code == 400
    from serving.settings import get_settings

    limit = get_settings().max_batch
    r = client.post(
        "/score_batch", json={"records": [bodies[Stage.INTAKE][0]] * (limit + 1)}, headers=headers("caseworker")
    )
    assert r.status_code == 413 and str(limit) in r.json()["error"]
    assert audit_count(home) == before


def test_verify_finds_an_edited_and_a_deleted_record(client: TestClient, home: Path, bodies: Bodies) -> None:
    for body in bodies[Stage.INTAKE][10:14]:
        client.post("/score", json=body, headers=headers("caseworker"))
    ok = client.post("/verify", json={}, headers=headers("auditor")).json()
    assert ok["ok"] and ok["checked"] >= 4
    with sqlite3.connect(home / "audit.db") as db:
        seq, original = db.execute(
            "select seq, response_json from assessments order by seq desc limit 1 offset 1"
        ).fetchone()
        db.execute(
            "update assessments set response_json = replace(response_json, 'probability', 'probabilitx') where seq = ?",
            (seq,),
        )
    edited = client.post("/verify", json={}, headers=headers("auditor")).json()
    assert not edited["ok"] and "edited" in edited["problem"]
    with sqlite3.connect(home / "audit.db") as db:
        db.execute("update assessments set response_json = ? where seq = ?", (original, seq))
    assert client.post("/verify", json={}, headers=headers("auditor")).json()["ok"]
    with sqlite3.connect(home / "audit.db") as db:
        first_id = db.execute("select assessment_id from assessments where seq = ?", (seq - 1,)).fetchone()[0]
        db.execute("delete from overrides where assessment_id = ?", (first_id,))
        db.execute("delete from assessments where seq = ?", (seq - 1,))
    deleted = client.post("/verify", json={}, headers=headers("auditor")).json()
    assert not deleted["ok"] and deleted["first_broken"]


def test_forged_records_are_never_signed_by_verify_or_at_shutdown(home: Path, bodies: Bodies) -> None:
    """Rows appended by someone who knows the hash recipe (the service stopped or running): ``/verify``
    names the first one and signs nothing, nor does the shutdown hook; the refusal is in the answer."""
    from trail_support import rewrite, rows_of

    stream = home / "checkpoints" / "checkpoints.jsonl"
    url = f"sqlite:///{home / 'audit.db'}"
    with in_process_service(home, RISK_CHECKPOINT_INTERVAL_S="0") as client:
        for body in bodies[Stage.INTAKE][:3]:
            client.post("/score", json=body, headers=headers("caseworker"))
        ok = client.post("/verify", json={}, headers=headers("auditor")).json()
        assert ok["ok"] and ok["checkpoint"] and ok["key_id"] == ok["checkpoint"]["key_id"] and not ok["refused"]
    rows = rows_of(url, "assessments")  # the service stopped: two rows appended, copies of the last
    forged = [dict(rows[-1], assessment_id=str(uuid.uuid4()), record_sig=None) for _ in range(2)]
    rewrite(url, "assessments", [*rows, *forged])
    before = stream.read_text()
    with in_process_service(home, RISK_CHECKPOINT_INTERVAL_S="0") as client:
        answer = client.post("/verify", json={}, headers=headers("auditor")).json()
        assert not answer["ok"] and answer["first_broken"] == forged[0]["assessment_id"]
        assert "not written by the service" in answer["problem"] and answer["checkpoint"] is None
        assert answer["refused"] and answer["refused"][0]["first_broken"] == forged[0]["assessment_id"]
    assert stream.read_text() == before  # neither /verify nor the shutdown hook signed


def test_models_endpoint_describes_each_stage(client: TestClient) -> None:
    info = client.post("/models", json={}, headers=headers("modeler")).json()
    assert [m["stage"] for m in info["models"]] == ["intake", "midterm", "release"]
    assert all(m["model"]["version"] == "7" and m["trees"] > 0 for m in info["models"])
    assert info["policy_version"]


def test_openapi_page_lists_every_endpoint_with_schemas(client: TestClient) -> None:
    spec = client.get("/docs.json").json()
    for route in ENDPOINTS:
        op = spec["paths"][route]["post"]
        assert op.get("description") or op.get("summary"), route
        assert "requestBody" in op and "200" in op["responses"]
    schemas = spec["components"]["schemas"]
    assert any("example" in s for s in schemas.values())
    text = json.dumps(spec, ensure_ascii=False)  # the answer's new parts document themselves
    for needle in (
        "percentage points of risk",
        "log-odds contribution removed",
        "tier_by_risk",
        "rule_until",
        "tier_after_rule",
        "同阶段一般为0次",
    ):
        assert needle in text, needle


def test_intake_flag_fields_read_their_labels_from_the_vocabulary() -> None:
    from features.vocab import INTAKE_FLAGS
    from serving.scoring.schemas import PersonRecord

    for name, (zh, en) in INTAKE_FLAGS.items():
        assert PersonRecord.model_fields[name].description == f"{en} ({zh}), known at intake"


def test_person_record_carries_every_canonical_person_column() -> None:
    assert list(PersonRecord.model_fields) == PERSON_COLUMNS


def test_features_equal_the_training_pipeline(service_models: ServiceModels, bodies: Bodies) -> None:
    """Serving builds features with the training pipeline: same rows as make_stage_frame."""
    from features.labels import make_stage_frame
    from features.pipeline import build_features
    from serving.scoring import request_tables
    from serving.scoring.schemas import ScoreRequest

    tables, _ = service_models
    frame = make_stage_frame(tables, Stage.RELEASE)
    today = dt.date.today().isoformat()  # a release dated after today is refused: terms that have ended
    reqs = [ScoreRequest.model_validate(b) for b in bodies[Stage.RELEASE] if b["person"]["supervision_end"] <= today]
    X = build_features(*request_tables(reqs), stage=Stage.RELEASE)
    ids = [r.person.person_id for r in reqs]
    train = frame.X.set_index(frame.meta["person_id"].to_numpy())
    common = [i for i, pid in enumerate(ids) if pid in train.index]
    assert common
    served = X.iloc[common].reset_index(drop=True)
    trained = train.loc[[ids[i] for i in common]].reset_index(drop=True)
    num = [c for c in served.columns if served[c].dtype != "category"]
    np.testing.assert_allclose(served[num].to_numpy(float), trained[num].to_numpy(float), equal_nan=True)


def test_events_on_the_assessment_date_are_counted_but_not_used(client: TestClient, bodies: Bodies) -> None:
    """Point-in-time rule at the door: events dated on as_of are accepted, counted, and change nothing."""
    body = bodies[Stage.MIDTERM][9]
    as_of = max(e["date"] for e in body["events"]) if body["events"] else body["person"]["supervision_start"]
    before = [e for e in body["events"] if e["date"] < as_of]
    base = dict(body, as_of=as_of, events=before)
    same_day = dict(
        base,
        events=[*before, {"date": as_of, "event_type": "warning"}, {"date": as_of, "event_type": "police_penalty"}],
    )
    a = client.post("/score", json=base, headers=headers("caseworker")).json()
    b = client.post("/score", json=same_day, headers=headers("caseworker")).json()
    assert (a["events_used"], a["events_on_as_of"]) == (len(before), 0)
    assert (b["events_used"], b["events_on_as_of"]) == (len(before), 2)
    assert b["probability"] == a["probability"] and b["reasons"] == a["reasons"] and b["tier"] == a["tier"]


def test_reasons_rank_four_raising_then_two_lowering_and_skip_negligible_ones() -> None:
    from serving.scoring import MIN_CONTRIBUTION, reasons

    names = [
        "age",
        "points_mean_90d",
        "violations_per_month",
        "offence",
        "local",
        "absence_30d",
        "share_served",
        "grade_latest",
    ]
    values = [41.0, float("nan"), 0.25, "robbery", False, 0.0, 0.5, -0.0]
    contributions = [0.30, 0.10, 0.30, 0.05, MIN_CONTRIBUTION / 2, -0.20, -0.40, -0.30]
    got = reasons(names, contributions, values, "en")
    assert [r.feature for r in got] == [
        "age",
        "violations_per_month",
        "points_mean_90d",
        "offence",
        "share_served",
        "grade_latest",
    ]  # ties keep the features' order
    assert [r.direction for r in got] == ["raises"] * 4 + ["lowers"] * 2
    missing = got[2]
    assert (missing.value, missing.value_text) == (None, "none recorded")
    assert got[3].value == "robbery" and got[3].text == f"offence category: {got[3].value_text}"
    assert got[5].value == 0.0 and math.copysign(1.0, got[5].value) == 1.0  # -0.0 is answered as 0.0
    assert [r.contribution for r in got] == [0.30, 0.30, 0.10, 0.05, -0.40, -0.30]
    order = sorted(range(len(names)), key=lambda k: -contributions[k])  # stable, like the batch's argsort
    assert reasons(names, contributions, values, "en", order=order) == got
    assert reasons(names, [MIN_CONTRIBUTION / 2] * len(names), values, "zh") == []


def test_field_paths_are_written_as_the_messages_write_them() -> None:
    from serving.scoring.schemas import field_path

    assert field_path(("records", 2, "events", 3, "date")) == "records[2].events[3].date"
    assert field_path(["person", "offence"]) == "person.offence"
    assert (field_path(()), field_path((), whole="record")) == ("request", "record")
