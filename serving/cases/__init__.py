"""Case records and the review cycle (design.md, "Case records and the review cycle").

The service keeps the canonical tables of the people on supervision in a case store (SQLAlchemy:
SQLite under ``RISK_HOME`` by default, PostgreSQL by ``RISK_CASES_URL``; Alembic migrations
shipped here and applied on open), and builds the caseworkers' and supervisors' work on it:

- :class:`CaseStore` - import exports all or nothing (:meth:`CaseStore.import_tables`,
  :func:`read_dir`), record events, read records, score requests by person id;
- :func:`due_list` - each person on an office's roll with current tier, last assessment per
  stage and each assessment due, upcoming or overdue (windows in ``models/review_policy.yaml``);
- :func:`propose`, :func:`approve`, :func:`reject` - tier decisions (管理等级调整审批) with reason
  codes (:class:`ReasonCode`), every step in the audit trail's ``decisions`` chain;
- :func:`run_review` - the monthly review meeting (风险研判分析会): everyone on the roll scored,
  four-colour alert, tier-by-risk mismatches, what moved since the last assessment; stored runs
  (:func:`get_review`), CSV and printable HTML (:func:`review_csv`, :func:`review_html`);
- :func:`decision_report` - proposed / approved / rejected and the override rate for a period.

Refused input raises :class:`CaseError` (HTTP status, message naming record and field).
"""

from serving.cases._errors import CaseError
from serving.cases._import import ImportSummary, read_dir
from serving.cases._store import CaseStore

__all__ = ["CaseError", "CaseStore", "ImportSummary", "read_dir"]
