"""The gate against a real (local) registry: a fair comparison by person, failing closed, the alternative kind,
and a promotion over the gate's refusal recorded in the registry, the model card and the audit trail."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from service_support import SECRET, small_cohort_gate, write_auth
from typer.testing import CliRunner

from features.labels import StageFrame, make_stage_frame
from features.schema import CaseTables
from features.synthetic import CohortConfig, generate_cohort
from features.vocab import Stage
from serving.cli import app
from serving.settings import ServiceSettings
from training.config import GateConfig, TrainConfig
from training.fit import StageFit, fit_stage
from training.promote import GateError, decide, promote, promote_trained
from training.registry import PERSONS
from training.tracking import EVAL_ROWS, TrainedVersion, log_stage_fit


def _light(gate: GateConfig) -> GateConfig:
    """``gate`` with its face-validity check on the fewest persons it allows: these tests are about the
    comparison, the registry and the records, and judge a dozen versions (tests/test_face_validity.py is
    about that check)."""
    return gate.model_copy(update={"face_validity": gate.face_validity.model_copy(update={"persons": 20})})


def _gate() -> GateConfig:
    return _light(small_cohort_gate())


def _with(
    gate: GateConfig, *, comparison: dict[str, float] | None = None, error_rates: dict[str, float] | None = None
) -> GateConfig:
    """``gate`` with some comparison margins or error-rate limits changed."""
    rates = gate.fairness.error_rates.model_copy(update=error_rates or {})
    return gate.model_copy(
        update={
            "comparison": gate.comparison.model_copy(update=comparison or {}),
            "fairness": gate.fairness.model_copy(update={"error_rates": rates}),
        }
    )


@pytest.fixture(scope="module")
def tables() -> CaseTables:
    """Large enough for ~2,900 test rows: the shipped gate's margins are set for about that many."""
    return generate_cohort(CohortConfig(persons=15000, seed=21))


@pytest.fixture(scope="module")
def frame(tables: CaseTables) -> StageFrame:
    return make_stage_frame(tables, Stage.INTAKE)


@pytest.fixture(scope="module")
def config() -> TrainConfig:
    return TrainConfig.load().override(search={"budget": 1}, booster={"max_rounds": 120})


@pytest.fixture(scope="module")
def fits(frame: StageFrame, config: TrainConfig) -> dict[int, StageFit]:
    """The same recipe with split seeds 0 and 1."""
    return {seed: fit_stage(frame, config=config, seed=seed) for seed in (0, 1)}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One MLflow store for the module (its database is made once); each test has its own registered names."""
    return tmp_path_factory.mktemp("gate-registry")


def _settings(home: Path, prefix: str, monkeypatch: pytest.MonkeyPatch) -> ServiceSettings:
    """Settings of one registered-name prefix, also in the environment (for the commands)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RISK_HOME", str(home))
    monkeypatch.setenv("RISK_REGISTRY_PREFIX", prefix)
    return ServiceSettings(home=home, registry_prefix=prefix)


@dataclasses.dataclass(frozen=True)
class Registry:
    """Seed 0 registered and promoted (the champion), seed 1 registered (the challenger)."""

    settings: ServiceSettings
    champion: TrainedVersion
    challenger: TrainedVersion


@pytest.fixture(scope="module")
def registry(home: Path, fits: dict[int, StageFit]) -> Iterator[Registry]:
    """Shared by the tests that only read it (or register versions of their own, or fail to write)."""
    with pytest.MonkeyPatch.context() as patch:
        settings = _settings(home, "gate-shared", patch)
        champion = _log(fits[0], settings)
        assert promote(Stage.INTAKE, version=champion.version, settings=settings, gate=_gate()).promoted
        yield Registry(settings, champion, _log(fits[1], settings))


@pytest.fixture
def shared(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> Registry:
    _settings(registry.settings.home, registry.settings.registry_prefix, monkeypatch)
    return registry


@pytest.fixture
def own(home: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ServiceSettings:
    """A registered-name prefix of the test's own, for a test that changes aliases."""
    return _settings(home, "gate-" + request.node.name.removeprefix("test_")[:30].replace("_", "-"), monkeypatch)


def _log(fit: StageFit, settings: ServiceSettings, *, alternative: bool = False) -> TrainedVersion:
    return log_stage_fit(
        fit,
        settings=settings,
        reports_dir=settings.home / "reports",
        gate=_gate(),
        register_alternative=alternative,
    )


def _ids(fit: StageFit, *parts: str) -> set[str]:
    return set(fit.frame.meta["person_id"].astype(str)[np.isin(fit.parts, parts)])


def _artifact(run_id: str, path: str) -> Path:
    """The local file of a run's artifact (the tests' store is a folder)."""
    uri = MlflowClient().get_run(run_id).info.artifact_uri
    return Path(unquote(urlparse(uri).path)) / path


def test_the_test_persons_do_not_depend_on_the_split_seed(fits: dict[int, StageFit]) -> None:
    """The seed reshuffles train, valid and calib only: every retrain holds out the same persons."""
    assert np.array_equal(fits[0].parts == "test", fits[1].parts == "test")
    assert _ids(fits[0], "train") != _ids(fits[1], "train")
    persons = fits[0].persons()
    assert persons["person_id"].is_unique and set(persons["part"]) == {"train", "valid", "calib", "test"}
    shares = persons["part"].value_counts(normalize=True)
    split = fits[0].config.split
    assert abs(shares["test"] - split.test) < 0.02 and abs(shares["calib"] - split.calib) < 0.02


def test_a_retrain_of_the_champions_recipe_is_compared_on_persons_no_model_saw(
    fits: dict[int, StageFit], shared: Registry
) -> None:
    """Seed 0 is the champion, seed 1 the challenger: compared on rows neither model (nor the baseline, fitted
    with the challenger) was trained, tuned or calibrated on, with the shipped margins, it is judged no worse."""
    gate = _light(GateConfig.load())  # the shipped gate, its face-validity check on fewer persons
    decision = decide(Stage.INTAKE, version=shared.challenger.version, settings=shared.settings, gate=gate)
    assert decision.champion_version == shared.champion.version
    learnt_from = _ids(fits[0], "train", "valid", "calib") | _ids(fits[1], "train", "valid", "calib")
    assert decision.compared_persons == _ids(fits[1], "test")
    assert not decision.compared_persons & learnt_from
    compared = {c.name: c for c in decision.criteria if c.name.endswith("_vs_champion")}
    assert set(compared) == {"roc_auc_vs_champion", "brier_vs_champion", "log_loss_vs_champion"}
    assert all(c.passed for c in compared.values()), decision.describe()
    n_test = int((fits[1].parts == "test").sum())
    assert n_test >= gate.comparison.min_rows
    assert f"; on {n_test:,} rows (0 rows of persons" in compared["roc_auc_vs_champion"].message
    assert decision.compared == f"champion compared on {n_test:,} of {n_test:,} test rows " + (
        f"(0 rows of persons version {decision.champion_version} was trained, tuned or calibrated on left out)"
    )


def test_rows_of_persons_the_champion_saw_are_left_out_and_too_few_are_not_compared(
    fits: dict[int, StageFit],
    frame: StageFrame,
    config: TrainConfig,
    shared: Registry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A challenger whose test part is wider than the champion's (a new split) is compared only on the persons the
    champion did not see; with fewer of them than ``min_rows``, or none known, the comparison fails and says so."""
    settings = shared.settings
    wide = fit_stage(frame, config=config.override(split={"test": 0.4}), seed=1)
    v = _log(wide, settings)
    decision = decide(Stage.INTAKE, version=v.version, settings=settings, gate=_gate())
    assert decision.compared_persons == _ids(fits[0], "test")  # the champion's own test persons, and no others
    test_ids = wide.part("test").meta["person_id"].astype(str)
    left_out = int(test_ids.isin(_ids(fits[0], "train", "valid", "calib")).sum())
    assert left_out > 1000
    message = next(c.message for c in decision.criteria if c.name == "roc_auc_vs_champion")
    version = decision.champion_version
    assert f"({left_out:,} rows of persons version {version} was trained, tuned or calibrated on left out)" in message

    n = len(decision.compared_persons)
    strict = _gate()
    strict = strict.model_copy(update={"comparison": strict.comparison.model_copy(update={"min_rows": n + 1})})
    few = decide(Stage.INTAKE, version=v.version, settings=settings, gate=strict)
    assert [c.name for c in few.criteria if c.name.endswith("vs_champion")] == ["vs_champion"]
    refusal = next(c for c in few.criteria if c.name == "vs_champion")
    assert not refusal.passed and not few.passed
    assert f"only {n:,} test rows of persons no compared model saw" in refusal.message
    assert f"fewer than the {n + 1:,}" in refusal.message

    from training.registry import recorded_persons

    champion_run = shared.champion.run_id
    monkeypatch.setattr(  # a champion registered before persons were kept
        "training.promote.recorded_persons",
        lambda client, run: None if run == champion_run else recorded_persons(client, run),
    )
    unknown = decide(Stage.INTAKE, version=v.version, settings=settings, gate=_gate())
    refusal = next(c for c in unknown.criteria if c.name == "vs_champion")
    assert not refusal.passed and "did not record the persons it was trained" in refusal.message
    assert not unknown.compared_persons


@pytest.mark.parametrize(
    ("method", "error"),
    [
        ("get_registered_model", MlflowException("API request to http://tracking:5000 failed: Connection refused")),
        ("list_artifacts", OSError("disk I/O error")),
    ],
)
def test_a_registry_that_raises_is_an_error_never_a_promotion(shared: Registry, method: str, error: Exception) -> None:
    """Reading the champion fails (the aliases, or the persons): the gate names the error, promotes nothing and
    records nothing, and ``riskctl promote`` exits 1."""
    settings, challenger = shared.settings, shared.challenger

    def fail(*args: object, **kwargs: object) -> None:
        raise error

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(MlflowClient, method, fail)
        with pytest.raises(GateError) as raised:
            promote(Stage.INTAKE, version=challenger.version, settings=settings, gate=_gate())
        result = CliRunner().invoke(app, ["promote", "--stage", "intake", "--version", challenger.version])
    assert str(error).split(":")[-1].strip() in str(raised.value) and "cannot read" in str(raised.value)
    assert result.exit_code == 1, result.output
    assert "Error: intake: the gate could not decide, nothing was promoted" in result.output
    mv = MlflowClient().get_model_version(settings.model_name(Stage.INTAKE), challenger.version)
    assert not mv.aliases and "gate_decision" not in mv.tags
    assert MlflowClient().get_registered_model(mv.name).aliases["champion"] == int(shared.champion.version)


def test_both_kinds_are_registered_and_the_alternative_is_judged_when_the_candidate_is_refused(
    fits: dict[int, StageFit], own: ServiceSettings
) -> None:
    """Training registers the other kind beside the candidate; the gate says the logistic model is the baseline
    itself rather than comparing it with itself, fails a missing baseline, and ``promote_trained`` judges the
    alternative when the candidate is refused."""
    trained = _log(fits[0], own, alternative=True)
    alternative = trained.alternative
    assert alternative is not None and {trained.model_kind, alternative.model_kind} == {"logistic", "lightgbm"}
    client, name = MlflowClient(), own.model_name(Stage.INTAKE)
    assert client.get_model_version(name, trained.version).tags["alternative_version"] == alternative.version
    alt_tags = client.get_model_version(name, alternative.version).tags
    assert alt_tags["candidate_role"] == "alternative" and alt_tags["alternative_of"] == trained.version
    for version in (trained, alternative):
        persons = pd.read_parquet(_artifact(version.run_id, PERSONS))
        assert set(persons["person_id"]) == set(fits[0].frame.meta["person_id"].astype(str))
    listed = CliRunner().invoke(app, ["models", "list", "--stage", "intake"])
    assert f"not judged: alternative to version {trained.version}" in listed.output, listed.output

    # the logistic model is the baseline itself: one row says so (no +0.0000 figures); test rows without
    # the baseline's probabilities: the baseline comparison fails, it is not skipped
    logistic = trained if trained.model_kind == "logistic" else alternative
    booster = alternative if logistic is trained else trained
    itself = decide(Stage.INTAKE, version=logistic.version, settings=own, gate=_gate())
    vs = [c for c in itself.criteria if "baseline" in c.name]
    assert [c.name for c in vs] == ["vs_baseline"] and vs[0].passed
    assert "not compared: the candidate is the logistic baseline itself" in vs[0].message
    assert "+0.0000" not in itself.describe()
    compared = decide(Stage.INTAKE, version=booster.version, settings=own, gate=_gate())
    assert {"roc_auc_vs_baseline", "brier_vs_baseline", "log_loss_vs_baseline"} <= {c.name for c in compared.criteria}

    rows = _artifact(booster.run_id, EVAL_ROWS)
    original = rows.read_bytes()
    try:
        pd.read_parquet(rows).drop(columns=["meta_baseline"]).to_parquet(rows, index=False)
        missing = decide(Stage.INTAKE, version=booster.version, settings=own, gate=_gate())
    finally:
        rows.write_bytes(original)
    refusal = next(c for c in missing.criteria if c.name == "vs_baseline")
    assert not refusal.passed and "no baseline probabilities" in refusal.message and not missing.passed

    # the gate's FPR-gap limit between the two models' largest gaps (and margins that pass either against the
    # other): the first judged fails, the second passes
    wide = _with(_gate(), comparison={"auc_margin": 1.0, "brier_margin": 1.0, "log_loss_margin": 1.0})
    gap = {
        v.version: next(
            c.value
            for c in decide(Stage.INTAKE, version=v.version, settings=own, gate=wide).criteria
            if c.name == "largest_fpr_gap"
        )
        for v in (trained, alternative)
    }
    worse, better = sorted((trained, alternative), key=lambda v: -gap[v.version])
    assert gap[worse.version] > gap[better.version]
    between = _with(wide, error_rates={"fpr_gap_limit": (gap[worse.version] + gap[better.version]) / 2})
    decisions = promote_trained(dataclasses.replace(worse, alternative=better), settings=own, gate=between)
    assert [(d.version, d.promoted) for d in decisions] == [(worse.version, False), (better.version, True)]
    assert [c.name for c in decisions[0].failed] == ["largest_fpr_gap"]
    aliases = client.get_registered_model(name).aliases
    assert aliases == {"champion": int(better.version), "challenger": int(worse.version)}
    # a candidate the gate passes: its alternative is not judged
    assert len(promote_trained(dataclasses.replace(better, alternative=worse), settings=own, gate=between)) == 1


def test_a_promotion_over_the_gates_refusal_is_recorded_in_tags_card_and_trail(
    fits: dict[int, StageFit], own: ServiceSettings
) -> None:
    """A first model the gate refuses (here on its FPR gap between groups, the limit set to nothing) is promoted
    by a named user with a reason: the registry's tags, the card's gate section and the audit trail say so,
    ``riskctl models list`` shows it, and the trail still verifies."""
    from serving.audit import AuditStore, verify_trail

    v = _log(fits[0], own)
    strict = _with(_gate(), error_rates={"fpr_gap_limit": 1e-9})  # any measured gap refuses
    write_auth(own.home)
    runner = CliRunner()
    base = ["promote", "--stage", "intake", "--version", v.version]
    with pytest.MonkeyPatch.context() as patch:  # the gate the command applies
        patch.setattr(GateConfig, "load", classmethod(lambda cls, path=None: strict))
        refused = runner.invoke(app, base)
        assert refused.exit_code == 2 and "-> @challenger (first model)" in refused.output, refused.output
        for args, says in [
            ([*base, "--override-reason", "  "], "--override-reason is empty"),
            (["promote", "--stage", "all", "--override-reason", "why"], "one version of one stage"),
            (["promote", "--stage", "intake", "--override-reason", "why"], "needs --version"),
            ([*base, "--by", "alice"], "give --override-reason too"),
        ]:
            result = runner.invoke(app, args)
            assert result.exit_code == 2 and says in result.output, result.output
        client, name = MlflowClient(), own.model_name(Stage.INTAKE)
        assert "champion" not in client.get_registered_model(name).aliases
        reason = "pilot office: a tier needs a model today; the FPR gap to be re-checked on next quarter's data"
        result = runner.invoke(app, [*base, "--override-reason", reason, "--by", "alice"])
    assert result.exit_code == 0, result.output
    assert "-> @champion (first model)" in result.output and "OVERRIDE by alice" in result.output

    mv = client.get_model_version(name, v.version)
    assert mv.aliases == ["champion"]  # no longer the challenger it was when refused
    assert mv.tags["gate_override"] == "true" and mv.tags["gate_override_by"] == "alice"
    assert mv.tags["gate_override_reason"] == reason and mv.tags["gate_override_failed"] == "largest_fpr_gap"
    assert mv.tags["gate_decision"].startswith("promoted to @champion by override (alice")
    assert mv.tags["gate_promoted"] == "true" and mv.tags["gate.largest_fpr_gap"].startswith("FAIL: largest FPR gap")
    card = mv.description or ""
    assert "promoted to champion by override, over the gate's refusal" in card
    assert "Override by **alice**" in card and reason in card and "- FAIL: largest FPR gap" in card

    store = AuditStore(own.resolved_audit_url(), secret=SECRET)
    events, heads = store.model_events(name), store.head()
    store.close()
    assert [(e.event, e.model_version, e.actor, e.reason) for e in events] == [
        ("promotion_override", v.version, "alice", reason)
    ]
    assert [f["name"] for f in events[0].detail["failed"]] == ["largest_fpr_gap"]
    assert events[0].detail["champion_before"] is None
    assert verify_trail(own.resolved_audit_url(), allow_newer=True).ok
    assert heads["models"][1] == events[-1].record_hash

    listed = runner.invoke(app, ["models", "list", "--stage", "intake"])
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if line.startswith(f"| intake | {v.version} |"))
    assert "@champion" in row and "by override (alice" in row and reason in row


def test_evaluate_names_the_version_and_warns_of_rows_the_model_learnt_from(
    tables: CaseTables, fits: dict[int, StageFit], shared: Registry, tmp_path: Path
) -> None:
    """``riskctl evaluate`` on the champion's own data: the alias resolved to its version in the report, a warning
    with the rows of persons it was trained, tuned or calibrated on, and ``--unseen-only`` leaves them out."""
    import json

    data = tmp_path / "data"
    tables.write(data)
    uri = f"models:/{shared.settings.model_name(Stage.INTAKE)}@champion"
    out = tmp_path / "unseen"
    args = ["evaluate", "--stage", "intake", "--model", uri, "--data", str(data), "--out", str(out), "--unseen-only"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    learnt, n = int((fits[0].parts != "test").sum()), len(fits[0].parts)
    assert f"warning: {learnt:,} of {n:,} rows" in result.output
    assert "they are left out (--unseen-only)" in result.output
    report = json.loads((out / "metrics.json").read_text())
    meta = report["meta"]
    assert meta["model_version"] == shared.champion.version and meta["run_id"] == shared.champion.run_id
    assert meta["rows_of_persons_the_model_learnt_from"] == learnt and meta["unseen_only"] is True
    assert meta["rows_evaluated"] == report["metrics"]["n"] == n - learnt
    assert f"version {shared.champion.version}" in meta["title"]
