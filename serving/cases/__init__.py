"""Case records and the review cycle (design.md, "Case records and the review cycle").

The service keeps the canonical tables of the people on supervision in a case store (SQLAlchemy:
SQLite under ``RISK_HOME`` by default, PostgreSQL by ``RISK_CASES_URL``; Alembic migrations
shipped here and applied on open), and builds the caseworkers' and supervisors' work on it:

- :class:`CaseStore` - import exports all or nothing (:meth:`CaseStore.import_tables`,
  :func:`read_dir`), record events (:meth:`CaseStore.record_event`), read records, build a score
  request by person id (:meth:`CaseStore.score_request`);
- :func:`today_list` - a caseworker's day: alerts, overdue and due assessments, rules ending, decided
  proposals, most urgent first;
- :func:`due_list` - each person on an office's roll with current tier, last assessment per
  stage and each assessment due, upcoming or overdue (windows in ``serving/cases/review_policy.yaml``,
  :class:`ReviewPolicy`);
- :func:`propose`, :func:`approve`, :func:`reject` - tier decisions (管理等级调整审批) with reason
  codes (:class:`ReasonCode`); only approval changes the current tier; a mandatory rule in force is
  a floor no decision goes below (:func:`tier_floor`); every step is chained in the audit trail
  (``decision_steps``);
- :func:`run_review` - the monthly review meeting (风险研判分析会): everyone on the roll scored with
  the model of their stage, four-colour alert, tier-by-risk mismatches both ways, what moved since
  the previous assessment (parts add up to the change in log-odds); stored runs
  (:func:`get_review`), CSV and printable HTML (:func:`review_csv`, :func:`review_html`);
- :func:`step_down_list` - the supervisor's step-down list (time-limited rule ended, or ordinary by risk at
  the latest reviews), decided at once (:func:`decide_step_down`) or deferred with a reason
  (:func:`defer_step_down`, :class:`DeferReason`);
- :func:`decision_report` - proposed / approved / rejected by office, caseworker and reason code,
  and the override rate, for a period.

Refused input raises :class:`CaseError` (HTTP status, message naming record and field; exit code 2
in the CLI); nothing is written then. The submodules are imported on first use of a name, so
``riskctl --help`` stays free of pandas and SQLAlchemy.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serving.cases._decisions import (
        ReasonCode,
        RuleFloor,
        approve,
        decision,
        office_of,
        propose,
        reject,
        same_office,
        tier_floor,
    )
    from serving.cases._due import due_list, due_state
    from serving.cases._errors import CaseError
    from serving.cases._import import ImportSummary, file_hashes, read_dir
    from serving.cases._policy import Colour, DeferReason, ReviewPolicy
    from serving.cases._queries import (
        assessment_office,
        decided_decisions,
        office_name,
        pending_decisions,
        person_decisions,
        review_runs,
        tier_history,
    )
    from serving.cases._reconcile import Difference, reconcile
    from serving.cases._render import review_csv, review_html
    from serving.cases._report import decision_report
    from serving.cases._review import get_review, index_row, latest_alerts, review_summary, run_review
    from serving.cases._schemas import (
        DecideIn,
        DecisionOut,
        DecisionReport,
        DueIn,
        DueList,
        EventIn,
        EventOut,
        ProposeIn,
        ReportIn,
        ReviewIn,
        ReviewRun,
        ReviewRunQuery,
        ScorePersonIn,
    )
    from serving.cases._stepdown import StepDownItem, decide_step_down, defer_step_down, step_down_list
    from serving.cases._store import CaseStore
    from serving.cases._today import URGENCY, TodayItem, TodayList, today_list

_MODULES: dict[str, tuple[str, ...]] = {
    "_decisions": (
        "ReasonCode",
        "RuleFloor",
        "approve",
        "decision",
        "office_of",
        "propose",
        "reject",
        "same_office",
        "tier_floor",
    ),
    "_due": ("due_list", "due_state"),
    "_errors": ("CaseError",),
    "_import": ("ImportSummary", "file_hashes", "read_dir"),
    "_reconcile": ("Difference", "reconcile"),
    "_policy": ("Colour", "DeferReason", "ReviewPolicy"),
    "_queries": (
        "assessment_office",
        "decided_decisions",
        "pending_decisions",
        "office_name",
        "person_decisions",
        "review_runs",
        "tier_history",
    ),
    "_render": ("review_csv", "review_html"),
    "_report": ("decision_report",),
    "_review": ("get_review", "index_row", "latest_alerts", "review_summary", "run_review"),
    "_schemas": (
        "DecideIn",
        "DecisionOut",
        "DecisionReport",
        "DueIn",
        "DueList",
        "EventIn",
        "EventOut",
        "ProposeIn",
        "ReportIn",
        "ReviewIn",
        "ReviewRun",
        "ReviewRunQuery",
        "ScorePersonIn",
    ),
    "_stepdown": ("StepDownItem", "decide_step_down", "defer_step_down", "step_down_list"),
    "_store": ("CaseStore",),
    "_today": ("URGENCY", "TodayItem", "TodayList", "today_list"),
}
_HOME = {name: f"{__name__}.{module}" for module, names in _MODULES.items() for name in names}

__all__ = [
    "URGENCY",
    "CaseError",
    "CaseStore",
    "Colour",
    "DecideIn",
    "DecisionOut",
    "DecisionReport",
    "DeferReason",
    "Difference",
    "DueIn",
    "DueList",
    "EventIn",
    "EventOut",
    "ImportSummary",
    "ProposeIn",
    "ReasonCode",
    "ReportIn",
    "ReviewIn",
    "ReviewPolicy",
    "ReviewRun",
    "ReviewRunQuery",
    "RuleFloor",
    "ScorePersonIn",
    "StepDownItem",
    "TodayItem",
    "TodayList",
    "approve",
    "assessment_office",
    "decide_step_down",
    "decided_decisions",
    "decision",
    "decision_report",
    "defer_step_down",
    "due_list",
    "due_state",
    "file_hashes",
    "get_review",
    "index_row",
    "latest_alerts",
    "office_name",
    "office_of",
    "pending_decisions",
    "person_decisions",
    "propose",
    "read_dir",
    "reconcile",
    "reject",
    "review_csv",
    "review_html",
    "review_runs",
    "review_summary",
    "run_review",
    "same_office",
    "step_down_list",
    "tier_floor",
    "tier_history",
    "today_list",
]


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
