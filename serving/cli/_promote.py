"""``riskctl promote``: the promotion gate on a registered version, and a promotion over its refusal.

Without ``--override-reason`` the gate decides (:mod:`training.promote`): ``@champion`` when every
criterion passes, else ``@challenger`` and exit code 2. An error reading or writing the registry is
an error, with its message and exit code 1, and nothing is promoted.

With ``--override-reason`` (one stage, one ``--version``) a version the gate refuses is promoted all
the same. The override is recorded in three places: the audit trail first (chain ``models``: who, why,
the failed criteria, the champion it replaces), so that no override takes effect unrecorded; then the
version's registry tags and the gate section of its model card. ``riskctl models list`` shows it. The
user is ``--by`` or, without it, the operating-system user; both are kept.
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
        str | None, typer.Option(help="who decides the override (default: the operating-system user)")
    ] = None,
    shadow_report: Annotated[
        Path | None,
        typer.Option(
            "--shadow-report",
            help="promote only if this shadow report (riskctl shadow's shadow.json) replayed this --version "
            "within its limits; needs one --stage and --version",
        ),
    ] = None,
) -> None:
    """Apply the promotion gate: @champion if no worse than the current champion, else @challenger.

    Exit codes: 0 promoted, 2 refused by the gate (or a refused override request, or a shadow report that
    is not this version's or is past its limits), 1 the gate could not read or write the registry (nothing
    promoted).
    """
    from training.promote import GateError, apply, decide

    settings = get_settings()
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


def register(app: typer.Typer) -> None:
    app.command("promote")(promote_cmd)
