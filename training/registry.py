"""What the MLflow registry holds per stage: each version's alias, kind, gate decision and key metrics.

Backs ``riskctl models list``: a modeler sees at a glance which version serves each stage, which
versions the gate refused and why, and whether a logistic or a boosted model earns the place.

:func:`champion_of` is the one reading of "which version holds an alias": ``None`` only when the registry
itself says there is none (the registered model does not exist, or no version holds the alias); any other
failure to read it (a tracking server that does not answer, a refusal, a corrupt store) is a
:class:`RegistryError`, never "no champion": a caller that took it for one would serve, or gate, on a
registry it could not read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from features.settings import Settings
from features.vocab import Stage

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

#: test metrics shown per version (logged by training.tracking as ``test_<name>``)
KEY_METRICS = ("roc_auc", "brier", "ece", "share_flagged", "largest_fpr_gap")


@dataclass(frozen=True)
class VersionRow:
    """One registered version as ``riskctl models list`` shows it."""

    stage: str
    version: str
    aliases: tuple[str, ...]
    kind: str
    decision: str
    metrics: dict[str, float]
    reason: str = ""

    def cells(self) -> list[str]:
        return [
            self.stage,
            self.version,
            ", ".join(f"@{a}" for a in self.aliases) or "-",
            self.kind,
            *(_fmt(self.metrics.get(k)) for k in KEY_METRICS),
            self.decision,
        ]


HEADER = ["stage", "version", "alias", "kind", "AUC", "Brier", "ECE", "flagged", "FPR gap", "gate decision"]


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4f}"


def registered_versions(settings: Settings, stages: list[Stage] | None = None) -> list[VersionRow]:
    """Every registered version of each stage's model, newest first within a stage."""
    from training.tracking import configure_mlflow

    client = configure_mlflow(settings)
    rows = []
    for stage in stages or list(Stage):
        name = settings.model_name(stage)
        versions = sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: -int(v.version))
        for found in versions:
            mv = client.get_model_version(name, found.version)  # the search leaves out the aliases
            run = client.get_run(str(mv.run_id))
            metrics = {k: run.data.metrics[f"test_{k}"] for k in KEY_METRICS if f"test_{k}" in run.data.metrics}
            kind = run.data.tags.get("model_kind", "?")
            decision = mv.tags.get("gate_decision", "not gated (riskctl promote)")
            rows.append(
                VersionRow(
                    stage.value,
                    str(mv.version),
                    tuple(sorted(mv.aliases)),
                    kind,
                    decision,
                    metrics,
                    run.data.tags.get("candidate_reason", ""),
                )
            )
    return rows


def serving_summary(rows: list[VersionRow], champion_alias: str = "champion") -> list[str]:
    """One line per stage: which version and kind serves it, and why that kind; or, for a stage with no
    champion, that it is not served and what the gate said of its latest version (for the demo)."""
    lines = []
    for stage in Stage:
        versions = [r for r in rows if r.stage == stage.value]
        served = [r for r in versions if champion_alias in r.aliases]
        if not served:
            latest = f"version {versions[0].version}: {versions[0].decision}" if versions else "no registered version"
            lines.append(f"{stage.value}: not served, no @{champion_alias} ({latest})")
            continue
        r = served[0]
        why = r.reason or "reason not recorded"
        lines.append(f"{stage.value}: version {r.version} serves, a {r.kind} model: {why}")
    return lines


class RegistryError(RuntimeError):
    """The model registry could not be read, or what it holds cannot be used (named in the message)."""


def champion_of(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version of registered model ``name`` that holds ``alias`` (``@champion``), or None if there is none.

    None only on the registry's own word: MLflow answers that the registered model does not exist
    (``RESOURCE_DOES_NOT_EXIST``), or the model exists and none of its versions holds the alias. The alias
    is looked up in the model's alias list rather than inferred from an error, since MLflow answers a
    missing alias with the same error type as a malformed request.

    Raises
    ------
    RegistryError
        On any other failure to read the model or the version the alias names; the message names the
        registered model, the tracking URI's error and its type.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None
        raise RegistryError(f"could not read registered model {name}: {_named(exc)}") from exc
    except Exception as exc:  # a driver's or the network's error: the registry was not read
        raise RegistryError(f"could not read registered model {name}: {_named(exc)}") from exc
    version = (model.aliases or {}).get(alias)
    if version is None:
        return None
    try:
        found: ModelVersion = client.get_model_version(name, str(version))
    except Exception as exc:
        raise RegistryError(f"could not read {name} version {version} (@{alias}): {_named(exc)}") from exc
    return found


def _named(exc: BaseException) -> str:
    """An error as one line: its type and its first line of text."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else '(no message)'}"


def markdown(rows: list[VersionRow]) -> str:
    """The rows as a Markdown table (for a pipe or a file: no width limit)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)


__all__ = [
    "HEADER",
    "KEY_METRICS",
    "RegistryError",
    "VersionRow",
    "champion_of",
    "markdown",
    "registered_versions",
    "serving_summary",
]
