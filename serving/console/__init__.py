"""The web console: the service's pages for caseworkers and auditors (design.md, "Interfaces").

Server-rendered pages (Starlette + Jinja2) mounted on the BentoML service at ``/console``, in
Chinese by default with an English switch on every page, working with no internet access (one
vendored style sheet, charts drawn as SVG on the server, no scripts from anywhere).

Sign-in exchanges a role token (``serving.auth``) for a session cookie (HTTP-only,
SameSite=Strict, Secure, expiring after ``RISK_CONSOLE_SESSION_MINUTES``); sign-out ends it on
the server, and a revoked token ends its sessions at the next request. Every page checks the
session's role on the server (403 otherwise, even for a form posted directly) and every form
carries a CSRF token that is checked before anything is done.

Pages (under ``/console``):

=========================  =============  ==================================================
page                       role           what it shows or does
=========================  =============  ==================================================
``/login``, ``/logout``    anyone         sign in with a token; sign out
``/lang/{zh|en}``          anyone         switch the language and come back
``/score``                 caseworker     score a person (the API's request as a form)
``/result/{id}``           caseworker     the answer, its reasons as a waterfall chart, tier change
``/override``              caseworker     record a tier change with a written reason (POST)
``/person?person_id=``     caseworker     latest assessment per stage, risk over time, what moved
``/audit``                 auditor        assessment log with filters
``/audit/{id}``            auditor        exactly what was returned, full explanation, decisions
``/decisions``             auditor        override rates by caseworker and stage, latest decisions
``/verify``                auditor        verify the audit trail's hash chains
=========================  =============  ==================================================

The console calls the service's own code: :meth:`serving.service.RiskService.assess` for
scoring and the audit store for everything it reads or records.
"""

from serving.console._app import create_app

__all__ = ["create_app"]
