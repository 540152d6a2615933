"""``riskctl``, the project's command line (README "The command line").

The root (:data:`app`, :func:`main`) gathers every command group: the data and feature commands of
``features/``, the training and evaluation commands of ``training/``, and this room's own: ``promote``
(``_promote``: the gate, and a promotion over its refusal recorded in the audit trail), ``serve``,
``score``, ``build``, ``token``, ``revoke``, ``models``, ``audit`` (``_service``, ``_audit``), ``cases``
and ``review`` (``_cases``), ``backup`` and ``restore`` (``_backup``: :func:`backup_home`,
:func:`restore_home`, :func:`check_backup`) and ``demo``. Commands import their heavy libraries when they
run, so ``riskctl --help`` answers at once.

The local-process helpers (:func:`running_service`, :func:`running_server`, :func:`free_port`) start
``bentoml serve`` or another HTTP server on localhost for the demo, the live tests and the benchmarks;
:func:`demo_service` is the demo's last step (serve the stages that have a champion, score one person).
"""

from serving.cli._backup import backup_home, check_backup, restore_home
from serving.cli._processes import SERVICE, free_port, running_server, running_service
from serving.cli._root import app, load_case_store, main
from serving.cli._runtime import ensure_tokens, office_tokens, offline_scorer, use_project_bentoml_home
from serving.cli._service import build_bento, demo_service

__all__ = [
    "SERVICE",
    "app",
    "backup_home",
    "build_bento",
    "check_backup",
    "demo_service",
    "ensure_tokens",
    "free_port",
    "load_case_store",
    "main",
    "office_tokens",
    "offline_scorer",
    "restore_home",
    "running_server",
    "running_service",
    "use_project_bentoml_home",
]
