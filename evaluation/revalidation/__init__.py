"""Revalidation on matured outcomes: is the model in service still right, now that outcomes are known?

Peers revalidate their instruments every year on later outcomes, by group, and look at how officers'
overrides did. This room does it for the stored assessments:

- :func:`maturity` applies design.md's censoring rule on an as-of date: an assessment counts only when a
  re-offence within its horizon was known by then, or follow-up known by then covers the whole horizon
  (:func:`known_on` cuts the outcomes at that date); the others are immature, counted and left out.
- :func:`revalidate` gives a :class:`RevalidationReport`: per stage, model version and policy version the
  AUC, Brier score and observed/expected overall and per band, calibration within groups with bootstrap
  intervals (the one definition, :func:`evaluation.group_calibration`), whether outcomes followed the change
  of risk between two assessments of a person, and the override analysis (outcome rates where an approved
  decision raised or lowered the tier by risk, followed it, or nothing was decided, and by reason code);
  review-meeting scores apart.
- :func:`write_report` writes it as HTML (plot inlined), markdown and JSON; :func:`override_kind` is the one
  reading of "departed from the tier by risk".
"""

from evaluation.revalidation._maturity import IMMATURE, MATURED, NO_OUTCOME, STATUSES, known_on, maturity
from evaluation.revalidation._render import render_html, render_markdown, report_record, write_report
from evaluation.revalidation._revalidate import GROUPINGS, ROW_COLUMNS, RevalidationReport, override_kind, revalidate

__all__ = [
    "GROUPINGS",
    "IMMATURE",
    "MATURED",
    "NO_OUTCOME",
    "ROW_COLUMNS",
    "STATUSES",
    "RevalidationReport",
    "known_on",
    "maturity",
    "override_kind",
    "render_html",
    "render_markdown",
    "report_record",
    "revalidate",
    "write_report",
]
