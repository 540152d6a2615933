"""Every stage servable (issue 21): a stage without a champion is not served, and the others are.

The service here serves intake and release and leaves mid-term out (``RISK_SERVED_STAGES``, which ``riskctl
serve`` sets to the stages whose registered model has a @champion). Every request that would score mid-term is
answered with 503 and what a modeler does, in the caller's language, and stores nothing; the same route serves
a served stage. The routes that score are not listed by hand: every route of the app (read from the app itself,
``service_support.service_routes``) is either in :data:`SCORING` (how to ask it for a stage) or in
:data:`SCORES_NOTHING` (why it scores nothing), so a new route fails
:func:`test_every_route_is_classified` until someone decides, and a route whose request takes a stage or a
record cannot be called one that scores nothing.

A registry that cannot be read is not "no champion": the import refuses naming the error and ``riskctl serve``
does not start; only MLflow's own "this model does not exist" or an alias no version holds means no champion.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pandas as pd
import pytest
from cases_support import subset
from hypothesis import given, settings
from hypothesis import strategies as st
from service_support import (
    ServiceModels,
    case_home,
    form_of,
    fresh_home,
    in_process_service,
    service_routes,
    signed_in,
    write_auth,
)
from starlette.testclient import TestClient
from typer.testing import CliRunner

from features.schema import CaseTables
from features.vocab import Stage
from models.tier_policy import TierPolicy
from serving.api import ROUTE_MODELS
from serving.cli import app
from serving.scoring import NoModelError, Scorer, load_served, no_model_message, requests_from_tables
from serving.scoring.schemas import ScoreRequest
from serving.settings import ServiceSettings, get_settings
from training.registry import RegistryError, champion_of

UNSERVED = Stage.MIDTERM  # everyone on a roll before their term's last window is reviewed at mid-term
SERVED = (Stage.INTAKE, Stage.RELEASE)
ENV = {"RISK_SERVED_STAGES": ",".join(s.value for s in SERVED)}
OFFICE = "chengguan"
TOKENS: dict[str, tuple[str, str, str | None]] = {
    "cw": ("caseworker", "wang", OFFICE),
    "sup": ("supervisor", "li", OFFICE),
}
MEETING = dt.date(2023, 6, 1)


# ----------------------------------------------------------------------------- how each route is asked to score
@dataclass(frozen=True)
class Call:
    who: str
    method: str
    url: str
    json: Any = None
    data: dict[str, str] | None = None  # a console form (the caller's CSRF token is added)


@dataclass(frozen=True)
class World:
    """A person of the office whose term has ended (every stage's window is open), with their records."""

    person_id: str
    records: dict[Stage, dict[str, Any]]  # their /score request at each stage (lang zh)

    def record(self, stage: Stage, lang: str) -> dict[str, Any]:
        return {**self.records[stage], "lang": lang}


@dataclass(frozen=True)
class Scoring:
    """How a route is asked to score ``stage``; ``chooses_stage``: the route picks the stage itself (the review:
    a person's stage follows from their term), so it can only be asked while a stage it needs is missing."""

    calls: Callable[[World, Stage, str], Call]
    chooses_stage: bool = False
    loc: tuple[str | int, ...] | None = ("stage",)  # where the API's refusal points (None: a console page)


SCORING: dict[str, Scoring] = {
    "POST /score": Scoring(lambda w, s, lang: Call("cw", "POST", "/score", json=w.record(s, lang))),
    "POST /score_batch": Scoring(
        # a served stage first: the batch is refused whole, that record is not stored either
        lambda w, s, lang: Call(
            "cw", "POST", "/score_batch", json={"records": [w.record(SERVED[0], lang), w.record(s, lang)]}
        ),
        loc=("records", 1, "stage"),
    ),
    "POST /cases/score": Scoring(
        lambda w, s, lang: Call(
            "cw", "POST", "/cases/score", json={"person_id": w.person_id, "stage": s.value, "lang": lang}
        )
    ),
    "POST /cases/review": Scoring(
        lambda w, s, lang: Call(
            "sup", "POST", "/cases/review", json={"office": OFFICE, "as_of": MEETING.isoformat(), "lang": lang}
        ),
        chooses_stage=True,
        loc=(),
    ),
    "POST /console/score": Scoring(
        lambda w, s, lang: Call("cw", "POST", "/console/score", data=form_of(w.record(s, lang))), loc=None
    ),
    "POST /console/person/{person_id}/score": Scoring(
        lambda w, s, lang: Call("cw", "POST", f"/console/person/{w.person_id}/score", data={"stage": s.value}),
        loc=None,
    ),
    "POST /console/review": Scoring(
        lambda w, s, lang: Call("sup", "POST", "/console/review", data={"as_of": MEETING.isoformat()}),
        chooses_stage=True,
        loc=None,
    ),
}

#: Every other route, with why it scores nothing (it reads, records, decides, or is the platform's).
SCORES_NOTHING: dict[str, str] = {
    "GET /": "BentoML's index page",
    "GET /livez": "platform probe",
    "GET /healthz": "platform probe (says which stages are served)",
    "GET /readyz": "platform probe (says which stages are served)",
    "GET /metrics": "request counts",
    "GET /schema.json": "BentoML's service schema",
    "GET /docs.json": "the OpenAPI document",
    "GET /static_content/{path:path}": "BentoML's static files",
    "GET /assessment": "reads a stored assessment",
    "POST /assessment": "reads a stored assessment",
    "POST /person_assessments": "reads stored assessments",
    "GET /verify": "checks the trail",
    "POST /verify": "checks the trail",
    "GET /models": "lists the served and unserved stages",
    "POST /models": "lists the served and unserved stages",
    "POST /cases/event": "records an event",
    "POST /cases/due": "reads the roll and its stored assessments",
    "POST /cases/propose": "records a proposal about a stored assessment",
    "POST /cases/approve": "records a decision",
    "POST /cases/reject": "records a decision",
    "POST /cases/review_run": "reads a stored run",
    "POST /cases/decision_report": "counts decisions",
    "GET /console/": "redirect",
    "GET /console/login": "sign-in form",
    "POST /console/login": "sign-in",
    "GET /console/lang/{lang}": "language switch",
    "POST /console/logout": "sign-out",
    "GET /console/static/{path:path}": "style sheet",
    "GET /console/today": "reads the roll",
    "GET /console/roster": "reads the roll",
    "GET /console/person/{person_id}": "reads a person (its scoring form marks the unserved stage)",
    "POST /console/person/{person_id}/propose": "records a proposal",
    "POST /console/person/{person_id}/event": "records an event",
    "GET /console/score": "the empty form (marks the unserved stage)",
    "GET /console/result/{assessment_id}": "reads a stored answer",
    "GET /console/proposals": "reads proposals",
    "POST /console/proposals/{decision_id}/{action:str}": "records a decision",
    "GET /console/step_down": "reads the step-down list",
    "POST /console/step_down/{person_id}/decide": "records a decision on a stored assessment",
    "POST /console/step_down/{person_id}/defer": "records a deferral",
    "GET /console/review": "the review form and past runs",
    "GET /console/review/{run_id}": "reads a stored run",
    "GET /console/review/{run_id}/{fmt:str}": "reads a stored run",
    "GET /console/audit": "reads the trail",
    "GET /console/case_records": "reads the trail's case records",
    "GET /console/revalidation": "reads stored revalidation reports",
    "GET /console/audit/{assessment_id}": "reads the trail",
    "GET /console/decisions": "counts decisions",
    "GET /console/verify": "the verify button",
    "POST /console/verify": "checks the trail",
}


def _routes() -> list[str]:
    from serving.api import RiskService

    return sorted(service_routes(cast(Any, RiskService).to_asgi()))


ROUTES = _routes()


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tables(service_models: ServiceModels) -> CaseTables:
    return subset(service_models[0], 400)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, tables: CaseTables) -> Path:
    """A RISK_HOME with the office's tokens and a case store of 400 persons."""
    return case_home(tmp_path_factory.mktemp("servable"), tables, tokens=TOKENS)


@pytest.fixture(scope="module")
def world(tables: CaseTables) -> World:
    persons = tables.persons
    ended = persons[(persons["office"] == OFFICE) & (persons["supervision_end"] < pd.Timestamp("2024-01-01"))]
    assert tables.outcomes is not None
    revoked = set(tables.outcomes.loc[tables.outcomes["revocation_date"].notna(), "person_id"].astype(str))
    ended = ended[~ended["person_id"].astype(str).isin(revoked)]
    assert not ended.empty, "the test cohort needs an ended, unrevoked term in the office"
    one = ended.head(1)
    records = {s: requests_from_tables(one, tables.events, s, lang="zh")[0] for s in Stage}
    return World(person_id=str(one["person_id"].iloc[0]), records=records)


class Service:
    """The partly served service in-process, its API client, console sessions and stores."""

    def __init__(self, api: TestClient, home: Path) -> None:
        self.api, self.home = api, home
        self._sessions: dict[str, tuple[TestClient, str]] = {}

    def call(self, call: Call) -> Any:  # an httpx response
        if call.url.startswith("/console/"):
            c, csrf = self.session(call.who)
            return c.post(call.url, data={**(call.data or {}), "csrf": csrf})
        return self.api.post(call.url, json=call.json, headers={"Authorization": f"Bearer {call.who}"})

    def session(self, who: str) -> tuple[TestClient, str]:
        from service_support import csrf_of

        if who not in self._sessions:
            c = signed_in(self.api.app, who)
            self._sessions[who] = (c, csrf_of(c.get("/console/review").text))
        return self._sessions[who]

    def stored(self) -> dict[str, int]:
        """What the stores hold: assessments in the trail, assessments indexed by the case store, review runs."""
        with sqlite3.connect(self.home / "audit.db") as audit, sqlite3.connect(self.home / "cases.db") as cases:
            return {
                "trail": audit.execute("select count(*) from assessments").fetchone()[0],
                "indexed": cases.execute("select count(*) from case_assessments").fetchone()[0],
                "runs": cases.execute("select count(*) from review_runs").fetchone()[0],
            }


@pytest.fixture(scope="module")
def service(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    home = fresh_home(template, tmp_path_factory.mktemp("servable-run"))
    with in_process_service(home, base_url="https://testserver", **ENV) as api:
        yield Service(api, home)


# ----------------------------------------------------------------------------- the routes
def test_every_route_is_classified() -> None:
    unclassified = sorted(set(ROUTES) - set(SCORING) - set(SCORES_NOTHING))
    assert not unclassified, f"routes neither in SCORING nor in SCORES_NOTHING: {unclassified}"
    assert not set(SCORING) & set(SCORES_NOTHING)
    gone = sorted((set(SCORING) | set(SCORES_NOTHING)) - set(ROUTES))
    assert not gone, f"classified routes the app no longer has: {gone}"


@pytest.mark.parametrize("route", ROUTES)
def test_a_route_that_takes_a_stage_or_a_record_is_a_scoring_route(route: str) -> None:
    path = route.split(" ", 1)[1]
    model = ROUTE_MODELS.get(path, (None,))[0]
    takes = set(model.model_fields) & {"stage", "person", "records"} if model else set()
    if takes or (route.startswith("POST /console/") and path.rsplit("/", 1)[-1] in ("score", "review")):
        assert route in SCORING, f"{route} takes {takes or 'a scoring form'}: say in SCORING how it is asked to score"


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("route", sorted(SCORING))
def test_a_stage_without_a_model_is_answered_503_and_nothing_is_stored(
    service: Service, world: World, route: str, lang: str
) -> None:
    case = SCORING[route]
    if case.loc is None and lang == "en":
        pytest.skip("the console speaks the page's language (zh here): one run is enough")
    before = service.stored()
    r = service.call(case.calls(world, UNSERVED, lang))
    assert r.status_code == 503, (route, r.status_code, r.text[:500])
    assert service.stored() == before, f"{route} stored something for a stage no model serves"
    said = no_model_message([UNSERVED], lang)
    commands = (f"riskctl train --stage {UNSERVED.value} --promote", f"riskctl promote --stage {UNSERVED.value}")
    assert all(c in said for c in commands) and (UNSERVED.label("zh") if lang == "zh" else "midterm stage") in said
    if case.loc is not None:  # the API: the one error shape, in the caller's language
        body = r.json()
        assert body["error"] == said and body["detail"] == [{"loc": list(case.loc), "msg": said}]
    else:  # the console: the page the user was on, with the message; not an error page
        page = r.text
        assert "<h1>503</h1>" not in page and "<form" in page and 'role="alert"' in page
        assert f"{UNSERVED.label('zh')}（{UNSERVED.value}）尚无在用模型" in page and commands[0] in page


@pytest.mark.parametrize("route", sorted(r for r in SCORING if not SCORING[r].chooses_stage))
def test_the_same_route_serves_the_stages_that_have_a_model(service: Service, world: World, route: str) -> None:
    before = service.stored()
    for stage in SERVED:
        r = service.call(SCORING[route].calls(world, stage, "en"))
        assert r.status_code in (200, 303), (route, stage, r.status_code, r.text[:500])
    after = service.stored()
    assert after["trail"] > before["trail"], f"{route} stored nothing for a served stage"


def test_the_pages_mark_the_stage_no_model_serves(service: Service, world: World) -> None:
    c, _ = service.session("cw")
    for url in ("/console/score", f"/console/person/{world.person_id}"):
        page = c.get(url)
        assert page.status_code == 200, (url, page.text[:300])
        assert f"{UNSERVED.label('zh')}（暂无在用模型）" in page.text
        assert all(f"{s.label('zh')}（暂无在用模型）" not in page.text for s in SERVED)


def test_models_and_probes_say_which_stages_are_served(service: Service) -> None:
    r = service.api.get("/models", headers={"Authorization": "Bearer test-token-modeler"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [m["stage"] for m in body["models"]] == [s.value for s in SERVED]
    assert body["not_served"] == [
        {"stage": UNSERVED.value, "reason": "not_selected", "message": no_model_message([UNSERVED], "en")}
    ]
    for probe in ("/healthz", "/readyz"):
        r = service.api.get(probe)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json", (probe, r.text)
        assert r.json() == {
            "status": "ok",
            "served": [s.value for s in SERVED],
            "not_served": [{"stage": UNSERVED.value, "reason": "not_selected"}],
        }
    assert service.api.get("/livez").status_code == 200


def test_a_service_with_no_stage_to_serve_does_not_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's start itself (the service class's constructor, as each worker of bentoml serve runs it)."""
    from serving.api import RiskService

    monkeypatch.setenv("RISK_SERVED_STAGES", "")
    with pytest.raises(RuntimeError, match="no stage has a model to serve") as refused:
        cast(Any, RiskService).inner()
    assert "riskctl train --stage all --promote" in str(refused.value)


# ----------------------------------------------------------------------------- the scorer: every batch, every set
@settings(max_examples=40, deadline=None)
@given(
    served=st.sets(st.sampled_from(list(Stage)), min_size=1),
    asked=st.lists(st.sampled_from(list(Stage)), min_size=1, max_size=6),
)
def test_a_batch_is_scored_whole_or_refused_naming_every_missing_stage(
    scoring_parts: tuple[dict[Stage, Any], dict[Stage, ScoreRequest]], served: set[Stage], asked: list[Stage]
) -> None:
    models, requests = scoring_parts
    scorer = Scorer({s: models[s] for s in served}, TierPolicy.load())
    batch = [requests[s] for s in asked]
    missing = {s for s in asked if s not in served}
    if not missing:
        assert [Stage(a.assessment.stage.code) for a in scorer.score(batch)] == asked
        return
    with pytest.raises(NoModelError) as refused:
        scorer.score(batch)
    assert set(refused.value.stages) == missing and refused.value.status == 503
    for stage in missing:
        assert f"--stage {stage.value}" in refused.value.text("en") or len(missing) > 1
        assert stage.value in str(refused.value) and stage.label("zh") in refused.value.text("zh")


@pytest.fixture(scope="module")
def scoring_parts(service_models: ServiceModels) -> tuple[dict[Stage, Any], dict[Stage, ScoreRequest]]:
    import bentoml

    tables, _ = service_models
    models = {s: load_served(bentoml.models.get(f"{get_settings().model_name(s)}:latest"), s) for s in Stage}
    people = tables.persons.head(1)
    requests = {s: ScoreRequest.model_validate(requests_from_tables(people, tables.events, s)[0]) for s in Stage}
    return models, requests


# ----------------------------------------------------------------------------- the registry: fail closed
class RaisingRegistry:
    """An MLflow client whose every call fails with ``error`` (a tracking server that does not answer...)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise self.error

        return fail


def _mlflow_error_codes() -> list[str]:
    from mlflow.protos.databricks_pb2 import ErrorCode

    return sorted(str(name) for name in ErrorCode.keys() if name != "RESOURCE_DOES_NOT_EXIST")  # noqa: SIM118 (a protobuf enum)


@pytest.mark.parametrize("code", _mlflow_error_codes())
def test_any_registry_error_but_does_not_exist_is_an_error_not_no_champion(code: str) -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import ErrorCode

    client = RaisingRegistry(MlflowException(f"the registry said {code}", error_code=ErrorCode.Value(code)))
    with pytest.raises(RegistryError, match=f"reoffence-release: MlflowException: the registry said {code}"):
        champion_of(cast(Any, client), "reoffence-release", "champion")


@pytest.fixture(scope="module")
def registry_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A RISK_HOME whose local MLflow registry (made once: its migrations take seconds) the registry tests share;
    each test uses its own registered model names."""
    from training.tracking import configure_mlflow

    home = tmp_path_factory.mktemp("servable-registry")
    configure_mlflow(ServiceSettings(home=home, tracking_uri=f"sqlite:///{home / 'mlflow.db'}"))
    return home


def test_only_the_registrys_own_word_means_no_champion(registry_home: Path) -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{registry_home / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    assert champion_of(client, "aliascheck-intake", "champion") is None  # no such registered model
    client.create_registered_model("aliascheck-intake")
    v1 = client.create_model_version("aliascheck-intake", source=(registry_home / "m").as_uri())
    assert champion_of(client, "aliascheck-intake", "champion") is None  # a version, but none is @champion
    client.set_registered_model_alias("aliascheck-intake", "champion", v1.version)
    found = champion_of(client, "aliascheck-intake", "champion")
    assert found is not None and found.version == v1.version
    # the same "does not exist" from the server is no champion; a network fault, or an alias naming a
    # version that cannot be read, is an error that names itself
    gone = RaisingRegistry(MlflowException("Registered Model with name=x not found", RESOURCE_DOES_NOT_EXIST))
    assert champion_of(cast(Any, gone), "x", "champion") is None
    with pytest.raises(RegistryError, match="ConnectionError: Connection refused"):
        champion_of(cast(Any, RaisingRegistry(ConnectionError("Connection refused"))), "x", "champion")
    dangling = SimpleNamespace(
        get_registered_model=lambda name: SimpleNamespace(aliases={"champion": "4"}),
        get_model_version=RaisingRegistry(OSError("disk I/O error")).get_model_version,
    )
    with pytest.raises(RegistryError, match=r"x version 4 \(@champion\): OSError: disk I/O error"):
        champion_of(cast(Any, dangling), "x", "champion")


UNREACHABLE = "API request to http://tracking:5000/api/2.0/mlflow/registered-models/get failed: Connection refused"


@pytest.fixture
def unreachable_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """RISK_HOME at ``tmp_path``, a registry whose every read fails, and a record of any exec of bentoml serve."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INTERNAL_ERROR

    import training.tracking

    monkeypatch.setenv("RISK_HOME", str(tmp_path))
    monkeypatch.setenv("RISK_REGISTRY_PREFIX", "servable")
    client = RaisingRegistry(MlflowException(UNREACHABLE, error_code=INTERNAL_ERROR))
    monkeypatch.setattr(training.tracking, "configure_mlflow", lambda settings=None: client)
    execs: list[Any] = []
    monkeypatch.setattr("os.execve", lambda *args: execs.append(args))
    return execs


def test_serve_refuses_to_start_on_a_registry_it_cannot_read(unreachable_registry: list[Any]) -> None:
    from serving.scoring import import_champions

    with pytest.raises(RegistryError, match="could not read registered model servable-intake: MlflowException: API"):
        import_champions(ServiceSettings())
    for command in (["serve"], ["models", "import"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        assert "could not be read" in result.output and "Connection refused" in result.output
        assert "no @champion" not in result.output and "not served" not in result.output
    assert unreachable_registry == [], "bentoml serve was started on a registry that could not be read"


def test_serve_starts_with_the_stages_that_have_a_champion(
    registry_home: Path, monkeypatch: pytest.MonkeyPatch, service_models: ServiceModels
) -> None:
    """Intake has a @champion, mid-term and release have no registered model: serve imports intake, says the
    two others are not served and why, and starts bentoml serve with RISK_SERVED_STAGES=intake."""
    from mlflow.tracking import MlflowClient

    from training.tracking import log_stage_fit

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RISK_HOME", str(registry_home))
    monkeypatch.setenv("RISK_REGISTRY_PREFIX", "servable")  # apart from the other tests' models in the store
    execs: list[tuple[Any, ...]] = []
    monkeypatch.setattr("os.execve", lambda *args: execs.append(args))
    settings = ServiceSettings()
    none = CliRunner().invoke(app, ["serve"])
    assert none.exit_code == 2 and "no stage has a @champion" in none.output and not execs, none.output

    _, fits = service_models
    version = log_stage_fit(fits[Stage.INTAKE], settings=settings, reports_dir=registry_home / "reports")
    uri = settings.resolved_tracking_uri()
    MlflowClient(uri, uri).set_registered_model_alias("servable-intake", "champion", version.version)
    result = CliRunner().invoke(app, ["serve", "--port", "3999"])
    assert result.exit_code == 0, result.output
    _, argv, env = execs[0]
    assert argv[-4:] == ["--host", "127.0.0.1", "--port", "3999"] and env["RISK_SERVED_STAGES"] == "intake"
    said = " ".join(result.output.split())
    assert "intake @champion -> BentoML model servable-intake:" in said
    for stage in ("midterm", "release"):
        assert f"{stage} not served: no @champion (no registered version)" in said
        assert f"riskctl train --stage {stage} --promote" in said
    # an operator's RISK_SERVED_STAGES narrows what is served; it never serves a stage without a champion
    monkeypatch.setenv("RISK_SERVED_STAGES", "release")
    narrowed = CliRunner().invoke(app, ["serve"])
    assert narrowed.exit_code == 2 and "leaves out every stage that has a champion" in narrowed.output
    assert len(execs) == 1, narrowed.output


# ----------------------------------------------------------------------------- offline scoring, review, demo
def _audit_rows(home: Path) -> int:
    if not (home / "audit.db").exists():
        return 0
    with sqlite3.connect(home / "audit.db") as db:
        rows: int = db.execute("select count(*) from assessments").fetchone()[0]
        return rows


def test_offline_scoring_refuses_a_file_with_an_unserved_stage_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: World
) -> None:
    monkeypatch.setenv("RISK_HOME", str(tmp_path))
    monkeypatch.setenv("RISK_SERVED_STAGES", ENV["RISK_SERVED_STAGES"])
    write_auth(tmp_path)
    infile, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    infile.write_text("".join(json.dumps(world.record(s, "en")) + "\n" for s in (SERVED[0], UNSERVED)))
    refused = CliRunner().invoke(app, ["score", "--in", str(infile), "--out", str(out)])
    assert refused.exit_code == 2, refused.output
    assert f"no model serves the {UNSERVED.value} stage" in " ".join(refused.output.split())
    assert not out.exists() and _audit_rows(tmp_path) == 0
    infile.write_text("".join(json.dumps(world.record(s, "en")) + "\n" for s in SERVED))
    done = CliRunner().invoke(app, ["score", "--in", str(infile), "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert len(out.read_text().splitlines()) == len(SERVED) == _audit_rows(tmp_path)


def test_the_review_command_refuses_a_roll_with_an_unserved_stage(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = fresh_home(template, tmp_path)
    monkeypatch.setenv("RISK_HOME", str(home))
    monkeypatch.setenv("RISK_SERVED_STAGES", ENV["RISK_SERVED_STAGES"])
    result = CliRunner().invoke(app, ["review", "--office", OFFICE, "--as-of", MEETING.isoformat()])
    assert result.exit_code == 2, result.output
    assert f"no model serves the {UNSERVED.value} stage" in " ".join(result.output.split())
    with sqlite3.connect(home / "cases.db") as db:
        assert db.execute("select count(*) from review_runs").fetchone()[0] == 0
    assert _audit_rows(home) == 0


def test_the_demo_serves_and_scores_with_the_stages_that_have_a_champion(
    service: Service, monkeypatch: pytest.MonkeyPatch, tables: CaseTables
) -> None:
    """The demo's last step, with the registry's answer given (intake and release have a champion): it starts the
    service with those stages only (here: the module's service, started with the same environment; one
    in-process service at a time) and scores its example at a stage that is served."""
    from serving.cli import demo_service

    here = "serving.cli._service"  # where demo_service finds what it calls
    monkeypatch.setattr(f"{here}.import_models", lambda settings, **_: {s: f"reoffence-{s.value}:x" for s in SERVED})
    seen: dict[str, Any] = {}

    @contextlib.contextmanager
    def service_with(*, log_path: Path, env: dict[str, str]) -> Iterator[str]:
        seen["env"] = env
        yield "http://testserver"

    def score_example(base_url: str, token: str, request: dict[str, Any], *, path: str) -> dict[str, Any]:
        seen["request"] = request
        # the demo's token was just written: a running service takes it within a second (serving.auth.TokenFile)
        deadline, auth = time.monotonic() + 5, {"Authorization": f"Bearer {token}"}
        while (r := service.api.post(path, json=request, headers=auth)).status_code == 401:
            assert time.monotonic() < deadline, r.text
            time.sleep(0.2)
        assert r.status_code == 200, r.text
        answer: dict[str, Any] = r.json()
        return answer

    monkeypatch.setattr(f"{here}.running_service", service_with)
    monkeypatch.setattr(f"{here}.score_example", score_example)
    env = demo_service(get_settings(home=service.home), tables, lang="en")
    assert env == seen["env"] == ENV
    assert seen["request"]["stage"] == Stage.INTAKE.value  # mid-term, the demo's usual stage, is not served


# ----------------------------------------------------------------------------- a real bentoml serve
@pytest.mark.slow  # a real riskctl serve process: make test-all
def test_a_real_server_starts_without_a_stage_in_its_store(
    tmp_path: Path, service_models: ServiceModels, world: World
) -> None:
    """``riskctl serve --no-import`` over a BentoML store that holds no mid-term model: ``bentoml serve`` (which
    resolves every model the service declares before it starts) starts with the two others, the probes say so,
    mid-term is answered 503 and intake is scored."""
    import shutil
    import sys

    import bentoml
    import httpx

    from serving.cli import free_port, running_server

    store = tmp_path / "bentoml"
    for stage in SERVED:  # a store of its own, with the test models of the served stages only
        model_dir = Path(bentoml.models.get(f"{get_settings().model_name(stage)}:latest").path).parent
        shutil.copytree(model_dir, store / "models" / model_dir.name)
    home = tmp_path / "home"
    write_auth(home)
    port = free_port()
    cmd = [sys.executable, "-m", "serving.cli", "serve", "--no-import", "--port", str(port)]
    env = {"RISK_HOME": str(home), "BENTOML_HOME": str(store)}
    with running_server(cmd, port=port, ready_path="/readyz", env=env, log_path=tmp_path / "serve.log") as url:
        ready = httpx.get(f"{url}/readyz", timeout=30).json()
        assert ready["served"] == [s.value for s in SERVED], ready
        assert ready["not_served"] == [{"stage": UNSERVED.value, "reason": "not_selected"}]
        auth = {"Authorization": "Bearer test-token-caseworker"}
        refused = httpx.post(f"{url}/score", json=world.record(UNSERVED, "zh"), headers=auth, timeout=60)
        assert refused.status_code == 503 and refused.json()["error"] == no_model_message([UNSERVED], "zh")
        scored = httpx.post(f"{url}/score", json=world.record(Stage.INTAKE, "zh"), headers=auth, timeout=60)
        assert scored.status_code == 200, scored.text
    assert "not serving the midterm stage (not_selected)" in (tmp_path / "serve.log").read_text()
