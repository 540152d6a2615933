"""The web console: the service's pages for caseworkers, supervisors and auditors (design.md, "Interfaces").

Server-rendered pages (Starlette + Jinja2) mounted on the BentoML service at ``/console``, in
Chinese by default with an English switch on every page, working with no internet access (one
vendored style sheet, charts drawn as SVG on the server, no scripts from anywhere).

Sign-in exchanges a role token (``serving.auth``) for a session cookie (HTTP-only,
SameSite=Strict, Secure, expiring after ``RISK_CONSOLE_SESSION_MINUTES``); sign-out ends it on
the server, and a revoked token ends its sessions at the next request. Every page checks the
session's role (and, for caseworkers and supervisors, the office) on the server (403 otherwise, even
for a form posted directly) and every form carries a CSRF token that is checked before anything is done.

Pages (under ``/console``):

======================================  ======================  ==========================================
page                                    role                    what it shows or does
======================================  ======================  ==========================================
``/login``, ``/logout``, ``/lang/..``   anyone                  sign in with a token; sign out; language
``/roster``                             caseworker, supervisor  the office's roll on a date (the due list)
``/person/{id}``                        caseworker, supervisor  latest assessment per stage, risk over time,
                                                                what moved, decisions, events; score now,
                                                                propose a tier change (caseworker)
``/score``, ``/result/{id}``            caseworker              score a posted record; its answer
``/proposals``                          supervisor              pending proposals: approve or reject
``/review``, ``/review/{run}``          caseworker, supervisor  the monthly review meeting; print view, CSV
``/audit``, ``/audit/{id}``             auditor                 the assessment log; one assessment as returned
``/decisions``                          auditor, supervisor     decisions and override rates for a period
``/verify``                             auditor                 verify the audit trail's hash chains
======================================  ======================  ==========================================

The console has no scoring, review or verification of its own: it calls the service's core
(:class:`serving.api._core.ServiceCore`, the object behind the API's routes, as :class:`Backend` describes
it) and the public functions of :mod:`serving.cases`, :mod:`serving.audit` and :mod:`serving.scoring`.
:func:`create_app` makes the ASGI application; the service mounts it.
"""

from serving.console._app import create_app
from serving.console._web import Backend

__all__ = ["Backend", "create_app"]
