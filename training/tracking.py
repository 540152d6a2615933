"""Track stage fits in MLflow: baseline and boosted runs, evaluation artefacts, registered versions.

With no configuration MLflow tracks into ``<RISK_HOME>/mlflow.db`` (SQLite) with artefacts in
``<RISK_HOME>/mlartifacts``; ``MLFLOW_TRACKING_URI`` (or ``RISK_TRACKING_URI``) points it at a server.
A copied or moved ``RISK_HOME`` is re-pointed at its own artefacts (:mod:`training.relocate`).
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.metadata as md
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from evaluation import (
    EvaluationReport,
    classification_metrics,
    evaluate,
    importance_table,
    model_card,
    policy_figures,
)
from features.labels import GROUP_COLUMNS
from features.settings import Settings, get_settings
from features.vocab import Stage
from models.cutoffs import BandCutoffs
from models.estimator import StageEstimator
from models.pyfunc import ARTIFACT_KEY, CODE_PACKAGES, CODE_PATH
from models.tier_policy import TierPolicy, TierPolicyError
from training.cards import REPORT_DIR_TAG, publish_card
from training.config import GateConfig
from training.fit import PARTS, CandidateChoice, StageFit, choose_candidate
from training.lineage import FINGERPRINT_TAG, FitRecipe, code_digest, git_commit
from training.relocate import relocate_local_store
from training.report import shap_summary_png

log = logging.getLogger(__name__)
EVAL_ROWS = "evaluation/eval_rows.parquet"
#: artifact of each version's run: one row per person of the fit, ``person_id`` and ``part`` (train, valid,
#: calib, test), so the gate and ``riskctl evaluate`` know whom a model was trained, tuned and calibrated on
#: (training.registry.recorded_persons)
PERSONS = "split/persons.parquet"
#: column of the logged test rows (``meta_baseline``) with the logistic baseline's probability
BASELINE_COLUMN = "baseline"
#: experiment tag that tells the MLflow 3 UI what the experiment holds (else it may open the GenAI views)
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
#: the distributions a logged stage model needs, pinned to the versions it was trained with (the project's
#: own modules travel with it as code paths: models.pyfunc.CODE_PACKAGES)
MODEL_REQUIREMENTS = ("mlflow", "lightgbm", "scikit-learn", "scipy", "numpy", "pandas", "joblib", "pydantic")


def configure_mlflow(settings: Settings | None = None) -> MlflowClient:
    """Point MLflow at the configured tracking URI (creating the local folder) and return a client."""
    settings = settings or get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    # MLflow's per-download progress bars (one per artifact fetch) say nothing a user needs
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow logs its database set-up and migrations at INFO on its own handler: keep its warnings only
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    relocate_local_store(settings)  # a copied or moved RISK_HOME uses its own artifacts
    uri = settings.resolved_tracking_uri()
    # MLflow also writes the URIs into MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI, which Settings reads:
    # left there, they would send every later Settings (another RISK_HOME in this process) to this store.
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return MlflowClient(uri, uri)


def ensure_experiment(client: MlflowClient, settings: Settings, stage: Stage | str) -> str:
    """The stage's experiment (created if needed), tagged as a model-development experiment."""
    name = settings.experiment_name(stage)
    found = client.get_experiment_by_name(name)
    key, kind = EXPERIMENT_KIND
    if found is not None:
        if found.tags.get(key) != kind:
            client.set_experiment_tag(found.experiment_id, key, kind)
        return str(found.experiment_id)
    location = None if settings.resolved_tracking_uri().startswith("http") else settings.artifact_location()
    return str(client.create_experiment(name, artifact_location=location, tags={key: kind}))


def run_name(stage: Stage | str, kind: str, at_ms: int | None = None) -> str:
    """A run's name: stage, kind and the UTC time it started (``midterm-lightgbm-20261205-153012``)."""
    at = dt.datetime.now(dt.UTC) if at_ms is None else dt.datetime.fromtimestamp(at_ms / 1000, dt.UTC)
    return f"{Stage(stage).value}-{kind}-{at:%Y%m%d-%H%M%S}"


@contextmanager
def timed_run(client: MlflowClient, experiment_id: str, name: str, *, started_ms: int | None) -> Iterator[str]:
    """An active run that started at ``started_ms`` (when its training began), so its duration is the training's
    and the logging's, not the logging's alone; yields its id."""
    # the context tags (user, source) MLflow gives a run it starts itself
    run = client.create_run(experiment_id, start_time=started_ms, tags=dict(_context_tags()), run_name=name)
    with mlflow.start_run(run_id=run.info.run_id):
        yield str(run.info.run_id)


@functools.cache
def _context_tags() -> dict[str, str]:
    """MLflow's context tags (user, source, git): the same for every run of this process, resolved once (each
    resolution asks git and the environment again)."""
    from mlflow.tracking.context.registry import resolve_tags

    return dict(resolve_tags())


def model_requirements() -> list[str]:
    """:data:`MODEL_REQUIREMENTS` pinned to the installed versions (``lightgbm==4.6.0``)."""
    return [f"{dist}=={md.version(dist)}" for dist in MODEL_REQUIREMENTS]


def log_lineage(fit: StageFit, recipe: FitRecipe | None, source: str) -> None:
    """Tags and the dataset input of the active run: the git commit, the code's digest, the data (an MLflow
    dataset: its digest, where it was read from, how many persons), the fit's fingerprint."""
    state = git_commit()
    tags = {"code_digest": code_digest(), "data_source": source}
    if state is not None:
        tags |= {"mlflow.source.git.commit": state.commit, "git_dirty": str(state.dirty).lower()}
    if recipe is not None:
        tags |= {"data_digest": recipe.data, FINGERPRINT_TAG: recipe.fingerprint}
    mlflow.set_tags(tags)
    persons = fit.persons()
    counts = persons["part"].value_counts()
    _log_dataset(
        persons,
        source,
        f"{fit.frame.stage.value}-persons",
        recipe.data if recipe is not None else None,
        context="training",
        tags={"persons": str(len(persons)), **{f"persons_{p}": str(int(counts.get(p, 0))) for p in PARTS}},
    )


@dataclass
class TrainedVersion:
    stage: str
    model_name: str
    version: str
    run_id: str
    baseline_run_id: str
    metrics: dict[str, float | None]
    report_dir: Path
    model_kind: str = "lightgbm"
    candidate_reason: str = ""
    #: the other model kind, registered beside the candidate (None when not registered)
    alternative: TrainedVersion | None = None


def eval_rows_frame(fit: StageFit, baseline_prob: np.ndarray | None = None) -> pd.DataFrame:
    """The test rows as logged: features, label and metadata (groups, oracle, the baseline's probability)."""
    test = fit.part("test")
    meta = test.meta if baseline_prob is None else test.meta.assign(**{BASELINE_COLUMN: baseline_prob})
    return test.X.assign(label=test.y).join(meta.add_prefix("meta_"))


def split_eval_rows(rows: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    meta = rows[[c for c in rows.columns if c.startswith("meta_")]].rename(columns=lambda c: c[5:])
    X = rows.drop(columns=[*meta.add_prefix("meta_").columns, "label"])
    return X, rows["label"].to_numpy(dtype=int), meta


def _log_baseline(
    fit: StageFit,
    client: MlflowClient,
    experiment_id: str,
    y_prob: np.ndarray,
    metrics_fn: Callable[[np.ndarray], dict[str, float]],
) -> str:
    stage = fit.frame.stage.value
    started = fit.extra.get("started_ms")
    with timed_run(client, experiment_id, run_name(stage, "baseline", started), started_ms=started) as run_id:
        mlflow.set_tags({"stage": stage, "model_kind": "baseline", "config_version": fit.config.version})
        mlflow.log_params(
            {"model": "LinearStageModel (sign-constrained logistic regression)", **fit.baseline.get_params()}
        )
        mlflow.log_metrics({f"test_{k}": v for k, v in metrics_fn(y_prob).items() if _finite(v)})
    return run_id


def _finite(v: object) -> bool:
    return isinstance(v, (int, float, np.floating)) and np.isfinite(v)


def version_report_dir(root: Path, stage: Stage, version: str) -> Path:
    """``<root>/<stage>-<version>``: one folder per registered version, never overwritten."""
    path = Path(root) / f"{stage.value}-{version}"
    n = 1
    while path.exists():  # a registry reset reuses version numbers: keep the older folder too
        n += 1
        path = Path(root) / f"{stage.value}-{version}.{n}"
    return path


def log_stage_fit(
    fit: StageFit,
    *,
    settings: Settings | None = None,
    data_description: str = "",
    reports_dir: Path | None = None,
    gate: GateConfig | None = None,
    register_alternative: bool = False,
    recipe: FitRecipe | None = None,
) -> TrainedVersion:
    """Choose the candidate (booster or logistic), log the runs, evaluate on the test rows, register it.

    With ``register_alternative`` (``riskctl train`` does) the other model is registered too, as the next
    version, with its own run, report and card (at its own cut-offs) and the tags
    ``candidate_role=alternative`` and ``alternative_of=<candidate version>``: when the candidate fails the
    gate and the alternative would pass, a modeler can promote it (``riskctl train --promote`` judges it
    then). Each run keeps its person ids per part (:data:`PERSONS`), so the gate can compare later models on
    persons none of them saw.

    The report and model card go to ``<reports_dir>/<stage>-<version>`` (default ``<home>/reports``),
    a new folder per registered version, so a challenger never overwrites the champion's.

    Each run carries its lineage (:func:`log_lineage`: git commit, code digest, the data as an MLflow dataset)
    and, with ``recipe``, the fit's fingerprint (tag ``fit_fingerprint`` of the run and the version), by which
    ``riskctl train`` recognises an identical retrain.
    """
    settings = settings or get_settings()
    gate = gate or GateConfig.load()
    client = configure_mlflow(settings)
    stage = fit.frame.stage
    experiment_id = ensure_experiment(client, settings, stage)
    policy = TierPolicy.load()
    test = fit.part("test")
    choice = choose_candidate(fit, gate.comparison)
    model = choice.model
    # the policy's cut-offs as this model resolves them (relative forms: against its own training rows)
    cutoffs = policy.cutoffs(stage, model.risk_reference)
    threshold = policy.stage(stage).strict_from(cutoffs)
    base_prob = fit.baseline.predict_proba(test.X)
    booster = classification_metrics(
        test.y, fit.model.predict_proba(test.X), threshold=_own_cutoff(policy, fit.model, threshold)
    )
    base_threshold = _own_cutoff(policy, fit.baseline, threshold)
    baseline_run = _log_baseline(
        fit, client, experiment_id, base_prob, lambda p: classification_metrics(test.y, p, threshold=base_threshold)
    )
    target = _Target(
        client, settings, experiment_id, policy, gate, data_description, reports_dir, base_prob, booster, recipe
    )
    trained = _log_version(fit, choice, model, cutoffs, target, role="candidate")
    trained.baseline_run_id = baseline_run
    alternative = choice.alternative if register_alternative else None
    if alternative is None:
        return trained
    try:
        alt_cutoffs = policy.cutoffs(stage, alternative.risk_reference)
    except TierPolicyError as exc:
        log.warning("%s: the %s alternative is not registered: %s", stage.value, alternative.kind, exc)
        return trained
    registered = _log_version(fit, choice, alternative, alt_cutoffs, target, role="alternative", of=trained.version)
    client.set_model_version_tag(trained.model_name, trained.version, "alternative_version", registered.version)
    trained.alternative = registered
    return trained


@dataclass(frozen=True)
class _Target:
    """Where, under which settings and beside which reference figures the versions of one stage fit are logged."""

    client: MlflowClient
    settings: Settings
    experiment_id: str
    policy: TierPolicy
    gate: GateConfig
    data_description: str
    reports_dir: Path | None
    base_prob: np.ndarray
    booster: dict[str, float]
    recipe: FitRecipe | None = None


def _log_version(
    fit: StageFit,
    choice: CandidateChoice,
    model: StageEstimator,
    cutoffs: BandCutoffs,
    target: _Target,
    *,
    role: str,
    of: str = "",
) -> TrainedVersion:
    """One registered version of ``model`` at its own cut-offs: its run (tags, metrics, test rows, persons),
    report and card."""
    settings, policy, gate = target.settings, target.policy, target.gate
    stage = fit.frame.stage
    test = fit.part("test")
    threshold = policy.stage(stage).strict_from(cutoffs)
    prob = model.predict_proba(test.X)
    reason = choice.reason if role == "candidate" else f"alternative to version {of}, the candidate: {choice.reason}"
    with tempfile.TemporaryDirectory(prefix=f"eval-{stage.value}-") as tmp:
        out_dir = Path(tmp)
        shap_png = shap_summary_png(model, test.X, out_dir / "shap_summary.png")
        oracle = test.meta["oracle"].to_numpy() if "oracle" in test.meta else None
        figures = policy_figures(policy, stage, y_true=test.y, y_prob=prob, features=test.X, cutoffs=cutoffs)
        strict_in_effect = figures.strict_in_effect / figures.rows
        _write_reference(out_dir / "risk_reference.json", model, cutoffs, policy.version)
        if model.reference_profile is not None:  # the monitor's profile, readable beside the report
            (out_dir / "reference_profile.json").write_text(json.dumps(model.reference_profile), encoding="utf-8")
        report = evaluate(
            test.y,
            prob,
            groups=test.meta[[c for c in GROUP_COLUMNS if c in test.meta]],
            threshold=threshold,
            oracle_prob=oracle,
            baseline_prob=target.base_prob,
            out_dir=out_dir,
            title=f"{settings.model_name(stage)} ({stage.label('en')})",
            fairness=gate.fairness,
            meta={
                "stage": stage.value,
                "model_kind": model.kind,
                "candidate_role": role,
                "candidate_reason": reason,
                **fit.frame.counts,
                "policy_version": policy.version,
                "share_strict_in_effect": strict_in_effect,
                "protected_inputs": ", ".join(fit.config.protected_inputs) or "none",
            },
            extra_figures=[shap_png],
        )
        name = settings.model_name(stage)
        role_tags = {"candidate_role": role, **({"alternative_of": of} if of else {})}
        if target.recipe is not None:
            role_tags[FINGERPRINT_TAG] = target.recipe.fingerprint
        importance_table(model, test.X).to_csv(out_dir / "importance.csv", index=False)
        if model.kind == "lightgbm":
            fit.search.to_csv(out_dir / "search.csv", index=False)
        started = fit.extra.get("started_ms")
        with timed_run(
            target.client, target.experiment_id, run_name(stage, model.kind, started), started_ms=started
        ) as run_id:
            _log_candidate_run(fit, choice, model, reason, report, cutoffs, threshold, target)
            log_lineage(fit, target.recipe, target.data_description)
            mlflow.set_tags(role_tags)
            mlflow.log_metric("test_share_strict_in_effect", strict_in_effect)
            eval_rows_frame(fit, target.base_prob).to_parquet(out_dir / "eval_rows.parquet", index=False)
            mlflow.log_artifacts(str(out_dir), artifact_path="evaluation")
            if model.kind == "lightgbm":
                mlflow.log_table(fit.search, artifact_file="search/search_table.json")
            log_persons(fit)
            version = _log_model(fit, model, settings, test.X, prob)
            final = version_report_dir(target.reports_dir or settings.home / "reports", stage, version)
            card = model_card(
                name=name,
                version=version,
                stage=stage.value,
                data_description=target.data_description,
                period=_period(fit),
                label_definition=f"new offence within {fit.frame.horizon_months:g} months after the "
                f"{stage.label('en')} date (re-offence dated in [D, D+H))",
                n_train=int((fit.parts != "test").sum()),
                n_test=len(test.y),
                n_censored=fit.frame.counts.get("censored", 0),
                report=report,
                limits=_limits(fit),
                out_path=out_dir / "model_card.md",
                inputs=model.feature_names,
                protected_inputs=fit.config.protected_inputs,
                policy=policy,
                policy_figures=figures,
                data_kind="synthetic" if "oracle" in fit.frame.meta else "real",
            )
            for key, value in {**role_tags, REPORT_DIR_TAG: str(final.resolve())}.items():
                target.client.set_model_version_tag(name, version, key, value)
        shutil.copytree(out_dir, final)
        publish_card(target.client, name=name, version=version, run_id=run_id, card=card.read_text(), report_dir=final)
    metrics = {**report.metrics, **fairness_metrics(report)}
    log.info("%s: registered %s version %s (%s, %s)", stage.value, name, version, model.kind, role)
    return TrainedVersion(stage.value, name, version, run_id, "", metrics, final, model.kind, reason)


def log_evaluation(
    client: MlflowClient,
    settings: Settings,
    stage: Stage,
    report: EvaluationReport,
    out_dir: Path,
    *,
    model_uri: str,
    resolution: dict[str, str],
    source: str,
    digest: str,
    persons: pd.Series,
) -> str:
    """Log ``riskctl evaluate``'s evaluation as a run of the stage's experiment; returns the run's id.

    Tags name the model URI and what it resolved to (registered name, version, run), the data (an MLflow
    dataset with its digest, source and persons, context ``evaluation``), and the kind ``evaluation``; the
    metrics are the report's (``test_<name>``), and the report folder is the run's ``evaluation`` artifact.
    """
    experiment_id = ensure_experiment(client, settings, stage)
    version = resolution.get("model_version")
    label = f"v{version}" if version else "model"
    with timed_run(client, experiment_id, run_name(stage, f"evaluate-{label}"), started_ms=None) as run_id:
        mlflow.set_tags(
            {
                "stage": stage.value,
                "run_kind": "evaluation",
                "model_uri": model_uri,
                **resolution,
                "data_source": source,
                "data_digest": digest,
            }
        )
        mlflow.log_metrics({f"test_{k}": v for k, v in report.metrics.items() if _finite(v)})
        mlflow.log_metrics({f"test_{k}": float(v) for k, v in fairness_metrics(report).items() if v is not None})
        ids = pd.DataFrame({"person_id": pd.unique(persons.astype(str))})
        _log_dataset(
            ids, source, f"{stage.value}-evaluation", digest, context="evaluation", tags={"persons": str(len(ids))}
        )
        mlflow.log_artifacts(str(out_dir), artifact_path="evaluation")
    return run_id


def _log_dataset(
    frame: pd.DataFrame, source: str, name: str, digest: str | None, *, context: str, tags: dict[str, str]
) -> None:
    """``frame`` as an MLflow dataset input of the active run (a local folder's source named as such).

    With the data's digest known, the input is a dataset without its rows (``MetaDataset``): the rows are the
    persons in ``persons.parquet`` beside the run, and profiling them again cost MLflow about 0.1 s a run."""
    import warnings

    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.pandas_dataset import from_pandas

    with warnings.catch_warnings():  # MLflow finds a local path readable by two equivalent sources and says so
        warnings.filterwarnings("ignore", message="The specified dataset source", category=UserWarning)
        if digest:
            # MLflow documents MetaDataset as the dataset of metadata only; mypy reads its base's abstract profile
            dataset: Any = MetaDataset(  # type: ignore[abstract]
                resolve_dataset_source(source or "unknown"), name=name, digest=digest[:32]
            )
        else:
            dataset = from_pandas(frame, source=source or "unknown", name=name)
    mlflow.log_input(dataset, context=context, tags={**tags, "rows": str(len(frame))})


def log_persons(fit: StageFit) -> None:
    """Log the fit's person ids and the part each was in (:data:`PERSONS`) in the active run."""
    with tempfile.TemporaryDirectory(prefix="persons-") as tmp:
        path = Path(tmp) / Path(PERSONS).name
        fit.persons().to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=str(Path(PERSONS).parent))


def _own_cutoff(policy: TierPolicy, model: StageEstimator, fallback: float) -> float:
    """The strict-tier cut-off of a model that is not the candidate (the booster's or the baseline's figures
    beside it), resolved for that model; the candidate's when this one's cut-offs do not resolve."""
    try:
        return policy.strict_cutoff(model.stage, model.risk_reference)
    except TierPolicyError as exc:
        log.warning("%s model: %s; its figures use the candidate's cut-off %.4g", model.kind, exc, fallback)
        return fallback


def _write_reference(path: Path, model: StageEstimator, cutoffs: BandCutoffs, policy_version: str) -> None:
    """The model's reference statistics and the cut-offs they resolve to, readable beside the report (the model
    itself carries the reference: :attr:`~models.estimator.StageEstimator.risk_reference`)."""
    reference = model.risk_reference
    record = {
        "policy_version": policy_version,
        "cutoffs": cutoffs.record(),
        "reference": None if reference is None else reference.record(),
    }
    path.write_text(json.dumps(record, indent=1), encoding="utf-8")


def fairness_metrics(report: EvaluationReport) -> dict[str, float | None]:
    """The fairness figures the gate judges, logged as ``test_<name>``.

    The largest FPR and FNR gaps over the gated groupings, and the judged group's observed/expected
    ratio furthest from 1; None when not measured (too few flagged, every group too small).
    """
    checks = report.groups.checks if report.groups is not None else None
    if checks is None:
        return {"largest_fpr_gap": None, "largest_fnr_gap": None, "group_calibration_worst_ratio": None}
    values = {
        "largest_fpr_gap": checks.error_gaps.largest("fpr")[0],
        "largest_fnr_gap": checks.error_gaps.largest("fnr")[0],
        "group_calibration_worst_ratio": checks.calibration.worst_ratio,
    }
    return {k: v if _finite(v) else None for k, v in values.items()}


def _log_candidate_run(
    fit: StageFit,
    choice: CandidateChoice,
    model: StageEstimator,
    reason: str,
    report: EvaluationReport,
    cutoffs: BandCutoffs,
    threshold: float,
    target: _Target,
) -> None:
    """Tags, parameters and metrics of a version's run (the booster's figures kept beside a logistic one)."""
    mlflow.set_tags(
        {
            "stage": fit.frame.stage.value,
            "model_kind": model.kind,
            "candidate_reason": reason[:5000],
            "config_version": fit.config.version,
            "policy_version": target.policy.version,
            "data": target.data_description,
        }
    )
    own = dict(fit.chosen) if model.kind == "lightgbm" else {f"logistic_{k}": v for k, v in model.get_params().items()}
    mlflow.log_params(
        {
            **own,
            "seed": fit.seed,
            "model_kind": model.kind,
            "protected_inputs": ",".join(fit.config.protected_inputs) or "none",
            "temporal_split": fit.config.split.temporal,
            "horizon_months": fit.frame.horizon_months,
            "calibration": model.calibrator_.method_,
            "strict_cutoff": threshold,
            "medium_from": cutoffs.medium_from.probability,
            "high_from": cutoffs.high_from.probability,
            **{f"n_{k}": v for k, v in fit.frame.counts.items()},
            **{f"rows_{p}": int((fit.parts == p).sum()) for p in PARTS},
        }
    )
    if "fit_seconds" in fit.extra:
        mlflow.log_metric("fit_seconds", float(fit.extra["fit_seconds"]))
    mlflow.log_metrics({f"test_{k}": v for k, v in report.metrics.items() if _finite(v)})
    mlflow.log_metrics({f"test_{k}": float(v) for k, v in fairness_metrics(report).items() if v is not None})
    mlflow.log_metrics({f"booster_test_{k}": v for k, v in target.booster.items() if _finite(v)})
    for metric, d in choice.differences.items():
        if _finite(d.delta):
            mlflow.log_metrics(
                {
                    f"logistic_minus_booster_{metric}": d.delta,
                    f"logistic_minus_booster_{metric}_low": d.low,
                    f"logistic_minus_booster_{metric}_high": d.high,
                }
            )
    if report.oracle:
        mlflow.log_metrics({f"oracle_{k}": v for k, v in report.oracle.items() if _finite(v)})


def _log_model(fit: StageFit, model: StageEstimator, settings: Settings, X_test: pd.DataFrame, prob: np.ndarray) -> str:
    """Log the pyfunc model in the active run and register it; returns the new version.

    The model is self-contained: the project's modules it unpickles with travel as code paths
    (:data:`models.pyfunc.CODE_PACKAGES`) and its requirements are pinned to the versions it was trained with
    (:func:`model_requirements`), so it loads and predicts in a virtual environment with only those installed.
    """
    stage = fit.frame.stage
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stage_model.joblib"
        joblib.dump(model, path)
        example = as_plain_columns(X_test.head(5))
        info = mlflow.pyfunc.log_model(
            name=f"{stage.value}-{model.kind}",
            python_model=str(CODE_PATH),
            artifacts={ARTIFACT_KEY: str(path)},
            code_paths=_code_copies(Path(tmp) / "code"),
            signature=infer_signature(example, prob[:5]),
            input_example=example,
            registered_model_name=settings.model_name(stage),
            pip_requirements=model_requirements(),
        )
    return str(info.registered_model_version)


def _code_copies(into: Path) -> list[str]:
    """Copies of the packages a logged model imports (:data:`models.pyfunc.CODE_PACKAGES`), without caches."""
    paths = []
    for package in CODE_PACKAGES:
        source = Path(__import__(package).__file__ or "").parent
        target = into / package
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "static", "templates"))
        paths.append(str(target))
    return paths


def as_plain_columns(X: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns as strings: how a JSON client (``mlflow models serve``) sends them."""
    return X.astype({c: str for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)})


def _period(fit: StageFit) -> str:
    start = pd.to_datetime(fit.frame.meta["supervision_start"])
    return f"supervision starts {start.min():%Y-%m-%d} to {start.max():%Y-%m-%d}"


def _limits(fit: StageFit) -> list[str]:
    limits = [
        "Trained on the data described above; scores for populations unlike it (other regions, offence mixes, "
        "base rates) need recalibration before use.",
        "A score supports, never replaces, the caseworker's judgement; tier overrides are recorded with a reason.",
        f"People with follow-up shorter than {fit.frame.horizon_months:g} months and no re-offence were left out "
        f"({fit.frame.counts.get('censored', 0)} assessments); this raises the label rate where follow-up is short.",
    ]
    if fit.config.split.temporal:
        limits.append("Test rows are the latest supervision starts (temporal split).")
    return limits


def run_summary(version: TrainedVersion) -> str:
    keys = ("roc_auc", "pr_auc", "brier", "ece", "group_calibration_worst_ratio", "largest_fpr_gap", "largest_fnr_gap")
    return json.dumps({k: round(float(v), 4) for k in keys if (v := version.metrics.get(k)) is not None})
