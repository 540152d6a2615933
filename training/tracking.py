"""Track stage fits in MLflow: baseline and boosted runs, evaluation artefacts, registered versions.

With no configuration MLflow tracks into ``<RISK_HOME>/mlflow.db`` (SQLite) with artefacts in
``<RISK_HOME>/mlartifacts``; ``MLFLOW_TRACKING_URI`` (or ``RISK_TRACKING_URI``) points it at a server.
A copied or moved ``RISK_HOME`` is re-pointed at its own artefacts (:mod:`training.relocate`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import joblib
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from evaluation import EvaluationReport, classification_metrics, evaluate, model_card, policy_figures
from features.labels import GROUP_COLUMNS
from features.settings import Settings, get_settings
from features.vocab import Stage
from models.cutoffs import BandCutoffs
from models.estimator import StageEstimator
from models.pyfunc import ARTIFACT_KEY, CODE_PATH
from models.tier_policy import TierPolicy, TierPolicyError
from training.config import GateConfig
from training.fit import CandidateChoice, StageFit, choose_candidate
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
    name = settings.experiment_name(stage)
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None if settings.resolved_tracking_uri().startswith("http") else settings.artifact_location()
    return client.create_experiment(name, artifact_location=location)


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
    fit: StageFit, experiment_id: str, y_prob: np.ndarray, metrics_fn: Callable[[np.ndarray], dict[str, float]]
) -> str:
    stage = fit.frame.stage.value
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{stage}-baseline-logistic") as run:
        mlflow.set_tags({"stage": stage, "model_kind": "baseline", "config_version": fit.config.version})
        mlflow.log_params(
            {"model": "LinearStageModel (sign-constrained logistic regression)", **fit.baseline.get_params()}
        )
        mlflow.log_metrics({f"test_{k}": v for k, v in metrics_fn(y_prob).items() if _finite(v)})
    return str(run.info.run_id)


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
        fit, experiment_id, base_prob, lambda p: classification_metrics(test.y, p, threshold=base_threshold)
    )
    target = _Target(client, settings, experiment_id, policy, gate, data_description, reports_dir, base_prob, booster)
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
        with mlflow.start_run(experiment_id=target.experiment_id, run_name=f"{stage.value}-{model.kind}") as run:
            _log_candidate_run(fit, choice, model, reason, report, cutoffs, threshold, target)
            mlflow.set_tags(role_tags)
            mlflow.log_metric("test_share_strict_in_effect", strict_in_effect)
            eval_rows_frame(fit, target.base_prob).to_parquet(out_dir / "eval_rows.parquet", index=False)
            fit.search.to_csv(out_dir / "search.csv", index=False)
            mlflow.log_artifacts(str(out_dir), artifact_path="evaluation")
            log_persons(fit)
            version = _log_model(fit, model, settings, test.X, prob)
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
            mlflow.log_artifact(str(card), artifact_path="model_card")
            target.client.update_model_version(name, version, description=card.read_text())
            for key, value in role_tags.items():
                target.client.set_model_version_tag(name, version, key, value)
        final = version_report_dir(target.reports_dir or settings.home / "reports", stage, version)
        shutil.copytree(out_dir, final)
    metrics = {**report.metrics, **fairness_metrics(report)}
    log.info("%s: registered %s version %s (%s, %s)", stage.value, name, version, model.kind, role)
    return TrainedVersion(stage.value, name, version, run.info.run_id, "", metrics, final, model.kind, reason)


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
    mlflow.log_params(
        {
            **dict(fit.chosen),
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
            **{f"rows_{p}": int((fit.parts == p).sum()) for p in ("train", "valid", "calib", "test")},
        }
    )
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
    """Log the pyfunc model in the active run and register it; returns the new version."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stage_model.joblib"
        joblib.dump(model, path)
        example = as_plain_columns(X_test.head(5))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(CODE_PATH),
            artifacts={ARTIFACT_KEY: str(path)},
            signature=infer_signature(example, prob[:5]),
            input_example=example,
            registered_model_name=settings.model_name(fit.frame.stage),
            pip_requirements=["lightgbm", "scikit-learn", "scipy", "pandas", "numpy", "joblib"],
        )
    return str(info.registered_model_version)


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
