"""What several ``riskctl`` commands set up the same way: the project's BentoML home, the served models
imported from MLflow (a stage without a champion is not served; no stage at all, or a registry that cannot be
read, is a refusal), the first tokens, the audit store, and the scorer of offline scoring."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from features.cli import CliError, console
from features.vocab import Stage
from serving.settings import ServiceSettings


def use_project_bentoml_home(settings: ServiceSettings) -> None:
    """Point BentoML at ``<RISK_HOME>/bentoml`` unless ``BENTOML_HOME`` is set (call before importing bentoml)."""
    os.environ.setdefault("BENTOML_HOME", str((settings.home / "bentoml").resolve()))


def import_models(settings: ServiceSettings, *, explain: bool = True) -> dict[Stage, str]:
    """Import every stage's ``@champion`` into the BentoML store and say which stages will be served and which
    not (``explain``: with what the gate said of the stage's latest version); returns the BentoML tag of each
    served stage.

    A registry that cannot be read is a refusal naming its error (never "no champion"), and so is a registry
    where no stage has a champion: a service that would refuse every request does not start.
    """
    from serving.scoring import import_champions
    from training.registry import RegistryError

    try:
        tags = import_champions(settings)
    except RegistryError as err:
        raise CliError(f"the model registry ({settings.resolved_tracking_uri()}) could not be read: {err}") from None
    for stage, tag in tags.items():
        console.print(f"{stage.value:8s} @{settings.champion_alias} -> BentoML model {tag}", markup=False)
    missing = [stage for stage in Stage if stage not in tags]
    for line in _unserved_lines(settings, missing, some_served=bool(tags)) if missing and explain else []:
        console.print(line, markup=False, soft_wrap=True)
    if not tags:
        raise CliError(
            f"no stage has a @{settings.champion_alias} in the registry ({settings.resolved_tracking_uri()}), so "
            "nothing could be served: train and promote at least one stage (riskctl train --stage all --promote, "
            'or riskctl promote --stage S --version V --override-reason "...")'
        )
    return tags


def _unserved_lines(settings: ServiceSettings, stages: list[Stage], *, some_served: bool) -> list[str]:
    """One line per stage without a champion: not served, the gate's word on its latest version, and (when the
    service starts with other stages) that its requests are answered 503 until a version is promoted."""
    from training.registry import registered_versions

    try:
        rows, why = registered_versions(settings, stages), ""
    except Exception as err:  # the champions were read already: only the explanation is missing, and says so
        rows, why = [], f" (its versions could not be listed: {type(err).__name__}: {err})"
    lines = []
    for stage in stages:
        latest = next((r for r in rows if r.stage == stage.value), None)
        said = f"latest version {latest.version}: {latest.decision}" if latest else "no registered version"
        line = f"{stage.value:8s} not served: no @{settings.champion_alias} ({said}){why}"
        if some_served:
            line += (
                f"; its requests are answered 503 until a modeler promotes a version (riskctl train --stage "
                f"{stage.value} --promote, or riskctl promote --stage {stage.value} --version V "
                '--override-reason "...") and the service is restarted'
            )
        lines.append(line)
    return lines


def served_env(stages: Iterable[Stage]) -> dict[str, str]:
    """The environment that makes ``bentoml serve`` serve exactly ``stages`` (``RISK_SERVED_STAGES``)."""
    return {"RISK_SERVED_STAGES": ",".join(Stage(s).value for s in stages)}


def stored_stages(settings: ServiceSettings) -> list[Stage]:
    """The stages with a model in the BentoML store (what ``riskctl serve --no-import`` can serve)."""
    from serving.scoring import stored_model

    return [stage for stage in Stage if stored_model(settings, stage) is not None]


def stages_to_serve(
    settings: ServiceSettings, available: Iterable[Stage], *, having: str = "a champion"
) -> list[Stage]:
    """The stages ``available`` (``having`` a champion, or a model in the store) that the operator did not leave
    out of ``RISK_SERVED_STAGES``; a refusal when none is left (a service that would refuse every request)."""
    stages = [Stage(s) for s in available]
    if not stages:
        raise CliError(
            f"no stage has {having}, so nothing could be served: train and promote at least one stage (riskctl "
            'train --stage all --promote, or riskctl promote --stage S --version V --override-reason "..."), '
            "then riskctl serve (it imports every stage's @champion)"
        )
    if settings.served_stages is None:
        return stages
    left_out = [s.value for s in stages if s not in settings.served_stages]
    if left_out:
        console.print(f"not served (left out of RISK_SERVED_STAGES): {', '.join(left_out)}", markup=False)
    kept = [s for s in stages if s in settings.served_stages]
    if not kept:
        raise CliError(
            f"RISK_SERVED_STAGES leaves out every stage that has {having} "
            f"({', '.join(s.value for s in stages)}), so nothing could be served"
        )
    return kept


def ensure_tokens(settings: ServiceSettings) -> None:
    """Create the token file on first run; the new tokens go to 0600 files, never to the console or log."""
    from serving.auth import load_or_create

    path = settings.resolved_auth_file()
    _, created = load_or_create(path)
    if created:
        written = [write_token_file(settings, role.value, role.value, token) for role, token in created.items()]
        console.print(
            f"new access tokens, one per role, in {written[0].parent} (files readable by you only; "
            f"their hashes in {path})"
        )


def write_token_file(settings: ServiceSettings, role: str, user: str, token: str) -> Path:
    """Write a raw token to ``<home>/tokens/<role>-<user>.token`` with mode 0600 (folder 0700)."""
    from serving.auth import write_token

    return write_token(settings.home / "tokens", role, user, token)


def office_tokens(settings: ServiceSettings, office: str) -> list[Path]:
    """Give the first start's caseworker and supervisor an office (their tokens carry none, and the case routes
    and console pages refuse a token without one): fresh tokens of ``office`` replace theirs, written to the
    same files (``<home>/tokens/caseworker-caseworker.token``, ``supervisor-supervisor.token``)."""
    from serving.auth import Role, issue_token

    return [
        write_token_file(
            settings,
            role.value,
            role.value,
            issue_token(settings.resolved_auth_file(), role=role, user=role.value, office=office),
        )
        for role in (Role.CASEWORKER, Role.SUPERVISOR)
    ]


def offline_scorer(settings: ServiceSettings) -> tuple[Any, Any]:
    """The scorer and audit store the service would use, built from the BentoML store.

    Serves the stages the service would (``RISK_SERVED_STAGES``, else every stage with a model in the store); a
    request for another stage is refused by the scorer (``NoModelError``). With no stage at all: a refusal.
    """
    from models.tier_policy import TierPolicy
    from serving.scoring import Scorer, nothing_to_serve, served_models, stored_model

    served, unserved = served_models(lambda stage: stored_model(settings, stage), only=settings.served_stages)
    if not served:
        raise CliError(nothing_to_serve(unserved))
    return Scorer(served, TierPolicy.load()), open_audit_store(settings)


def open_audit_store(settings: ServiceSettings) -> Any:
    """The audit store the service writes (``RISK_AUDIT_URL`` or ``<home>/audit.db``), its secret from the
    auth file (created with the first tokens if there is none) or ``RISK_AUDIT_SECRET_FILE``, signing each
    record with the service's signer (``RISK_SIGNER_SOCKET`` or the key file)."""
    from serving.audit import open_store
    from serving.auth import load_or_create

    ensure_tokens(settings)
    auth, _ = load_or_create(settings.resolved_auth_file())
    return open_store(settings, auth_secret=auth.audit_secret)
