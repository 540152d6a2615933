"""``riskctl promote``: the promotion gate on a registered version, and a promotion over its refusal.

Without ``--override-reason`` the gate decides (:mod:`training.promote`): ``@champion`` when every
criterion passes, else ``@challenger`` and exit code 2. An error reading or writing the registry is
an error, with its message and exit code 1, and nothing is promoted.

With ``--override-reason`` (one stage, one ``--version``) a version the gate refuses is promoted all
the same. The override is recorded in three places: the audit trail first (chain ``models``: who, why,
the failed criteria, the champion it replaces), so that no override takes effect unrecorded; then the
version's registry tags and the gate section of its model card. ``riskctl models list`` shows it. The
user is ``--by`` or, without it, the operating-system user; both are kept.

With ``--rollback --reason`` (one stage) the stage's ``@champion`` returns to the version it replaced (its
promotion history says which: :mod:`training.history`); the rollback is chained in the audit trail first
(``champion_rollback``), then recorded in both versions' histories, then the alias moves.
"""

from __future__ import annotations

import getpass
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from features.cli import CliError, StageChoice, StageOpt, console, stages_of
from serving.cli._monitor import check_shadow_report
from serving.cli._runtime import open_audit_store
from serving.settings import ServiceSettings, get_settings

if TYPE_CHECKING:
    from training.promote import GateDecision, Override


def promote_cmd(
    stage: StageOpt,
    version: Annotated[str | None, typer.Option(help="registered version (default: the latest)")] = None,
    override_reason: Annotated[
        str | None,
        typer.Option(
            "--override-reason",
            help="promote the version even if the gate refuses it, for this written reason (recorded in the "
            "registry, the model card and the audit trail); needs one --stage and --version",
        ),
    ] = None,
    by: Annotated[
        str | None, typer.Option(help="who decides the override or the rollback (default: the operating-system user)")
    ] = None,
    shadow_report: Annotated[
        Path | None,
        typer.Option(
            "--shadow-report",
            help="promote only if this shadow report (riskctl shadow's shadow.json) replayed this --version "
            "within its limits; needs one --stage and --version",
        ),
    ] = None,
    rollback: Annotated[
        bool,
        typer.Option(
            "--rollback",
            help="return @champion of one --stage to the version it replaced, for a written --reason (recorded in "
            "the audit trail and both versions' promotion history)",
        ),
    ] = False,
    reason: Annotated[str | None, typer.Option(help="why the champion is rolled back (with --rollback)")] = None,
) -> None:
    """Apply the promotion gate: @champion if no worse than the current champion, else @challenger.

    With --rollback, return a stage's @champion to the champion before it (no gate: that version served
    already), for a written --reason.

    Exit codes: 0 promoted (or rolled back), 2 refused by the gate (or a refused override request, or a
    shadow report that is not this version's or is past its limits, or a refused rollback), 1 the gate
    could not read or write the registry (nothing promoted).
    """
    from training.promote import GateError, apply, decide

    settings = get_settings()
    if rollback or reason is not None:
        if override_reason is not None or version is not None or shadow_report is not None:
            raise CliError(
                "--rollback returns the champion to the version it replaced: leave out --version, --override-reason "
                "and --shadow-report"
            )
        rollback_cmd(settings, stage, reason, by, asked=rollback)
        return
    override = _override(stage, version, override_reason, by)
    if shadow_report is not None:  # checked before the registry is read: a refusal promotes nothing
        check_shadow_report(str(stage.value), version, shadow_report)
    refused = False
    for st in stages_of(stage):
        try:
            decision = decide(st, version=version, settings=settings)
            if override is not None and decision.passed:
                console.print(
                    f"{decision.model_name} version {decision.version} passes the gate: promoted without the "
                    "override (its reason is not recorded)",
                    markup=False,
                )
            elif override is not None:
                decision = decision.overridden(override, alias=settings.champion_alias)
                record_override(settings, decision)
            apply(decision, settings=settings)
        except GateError as err:
            typer.echo(f"Error: {st.value}: the gate could not decide, nothing was promoted: {err}", err=True)
            raise typer.Exit(1) from None
        console.print(decision.describe(), markup=False, soft_wrap=True)
        refused |= not decision.promoted
    if refused:
        raise typer.Exit(2)


def _override(stage: StageChoice, version: str | None, reason: str | None, by: str | None) -> Override | None:
    """The override asked for, or a refusal naming the option that is missing or empty."""
    from training.promote import Override

    if reason is None:
        if by is not None:
            raise CliError("--by names who decides an override: give --override-reason too")
        return None
    if stage == StageChoice.ALL:
        raise CliError("--override-reason promotes one version of one stage: give --stage intake|midterm|release")
    if version is None:
        raise CliError("--override-reason needs --version: name the version you promote over the gate")
    if not reason.strip():
        raise CliError("--override-reason is empty: write why the version is promoted over the gate's refusal")
    if by is not None and not by.strip():
        raise CliError("--by is empty: name who decides the override (or leave it out for the operating-system user)")
    return Override(reason=reason, by=by or getpass.getuser())


def record_override(settings: ServiceSettings, decision: GateDecision) -> Any:
    """Chain the override in the audit trail (``models``), before the registry applies it."""
    if decision.override is None:
        raise ValueError(f"{decision.model_name} version {decision.version}: not an override")
    store = open_audit_store(settings)
    try:
        return store.add_model_event(
            event="promotion_override",
            stage=decision.stage,
            model_name=decision.model_name,
            model_version=decision.version,
            reason=decision.override.reason,
            detail={
                "at": decision.override.at,
                "os_user": getpass.getuser(),
                "host": socket.gethostname(),
                "model_kind": decision.model_kind,
                "champion_before": decision.champion_version,
                "gate_version": decision.gate_version,
                "compared": decision.compared,
                "failed": [{"name": c.name, "message": c.message} for c in decision.failed],
            },
            actor=decision.override.by,
        )
    finally:
        store.close()


def rollback_cmd(
    settings: ServiceSettings, stage: StageChoice, reason: str | None, by: str | None, *, asked: bool
) -> None:
    """``promote --rollback``: checked, chained in the audit trail, then recorded in the registry."""
    from training.history import RollbackError, apply_rollback, plan_rollback
    from training.registry import RegistryError, champion_of
    from training.tracking import configure_mlflow

    if not asked:
        raise CliError("--reason is the reason of a rollback: give --rollback too")
    if stage == StageChoice.ALL:
        raise CliError("--rollback returns one stage's champion: give --stage intake|midterm|release")
    if reason is None or not reason.strip():
        raise CliError("--rollback needs --reason: write why the champion is returned to the one before it")
    if by is not None and not by.strip():
        raise CliError("--by is empty: name who decides the rollback (or leave it out for the operating-system user)")
    name = settings.model_name(stage.value)
    try:
        client = configure_mlflow(settings)
        current = champion_of(client, name, settings.champion_alias)
        plan = plan_rollback(
            client,
            name,
            settings.champion_alias,
            current,
            stage=stage.value,
            reason=reason,
            by=by or getpass.getuser(),
        )
    except (RollbackError, RegistryError) as err:
        raise CliError(f"{stage.value}: nothing was rolled back: {err}") from None
    record_rollback(settings, plan)
    try:
        apply_rollback(client, plan, settings.champion_alias)
    except Exception as err:
        typer.echo(
            f"Error: {stage.value}: the rollback is in the audit trail but the registry could not be written, "
            f"@{settings.champion_alias} may still be version {plan.from_version}: {type(err).__name__}: {err}",
            err=True,
        )
        raise typer.Exit(1) from None
    console.print(plan.describe(), markup=False, soft_wrap=True)
    console.print("  the service serves it after riskctl serve (or riskctl build) imports it again", markup=False)


def record_rollback(settings: ServiceSettings, plan: Any) -> Any:
    """Chain the rollback in the audit trail (``models``), before the registry applies it."""
    store = open_audit_store(settings)
    try:
        return store.add_model_event(
            event="champion_rollback",
            stage=plan.stage,
            model_name=plan.model_name,
            model_version=plan.to_version,
            reason=plan.reason,
            detail={
                "at": plan.at,
                "os_user": getpass.getuser(),
                "host": socket.gethostname(),
                "champion_before": plan.from_version,
            },
            actor=plan.by,
        )
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    app.command("promote")(promote_cmd)
