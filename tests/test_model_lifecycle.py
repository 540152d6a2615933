"""Train, choose, gate, register and serve: the logistic model when it is as good, reports per version."""

from __future__ import annotations

from pathlib import Path

import bentoml
import numpy as np
import pandas as pd
import pytest
from service_support import small_cohort_gate

from features.labels import StageFrame, make_stage_frame
from features.schema import CaseTables
from features.synthetic import CohortConfig, generate_cohort
from features.vocab import Stage
from serving.settings import ServiceSettings
from training.config import GateConfig, TrainConfig
from training.fit import fit_stage
from training.promote import promote
from training.tracking import log_stage_fit

LINEAR = {"prior_convictions": 0.35, "age": -0.04, "flag_drug_use": 0.8}


@pytest.fixture(scope="module")
def config() -> TrainConfig:
    return TrainConfig.load().override(search={"budget": 1}, booster={"max_rounds": 120})


@pytest.fixture(scope="module")
def linear_frame() -> StageFrame:
    """An intake frame whose labels follow a logistic model of three features: a linear model is optimal."""
    tables = generate_cohort(CohortConfig(persons=6000, seed=41))
    frame = make_stage_frame(tables, Stage.INTAKE)
    present = {k: v for k, v in LINEAR.items() if k in frame.X}
    assert len(present) >= 2, f"catalog lacks the test's features: {list(frame.X.columns)[:20]}"
    logit = np.full(len(frame.y), -1.2)
    for k, w in present.items():
        logit += w * frame.X[k].fillna(frame.X[k].median()).to_numpy(float)
    logit -= logit.mean() + 1.5
    rng = np.random.default_rng(0)
    frame.y = (rng.random(len(logit)) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ServiceSettings:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return ServiceSettings(home=tmp_path, registry_prefix="lifecycle")


def test_logistic_model_is_promoted_and_served_where_linear_is_optimal(
    linear_frame: StageFrame, config: TrainConfig, settings: ServiceSettings
) -> None:
    from serving.scoring import import_champions, load_served

    fit = fit_stage(linear_frame, config=config, seed=0, temporal=False)
    version = log_stage_fit(fit, settings=settings, reports_dir=settings.home / "reports", gate=small_cohort_gate())
    assert version.model_kind == "logistic", version.candidate_reason
    assert "logistic - booster" in version.candidate_reason  # the reason gives the figures it rests on
    # this test is about the model kind: an ECE limit for ~1,200 test rows
    lenient = GateConfig.load().model_copy(update={"ece_limit": 0.05})
    decision = promote(Stage.INTAKE, version=version.version, settings=settings, gate=lenient)
    assert decision.promoted, decision.describe()
    assert decision.model_kind == "logistic"

    tag = import_champions(settings, [Stage.INTAKE])[Stage.INTAKE]
    served = load_served(bentoml.models.get(tag), Stage.INTAKE)
    assert served.model.kind == "logistic" and served.metadata["model_kind"] == "logistic"
    assert served.metadata["gate"]["promoted"] is True
    assert "promoted" in served.metadata["gate"]["decision"]

    X = fit.part("test").X.head(300)
    model = served.model
    M = model.matrix(X)
    contrib = model.contribution_matrix(M)
    np.testing.assert_allclose(contrib.sum(axis=1), model.raw_score(M), atol=1e-9)
    # one column per catalog feature, as the booster's TreeSHAP: one-hot columns summed back to their feature
    assert contrib.shape[1] == len(model.feature_names) + 1
    booster_contrib = fit.model.contribution_matrix(fit.model.matrix(X))
    assert booster_contrib.shape == contrib.shape
    top = model.feature_names[int(np.argmax(np.abs(contrib[:, :-1]).mean(axis=0)))]
    assert top in LINEAR


def test_logistic_reasons_through_the_scorer_add_up(
    linear_frame: StageFrame, config: TrainConfig, settings: ServiceSettings, cohort: CaseTables
) -> None:
    """The service's scorer explains a logistic model as it explains the booster."""
    from models.tier_policy import TierPolicy
    from serving.scoring import Scorer, ServedModel, requests_from_tables

    fit = fit_stage(linear_frame, config=config, seed=0, temporal=False)
    served = ServedModel(Stage.INTAKE, fit.baseline, "lifecycle-intake", "1", "lifecycle-intake:1", {})
    scorer = Scorer({Stage.INTAKE: served}, TierPolicy.load())
    from serving.scoring.schemas import ScoreRequest

    people = cohort.persons.head(20)
    requests = [ScoreRequest.model_validate(r) for r in requests_from_tables(people, cohort.events, Stage.INTAKE)]
    for scored in scorer.score(requests):
        e = scored.explanation
        assert sum(e["contributions"].values()) + e["base_value"] == pytest.approx(e["raw_score"], abs=1e-9)
        assert scored.assessment.explanation.calibration in ("platt", "isotonic")
        for reason in scored.assessment.reasons:
            assert (reason.direction == "raises") == (reason.contribution > 0)


def test_a_challenger_leaves_the_champions_report_and_card_untouched(
    tables_small: CaseTables, config: TrainConfig, settings: ServiceSettings
) -> None:
    frame = make_stage_frame(tables_small, Stage.INTAKE)
    good = fit_stage(frame, config=config, seed=0)
    v1 = log_stage_fit(good, settings=settings, reports_dir=settings.home / "reports", gate=small_cohort_gate())
    assert promote(Stage.INTAKE, version=v1.version, settings=settings, gate=small_cohort_gate()).promoted
    before = {p.name: p.read_bytes() for p in v1.report_dir.iterdir() if p.is_file()}
    assert {"report.md", "model_card.md", "metrics.json"} <= set(before)

    shuffled = frame.subset(np.ones(len(frame.y), bool))
    shuffled.y = np.random.default_rng(0).permutation(shuffled.y)
    bad = fit_stage(shuffled, config=config, seed=0)
    bad.frame = frame
    v2 = log_stage_fit(bad, settings=settings, reports_dir=settings.home / "reports", gate=small_cohort_gate())
    decision = promote(Stage.INTAKE, version=v2.version, settings=settings, gate=small_cohort_gate())
    assert not decision.promoted
    assert v2.report_dir != v1.report_dir and v2.report_dir.name == f"intake-{v2.version}"
    after = {p.name: p.read_bytes() for p in v1.report_dir.iterdir() if p.is_file()}
    assert after == before

    from mlflow.tracking import MlflowClient

    mv = MlflowClient().get_model_version(settings.model_name(Stage.INTAKE), v2.version)
    assert mv.tags["gate_promoted"] == "false" and mv.tags["gate_decision"].startswith("kept as @challenger")
    assert mv.tags["gate.roc_auc_vs_champion"].startswith("FAIL: vs champion")
    assert mv.description is not None and "## Promotion gate" in mv.description and "- FAIL:" in mv.description

    # riskctl models list, written to a pipe: a Markdown table with every column of every version
    from typer.testing import CliRunner

    from serving.cli import app

    env = {"RISK_HOME": str(settings.home), "RISK_REGISTRY_PREFIX": "lifecycle"}
    result = CliRunner().invoke(app, ["models", "list", "--stage", "intake"], env=env)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("| intake")]
    assert len(lines) == 2 and all(line.count("|") == 11 for line in lines)
    assert f"| intake | {v1.version} | @champion |" in result.output
    assert f"| intake | {v2.version} | @challenger |" in result.output
    assert "kept as @challenger: failed" in result.output


def test_report_gate_and_models_give_the_same_fairness(
    tables_small: CaseTables, config: TrainConfig, settings: ServiceSettings
) -> None:
    """One definition: the report's gap and verdicts, the gate's and the gap /models shows, same model and rows."""
    from mlflow.tracking import MlflowClient

    from serving.scoring import import_champions, load_served, model_info
    from training.promote import absolute_criteria
    from training.tracking import split_eval_rows

    frame = make_stage_frame(tables_small, Stage.MIDTERM)
    fit = fit_stage(frame, config=config, seed=0)
    version = log_stage_fit(fit, settings=settings, reports_dir=settings.home / "reports", gate=small_cohort_gate())
    assert promote(Stage.MIDTERM, version=version.version, settings=settings, gate=small_cohort_gate()).promoted
    import json

    report_gap = json.loads((version.report_dir / "metrics.json").read_text())["groups"]["largest_fpr_gap"]
    X, y, meta = split_eval_rows(pd.read_parquet(version.report_dir / "eval_rows.parquet"))
    served = load_served(bentoml.models.get(import_champions(settings, [Stage.MIDTERM])[Stage.MIDTERM]), Stage.MIDTERM)
    from models.tier_policy import TierPolicy

    gate_gap = next(
        c.value
        for c in absolute_criteria(
            y,
            served.model.predict_proba(X),
            meta,
            threshold=TierPolicy.load().strict_cutoff("midterm", served.model.risk_reference),
            gate=small_cohort_gate(),
        )
        if c.name == "largest_fpr_gap"
    )
    shown = model_info(served).evaluation["largest_fpr_gap"]
    assert report_gap == pytest.approx(gate_gap, abs=1e-12) and shown == pytest.approx(gate_gap, abs=1e-12)
    # the report's fairness verdicts are the gate's, word for word
    verdicts = json.loads((version.report_dir / "metrics.json").read_text())["groups"]["fairness"]["verdicts"]
    tags = MlflowClient().get_model_version(settings.model_name(Stage.MIDTERM), version.version).tags
    for v in verdicts:
        assert tags[f"gate.{v['name']}"] == f"{v['verdict']}: {v['message']}"

    # the registered model carries the reference statistics of its training rows: served from the BentoML store,
    # it resolves the very cut-offs training judged it with (logged with its run and beside its report)
    trained = fit.model if version.model_kind == "lightgbm" else fit.baseline
    assert served.model.risk_reference is not None and served.model.risk_reference == trained.risk_reference
    logged = MlflowClient().get_run(served.metadata["mlflow_run_id"]).data.params
    resolved = TierPolicy.load().cutoffs("midterm", served.model.risk_reference)
    assert float(logged["strict_cutoff"]) == resolved.high_from.probability
    assert float(logged["medium_from"]) == resolved.medium_from.probability
    beside = json.loads((version.report_dir / "risk_reference.json").read_text())
    assert beside["cutoffs"] == resolved.record() and beside["reference"]["rows"] == served.model.risk_reference.rows
    card = (version.report_dir / "model_card.md").read_text()
    assert "It aims to flag as high the riskiest 10% of the stage's persons" in card and "| high_from" in card


def test_a_small_offices_model_is_promoted_with_fairness_warnings(
    config: TrainConfig, settings: ServiceSettings
) -> None:
    """2,000 people, a few flagged per group: the error-rate gaps warn, and the shipped gate promotes."""
    from mlflow.tracking import MlflowClient

    frame = make_stage_frame(generate_cohort(CohortConfig(persons=2000, seed=0)), Stage.INTAKE)
    fit = fit_stage(frame, config=config, seed=0)
    version = log_stage_fit(fit, settings=settings, reports_dir=settings.home / "reports")
    decision = promote(Stage.INTAKE, version=version.version, settings=settings)
    assert decision.promoted, decision.describe()
    verdicts = {c.name: c.verdict for c in decision.criteria}
    assert verdicts["largest_fpr_gap"] == verdicts["largest_fnr_gap"] == "warn"
    assert verdicts["calibration_within_groups"] in ("pass", "warn")
    tags = MlflowClient().get_model_version(settings.model_name(Stage.INTAKE), version.version).tags
    assert tags["gate.largest_fpr_gap"].startswith("warn: ") and "flagged)" in tags["gate.largest_fpr_gap"]
    card = (version.report_dir / "model_card.md").read_text()
    assert "### Calibration within groups" in card and "not measurable (" in card


@pytest.fixture(scope="module")
def tables_small() -> CaseTables:
    return generate_cohort(CohortConfig(persons=6000, seed=21))


def test_a_copied_risk_home_uses_its_own_artifacts(
    tables_small: CaseTables, config: TrainConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copy RISK_HOME, train and load in the copy: the original's artifacts are untouched, the copy stands alone."""
    import shutil

    from models.pyfunc import load_stage_model

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    original = ServiceSettings(home=tmp_path / "original", registry_prefix="moved")
    frame = make_stage_frame(tables_small, Stage.INTAKE)
    fit = fit_stage(frame, config=config, seed=0)
    v1 = log_stage_fit(fit, settings=original, gate=small_cohort_gate())
    assert promote(Stage.INTAKE, version=v1.version, settings=original, gate=small_cohort_gate()).promoted
    shutil.copytree(original.home, tmp_path / "copy")
    before = sorted(p.relative_to(original.home) for p in (original.home / "mlartifacts").rglob("*"))

    copy = ServiceSettings(home=tmp_path / "copy", registry_prefix="moved")
    v2 = log_stage_fit(fit, settings=copy, gate=small_cohort_gate())
    promote(Stage.INTAKE, version=v2.version, settings=copy, gate=small_cohort_gate())
    after = sorted(p.relative_to(original.home) for p in (original.home / "mlartifacts").rglob("*"))
    assert after == before  # nothing written into the original
    shutil.rmtree(original.home)
    model = load_stage_model(f"models:/{copy.model_name(Stage.INTAKE)}/{v1.version}")  # from the copy's artifacts
    X = fit.part("test").X
    assert model.predict_proba(X).shape == (len(X),)
    assert v2.report_dir.is_relative_to(copy.home)
