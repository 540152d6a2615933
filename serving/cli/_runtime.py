"""What several ``riskctl`` commands set up the same way: the project's BentoML home, the served models
imported from MLflow, the first tokens, and the scorer and audit store of offline scoring."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from features.cli import CliError, console
from features.vocab import Stage
from serving.settings import ServiceSettings


def use_project_bentoml_home(settings: ServiceSettings) -> None:
    """Point BentoML at ``<RISK_HOME>/bentoml`` unless ``BENTOML_HOME`` is set (call before importing bentoml)."""
    os.environ.setdefault("BENTOML_HOME", str((settings.home / "bentoml").resolve()))


def import_models(settings: ServiceSettings) -> dict[Stage, str]:
    from serving.scoring import import_champions

    try:
        tags = import_champions(settings)
    except LookupError as err:
        raise CliError(str(err)) from None
    for stage, tag in tags.items():
        console.print(f"{stage.value:8s} @{settings.champion_alias} -> BentoML model {tag}")
    return tags


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
    """The scorer and audit store the service would use, built from the BentoML store."""
    import bentoml

    from models.tier_policy import TierPolicy
    from serving.audit import AuditStore
    from serving.auth import load_or_create
    from serving.scoring import Scorer, bento_model_name, load_served

    served = {}
    for stage in Stage:
        try:
            stored = bentoml.models.get(f"{bento_model_name(settings, stage)}:latest")
        except bentoml.exceptions.NotFound:
            raise CliError(f"no {stage.value} model in the BentoML store: run riskctl models import") from None
        served[stage] = load_served(stored, stage)
    ensure_tokens(settings)
    auth, _ = load_or_create(settings.resolved_auth_file())
    return Scorer(served, TierPolicy.load()), AuditStore(settings.resolved_audit_url(), secret=auth.audit_secret)
