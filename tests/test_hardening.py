"""The service against misuse (issue 15): tokens, ids, dates, limits, media types, metrics, files, OpenAPI."""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pandas as pd
import pytest
from service_support import ROLES, ServiceModels, headers, in_process_service, token, write_auth
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from test_combine import Recorder, submit_all

from features.schema import CaseTables, DataValidationError, validate_tables
from features.vocab import Stage
from serving.api import ROUTE_PERMISSIONS, BearerAuthMiddleware
from serving.audit import AuditStore
from serving.auth import (
    ROLE_PERMISSIONS,
    Permission,
    Role,
    TokenFile,
    hash_token,
    issue_token,
    load_or_create,
    revoke_tokens,
)
from serving.scoring import requests_from_tables


# ----------------------------------------------------------------------------- 1: token changes take effect
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_rotated_and_revoked_tokens_take_effect_without_restart(tmp_path: Path) -> None:
    path = write_auth(tmp_path)
    clock = Clock()
    tokens = TokenFile(path, clock=clock)
    assert tokens.authenticator().authenticate(f"Bearer {token('caseworker')}").user == "caseworker-user"
    new = issue_token(path, role=Role.CASEWORKER, user="caseworker-user")  # rotation
    clock.now += 0.5  # within the check interval the file is not even looked at
    assert tokens.authenticator().authenticate(f"Bearer {token('caseworker')}").role is Role.CASEWORKER
    clock.now += 0.6
    with pytest.raises(Exception, match="unknown or revoked"):
        tokens.authenticator().authenticate(f"Bearer {token('caseworker')}")
    assert tokens.authenticator().authenticate(f"Bearer {new}").user == "caseworker-user"
    assert revoke_tokens(path, user="caseworker-user") == 1
    clock.now += 1.0
    with pytest.raises(Exception, match="unknown or revoked"):
        tokens.authenticator().authenticate(f"Bearer {new}")


def test_an_unreadable_auth_file_keeps_the_last_good_tokens(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_auth(tmp_path)
    clock = Clock()
    tokens = TokenFile(path, clock=clock)
    path.write_text("{not json")
    clock.now += 2
    assert tokens.authenticator().authenticate(f"Bearer {token('auditor')}").role is Role.AUDITOR
    assert "could not be re-read" in caplog.text


# ----------------------------------------------------------------------------- the middleware on its own
def _echo_app() -> Starlette:
    async def echo(request: Request) -> JSONResponse:
        body = await request.body()
        return JSONResponse(
            {
                "method": request.method,
                "size": len(body),
                "body": json.loads(body) if body else None,
                "user": request.state.principal.user,
            }
        )

    return Starlette(
        routes=[
            Route("/score", echo, methods=["POST"]),
            Route("/verify", echo, methods=["POST"]),
            Route("/assessment", echo, methods=["POST"]),
        ]
    )


@pytest.fixture()
def gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    write_auth(tmp_path)
    monkeypatch.setenv("RISK_HOME", str(tmp_path))
    app = BearerAuthMiddleware(
        _echo_app(),
        permissions={
            "/score": Permission.SCORE,
            "/verify": Permission.VERIFY,
            "/assessment": Permission.READ_ASSESSMENTS,
        },
        read_only={"/verify": (), "/assessment": ("assessment_id",)},
        max_body_bytes=1000,
    )
    return TestClient(cast(Any, app))


def test_a_body_over_the_limit_is_refused_before_it_is_read(gate: TestClient) -> None:
    r = gate.post("/score", content=b"x" * 1001, headers={**headers("caseworker"), "Content-Type": "application/json"})
    assert r.status_code == 413 and "1,000 bytes" in r.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: read up to the limit only
        yield b"[" + b"1," * 400
        yield b"1," * 400 + b"1]"

    r = gate.post("/score", content=chunks(), headers={**headers("caseworker"), "Content-Type": "application/json"})
    assert r.status_code == 413
    small = gate.post("/score", json=[1, 2], headers=headers("caseworker"))
    assert small.status_code == 200 and small.json()["size"] == 5


def test_multipart_and_other_media_types_are_refused_with_415(gate: TestClient) -> None:
    for media in (
        "multipart/form-data",
        "multipart/form-data; boundary=xyz",
        "text/plain",
        "application/vnd.bentoml+pickle",
    ):
        r = gate.post("/score", content=b"--xyz--", headers={**headers("caseworker"), "Content-Type": media})
        assert r.status_code == 415 and media.split(";")[0] in r.json()["error"], media


def test_read_only_routes_answer_get_with_query_fields(gate: TestClient) -> None:
    r = gate.get("/assessment", params={"assessment_id": "abc"}, headers=headers("auditor"))
    assert r.status_code == 200 and r.json()["body"] == {"assessment_id": "abc"} and r.json()["method"] == "POST"
    assert gate.get("/verify", headers=headers("auditor")).json()["body"] == {}
    assert gate.get("/verify", params={"x": "1"}, headers=headers("auditor")).status_code == 400
    assert gate.get("/verify").status_code == 401  # the token first, always
    r = gate.get("/score", headers=headers("caseworker"))
    assert r.status_code == 405 and r.headers["allow"] == "POST"


# ----------------------------------------------------------------------------- in-process service
@pytest.fixture()
def home(tmp_path: Path, service_models: ServiceModels) -> Path:
    """Each test's own RISK_HOME: its own audit trail, keys and checkpoints."""
    write_auth(tmp_path)
    return tmp_path


@pytest.fixture()
def client(home: Path) -> Iterator[TestClient]:
    with in_process_service(home, RISK_CHECKPOINT_INTERVAL_S="0") as c:
        yield c


@pytest.fixture(scope="module")
def bodies(service_models: ServiceModels) -> list[dict[str, Any]]:
    tables, _ = service_models
    return requests_from_tables(tables.persons.head(12), tables.events, Stage.MIDTERM, lang="en")


def _count(home: Path) -> int:
    import sqlite3

    with sqlite3.connect(home / "audit.db") as db:
        n: int = db.execute("select count(*) from assessments").fetchone()[0]
        return n


# ----------------------------------------------------------------------------- 2: blank ids
@pytest.mark.parametrize("blank", ["   ", "\t", "", "A\x00B"])
def test_blank_ids_are_refused_at_the_schema_naming_the_record(
    client: TestClient, home: Path, bodies: list[dict[str, Any]], blank: str
) -> None:
    before = _count(home)
    bad = dict(bodies[0], person=dict(bodies[0]["person"], person_id=blank))
    r = client.post("/score", json=bad, headers=headers("caseworker"))
    assert r.status_code == 400 and r.json()["detail"][0]["loc"] == ["person", "person_id"]
    records = [*bodies[:4], bad, bodies[5]]
    r = client.post("/score_batch", json={"records": records}, headers=headers("caseworker"))
    assert r.status_code == 400 and r.json()["detail"][0]["loc"] == ["records", 4, "person", "person_id"]
    assert _count(home) == before


def test_a_request_the_store_refuses_fails_only_itself_in_a_group() -> None:
    from serving.scoring import score_combiner

    process = Recorder(fail_on=13, hold_for=15)  # like one audit transaction refusing a group with a bad record
    process.combiner = combiner = score_combiner(process)
    results = submit_all(combiner, list(range(60)))
    assert isinstance(results[13], ValueError)
    assert [r for i, r in enumerate(results) if i != 13] == [i * i for i in range(60) if i != 13]
    assert any(len(g) > 1 and 13 in g for g in process.groups) and [13] in process.groups  # shared, then alone


# ----------------------------------------------------------------------------- 3: plausible dates
@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("birth_date", "1090-04-12", "birth_date 1090-04-12 is outside the plausible range"),
        ("birth_date", "0001-01-01", "birth_date 0001-01-01 is outside"),
        ("supervision_end", "3026-03-01", "supervision_end 3026-03-01 is outside"),
        ("birth_date", "2020-01-01", "age at supervision_start"),
    ],
)
def test_implausible_dates_are_refused_naming_the_field(
    client: TestClient, home: Path, bodies: list[dict[str, Any]], field: str, value: str, needle: str
) -> None:
    before = _count(home)
    bad = dict(bodies[1], person=dict(bodies[1]["person"], **{field: value}))
    r = client.post("/score", json=bad, headers=headers("caseworker"))
    assert r.status_code == 400 and needle in r.text, r.text
    assert _count(home) == before


def test_the_canonical_schema_refuses_implausible_dates(cohort: CaseTables) -> None:
    persons = cohort.persons.head(5).copy()
    persons["birth_date"] = persons["birth_date"].astype(object)
    persons.loc[2, "birth_date"] = pd.Timestamp("1850-01-01")
    persons.loc[3, "supervision_end"] = pd.Timestamp("2200-01-01")
    events = cohort.events[cohort.events.person_id.isin(persons.person_id)]
    with pytest.raises(DataValidationError) as err:
        validate_tables(CaseTables(persons, events))
    fields = {(p.row, p.field) for p in err.value.problems}
    assert {(2, "birth_date"), (3, "supervision_end")} <= fields
    assert "outside the plausible range" in str(err.value)


# ----------------------------------------------------------------------------- 5: metrics (live: test_live_hardening)
def test_metrics_label_known_routes_by_path_and_everything_else_as_one(client: TestClient) -> None:
    from serving.api import OTHER_PATH as OTHER
    from serving.api import STATIC_PATH as STATIC
    from serving.api import metric_path

    # the labels BentoML's metrics get (the live server's /metrics: test_live_hardening)
    assert [
        metric_path(p)
        for p in ("/score", "/metrics", "/docs", "/static_content/x.js", "/person/S1/born/1971", "/score/extra")
    ] == ["/score", "/metrics", "/docs", STATIC, OTHER, OTHER]


# ----------------------------------------------------------------------------- 6 and 7: tokens and files
def test_new_tokens_go_to_private_files_never_to_stdout_or_the_log(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from serving.auth import store_new_tokens

    path = tmp_path / "auth.json"
    config, created = load_or_create(path)
    assert created is not None
    written = store_new_tokens(created, tmp_path / "tokens")  # what the service does on its first start
    out = capsys.readouterr()
    assert sorted(p.name for p in written) == sorted(f"{r.value}-{r.value}.token" for r in Role)
    for file in written:
        raw = file.read_text().strip()
        assert stat.S_IMODE(file.stat().st_mode) == 0o600 and hash_token(raw) in config.tokens
        assert raw not in out.out + out.err and raw not in caplog.text
    assert stat.S_IMODE((tmp_path / "tokens").stat().st_mode) == 0o700
    assert str(tmp_path / "tokens") in caplog.text  # the log says where, never what


@pytest.fixture()
def open_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual default: files 0644 unless created otherwise
    yield
    os.umask(old)


def test_stores_keys_and_auth_files_are_created_private(tmp_path: Path, open_umask: None) -> None:
    from serving.audit import CheckpointLog, load_or_create_key, sign_head

    store = AuditStore(f"sqlite:///{tmp_path / 'a' / 'audit.db'}", secret="ab" * 32)
    store.append_assessment(
        assessment_id=str(uuid.uuid4()),
        person_id="P1",
        stage="intake",
        model_name="m",
        model_version="1",
        policy_version="p",
        request={},
        response={"person_id": "P1"},
    )
    load_or_create(tmp_path / "auth.json")
    key = load_or_create_key(tmp_path / "keys" / "k.pem")
    CheckpointLog(tmp_path / "cp").append(sign_head(store.head(), key))
    store.close()
    for path in (
        tmp_path / "a" / "audit.db",
        tmp_path / "a" / "audit.db-wal",
        tmp_path / "auth.json",
        tmp_path / "keys" / "k.pem",
        tmp_path / "cp" / "checkpoints.jsonl",
    ):
        if path.exists() or not path.name.endswith("-wal"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


# ----------------------------------------------------------------------------- 9, 10: media types and sizes
@pytest.mark.parametrize("route", sorted(ROUTE_PERMISSIONS))
def test_multipart_without_boundary_is_415_on_every_post_route(client: TestClient, route: str) -> None:
    role = next(r.value for r in Role if Permission(ROUTE_PERMISSIONS[route]) in ROLE_PERMISSIONS[r])
    r = client.post(route, content=b"abc", headers={**headers(role), "Content-Type": "multipart/form-data"})
    assert r.status_code == 415 and set(r.json()) == {"error", "detail"}


def test_a_huge_id_is_refused_short_and_never_echoed(client: TestClient) -> None:
    huge = "A" * 1_000_000
    for route, role, body in (
        ("/assessment", "auditor", {"assessment_id": huge}),
        ("/person_assessments", "auditor", {"person_id": huge}),
    ):
        r = client.post(route, json=body, headers=headers(role))
        assert r.status_code == 400 and len(r.content) < 2000 and "AAAAAAAAAA" not in r.text


# ----------------------------------------------------------------------------- 11: OpenAPI matches the answers
def test_docs_page_and_document_with_security_and_error_answers(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200 and "swagger" in client.get("/docs").text.lower()
    doc = client.get("/docs.json").json()
    assert doc["components"]["securitySchemes"]["bearer"] == {
        **doc["components"]["securitySchemes"]["bearer"],
        "type": "http",
        "scheme": "bearer",
    }
    from serving.api import READ_ONLY_ROUTES, ROUTE_ERRORS, ROUTE_PERMISSIONS

    for path in ROUTE_PERMISSIONS:
        post = doc["paths"][path]["post"]
        assert post["security"] == [{"bearer": []}]
        for status in ("400", "401", "403", "500", *map(str, ROUTE_ERRORS[path])):
            assert post["responses"][status]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorResponse"
            }, (path, status)
        assert ("get" in doc["paths"][path]) == (path in READ_ONLY_ROUTES)
    errors = doc["components"]["schemas"]["ErrorResponse"]
    assert errors["properties"]["detail"]["type"] == "array"


def test_read_only_routes_answer_get(client: TestClient, bodies: list[dict[str, Any]]) -> None:
    a = client.post("/score", json=bodies[2], headers=headers("caseworker")).json()
    got = client.get("/assessment", params={"assessment_id": a["assessment_id"]}, headers=headers("auditor"))
    assert got.status_code == 200 and got.json()["assessment_id"] == a["assessment_id"]
    assert client.get("/verify", headers=headers("auditor")).json()["ok"]
    assert client.get("/models", headers=headers("modeler")).status_code == 200
    assert client.get("/models", headers=headers("caseworker")).status_code == 403


def test_errors_have_the_one_documented_shape(client: TestClient, bodies: list[dict[str, Any]]) -> None:
    from serving.scoring.schemas import ErrorResponse

    answers = [
        client.post("/score", json={}, headers=headers("caseworker")),
        client.post("/score", json=bodies[0]),
        client.post("/score", json=bodies[0], headers=headers("auditor")),
        client.post("/assessment", json={"assessment_id": str(uuid.uuid4())}, headers=headers("auditor")),
        client.post("/score", content=b"{}", headers={**headers("caseworker"), "Content-Type": "text/csv"}),
    ]
    assert [r.status_code for r in answers] == [400, 401, 403, 404, 415]
    for r in answers:
        ErrorResponse.model_validate(r.json())


def test_the_stored_answer_is_byte_for_byte_what_was_sent(
    client: TestClient, bodies: list[dict[str, Any]], home: Path
) -> None:
    r = client.post("/score", json=bodies[3], headers=headers("caseworker"))
    sent = r.content.decode()
    stored = client.post(
        "/assessment", json={"assessment_id": r.json()["assessment_id"]}, headers=headers("auditor")
    ).json()
    import sqlite3

    with sqlite3.connect(home / "audit.db") as db:
        text = db.execute(
            "select response_json from assessments where assessment_id = ?", (r.json()["assessment_id"],)
        ).fetchone()[0]
    person_id = r.json()["person_id"]
    assert text == sent.replace(json.dumps(person_id), json.dumps(stored["person_key"]))
    batch = client.post("/score_batch", json={"records": bodies[4:7]}, headers=headers("caseworker"))
    with sqlite3.connect(home / "audit.db") as db:
        texts = [
            db.execute(
                "select response_json from assessments where assessment_id = ?", (a["assessment_id"],)
            ).fetchone()[0]
            for a in batch.json()["assessments"]
        ]
    store = AuditStore(f"sqlite:///{home / 'audit.db'}", secret="5e" * 32)
    for text, a in zip(texts, batch.json()["assessments"], strict=True):
        original = text.replace(json.dumps(store.person_key(a["person_id"])), json.dumps(a["person_id"]))
        assert original in batch.content.decode()
    store.close()


def test_verify_returns_a_signed_checkpoint_and_checks_the_trail_against_them(
    client: TestClient, home: Path, bodies: list[dict[str, Any]]
) -> None:
    from serving.audit import Checkpoint, load_public_key, read_checkpoints

    for body in bodies[8:10]:
        client.post("/score", json=body, headers=headers("caseworker"))
    first = client.get("/verify", headers=headers("auditor")).json()
    public = load_public_key(home / "keys" / "checkpoint-ed25519.pem.pub")
    Checkpoint.from_dict(first["checkpoint"]).verify(public)  # an auditor's copy holds with the public key
    assert first["checkpoint"]["chains"]["assessments"]["length"] == first["head"]["assessments"]["length"]
    assert read_checkpoints(home / "checkpoints" / "checkpoints.jsonl")[-1].to_dict() == first["checkpoint"]
    import sqlite3

    with sqlite3.connect(home / "audit.db") as db:  # delete the last record and rewrite the head
        (n,) = db.execute("select max(seq) from assessments").fetchone()
        (prev,) = db.execute("select prev_hash from assessments where seq = ?", (n,)).fetchone()
        db.execute("delete from assessments where seq = ?", (n,))
        db.execute("update audit_chain_head set length = ?, last_hash = ? where chain = 'assessments'", (n - 1, prev))
    verdict = client.get("/verify", headers=headers("auditor")).json()
    assert not verdict["ok"] and verdict["first_broken"] == f"assessments seq {n}" and verdict["checkpoint"] is None
    assert verdict["checkpoints_checked"] >= 1


@pytest.mark.parametrize("role", ROLES)
def test_every_role_still_reaches_its_routes(client: TestClient, role: str) -> None:
    route = {
        "caseworker": "/score_batch",
        "supervisor": "/cases/decision_report",
        "auditor": "/verify",
        "modeler": "/models",
    }[role]
    body: dict[str, Any] = {"records": []} if role == "caseworker" else {}
    assert client.post(route, json=body, headers=headers(role)).status_code in (200, 400)
