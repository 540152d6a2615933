"""``riskctl monitor`` and ``riskctl shadow``: the models in service watched from the assessments the service stored.

``monitor`` judges a period's assessments of a stage against each model version's reference profile (kept
with the model at training) with the limits of ``evaluation/monitoring/monitoring.yaml`` (or ``--config``),
writes ``monitor.html`` (plots inlined), ``monitor.md`` and ``monitor.json`` per version and logs them with
the figures to MLflow (experiment ``<prefix>-monitoring``). Exit codes: 0 every check within its limit, 3 a
limit crossed, 2 a refusal (bad argument, no profile, nothing stored in the period), 1 a fault.

``shadow`` replays the period's stored requests of the candidate's stage through a candidate model (nothing is
stored) and writes what would change (``shadow.md``, ``shadow.json``). Exit codes: 0, or 3 when the changes
are past ``--max-tier-changes`` and the other shadow limits (the promotion gate's requirement).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from features.cli import CliError, console
from features.vocab import Stage
from serving.cli._runtime import open_audit_store, use_project_bentoml_home
from serving.settings import ServiceSettings, get_settings

if TYPE_CHECKING:
    from evaluation.monitoring import MonitorReport, ReferenceProfile
    from serving.monitoring import ShadowReport
    from serving.scoring import ServedModel

log = logging.getLogger(__name__)
CROSSED = 3  # exit code: a limit was crossed

SinceOpt = Annotated[dt.datetime, typer.Option("--since", formats=["%Y-%m-%d"], help="first day (UTC)")]
UntilOpt = Annotated[
    dt.datetime | None, typer.Option("--until", formats=["%Y-%m-%d"], help="day after the last (default: tomorrow)")
]
OutOpt = Annotated[Path | None, typer.Option("--out", help="folder of the reports (default <home>/monitoring)")]
MlflowOpt = Annotated[bool, typer.Option("--mlflow/--no-mlflow", help="log the reports and figures to MLflow")]


def profile_source(settings: ServiceSettings) -> Any:
    """Each model version's reference profile: from the BentoML store when it holds that version, else from the
    MLflow registry (``models:/<name>/<version>``)."""
    from serving.scoring import load_served, stored_model

    def profile(name: str, version: str) -> ReferenceProfile:
        for stage in Stage:
            if settings.model_name(stage) != name:
                continue
            stored = stored_model(settings, stage)
            if stored is not None and str(stored.info.metadata.get("registered_version")) == version:
                return _profile_of(load_served(stored, stage).model, name, version)
        from models.pyfunc import load_stage_model

        try:
            model = load_stage_model(f"models:/{name}/{version}")
        except Exception as exc:  # the registry: named, never taken for "no profile"
            raise LookupError(f"could not load it from the registry ({type(exc).__name__}: {exc})") from exc
        return _profile_of(model, name, version)

    return profile


def _profile_of(model: Any, name: str, version: str) -> ReferenceProfile:
    from evaluation.monitoring import ReferenceProfile

    record = getattr(model, "reference_profile", None)
    if record is None:
        raise LookupError(f"{name} version {version} was trained before reference profiles were kept: retrain it")
    return ReferenceProfile.from_record(record)


def monitor_cmd(
    stage: Annotated[Stage, typer.Option("--stage", help="the assessment stage")],
    since: SinceOpt,
    until: UntilOpt = None,
    config: Annotated[Path | None, typer.Option(help="limits file (default: the shipped monitoring.yaml)")] = None,
    out: OutOpt = None,
    mlflow_log: MlflowOpt = True,
) -> None:
    """Drift and label-free performance of a stage's stored assessments over a period, against each model
    version's training rows. Exit code 3 when a limit is crossed."""
    from evaluation.monitoring import MonitorConfig, MonitorConfigError, write_report
    from models.tier_policy import TierPolicy
    from serving.cases import ReviewPolicy
    from serving.monitoring import MonitorError, monitor_period, period_bounds

    settings = get_settings()
    use_project_bentoml_home(settings)  # the versions in the service's model store have their profiles there
    try:
        limits = MonitorConfig.load(config)
        start, end = period_bounds(since.date(), until.date() if until else None)
        store = open_audit_store(settings)
        try:
            reports = monitor_period(
                store,
                stage=stage,
                since=start,
                until=end,
                profiles=profile_source(settings),
                config=limits,
                tiers=TierPolicy.load(),
                review=ReviewPolicy.load(),
            )
        finally:
            store.close()
    except (MonitorConfigError, MonitorError) as exc:
        raise CliError(str(exc)) from None
    if not reports:
        raise CliError(f"no {stage.value} assessment stored from {start} to before {end}")
    root = out or settings.home / "monitoring"
    crossed = False
    for report in reports:
        folder = root / f"{stage.value}-{report.model.split()[-1]}-{start}-{end}"
        paths = write_report(report, folder)
        if mlflow_log:
            _log_monitor(settings, report, folder)
        crossed = crossed or bool(report.crossed)
        _print_monitor(report, paths["html"])
    if crossed:
        raise typer.Exit(CROSSED)


def _print_monitor(report: MonitorReport, html: Path) -> None:
    status = "not judged" if not report.judged else "limits crossed" if report.crossed else "within limits"
    console.print(f"{report.model}: {report.rows} assessments, {status}", markup=False)
    for check in report.crossed:
        console.print(f"  {check.name}: {check.value:.4f} (limit {check.limit})", markup=False)
    console.print(f"  report: {html}", markup=False)


def experiment_id(settings: ServiceSettings) -> str:
    """The id of the MLflow experiment of the monitor, shadow and revalidation runs (created when missing)."""
    from training.tracking import configure_mlflow

    client = configure_mlflow(settings)
    name = f"{settings.experiment_prefix}-monitoring"
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = None if settings.resolved_tracking_uri().startswith("http") else settings.artifact_location()
    return str(client.create_experiment(name, artifact_location=location))


def _log_monitor(settings: ServiceSettings, report: MonitorReport, folder: Path) -> None:
    import math

    import mlflow

    experiment = experiment_id(settings)
    with mlflow.start_run(experiment_id=experiment, run_name=f"monitor-{report.stage}-{report.since}"):
        mlflow.set_tags(
            {
                "kind": "monitor",
                "stage": report.stage,
                "model": report.model,
                "since": report.since,
                "until": report.until,
                "crossed": ", ".join(c.name for c in report.crossed) or "none",
                "judged": str(report.judged),
            }
        )
        figures = {"rows": float(report.rows), "crossed": float(len(report.crossed))}
        figures.update({f"psi_{c.name}": c.value for c in report.checks if c.group in ("input", "score")})
        figures.update({c.name: c.value for c in report.checks if c.group in ("decision", "performance")})
        mlflow.log_metrics({_metric_key(k): v for k, v in figures.items() if not math.isnan(v)})
        mlflow.log_artifacts(str(folder), artifact_path="monitor")


def _metric_key(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in name)


def load_candidate(settings: ServiceSettings, uri: str, stage: Stage | None) -> ServedModel:
    """A candidate model: ``bento:<tag>`` from the BentoML store, else an MLflow model URI (``models:/name/3``,
    ``models:/name@challenger``)."""
    from serving.scoring import ServedModel, load_served

    if uri.startswith("bento:"):
        import bentoml

        stored = bentoml.models.get(uri.removeprefix("bento:"))
        model_stage = Stage(stored.info.labels.get("stage") or (stage.value if stage else ""))
        return load_served(stored, model_stage)
    from models.pyfunc import load_stage_model
    from training.registry import resolve_model
    from training.tracking import configure_mlflow

    resolved = resolve_model(configure_mlflow(settings), uri)
    model = load_stage_model(uri)
    name = resolved.name if resolved is not None else uri
    version = resolved.version if resolved is not None else "?"
    return ServedModel(Stage(model.stage), model, str(name), str(version), uri, {})


def shadow_cmd(
    candidate: Annotated[
        str, typer.Option(help="model URI: models:/<name>/<version>, models:/<name>@<alias>, or bento:<tag>")
    ],
    since: SinceOpt,
    until: UntilOpt = None,
    out: OutOpt = None,
    max_tier_changes: Annotated[float, typer.Option(min=0, max=1, help="largest share of tier changes")] = 0.1,
    max_band_changes: Annotated[float, typer.Option(min=0, max=1, help="largest share of band changes")] = 0.2,
    max_alert_changes: Annotated[float, typer.Option(min=0, max=1, help="largest share of alert changes")] = 0.2,
    min_rows: Annotated[int, typer.Option(min=1, help="fewest replayed assessments to judge")] = 200,
    workers: Annotated[int, typer.Option(min=1, help="processes that replay (at most one per free core)")] = 1,
    validate: Annotated[
        bool,
        typer.Option(
            help="validate every stored request again as the service validates a new one, and answer it in full "
            "(slower, the same report; by default a stored request's shape is checked, as it was validated when "
            "answered)"
        ),
    ] = False,
) -> None:
    """Replay a period's stored requests through a candidate model and report what would change (nothing is
    stored). Exit code 3 when the changes are past the limits."""
    from models.tier_policy import TierPolicy
    from serving.cases import ReviewPolicy
    from serving.monitoring import MonitorError, ShadowError, ShadowLimits, period_bounds, shadow_replay
    from serving.scoring import Scorer

    settings = get_settings()
    use_project_bentoml_home(settings)  # a bento:<tag> candidate is in the service's model store
    limits = ShadowLimits(
        max_band_changes=max_band_changes,
        max_tier_changes=max_tier_changes,
        max_alert_changes=max_alert_changes,
        min_rows=min_rows,
    )
    try:
        start, end = period_bounds(since.date(), until.date() if until else None)
        served = load_candidate(settings, candidate, None)
        scorer = Scorer({served.stage: served}, TierPolicy.load())
        store = open_audit_store(settings)
        try:
            report = shadow_replay(
                store,
                served,
                scorer=scorer,
                review=ReviewPolicy.load(),
                since=start,
                until=end,
                workers=workers,
                validate=validate,
            )
        finally:
            store.close()
    except (MonitorError, ShadowError) as exc:
        raise CliError(str(exc)) from None
    if report.rows == 0:
        raise CliError(f"no {served.stage.value} assessment stored from {start} to before {end}")
    ok = _write_shadow(report, limits, out or settings.home / "monitoring")
    if not ok:
        raise typer.Exit(CROSSED)


def _write_shadow(report: ShadowReport, limits: Any, root: Path) -> bool:
    from serving.monitoring import shadow_markdown

    folder = root / f"shadow-{report.stage}-{report.candidate.split()[-1]}-{report.since}-{report.until}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "shadow.md").write_text(shadow_markdown(report, limits=limits), encoding="utf-8")
    ok, problems = report.within(limits)
    record = {
        "stage": report.stage,
        "candidate": report.candidate,
        "since": report.since,
        "until": report.until,
        "rows": report.rows,
        "changed": {w: report.changed(w) for w in report.changes},
        "direction": {w: report.direction(w) for w in report.changes},
        "score_shift": report.score_shift(),
        "reasons": [{"feature": n, "moved": m, "mean_points": p} for n, m, p in report.top_reasons()],
        "tier_changes": [{"person_key": k, "from": a, "to": b} for k, a, b in report.persons],
        "within_limits": ok,
        "problems": problems,
    }
    (folder / "shadow.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    changed = ", ".join(f"{w} {report.changed(w)}" for w in report.changes)
    console.print(f"{report.candidate}: {report.rows} replayed; changed: {changed}", markup=False)
    console.print(f"  {'within the limits' if ok else 'past the limits: ' + '; '.join(problems)}", markup=False)
    console.print(f"  report: {folder / 'shadow.md'}", markup=False)
    return ok


def check_shadow_report(stage: str, version: str | None, path: Path) -> None:
    """Refuse (:class:`~features.cli.CliError`) unless ``path`` is a shadow report (``riskctl shadow``'s
    ``shadow.json``) of this stage's ``version`` whose changes stayed within its limits: the promotion gate's
    shadow requirement (``riskctl promote --shadow-report``)."""
    if stage == "all" or version is None:
        raise CliError("--shadow-report judges one version of one stage: give --stage and --version")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(f"--shadow-report {path}: not a shadow report ({type(exc).__name__}: {exc})") from None
    if not isinstance(record, dict) or not {"stage", "candidate", "within_limits"} <= set(record):
        raise CliError(f"--shadow-report {path}: not a shadow report (riskctl shadow writes shadow.json)")
    if record["stage"] != stage or not str(record["candidate"]).endswith(f" version {version}"):
        raise CliError(
            f"--shadow-report {path} replayed {record['candidate']} at the {record['stage']} stage, not {stage} "
            f"version {version}: nothing promoted"
        )
    if record["within_limits"] is not True:
        problems = "; ".join(record.get("problems") or []) or "past its limits"
        raise CliError(
            f"--shadow-report {path}: the replay of version {version} is past its limits ({problems}): nothing promoted"
        )


def history_cmd(
    stage: Annotated[Stage | None, typer.Option("--stage", help="one stage (default: all)")] = None,
    cards: Annotated[
        Path | None, typer.Option("--cards", help="write each version's model card here (<stage>-<version>.md)")
    ] = None,
) -> None:
    """Which version served each stage from when to when (the audit trail's answers), with the registry's
    aliases and gate decision and each version's model card."""
    from serving.monitoring import served_history

    settings = get_settings()
    store = open_audit_store(settings)
    try:
        spans = served_history(store, stage=None if stage is None else stage.value)
        events = store.model_events()
    finally:
        store.close()
    registry = _registry_versions(settings, {(s.model_name, s.model_version) for s in spans})
    if not spans:
        console.print("no assessment stored yet: no version has served", markup=False)
    for span in spans:
        info = registry.get((span.model_name, span.model_version), {})
        console.print(
            f"{span.stage}: {span.model_name} version {span.model_version} served from {span.first[:19]} to "
            f"{span.last[:19]} ({span.assessments:,} assessments)"
            + (f"; registered {info['created']}, {info['aliases']}, gate: {info['gate']}" if info else ""),
            markup=False,
        )
        if cards is not None and info.get("card"):
            cards.mkdir(parents=True, exist_ok=True)
            path = cards / f"{span.stage}-{span.model_version}.md"
            path.write_text(str(info["card"]), encoding="utf-8")
            console.print(f"  model card: {path}", markup=False)
    for event in events:
        if stage is None or event.stage == stage.value:
            console.print(
                f"{event.stage}: {event.event} of {event.model_name} version {event.model_version} at "
                f"{event.created_at[:19]} by {event.actor}: {event.reason}",
                markup=False,
            )
    if registry.get(("", "")):
        console.print(f"registry not read: {registry[('', '')]['error']}", markup=False)


def _registry_versions(settings: ServiceSettings, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """Creation time, aliases, gate decision and model card of each wanted registered version; a registry that
    cannot be read is said (key ``("", "")``), never taken for "no such version"."""
    import datetime as dt

    found: dict[tuple[str, str], Any] = {}
    try:
        from training.tracking import configure_mlflow

        client = configure_mlflow(settings)
        for name, version in sorted(wanted):
            mv = client.get_model_version(name, version)
            tags = mv.tags or {}
            found[(name, version)] = {
                "created": dt.datetime.fromtimestamp(mv.creation_timestamp / 1000, dt.UTC).isoformat(
                    timespec="seconds"
                ),
                "aliases": ", ".join(f"@{a}" for a in (mv.aliases or [])) or "no alias",
                "gate": tags.get("gate_decision") or "not recorded",
                "card": mv.description or "",
            }
    except Exception as exc:  # the registry: named, the trail's history still shown
        found[("", "")] = {"error": f"{type(exc).__name__}: {exc}"}
    return found


def register(app: typer.Typer) -> None:
    from serving.cli._service import models_app

    app.command("monitor")(monitor_cmd)
    app.command("shadow")(shadow_cmd)
    models_app.command("history")(history_cmd)


__all__ = [
    "CROSSED",
    "MlflowOpt",
    "check_shadow_report",
    "experiment_id",
    "load_candidate",
    "profile_source",
    "register",
]
