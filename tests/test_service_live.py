"""The service as a real ``bentoml serve`` process on a free localhost port, and a built Bento."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from service_support import ServiceModels, headers, write_auth

from features.vocab import Stage
from serving.cli import running_service
from serving.scoring import requests_from_tables

pytestmark = pytest.mark.slow  # real bentoml serve processes and a Bento build: make test-all


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, service_models: ServiceModels) -> Iterator[tuple[str, Path]]:
    """A running ``bentoml serve serving.api:RiskService`` with its own RISK_HOME."""
    home = tmp_path_factory.mktemp("live-home")
    write_auth(home)
    with running_service(env={"RISK_HOME": str(home)}, log_path=home / "serve.log") as url:
        yield url, home


def test_real_server_scores_and_serves_platform_endpoints(
    live: tuple[str, Path], service_models: ServiceModels
) -> None:
    url, _ = live
    tables, _ = service_models
    body = requests_from_tables(tables.persons.head(3), tables.events, Stage.RELEASE, lang="en")[2]
    r = httpx.post(f"{url}/score", json=body, headers=headers("caseworker"), timeout=30)
    assert r.status_code == 200 and 0 < r.json()["probability"] < 1
    assert httpx.post(f"{url}/score", json=body, timeout=30).status_code == 401
    for path in ("/healthz", "/livez", "/readyz", "/metrics"):
        assert httpx.get(f"{url}{path}", timeout=30).status_code == 200, path
    assert "/score_batch" in httpx.get(f"{url}/docs.json", timeout=30).json()["paths"]


def test_200_concurrent_requests_give_200_records_and_an_intact_chain(
    live: tuple[str, Path], service_models: ServiceModels
) -> None:
    url, home = live
    tables, _ = service_models
    bodies = requests_from_tables(tables.persons.head(50), tables.events, Stage.MIDTERM, lang="zh")
    with sqlite3.connect(home / "audit.db") as db:
        before = db.execute("select count(*) from assessments").fetchone()[0]

    def post(i: int) -> int:
        with httpx.Client(timeout=60) as client:
            return client.post(f"{url}/score", json=bodies[i % len(bodies)], headers=headers("caseworker")).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(post, range(200)))
    assert codes == [200] * 200
    with sqlite3.connect(home / "audit.db") as db:
        assert db.execute("select count(*) from assessments").fetchone()[0] == before + 200
    verdict = httpx.post(f"{url}/verify", json={}, headers=headers("auditor"), timeout=60).json()
    assert verdict["ok"] and verdict["head"]["assessments"]["length"] == before + 200


def test_built_bento_serves_without_mlflow(tmp_path: Path, service_models: ServiceModels) -> None:
    """``riskctl build`` packs code and models: exported, imported into an empty BentoML home and
    served there with MLflow unreachable, it answers with the models it was built with."""
    import bentoml

    from serving.cli import build_bento

    bento = build_bento()
    built_with = sorted(str(m.tag) for m in bento.info.services[0].models)
    assert len(built_with) == 3
    archive = bentoml.export_bento(bento.tag, str(tmp_path / "risk.bento"))
    elsewhere = {"BENTOML_HOME": str(tmp_path / "empty-bentoml-home")}
    subprocess.run(
        [sys.executable, "-m", "bentoml", "import", archive],
        env={**os.environ, **elsewhere},
        check=True,
        capture_output=True,
    )
    home = tmp_path / "bento-home"
    write_auth(home)
    tables, _ = service_models
    body = requests_from_tables(tables.persons.head(2), tables.events, Stage.INTAKE, lang="en")[1]
    env = {**elsewhere, "RISK_HOME": str(home), "MLFLOW_TRACKING_URI": "http://127.0.0.1:9/unreachable"}
    with running_service(str(bento.tag), env=env, log_path=tmp_path / "serve.log") as url:
        r = httpx.post(f"{url}/score", json=body, headers=headers("caseworker"), timeout=30)
        models = httpx.post(f"{url}/models", json={}, headers=headers("modeler"), timeout=30).json()
        console = httpx.get(f"{url}/console/login", timeout=30)
        style = httpx.get(f"{url}/console/static/console.css", timeout=30)
    assert r.status_code == 200, r.text
    assert sorted(m["model"]["bento_tag"] for m in models["models"]) == built_with
    assert console.status_code == 200 and "token" in console.text  # the console's templates are in the Bento
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
