"""Schemathesis over the service's own OpenAPI document, for every role (issues 15 and 23).

Every documented operation is called with generated requests (bounded examples) with each role's
token and without one: no answer may be a 5xx, and every answer must have a documented status,
media type and schema. The caseworker's and the supervisor's tokens carry an office whose persons are in
the case store, so the case routes (the supervisor's approvals, rejections and review meeting included)
are reached with a valid token, not refused for a missing office. ``RISK_SCHEMATHESIS_EXAMPLES`` sets the
examples per operation and role (default 25); the figures are written to the report at the end of the module.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any, TypeVar, cast

import pytest
import schemathesis
from cases_support import subset
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Err, Ok
from service_support import ServiceModels, case_home, headers

EXAMPLES = int(os.environ.get("RISK_SCHEMATHESIS_EXAMPLES", "25"))
ROLES = ("caseworker", "supervisor", "auditor", "modeler", None)  # None: no token
OFFICE_TOKENS: dict[str, tuple[str, str, str | None]] = {
    "fuzz-caseworker": ("caseworker", "cw", "hexi"),
    "fuzz-supervisor": ("supervisor", "sup", "hexi"),
}


def role_headers(role: str | None) -> dict[str, str]:
    """The token of ``role``: the office's for a caseworker or a supervisor."""
    if role in ("caseworker", "supervisor"):
        return {"Authorization": f"Bearer fuzz-{role}"}
    return headers(role)


T = TypeVar("T")
E = TypeVar("E", bound=Exception)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api_schema(
    tmp_path_factory: pytest.TempPathFactory, service_models: ServiceModels
) -> Iterator[schemathesis.BaseSchema]:
    home = tmp_path_factory.mktemp("schemathesis-home")
    tables, _ = service_models
    case_home(home, subset(tables, 300), tokens=OFFICE_TOKENS)
    mp = pytest.MonkeyPatch()
    mp.setenv("RISK_HOME", str(home))
    mp.setenv("RISK_CHECKPOINT_INTERVAL_S", "0")
    from serving.api import ROUTE_PERMISSIONS, RiskService

    schema = schemathesis.openapi.from_asgi("/docs.json", cast(Any, RiskService).to_asgi())
    # the platform's own endpoints are BentoML's; the service's are those with a permission
    yield schema.include(path_regex="^(" + "|".join(ROUTE_PERMISSIONS) + ")$")
    mp.undo()


def unwrap(result: Ok[T] | Err[E]) -> T:
    """The value of an ``Ok``; an ``Err`` (an operation whose definition could not be read) raises its error."""
    if isinstance(result, Err):
        raise result.err()
    return result.ok()


def test_no_5xx_and_answers_as_documented(api_schema: schemathesis.BaseSchema) -> None:
    """Each generated request is sent once with each role's token and once without one."""
    figures: Counter[str] = Counter()
    operations = [unwrap(result) for result in api_schema.get_all_operations()]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case[schemathesis.APIOperation[Any, Any, Any, Any]]) -> None:
            for role in ROLES:
                response = case.call_and_validate(headers=role_headers(role), checks=CHECKS)
                figures["requests"] += 1
                figures[f"{response.status_code // 100}xx"] += 1

        run()
    print(
        f"\nschemathesis: {len(operations)} operations, {figures['requests']} requests, "
        f"{figures['2xx']} 2xx, {figures['4xx']} 4xx, {figures['5xx']} 5xx"
    )
    assert len(operations) == 18 and figures["5xx"] == 0
