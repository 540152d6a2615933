"""Model cards: what a registered model is, what it was trained and tested on, how it does."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from evaluation._markdown import fairness_section, figures_section, fmt, fmt_share, performance_section, table
from evaluation._policy import PolicyFigures
from evaluation._report import EvaluationReport
from features.catalog import CATALOG, PROTECTED_ATTRIBUTES
from models.cutoffs import cutoff_form, cutoff_words, percent, stated_words

log = logging.getLogger(__name__)

INTENDED_USE = [
    "A score informs a decision; it does not make it. The caseworker decides the management tier, within "
    "the tier policy's mandatory rules, and a departure from the model is recorded with a written reason.",
    "For community-corrections staff assessing people under supervision at the stage named above, on "
    "records like those it was trained on.",
]
NOT_FOR = [
    "deciding a sentence, parole, revocation or any other legal outcome;",
    "assessing people outside community supervision, or at a stage other than the one named above;",
    "a decision without a caseworker's review, or as the only ground for a stricter tier;",
    "comparing or ranking offices, caseworkers or groups of people.",
]


def _inputs_lines(inputs: Sequence[str], protected_inputs: Sequence[str]) -> list[str]:
    """The model's inputs and, for each protected attribute, whether it is one."""
    rows = [[name, CATALOG[name].en, CATALOG[name].zh] for name in inputs]
    lines = [
        "## Inputs",
        "",
        f"{len(inputs)} features (features/catalog.py):",
        "",
        *table(["feature", "meaning", "含义"], rows),
        "",
        "## Protected attributes",
        "",
    ]
    for name in PROTECTED_ATTRIBUTES:
        spec = CATALOG[name]
        if name in protected_inputs:
            lines.append(
                f"- **{spec.en} ({spec.zh}, `{name}`): a model input**, turned on in the model settings "
                "(`protected_inputs` in training/params.yaml). It is never shown to a caseworker as a reason."
            )
        else:
            lines.append(
                f"- {spec.en} ({spec.zh}, `{name}`): excluded, not a model input. It is kept in the records "
                "and used for the fairness and calibration tables below."
            )
    return [*lines, ""]


def _policy_lines(policy: Any, stage: str, figures: PolicyFigures | None = None) -> list[str]:
    """The tier policy in force (``policy``: a TierPolicy): its version, what this stage's cut-offs aim at, and,
    with ``figures``, where they fall for this model and what they flag on the test rows; then the mandatory
    rules and how many test persons each makes strict."""
    sp = policy.stage(stage)
    strict = ", ".join(b.value for b in sp.strict_bands)
    lines = [
        "## Tier policy",
        "",
        f"Policy version **{policy.version}** (models/tier_policy.yaml); strict by risk: {strict}. It aims to flag "
        f"as high {_aim(sp.high_from)}, and as medium or above {_aim(sp.medium_from)}.",
        "",
    ]
    if figures is None:
        lines += [
            f"Bands: low < {cutoff_words(sp.medium_from, 'en')} ≤ medium < {cutoff_words(sp.high_from, 'en')} ≤ high.",
            "",
        ]
    else:
        lines += _figures_lines(figures)
    lines += ["Mandatory strict rules, first that holds applies:", ""]
    for rule in sp.rules:
        limit = f" (time-limited: {rule.time_limit.days_after_start} days after the start)" if rule.time_limit else ""
        decided = "" if figures is None else f": decided {_count(figures.by_rule.get(rule.id, 0), figures.rows)}"
        lines.append(f"- `{rule.id}`: {rule.en} / {rule.zh}{limit}{decided}")
    return [*lines, ""]


def _aim(cutoff: Any) -> str:
    """What a cut-off as the policy states it aims at, in words."""
    if cutoff_form(cutoff) == "riskiest_share":
        return f"{cutoff_words(cutoff, 'en')} of the stage's persons"
    if cutoff_form(cutoff) == "times_base_rate":
        return f"persons at {cutoff_words(cutoff, 'en')} of the stage or more"
    return f"persons at a probability of {cutoff_words(cutoff, 'en')} or more, whatever the base rate"


def _count(n: int, of: int) -> str:
    return f"{n:,} of {of:,} test persons ({n / of:.1%})" if of else f"{n:,}"


def _figures_lines(figures: PolicyFigures) -> list[str]:
    """Each cut-off for this model, and what it flags on the test rows; the strict counts by risk and by rule."""
    c = figures.cutoffs
    reference = (
        f"this model's {c.training_rows:,} training persons, base rate {fmt_share(c.base_rate)}"
        if c.training_rows is not None
        else "no reference statistics kept with this model"
    )
    rows = [
        [
            f"{f.name}{' (strict by risk)' if f.strict else ''}",
            stated_words(f.cutoff.form, f.cutoff.stated, "en"),
            percent(f.cutoff.probability),
            fmt_share(f.cutoff.training_share),
            f"{f.flagged:,} ({fmt_share(f.share_flagged)})",
            fmt_share(f.precision),
            fmt_share(f.recall),
        ]
        for f in figures.at_cutoffs
    ]
    header = ["cut-off", "as stated", "probability", "training persons at or above", "flagged (test)"]
    return [
        f"Cut-offs for this model ({reference}) and what they flag on the {figures.rows:,} test persons "
        f"({figures.positives:,} re-offended):",
        "",
        *table([*header, "precision", "recall"], rows),
        "",
        f"Strict by risk: {_count(figures.strict_by_risk, figures.rows)}. Strict by a mandatory rule: "
        f"{_count(figures.strict_by_rule, figures.rows)}, of whom {figures.rule_only:,} are not strict by risk. "
        f"Strict in effect: {_count(figures.strict_in_effect, figures.rows)}.",
        "",
    ]


def gate_lines(gate: Mapping[str, Any] | None) -> list[str]:
    if gate is None:
        return [
            "## Promotion gate",
            "",
            "Not yet applied: `riskctl promote` judges this version against the "
            "champion and records the decision on the version (tag `gate_decision`).",
            "",
        ]
    override = gate.get("override")
    verdict = "promoted to champion" if gate.get("promoted") else "not promoted (challenger)"
    if override:
        verdict = "promoted to champion by override, over the gate's refusal"
    lines = [
        "## Promotion gate",
        "",
        f"Decision: **{verdict}** (gate version {gate.get('gate_version')}, "
        f"against champion {gate.get('against') or 'none'}).",
        "",
    ]
    if gate.get("compared"):
        lines += [f"Rows: {gate['compared']}.", ""]
    if override:
        failed = ", ".join(c.get("name", "?") for c in gate.get("criteria", []) if not c.get("passed"))
        lines += [
            f"Override by **{override.get('by')}** at {override.get('at')}: {override.get('reason')}",
            f"(failed criteria: {failed}; recorded in the audit trail).",
            "",
        ]
    for c in gate.get("criteria", []):
        verdict = ("warn" if c.get("warning") else "pass") if c.get("passed") else "FAIL"
        lines.append(f"- {verdict}: {c.get('message') or json.dumps(c, default=str)}")
    return [*lines, ""]


def _data_lines(
    *, data_description: str, period: str, label_definition: str, n_train: int, n_test: int, n_censored: int
) -> list[str]:
    rows = [
        ["data", data_description],
        ["period", period],
        ["training rows", fmt(n_train, "n")],
        ["test rows", fmt(n_test, "n")],
        ["censored (left out)", fmt(n_censored, "n")],
    ]
    return [
        "## Data",
        "",
        *table(["", ""], rows),
        "",
        "Censored: people whose follow-up after the assessment date is shorter than the label "
        "horizon and who have not re-offended; they are left out of training and evaluation.",
        "",
        "## Label",
        "",
        label_definition,
        "",
    ]


_IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<target>[^)\s]+)\)")


def relink_figures(card: str, link: Callable[[str], str]) -> str:
    """A card's text with each embedded figure's target ``t`` replaced by ``link(t)`` (alt texts kept).

    The cards are written with links relative to their folder (a report folder); a copy shown elsewhere (the
    model registry's description, where a relative link is a broken image) links the same figures by URL.
    """
    return _IMAGE.sub(lambda m: f"![{m['alt']}]({link(m['target'])})", card)


def with_gate_decision(card: str, gate: Mapping[str, Any]) -> str:
    """A card's text with its "Promotion gate" section replaced by ``gate``'s decision."""
    lines, section = card.split("\n"), gate_lines(gate)
    if "## Promotion gate" not in lines:
        return card.rstrip("\n") + "\n\n" + "\n".join(section)
    start = lines.index("## Promotion gate")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join([*lines[:start], *section, *lines[end:]])


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
    inputs: Sequence[str] | None = None,
    protected_inputs: Sequence[str] = (),
    data_kind: Literal["synthetic", "real"] | None = None,
    policy: Any = None,
    policy_figures: PolicyFigures | None = None,
    gate: Mapping[str, Any] | None = None,
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
    inputs : sequence of str, optional
        The model's input features; with it the card lists them and the protected attributes.
    protected_inputs : sequence of str
        The protected attributes (sex, local) the model settings made inputs.
    data_kind : "synthetic" or "real", optional
        Whether the training data are synthetic or real records.
    policy : TierPolicy, optional
        The tier policy the model serves under (version, cut-offs, mandatory rules).
    policy_figures : PolicyFigures, optional
        What that policy does with this model on the test rows (:func:`evaluation.policy_figures`).
    gate : mapping, optional
        The promotion gate's decision (``gate_decision`` tag); None: not yet applied.

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
        f"# Model card: {name} (version {shown_version})",
        "",
        f"- **stage**: {stage}",
        f"- **strict-tier cut-off**: {cut_off}",
        *([f"- **model kind**: {report.meta['model_kind']}"] if report.meta.get("model_kind") else []),
        *([f"- **why this kind**: {report.meta['candidate_reason']}"] if report.meta.get("candidate_reason") else []),
        f"- **card written**: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}",
        "",
        "## Intended use",
        "",
        f"Estimates the probability of a new offence within the horizon of the {stage} "
        "assessment, to support a caseworker's choice of management tier. It does not replace "
        "the caseworker's judgement, the mandatory strict rules or a recorded override.",
        "",
        *[f"- {line}" for line in INTENDED_USE],
        "",
        "Not for:",
        "",
        *[f"- {line}" for line in NOT_FOR],
        "",
        *(_inputs_lines(inputs, protected_inputs) if inputs is not None else []),
        *_data_lines(
            data_description=(f"{data_kind}: " if data_kind else "") + data_description,
            period=period,
            label_definition=label_definition,
            n_train=n_train,
            n_test=n_test,
            n_censored=n_censored,
        ),
        *(_policy_lines(policy, stage, policy_figures) if policy is not None else []),
        *gate_lines(gate),
        *performance_section(report.columns(), threshold, strict_in_effect=report.meta.get("share_strict_in_effect")),
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
