"""Shared set-up of the service tests: small stage models in the test BentoML store, known tokens, and the
service's routes read from its app (:func:`service_routes`)."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from starlette.routing import Mount, Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp

from features.labels import make_stage_frame
from features.schema import CaseTables
from features.synthetic import CohortConfig, generate_cohort
from features.vocab import Stage
from serving.auth import AuthConfig, TokenEntry, hash_token
from serving.scoring import save_served
from serving.settings import get_settings
from training.config import GateConfig, TrainConfig
from training.fit import StageFit, fit_stage

ServiceModels = tuple[CaseTables, dict[Stage, StageFit]]  # the ``service_models`` fixture: cohort and fits

ROLES = ("caseworker", "supervisor", "auditor", "modeler")
SECRET = "5e" * 32


def token(role: str) -> str:
    return f"test-token-{role}"


def headers(role: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role)}"} if role else {}


def train_and_store(persons: int = 4000, seed: int = 31) -> ServiceModels:
    """Fit a small model per stage and save it into the (test) BentoML store; returns the cohort."""
    tables = generate_cohort(CohortConfig(persons=persons, seed=seed))
    config = TrainConfig.load().override(search={"budget": 1}, booster={"max_rounds": 120})
    fits: dict[Stage, StageFit] = {}
    for stage in Stage:
        fits[stage] = fit_stage(make_stage_frame(tables, stage), config=config, seed=0, temporal=False)
        save_served(get_settings(), stage, fits[stage].model, version="7", metadata={"evaluation": {"roc_auc": 0.7}})
    return tables, fits


def write_auth(home: Path, *, extra: dict[str, tuple[str, str, str | None]] | None = None) -> Path:
    """An auth file with one known token per role (mode 0600), and ``extra`` tokens: token -> (role, user, office)."""
    home.mkdir(parents=True, exist_ok=True)
    tokens = {hash_token(token(r)): TokenEntry(role=r, user=f"{r}-user") for r in ROLES}
    for raw, (role, user, office) in (extra or {}).items():
        tokens[hash_token(raw)] = TokenEntry(role=role, user=user, office=office)
    config = AuthConfig(tokens=tokens, audit_secret=SECRET)
    path = home / "auth.json"
    path.write_text(json.dumps(config.model_dump(mode="json")))
    path.chmod(0o600)
    return path


def small_cohort_gate() -> GateConfig:
    """The shipped gate with limits for a test cohort of a few thousand people.

    On ~1,000 test rows an ECE of 0.02 is within noise of a calibrated model, and few people are
    flagged in each group, so the shipped error-rate rule finds the gaps "not measurable" (a
    warning). These tests are about the registry and the comparison, and some compare the gap across
    report, gate and ``/models``: the gaps are measured here with small minimums and never refuse.
    The face-validity check runs on 60 persons instead of 300 (tests/test_face_validity.py runs it in full).
    The champion is compared on fewer rows than the shipped ``comparison.min_rows``.
    """
    gate = GateConfig.load()
    rates = gate.fairness.error_rates.model_copy(
        update={"min_flagged": 2, "min_negatives": 20, "min_positives": 2, "fpr_gap_limit": 1.0, "fnr_gap_limit": 1.0}
    )
    face = gate.face_validity.model_copy(update={"persons": 60})
    return gate.model_copy(
        update={
            "ece_limit": 0.04,
            "fairness": gate.fairness.model_copy(update={"error_rates": rates}),
            "face_validity": face,
            "comparison": gate.comparison.model_copy(update={"min_rows": 500}),
        }
    )


@contextlib.contextmanager
def in_process_service(home: Path, *, base_url: str = "http://testserver", **env: str) -> Iterator[TestClient]:
    """The service in-process (``TestClient`` over ``RiskService.to_asgi()``) with ``RISK_HOME=home``.

    ``env`` sets further ``RISK_*`` variables for its lifetime (``RISK_CHECKPOINT_INTERVAL_S="0"``).
    """
    from serving.api import RiskService, forget_request_metrics

    mp = pytest.MonkeyPatch()
    mp.setenv("RISK_HOME", str(home))
    for name, value in env.items():
        mp.setenv(name, value)
    forget_request_metrics()
    try:
        with TestClient(cast(Any, RiskService).to_asgi(), base_url=base_url) as client:  # a bentoml.Service
            yield client
    finally:
        mp.undo()


def case_home(home: Path, tables: CaseTables, *, tokens: dict[str, tuple[str, str, str | None]]) -> Path:
    """A RISK_HOME with the test tokens plus ``tokens`` and a case store holding ``tables``."""
    from serving.cases import CaseStore

    write_auth(home, extra=tokens)
    store = CaseStore(f"sqlite:///{home / 'cases.db'}")
    store.import_tables(tables)
    store.close()
    return home


def fresh_home(template: Path, tmp_path: Path) -> Path:
    """A copy of a prepared RISK_HOME for one test: its own stores (a test never sees another's records),
    made in milliseconds instead of importing the cohort again."""
    return Path(shutil.copytree(template, tmp_path / "home"))


# the routes of the service's app, read from the app itself (a new route is covered without a list to update)
def enumerate_routes(app: Any, prefix: str = "") -> set[str]:
    """Every ``METHOD /path`` the ASGI app routes (HEAD aside), mounted apps included (a mounted app
    without routes of its own, static files, is ``GET <mount>/{path:path}``)."""
    app = _unwrap(app)
    found: set[str] = set()
    for route in app.routes:
        if isinstance(route, Mount):  # BentoML's PassiveMount (the console) is one too
            inner = _unwrap(route.app)
            if hasattr(inner, "routes"):
                found |= enumerate_routes(inner, prefix + route.path)
            else:
                found.add(f"GET {prefix}{route.path}/{{path:path}}")
        elif isinstance(route, Route):
            found |= {f"{method} {prefix}{route.path}" for method in route.methods or () if method != "HEAD"}
        else:  # a websocket route or another kind nobody has classified yet
            raise AssertionError(f"route of an unknown kind at {prefix}: {route!r}")
    return found


def _unwrap(app: Any) -> Any:
    """Through ASGI middleware (the console's security headers...) to the app that has routes."""
    while not hasattr(app, "routes") and hasattr(app, "app"):
        app = app.app
    return app


def service_routes(app: ASGIApp) -> set[str]:
    """The routes of the service's app, and the GET forms the bearer middleware gives read-only routes."""
    from serving.api import READ_ONLY_ROUTES

    return enumerate_routes(app) | {f"GET {path}" for path in READ_ONLY_ROUTES}


# the console as a browser uses it
def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def signed_in(app: ASGIApp, raw_token: str) -> TestClient:
    """A browser-like client signed in to the console with ``raw_token``."""
    c = TestClient(app, base_url="https://testserver", follow_redirects=False)
    form = c.get("/console/login")
    r = c.post("/console/login", data={"csrf": csrf_of(form.text), "token": raw_token, "next": "/console/"})
    assert r.status_code == 303, r.text[:500]
    return c


def form_of(body: dict[str, Any]) -> dict[str, str]:
    """A /score request as the console's scoring form."""
    p = body["person"]
    data = {k: ("on" if v is True else str(v)) for k, v in p.items() if v is not False and v is not None}
    data["stage"] = body["stage"]
    data["events"] = "\n".join(
        f"{e['date']} {e['event_type']}" + (f" {e['value']}" if e.get("value") is not None else "")
        for e in body["events"]
    )
    return data
