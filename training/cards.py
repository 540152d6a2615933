"""A version's model card in its three places, saying the same thing: the registry, the run, the report folder.

The card is written when a version is registered and again when the promotion gate has decided
(:func:`training.promote.apply`), each time to all three places by :func:`publish_card`:

- the registry's description of the version (what the MLflow UI shows on the version's page),
- the run's artifact :data:`CARD_ARTIFACT`,
- ``model_card.md`` in the version's report folder (tag :data:`REPORT_DIR_TAG`), when that folder is on
  this machine.

In the report folder the figures are linked relative to the card (they sit beside it); in the registry
and the run they are linked to the run's artifacts through the tracking server (``get-artifact``), so
they render in the MLflow UI instead of showing as broken images.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, urlparse

from evaluation import relink_figures

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)
#: the card in the version's run
CARD_ARTIFACT = "model_card/model_card.md"
#: the run's artifact folder that holds the report's figures (training.tracking logs the report there)
FIGURES_ARTIFACT_DIR = "evaluation"
#: tag of a registered version: its report folder (``<home>/reports/<stage>-<version>``)
REPORT_DIR_TAG = "report_dir"


def artifact_link(run_id: str) -> Callable[[str], str]:
    """Links from a card's figure (a file name relative to the report folder) to the run's artifact of it."""

    def link(target: str) -> str:
        if "://" in target or target.startswith(("get-artifact", "/")):
            return target
        path = f"{FIGURES_ARTIFACT_DIR}/{target}"
        return f"get-artifact?path={quote(path, safe='')}&run_uuid={run_id}"

    return link


def local_link(target: str) -> str:
    """The inverse of :func:`artifact_link`: the figure's path relative to the report folder."""
    if not target.startswith("get-artifact"):
        return target
    path = parse_qs(urlparse(target).query).get("path", [""])[0]
    return path.removeprefix(f"{FIGURES_ARTIFACT_DIR}/") or target


def with_section(card: str, title: str, lines: list[str]) -> str:
    """``card`` with its ``## title`` section replaced by ``lines`` (added at the end when it has none)."""
    rows, heading = card.rstrip("\n").split("\n"), f"## {title}"
    section = [heading, "", *lines, ""]
    if heading not in rows:
        return "\n".join([*rows, "", *section])
    start = rows.index(heading)
    end = next((i for i in range(start + 1, len(rows)) if rows[i].startswith("## ")), len(rows))
    return "\n".join([*rows[:start], *section, *rows[end:]])


def publish_card(
    client: MlflowClient, *, name: str, version: str, run_id: str, card: str, report_dir: Path | None
) -> None:
    """Write ``card`` (figures linked in either form) to the registry, the run and the report folder."""
    linked = relink_figures(card, artifact_link(run_id))
    client.update_model_version(name, version, description=linked)
    with tempfile.TemporaryDirectory(prefix="card-") as tmp:
        path = Path(tmp) / Path(CARD_ARTIFACT).name
        path.write_text(linked, encoding="utf-8")
        client.log_artifact(run_id, str(path), artifact_path=str(Path(CARD_ARTIFACT).parent))
    if report_dir is None:
        return
    if not report_dir.is_dir():
        log.warning(
            "%s version %s: its report folder %s is not on this machine: its card there is not updated",
            name,
            version,
            report_dir,
        )
        return
    target = report_dir / "model_card.md"
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(relink_figures(card, local_link), encoding="utf-8")
    os.replace(partial, target)


__all__ = [
    "CARD_ARTIFACT",
    "FIGURES_ARTIFACT_DIR",
    "REPORT_DIR_TAG",
    "artifact_link",
    "local_link",
    "publish_card",
    "with_section",
]
