"""What the MLflow registry holds per stage, read so that a failure to read is never taken for an answer.

- ``riskctl models list`` (:func:`registered_versions`): each version's alias, kind, gate decision (an
  override with its reason and user; an alternative not judged yet) and key metrics, so a modeler sees
  at a glance which version serves each stage, which versions the gate refused and why, and whether a
  logistic or a boosted model earns the place.
- :func:`champion_of` is the one reading of "which version holds an alias": ``None`` only when the
  registry itself says there is none (the registered model does not exist, or no version holds the
  alias); any other failure to read it (a tracking server that does not answer, a refusal, a corrupt
  store) is a :class:`RegistryError`, never "no champion": a caller that took it for one would serve, or
  gate, on a registry it could not read.
- :func:`recorded_persons`: the persons a version's run was trained, tuned and calibrated on
  (:data:`PERSONS`, logged by training.tracking), or ``None`` for a run that did not record them.
- :func:`resolve_model`: the registered name, version and run of a model URI (``models:/name@alias``,
  ``models:/name/3``, ``runs:/<run>/model``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from features.settings import Settings
from features.vocab import Stage
from training.history import history_of
from training.lineage import FINGERPRINT_TAG
from training.tracking import PERSONS, configure_mlflow

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
    #: the version's promotion history, oldest first (training.history)
    history: tuple[dict[str, Any], ...] = ()

    def cells(self) -> list[str]:
        return [
            self.stage,
            self.version,
            ", ".join(f"@{a}" for a in self.aliases) or "-",
            self.kind,
            *(_fmt(self.metrics.get(k), k) for k in KEY_METRICS),
            self.decision,
        ]


HEADER = ["stage", "version", "alias", "kind", "AUC", "Brier", "ECE", "flagged", "FPR gap", "gate decision"]


#: metrics that are shares of persons, shown as percentages (5.72%) as the gate prints them
SHARE_METRICS = frozenset({"share_flagged"})


def _fmt(value: float | None, metric: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.2%}" if metric in SHARE_METRICS else f"{value:.4f}"


def registered_versions(settings: Settings, stages: list[Stage] | None = None) -> list[VersionRow]:
    """Every registered version of each stage's model, newest first within a stage."""
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
            decision = mv.tags.get("gate_decision") or _not_judged(mv.tags)
            if rolled := mv.tags.get("gate_rolled_back"):
                decision += f"; then rolled back ({rolled})"
            rows.append(
                VersionRow(
                    stage.value,
                    str(mv.version),
                    tuple(sorted(mv.aliases)),
                    kind,
                    decision,
                    metrics,
                    run.data.tags.get("candidate_reason", ""),
                    tuple(history_of(mv.tags or {})),
                )
            )
    return rows


def _not_judged(tags: dict[str, str]) -> str:
    if tags.get("candidate_role") == "alternative":
        return f"not judged: alternative to version {tags.get('alternative_of', '?')} (riskctl promote --version)"
    return "not gated (riskctl promote)"


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


#: the parts of a split a model learns from: trained on (train), tuned on (valid), calibrated on (calib)
SEEN_PARTS = ("train", "valid", "calib")


@dataclass(frozen=True)
class PersonSplit:
    """The persons of a version's run: those it was trained, tuned or calibrated on, and those it was tested on."""

    seen: frozenset[str]
    test: frozenset[str]


@dataclass(frozen=True)
class ResolvedModel:
    """A model URI resolved in the registry: name and version (when registered) and the run that logged it."""

    uri: str
    run_id: str
    name: str | None = None
    version: str | None = None

    def describe(self) -> str:
        if self.name and self.version:
            return f"{self.name} version {self.version} (run {self.run_id})"
        return f"run {self.run_id}"


def recorded_persons(client: MlflowClient, run_id: str) -> PersonSplit | None:
    """The persons ``run_id`` recorded (:data:`PERSONS`), or ``None`` when it recorded none (an older run).

    Raises
    ------
    RegistryError
        If the run's artifacts cannot be listed or read, or the file is not a person table.
    """
    import mlflow
    import pandas as pd

    try:
        listed = {f.path for f in client.list_artifacts(run_id, PERSONS.rsplit("/", 1)[0])}
        if PERSONS not in listed:
            return None
        table = pd.read_parquet(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=PERSONS))
    except Exception as err:
        raise RegistryError(f"cannot read the persons of run {run_id} ({PERSONS}): {_named(err)}") from err
    if not {"person_id", "part"} <= set(table.columns):
        raise RegistryError(f"run {run_id}: {PERSONS} lacks the columns person_id and part")
    ids, parts = table["person_id"].astype(str), table["part"].astype(str)
    return PersonSplit(frozenset(ids[parts.isin(SEEN_PARTS)]), frozenset(ids[parts == "test"]))


_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")
_RUNS_URI = re.compile(r"^runs:/(?P<run>[0-9a-fA-F]+)/")


def resolve_model(client: MlflowClient, uri: str) -> ResolvedModel | None:
    """The version and run ``uri`` names (``models:/name@alias``, ``models:/name/3``, ``runs:/<run>/...``).

    ``None`` for a URI the registry does not know how to name (a local path).

    Raises
    ------
    RegistryError
        If the registry cannot be read, or names no such version or alias.
    """
    if m := _RUNS_URI.match(uri):
        return ResolvedModel(uri, m["run"])
    m = _MODELS_URI.match(uri)
    if m is None:
        return None
    name = m["name"]
    if m["alias"]:
        mv = champion_of(client, name, m["alias"])
        if mv is None:
            raise RegistryError(f"{uri}: no version of {name} holds @{m['alias']}")
        return ResolvedModel(uri, str(mv.run_id), name, str(mv.version))
    try:
        found = client.get_model_version(name, m["version"])
    except Exception as err:
        raise RegistryError(f"{uri}: could not read {name} version {m['version']}: {_named(err)}") from err
    return ResolvedModel(uri, str(found.run_id), name, str(found.version))


def identical_version(client: MlflowClient, name: str, fingerprint: str) -> ModelVersion | None:
    """The registered candidate of ``name`` fitted from the same recipe (tag ``fit_fingerprint``), or None.

    Raises
    ------
    RegistryError
        If the registry cannot be searched.
    """
    if not re.fullmatch(r"[0-9a-f]{64}", fingerprint):
        raise ValueError(f"not a fit fingerprint: {fingerprint!r}")
    query = f"name='{name}' and tags.{FINGERPRINT_TAG} = '{fingerprint}'"
    try:
        found = client.search_model_versions(query)
    except Exception as err:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

        if isinstance(err, MlflowException) and err.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None
        raise RegistryError(f"could not search the versions of {name}: {_named(err)}") from err
    candidates = [v for v in found if (v.tags or {}).get("candidate_role", "candidate") == "candidate"]
    return min(candidates, key=lambda v: int(v.version)) if candidates else None


HISTORY_HEADER = ["stage", "version", "at", "by", "event", "alias", "champion before", "criteria failed", "reason"]


def history_cells(row: VersionRow) -> list[list[str]]:
    """One row per entry of a version's promotion history (``riskctl models list --history``)."""
    cells = []
    for entry in row.history:
        failed = [name for name, verdict in (entry.get("criteria") or {}).items() if verdict == "FAIL"]
        event = entry.get("event", "?")
        if event == "rolled_back":
            event = f"rolled back to {entry.get('to_version', '?')}"
        elif event == "restored":
            event = f"restored (rollback of {entry.get('from_version', '?')})"
        cells.append(
            [
                row.stage,
                row.version,
                str(entry.get("at", "")),
                str(entry.get("by", "")),
                event,
                f"@{entry['alias']}" if entry.get("alias") else "-",
                str(entry.get("champion_before") or "none"),
                ", ".join(failed) or "-",
                str(entry.get("reason", "")),
            ]
        )
    return cells


def markdown(rows: list[VersionRow]) -> str:
    """The rows as a Markdown table (for a pipe or a file: no width limit)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)


__all__ = [
    "HEADER",
    "HISTORY_HEADER",
    "KEY_METRICS",
    "PERSONS",
    "SEEN_PARTS",
    "PersonSplit",
    "RegistryError",
    "ResolvedModel",
    "VersionRow",
    "champion_of",
    "history_cells",
    "identical_version",
    "markdown",
    "recorded_persons",
    "registered_versions",
    "resolve_model",
    "serving_summary",
]
