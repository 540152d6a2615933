"""From MLflow champion to the BentoML store, and ``riskctl score`` offline."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import bentoml
import numpy as np
import pytest
from service_support import ServiceModels, small_cohort_gate, write_auth
from typer.testing import CliRunner

from features.labels import make_stage_frame
from features.vocab import Stage
from serving.cli import app
from serving.scoring import requests_from_tables
from serving.settings import ServiceSettings


def test_import_champions_copies_the_champion_not_the_challenger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service_models: ServiceModels
) -> None:
    from serving.scoring import import_champions, load_served
    from training.config import TrainConfig
    from training.fit import fit_stage
    from training.promote import promote
    from training.tracking import log_stage_fit

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = ServiceSettings(home=tmp_path, registry_prefix="importcheck")  # apart from the service tests' models
    tables, _ = service_models
    config = TrainConfig.load().override(search={"budget": 1}, booster={"max_rounds": 80})
    frame = make_stage_frame(tables, Stage.INTAKE)
    good = fit_stage(frame, config=config, seed=0)
    v1 = log_stage_fit(good, settings=settings, reports_dir=tmp_path / "reports", gate=small_cohort_gate())
    assert promote(Stage.INTAKE, version=v1.version, settings=settings, gate=small_cohort_gate()).promoted
    shuffled = frame.subset(np.ones(len(frame.y), bool))
    shuffled.y = np.random.default_rng(0).permutation(shuffled.y)
    bad = fit_stage(shuffled, config=config, seed=0)
    bad.frame = frame
    v2 = log_stage_fit(bad, settings=settings, reports_dir=tmp_path / "reports", gate=small_cohort_gate())
    assert not promote(Stage.INTAKE, version=v2.version, settings=settings, gate=small_cohort_gate()).promoted

    tag = import_champions(settings, [Stage.INTAKE])[Stage.INTAKE]
    served = load_served(bentoml.models.get(tag), Stage.INTAKE)
    assert (served.name, served.version) == ("importcheck-intake", v1.version)
    X = good.part("test").X
    chosen = good.model if v1.model_kind == "lightgbm" else good.baseline  # the registered candidate
    assert served.model.kind == v1.model_kind
    np.testing.assert_array_equal(served.model.predict_proba(X), chosen.predict_proba(X))
    assert served.metadata["evaluation"]["roc_auc"] == pytest.approx(v1.metrics["roc_auc"])
    assert served.metadata["gate"]["promoted"] is True
    assert import_champions(settings, [Stage.INTAKE])[Stage.INTAKE] == tag  # already there: not copied again


@pytest.fixture
def cli_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service_models: ServiceModels
) -> tuple[Path, list[dict[str, Any]]]:
    monkeypatch.setenv("RISK_HOME", str(tmp_path))
    write_auth(tmp_path)
    tables, _ = service_models
    bodies = requests_from_tables(tables.persons.head(30), tables.events, Stage.MIDTERM, lang="zh")
    return tmp_path, bodies


def _audit_rows(home: Path) -> int:
    if not (home / "audit.db").exists():
        return 0
    with sqlite3.connect(home / "audit.db") as db:
        rows: int = db.execute("select count(*) from assessments").fetchone()[0]
        return rows


def test_score_file_offline_stores_every_answer(cli_home: tuple[Path, list[dict[str, Any]]]) -> None:
    home, bodies = cli_home
    infile = home / "in.jsonl"
    infile.write_text("".join(json.dumps(b, ensure_ascii=False) + "\n" for b in bodies))
    result = CliRunner().invoke(app, ["score", "--in", str(infile), "--out", str(home / "out.jsonl"), "--chunk", "7"])
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in (home / "out.jsonl").read_text().splitlines()]
    assert [a["person_id"] for a in answers] == [b["person"]["person_id"] for b in bodies]
    assert all(a["reasons"] and a["tier"]["tier"]["label"] in ("严管", "普管") for a in answers)
    assert _audit_rows(home) == len(bodies)


def test_score_file_refuses_a_bad_record_and_writes_nothing(cli_home: tuple[Path, list[dict[str, Any]]]) -> None:
    home, bodies = cli_home
    bad = dict(bodies[2], person=dict(bodies[2]["person"], offence="piracy"))
    infile = home / "in.jsonl"
    infile.write_text("".join(json.dumps(b) + "\n" for b in [bodies[0], bodies[1], bad, bodies[3]]))
    result = CliRunner().invoke(app, ["score", "--in", str(infile), "--out", str(home / "out.jsonl")])
    assert result.exit_code == 2
    assert "line 3" in result.output and "person.offence" in result.output
    assert not (home / "out.jsonl").exists() and _audit_rows(home) == 0


def test_the_demo_caseworker_and_supervisor_carry_an_office(tmp_path: Path) -> None:
    """The first start's tokens carry no office, which the case routes and console refuse (issue 20, defect 5):
    the demo gives its caseworker and supervisor the busiest office, in the same token files."""
    from serving.auth import Role, hash_token, load_or_create
    from serving.cli import ensure_tokens, office_tokens
    from serving.settings import get_settings

    settings = get_settings(home=tmp_path)
    ensure_tokens(settings)
    written = office_tokens(settings, "chengguan")
    config, _ = load_or_create(settings.resolved_auth_file())
    for path, role in zip(written, (Role.CASEWORKER, Role.SUPERVISOR), strict=True):
        assert path == tmp_path / "tokens" / f"{role.value}-{role.value}.token"
        entry = config.tokens[hash_token(path.read_text().strip())]
        assert (entry.role, entry.user, entry.office) == (role, role.value, "chengguan")
    assert sum(e.role is Role.CASEWORKER and e.user == "caseworker" for e in config.tokens.values()) == 1
