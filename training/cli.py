"""``riskctl train`` and ``riskctl evaluate`` (``riskctl promote``, which may write the audit trail, is
serving/cli's)."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from features.cli import CliError, DataOpt, StageChoice, StageOpt, console, progress, read_tables, stages_of
from features.settings import get_settings
from features.vocab import Stage

if TYPE_CHECKING:
    from features.settings import Settings
    from training.decision import GateDecision

log = logging.getLogger(__name__)


class EvalStage(enum.StrEnum):
    """``--stage`` of commands that take exactly one stage."""

    INTAKE = "intake"
    MIDTERM = "midterm"
    RELEASE = "release"


def train(
    data: DataOpt,
    stage: StageOpt = StageChoice.ALL,
    seed: Annotated[int, typer.Option(help="seed of the split and the booster")] = 0,
    temporal: Annotated[
        bool | None,
        typer.Option(
            "--temporal/--random-split",
            help="test on the latest starts (default from training/params.yaml) or on a random share of persons",
        ),
    ] = None,
    budget: Annotated[int | None, typer.Option(min=1, help="grid points tried by the search")] = None,
    promote_after: Annotated[bool, typer.Option("--promote/--no-promote", help="apply the promotion gate")] = False,
    alternative: Annotated[
        bool,
        typer.Option(
            "--alternative/--no-alternative",
            help="register the other model kind beside the candidate (judged by --promote if the candidate is refused)",
        ),
    ] = True,
) -> None:
    """Train the stage models, log runs to MLflow and register each as reoffence-<stage>.

    Per stage the candidate (the logistic model unless the booster earns its place) is registered, and
    with ``--alternative`` the other kind beside it; ``--promote`` judges the candidate and, when the gate
    refuses it, the alternative. A retrain identical to a registered version (same data digest, settings,
    seed, split and code) is not registered again: the command names that version (and ``--promote`` judges
    it if the gate never did).
    """
    from features.labels import make_stage_frame
    from training.config import TrainConfig
    from training.fit import fit_stage
    from training.lineage import FitRecipe, data_digest
    from training.promote import promote_trained
    from training.registry import RegistryError, identical_version
    from training.tracking import configure_mlflow, log_stage_fit, run_summary

    settings = get_settings()
    config = TrainConfig.load()
    if budget is not None:
        config = config.override(search={"budget": budget})
    tables = read_tables(data)
    digest, source = data_digest(tables), str(data.resolve())
    client = configure_mlflow(settings)
    results = []
    stages = stages_of(stage)
    with progress() as bar:
        task = bar.add_task("training", total=len(stages))
        for st in stages:
            recipe = FitRecipe.of(
                stage=st.value, data=digest, config=config, seed=seed, temporal=temporal, alternative=alternative
            )
            try:
                same = identical_version(client, settings.model_name(st), recipe.fingerprint)
            except RegistryError as err:
                raise CliError(str(err)) from None
            if same is not None:
                console.print(
                    f"{same.name} version {same.version} was trained from the same data (digest {digest[:12]}), "
                    f"settings, seed {seed} and code: not trained or registered again",
                    markup=False,
                    soft_wrap=True,
                )
                if promote_after and not (same.tags or {}).get("gate_decision"):
                    _promote_or_exit(st, partial(_judge_one, st, str(same.version), settings))
                bar.advance(task)
                continue
            bar.update(task, description=f"{st.value}: features, search, calibration, MLflow")
            fit = fit_stage(make_stage_frame(tables, st), config=config, seed=seed, temporal=temporal)
            version = log_stage_fit(
                fit, settings=settings, data_description=source, register_alternative=alternative, recipe=recipe
            )
            console.print(
                f"{version.model_name} version {version.version} [{version.model_kind}]: {run_summary(version)}",
                markup=False,
                soft_wrap=True,
            )
            console.print(f"  why {version.model_kind}: {version.candidate_reason}", markup=False, soft_wrap=True)
            console.print(f"  report: {version.report_dir}", markup=False, soft_wrap=True)
            if version.alternative is not None:
                alt = version.alternative
                console.print(
                    f"  alternative: version {alt.version} [{alt.model_kind}] registered beside it "
                    f"({run_summary(alt)})",
                    markup=False,
                    soft_wrap=True,
                )
            if promote_after:
                _promote_or_exit(st, partial(promote_trained, version, settings=settings))
            results.append(version)
            bar.advance(task)
    console.print(
        f"MLflow: {settings.resolved_tracking_uri()}  (mlflow ui --backend-store-uri "
        f"{settings.resolved_tracking_uri()})"
    )


def _judge_one(stage: Stage, version: str, settings: Settings) -> list[GateDecision]:
    from training.promote import promote

    return [promote(stage, version=version, settings=settings)]


def _promote_or_exit(stage: Stage, judge: Callable[[], list[GateDecision]]) -> None:
    """Print the gate's decisions (the alternative's after a refused candidate); exit 1 if it could not decide."""
    from training.promote import GateError

    try:
        decisions = judge()
    except GateError as err:
        typer.echo(f"Error: {stage.value}: the gate could not decide, nothing was promoted: {err}", err=True)
        raise typer.Exit(1) from None
    for i, decision in enumerate(decisions):
        if i:
            console.print(
                f"  the candidate was refused: the gate judges the alternative, version {decision.version}",
                markup=False,
            )
        console.print(decision.describe(), markup=False, soft_wrap=True)


def evaluate_cmd(
    stage: Annotated[EvalStage, typer.Option(help="the assessment stage")],
    model: Annotated[str, typer.Option(help="MLflow model URI, e.g. models:/reoffence-intake@champion")],
    data: DataOpt,
    out: Annotated[
        Path | None,
        typer.Option(
            help="report folder (default <home>/reports/evaluate-<stage>-v<version>-<data digest>, a new one per "
            "version and data set, never overwritten)"
        ),
    ] = None,
    unseen_only: Annotated[
        bool,
        typer.Option(
            "--unseen-only/--all-rows",
            help="evaluate only on persons the model was not trained, tuned or calibrated on",
        ),
    ] = False,
) -> None:
    """Evaluate a registered model on canonical tables: report.md, metrics.json and figures.

    The model's URI is resolved to its registered version (recorded in the report), and the data's
    persons are checked against the persons the model learnt from: a warning says how many rows overlap
    (their figures are optimistic), and ``--unseen-only`` leaves them out. The evaluation is logged as an
    MLflow run of the stage's experiment (the version, the data as a dataset, the metrics, the report).
    """
    import numpy as np

    from evaluation import evaluate
    from features.labels import GROUP_COLUMNS, make_stage_frame
    from models.pyfunc import load_stage_model
    from models.tier_policy import TierPolicy
    from training.config import GateConfig
    from training.lineage import data_digest
    from training.registry import RegistryError, recorded_persons, resolve_model
    from training.tracking import configure_mlflow, log_evaluation

    st = Stage(stage)
    settings = get_settings()
    client = configure_mlflow(settings)
    tables = read_tables(data)
    digest = data_digest(tables)
    frame = make_stage_frame(tables, st)
    try:
        resolved = resolve_model(client, model)
        persons = recorded_persons(client, resolved.run_id) if resolved else None
    except RegistryError as err:
        raise CliError(str(err)) from None
    named = resolved.describe() if resolved else model
    ids = frame.meta["person_id"].astype(str)
    seen = ids.isin(persons.seen).to_numpy() if persons is not None else np.zeros(len(ids), dtype=bool)
    if persons is None:
        why = f"{named} recorded no training persons" if resolved else f"{model} is not a registered version or run"
        typer.echo(f"warning: {why}: cannot tell whether these rows were among its training persons", err=True)
        if unseen_only:
            raise CliError(f"--unseen-only: {named} recorded no training persons to leave out")
    elif seen.any():
        typer.echo(
            f"warning: {int(seen.sum()):,} of {len(ids):,} rows ({ids[seen].nunique():,} persons) are of persons "
            f"{named} was trained, tuned or calibrated on: its figures on them are optimistic"
            + ("; they are left out (--unseen-only)" if unseen_only else "; --unseen-only leaves them out"),
            err=True,
        )
    overlap = int(seen.sum())
    if unseen_only:
        frame = frame.subset(~seen)
        if len(frame.y) == 0:
            raise CliError(f"--unseen-only: every row is of a person {named} learnt from")
    stage_model = load_stage_model(model)
    out = out or _evaluation_dir(settings.home / "reports", st, resolved, digest, unseen_only=unseen_only)
    groups = frame.meta[[c for c in GROUP_COLUMNS if c in frame.meta]]
    oracle = frame.meta["oracle"].to_numpy() if "oracle" in frame.meta else None
    resolution = {
        "model_name": resolved.name if resolved else None,
        "model_version": resolved.version if resolved else None,
        "run_id": resolved.run_id if resolved else None,
    }
    report = evaluate(
        frame.y,
        stage_model.predict_proba(frame.X),
        groups=groups,
        fairness=GateConfig.load().fairness,
        threshold=TierPolicy.load().strict_cutoff(st.value, stage_model.risk_reference),
        oracle_prob=oracle,
        out_dir=out,
        title=f"{named} on {data}",
        meta={
            "model_uri": model,
            **{k: v for k, v in resolution.items() if v is not None},
            "data": str(data.resolve()),
            "data_digest": digest,
            "rows_of_persons_the_model_learnt_from": overlap if persons is not None else "not recorded",
            "unseen_only": unseen_only,
            "rows_evaluated": len(frame.y),
            **frame.counts,
        },
    )
    table = Table(title=f"{named} on {len(frame.y):,} {st.value} assessments")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("roc_auc", "pr_auc", "brier", "ece", "calibration_slope", "share_flagged", "precision", "recall"):
        table.add_row(key, f"{report.metrics.get(key, float('nan')):.4f}")
    console.print(table)
    console.print(f"report: {out / 'report.md'}")
    run_id = log_evaluation(
        client,
        settings,
        st,
        report,
        out,
        model_uri=model,
        resolution={k: v for k, v in resolution.items() if v is not None},
        source=str(data.resolve()),
        digest=digest,
        persons=frame.meta["person_id"],
    )
    console.print(f"MLflow run {run_id} (experiment {settings.experiment_name(st)})", markup=False)


def _evaluation_dir(root: Path, stage: Stage, resolved: object, digest: str, *, unseen_only: bool) -> Path:
    """``<root>/evaluate-<stage>-v<version>-<digest>`` (``-run<id>`` for an unregistered model, ``-unseen`` with
    --unseen-only): one folder per model and data set; an existing one is kept and a numbered sibling made."""
    version = getattr(resolved, "version", None)
    run_id = getattr(resolved, "run_id", None)
    model = f"v{version}" if version else (f"run{str(run_id)[:8]}" if run_id else "local")
    base = f"evaluate-{stage.value}-{model}-{digest[:12]}" + ("-unseen" if unseen_only else "")
    path, n = root / base, 1
    while path.exists():
        n += 1
        path = root / f"{base}.{n}"
    return path


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("evaluate")(evaluate_cmd)
