"""Model cards: what a registered model is, what it was trained and tested on, how it does."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from evaluation._markdown import fairness_section, figures_section, fmt, performance_section, table
from evaluation._report import EvaluationReport

log = logging.getLogger(__name__)


def _data_lines(*, data_description: str, period: str, label_definition: str,
                n_train: int, n_test: int, n_censored: int) -> list[str]:
    rows = [
        ["data", data_description], ["period", period],
        ["training rows", fmt(n_train, "n")], ["test rows", fmt(n_test, "n")],
        ["censored (left out)", fmt(n_censored, "n")],
    ]
    return [
        "## Data", "", *table(["", ""], rows), "",
        "Censored: people whose follow-up after the assessment date is shorter than the label "
        "horizon and who have not re-offended; they are left out of training and evaluation.", "",
        "## Label", "", label_definition, "",
    ]


def model_card(
    *,
    name: str,
    version: str | None,
    stage: str,
    data_description: str,
    period: str,
    label_definition: str,
    n_train: int,
    n_test: int,
    n_censored: int,
    report: EvaluationReport,
    limits: list[str],
    out_path: Path,
) -> Path:
    """Write a Markdown model card for one (registered) model version.

    Parameters
    ----------
    name : str
        Registered model name (``reoffence-intake``).
    version : str or None
        Registered version; ``None`` for a model not (yet) registered.
    stage : str
        Assessment stage (``intake``, ``midterm``, ``release``).
    data_description : str
        Source of the data (synthetic cohort and seed, NIJ Georgia parole, ...).
    period : str
        Period covered by the training and test data.
    label_definition : str
        What the label means (outcome and horizon).
    n_train, n_test, n_censored : int
        Rows used to train and test, and people left out as censored.
    report : EvaluationReport
        The model's evaluation on the test rows.
    limits : list of str
        Known limits, one sentence each.
    out_path : Path
        File to write (its folder is created if needed).

    Returns
    -------
    Path
        ``out_path``.
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    shown_version = version if version is not None else "unregistered"
    threshold = report.meta.get("threshold")
    cut_off = "not set" if threshold is None else f"p ≥ {threshold:g}"
    lines = [
        f"# Model card: {name} (version {shown_version})", "",
        f"- **stage**: {stage}",
        f"- **strict-tier cut-off**: {cut_off}",
        f"- **card written**: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}", "",
        "## Intended use", "",
        f"Estimates the probability of a new offence within the horizon of the {stage} "
        "assessment, to support a caseworker's choice of management tier. It does not replace "
        "the caseworker's judgement, the mandatory strict rules or a recorded override.", "",
        *_data_lines(data_description=data_description, period=period,
                     label_definition=label_definition, n_train=n_train, n_test=n_test,
                     n_censored=n_censored),
        *performance_section(report.columns(), threshold),
    ]
    if report.groups is not None:
        lines += fairness_section(report.groups)
    else:
        lines += ["## Fairness by group", "", "No group metrics were computed for this model.", ""]
    if not limits:
        log.warning("model card for %s %s: no known limits given", name, shown_version)
    lines += ["## Known limits", ""] + [f"- {item}" for item in limits or ["None recorded."]] + [""]
    lines += figures_section(report.figures, out_path.parent)
    out_path.write_text("\n".join(lines), encoding="utf-8")
    log.info("wrote model card %s", out_path)
    return out_path
