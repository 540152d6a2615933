"""What the MLflow registry holds per stage: each version's alias, kind, gate decision and key metrics.

Backs ``riskctl models list``: a modeler sees at a glance which version serves each stage, which
versions the gate refused and why, and whether a logistic or a boosted model earns the place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from features.settings import Settings
from features.vocab import Stage

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
    """One line per stage: which version and kind serves it, and why that kind (for the demo)."""
    lines = []
    for stage in Stage:
        served = [r for r in rows if r.stage == stage.value and champion_alias in r.aliases]
        if not served:
            lines.append(f"{stage.value}: no @{champion_alias} (every version was refused by the gate)")
            continue
        r = served[0]
        why = r.reason or "reason not recorded"
        lines.append(f"{stage.value}: version {r.version} serves, a {r.kind} model: {why}")
    return lines


def markdown(rows: list[VersionRow]) -> str:
    """The rows as a Markdown table (for a pipe or a file: no width limit)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)


__all__ = ["HEADER", "KEY_METRICS", "VersionRow", "markdown", "registered_versions", "serving_summary"]
