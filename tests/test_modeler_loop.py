"""The modeler's loop against a real (local) registry: cards that agree after the gate, promotion history and
rollback, an identical retrain recognised, lineage on the runs, ``evaluate`` logged per version and data, and
``build`` on a fresh home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from service_support import SECRET, small_cohort_gate, write_auth
from typer.testing import CliRunner

from features.synthetic import CohortConfig, generate_cohort
from features.vocab import Stage
from serving.cli import app
from serving.settings import ServiceSettings
from training.cards import CARD_ARTIFACT, REPORT_DIR_TAG
from training.config import GateConfig, TrainConfig
from training.history import history_of
from training.lineage import FINGERPRINT_TAG

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("loop-data") / "cohort"
    generate_cohort(CohortConfig(persons=2000, seed=41)).write(folder)
    return folder


def _light_gate() -> GateConfig:
    gate = small_cohort_gate()
    return gate.model_copy(update={"face_validity": gate.face_validity.model_copy(update={"persons": 20})})


def _patch(patch: pytest.MonkeyPatch, home: Path) -> ServiceSettings:
    """Commands in ``home``, training small (one grid point) and judged by the small-cohort gate."""
    patch.delenv("MLFLOW_TRACKING_URI", raising=False)
    patch.setenv("RISK_HOME", str(home))
    small = TrainConfig.load().override(search={"budget": 1}, booster={"max_rounds": 60})
    gate = _light_gate()
    patch.setattr(TrainConfig, "load", classmethod(lambda cls, path=None: small))
    patch.setattr(GateConfig, "load", classmethod(lambda cls, path=None: gate))
    return ServiceSettings(home=home)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Iterator[Path]:
    """One home for the module: intake trained once, version 1 its champion (by the gate, or over its refusal on
    this small cohort). The tests leave version 1 the champion whatever their order."""
    home = tmp_path_factory.mktemp("loop") / "home"
    write_auth(home)
    with pytest.MonkeyPatch.context() as patch:
        _patch(patch, home)
        _run("train", "--data", str(data), "--stage", "intake", "--promote", "--no-alternative")
        _run("promote", "--stage", "intake", "--version", "1", "--override-reason", "a small test cohort", "--by", "t")
    yield home


@pytest.fixture
def home(trained: Path, monkeypatch: pytest.MonkeyPatch) -> ServiceSettings:
    return _patch(monkeypatch, trained)


def _run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _artifact_text(client: MlflowClient, run_id: str, path: str) -> str:
    import mlflow

    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path)).read_text()


def test_card_report_and_registry_say_the_gates_decision_and_runs_carry_their_lineage(
    home: ServiceSettings, data: Path
) -> None:
    """After ``train --promote`` the card in the registry, in the run and in the report folder is the same text,
    with the gate's decision; the figures link to the run's artifacts in the registry and sit beside the card in
    the folder; the run is named, timed, tagged and carries its data, per-kind parameters and importances."""
    client, name = MlflowClient(), home.model_name(Stage.INTAKE)
    mv = client.get_model_version(name, "1")
    assert "champion" in mv.aliases
    registry = mv.description or ""
    run_card = _artifact_text(client, str(mv.run_id), CARD_ARTIFACT)
    folder = Path(mv.tags[REPORT_DIR_TAG])
    local = (folder / "model_card.md").read_text()
    for card in (registry, run_card, local):
        assert "Decision: **promoted to champion" in card and "Not yet applied" not in card
    assert registry == run_card
    assert "](get-artifact?path=evaluation%2Froc.png&run_uuid=" in registry and "](roc.png)" not in registry
    assert "](roc.png)" in local and (folder / "roc.png").is_file()
    assert local == registry.replace("get-artifact?path=evaluation%2F", "").replace(f"&run_uuid={mv.run_id}", "")

    run = client.get_run(str(mv.run_id))
    kind = run.data.tags["model_kind"]
    assert (
        run.info.run_name.startswith(f"intake-{kind}-") and run.data.tags[FINGERPRINT_TAG] == mv.tags[FINGERPRINT_TAG]
    )
    assert (
        run.data.metrics["fit_seconds"] > 0
        and run.info.end_time - run.info.start_time >= 1000 * run.data.metrics["fit_seconds"]
    )
    assert run.data.tags.get("mlflow.source.git.commit") or not (ROOT / ".git").exists()
    booster_params = {"num_leaves", "learning_rate", "max_depth"}
    assert not booster_params & set(run.data.params) if kind == "logistic" else booster_params <= set(run.data.params)
    assert run.inputs is not None
    (dataset,) = run.inputs.dataset_inputs
    tags = {t.key: t.value for t in dataset.tags}
    assert dataset.dataset.digest == run.data.tags["data_digest"][:32]
    assert str(data.resolve()) in dataset.dataset.source and int(tags["persons"]) > 0
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    importances = (folder / "importance.csv").read_text().splitlines()
    assert importances[0].startswith("feature,mean_abs_contribution,share") and len(importances) > 10

    listed = _run("models", "list", "--stage", "intake")
    row = next(line for line in listed.splitlines() if line.startswith("| intake | 1 |"))
    assert "%" in row.split("|")[8]  # the share flagged as a percentage, as the gate prints it


def test_history_is_kept_rollback_returns_the_champion_and_an_identical_retrain_is_not_registered(
    home: ServiceSettings, data: Path
) -> None:
    """Two champions in turn, then a rollback with a reason: each version's history keeps every decision with its
    time and user, the rollback is chained in the audit trail, and retraining the same recipe registers nothing."""
    from serving.audit import AuditStore

    again = _run("train", "--data", str(data), "--stage", "intake", "--promote", "--no-alternative")
    assert "version 1 was trained from the same data" in again and "not trained or registered again" in again
    client, name = MlflowClient(), home.model_name(Stage.INTAKE)
    assert [str(v.version) for v in client.search_model_versions(f"name='{name}'")] == ["1"]

    _run("train", "--data", str(data), "--stage", "intake", "--seed", "1", "--no-alternative")
    _run("promote", "--stage", "intake", "--version", "2", "--override-reason", "pilot", "--by", "alice")
    assert client.get_registered_model(name).aliases["champion"] == 2
    refused = CliRunner().invoke(app, ["promote", "--rollback", "--stage", "intake"])
    assert refused.exit_code == 2 and "--rollback needs --reason" in refused.output
    out = _run("promote", "--rollback", "--stage", "intake", "--reason", "version 2 misplaces the pilot", "--by", "bob")
    assert "returned from version 2 to version 1 by bob" in out
    assert client.get_registered_model(name).aliases["champion"] == 1

    second = history_of(client.get_model_version(name, "2").tags)
    assert [e["event"] for e in second] in (["override", "rolled_back"], ["promoted", "rolled_back"])
    assert second[0]["champion_before"] == "1" and second[0]["criteria"] and second[-1]["by"] == "bob"
    assert all(e["at"] and e["by"] for e in second)
    first = history_of(client.get_model_version(name, "1").tags)
    assert [e["event"] for e in first][-1] == "restored" and first[-1]["reason"].startswith("version 2")
    assert {"promoted", "override"} & {e["event"] for e in first}  # kept beside the restoration
    card = client.get_model_version(name, "2").description or ""
    assert "## Rollback" in card and "returned to version 1" in card and "misplaces the pilot" in card
    assert "Restored as @champion" in (home.home / "reports" / "intake-1" / "model_card.md").read_text()
    again_back = CliRunner().invoke(app, ["promote", "--rollback", "--stage", "intake", "--reason", "once more"])
    assert again_back.exit_code == 2 and "no earlier champion" in again_back.output

    store = AuditStore(home.resolved_audit_url(), secret=SECRET)
    events = store.model_events(name)
    store.close()
    assert [(e.event, e.model_version, e.actor) for e in events][-1] == ("champion_rollback", "1", "bob")
    assert events[-1].detail["champion_before"] == "2"

    history = _run("models", "list", "--stage", "intake", "--history")
    assert "rolled back to 1" in history and "restored (rollback of 2)" in history and "| bob |" in history


def test_evaluate_logs_a_run_with_the_version_and_never_overwrites_a_report(home: ServiceSettings, data: Path) -> None:
    """The report goes to a folder named by the resolved version and the data's digest; one already there (an
    earlier evaluation) is kept and a numbered sibling written; the run names the version."""
    from features.schema import CaseTables
    from training.lineage import data_digest

    earlier = home.home / "reports" / f"evaluate-intake-v1-{data_digest(CaseTables.read(data))[:12]}"
    earlier.mkdir(parents=True)
    (earlier / "report.md").write_text("an earlier evaluation")
    uri = f"models:/{home.model_name(Stage.INTAKE)}@champion"
    output = _run("evaluate", "--stage", "intake", "--model", uri, "--data", str(data))
    written = earlier.with_name(earlier.name + ".2")
    assert (earlier / "report.md").read_text() == "an earlier evaluation" and f"report: {written}" in output
    run = MlflowClient().get_run(output.split("MLflow run ")[1].split()[0])
    assert run.data.tags["model_version"] == "1" and run.data.tags["run_kind"] == "evaluation"
    assert run.info.run_name.startswith("intake-evaluate-v1-") and "test_roc_auc" in run.data.metrics
    assert run.inputs is not None and run.inputs.dataset_inputs[0].dataset.digest == run.data.tags["data_digest"][:32]
    metrics = json.loads((written / "metrics.json").read_text())
    assert metrics["meta"]["model_version"] == "1" and metrics["meta"]["data_digest"] == run.data.tags["data_digest"]


def test_build_refuses_a_stage_without_a_champion_and_names_what_to_run(home: ServiceSettings) -> None:
    result = CliRunner().invoke(app, ["build"])
    assert result.exit_code == 2, result.output
    assert "midterm, release has no @champion" in result.output
    assert "riskctl train --data DIR --stage release --promote" in result.output


@pytest.mark.slow
def test_build_on_a_fresh_home_imports_the_champions_itself(tmp_path: Path, data: Path) -> None:
    """``riskctl build`` on a home whose BentoML store is empty: it imports every stage's champion, then builds."""
    # a fresh home and nothing else of this process's environment (no store, registry or prefix of another test)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BENTOML_", "MLFLOW_", "RISK_"))}
    env |= {"RISK_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "serving.cli"]
    train = [*cli, "train", "--data", str(data), "--stage", "all", "--budget", "1", "--no-alternative"]
    trained = subprocess.run(train, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr + trained.stdout
    uri = f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)  # not the registry another test set for the process
    for stage in Stage:  # champions set directly: this test is about build, not about the gate
        assert client.search_model_versions(f"name='reoffence-{stage.value}'"), trained.stdout + trained.stderr
        client.set_registered_model_alias(f"reoffence-{stage.value}", "champion", "1")
    built = subprocess.run([*cli, "build"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert built.returncode == 0, built.stderr + built.stdout
    assert "built reoffence-risk" in built.stdout or "built " in built.stdout
    for stage in Stage:
        assert f"{stage.value:8s} @champion -> BentoML model" in built.stdout
    assert (tmp_path / "home" / "bentoml" / "bentos").is_dir()
