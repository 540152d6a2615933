"""Security headers on every answer of the service, and the API page that asks nothing of anyone (issue 23).

Every route the app has (read from the app: a new one is covered without a list to update), the console's
pages, the API page and an unknown path: each answer carries nosniff, a referrer policy, frame protection
and a content security policy; all but the static assets say ``Cache-Control: no-store``; HSTS over TLS
only. The API page is the project's own: no Google Tag Manager, no outside address, Swagger UI from this
origin (the browser test, ``tests/test_console_browser.py``, checks that it renders under its policy and
requests nothing outside the origin).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from service_support import ServiceModels, headers, in_process_service, service_routes, write_auth
from starlette.testclient import TestClient

from serving.api import STATIC_PATH

STATIC = ("/static_content/", "/console/static/", "/docs.js")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, service_models: ServiceModels) -> Iterator[TestClient]:
    home = tmp_path_factory.mktemp("headers-home")
    write_auth(home)
    with in_process_service(home, RISK_CHECKPOINT_INTERVAL_S="0") as c:
        yield c


def every_answer(client: TestClient) -> Iterator[tuple[str, object]]:
    """(``METHOD path``, answer) for every route of the app with a supervisor's token, and a few more."""
    routes = sorted(service_routes(client.app))
    extra = ["GET /no/such/page", "GET /console/login", f"GET {STATIC_PATH}/swagger-ui.css", "GET /docs.js"]
    for route in [*routes, *extra]:
        if route == "GET /metrics":  # never answers in-process (BentoML's multiprocess registry): the live test's
            continue
        method, path = route.split(" ", 1)
        path = re.sub(r"\{path:path\}", "swagger-ui-bundle.js", path)
        path = re.sub(r"\{[^}]+\}", "x", path)
        body: dict[str, str] | None = {} if method == "POST" else None
        yield route, client.request(method, path, json=body, headers=headers("supervisor"))


def test_every_answer_carries_the_security_headers(client: TestClient) -> None:
    seen = 0
    for route, answer in every_answer(client):
        h = answer.headers  # type: ignore[attr-defined]
        assert h["x-content-type-options"] == "nosniff", route
        assert h["referrer-policy"] in ("no-referrer", "same-origin"), route
        assert h["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in h["content-security-policy"], route
        assert "default-src 'none'" in h["content-security-policy"], route
        path = route.split(" ", 1)[1]
        if not path.startswith(STATIC):
            assert h["cache-control"] == "no-store", route
        assert "strict-transport-security" not in h, route  # plain HTTP: a browser would ignore it anyway
        seen += 1
    assert seen > 40


def test_answers_with_personal_data_are_never_stored(client: TestClient) -> None:
    for path in ("/score", "/person_assessments", "/cases/due", "/assessment"):
        r = client.post(path, json={}, headers=headers("caseworker"))
        assert r.headers["cache-control"] == "no-store", path


def test_hsts_over_tls(client: TestClient) -> None:
    for path in ("/docs", "/console/login", "/readyz"):
        answer = client.get(f"https://testserver{path}")  # the request came over TLS (scope scheme https)
        assert answer.headers["strict-transport-security"] == "max-age=31536000", path
    scored = client.post("https://testserver/score", json={}, headers=headers("caseworker"))
    assert scored.headers["strict-transport-security"]


def test_the_api_page_is_the_projects_own_and_loads_only_from_this_origin(client: TestClient) -> None:
    for path in ("/", "/docs"):  # BentoML's index page is its Swagger page, with Google Tag Manager
        page = client.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        html = page.text
        assert "googletagmanager" not in html.lower() and "gtm" not in html.lower()
        assert not re.search(r"""(src|href)=["'](https?:)?//""", html), "an outside address on the API page"
        assert "<script>" not in html and "style=" not in html  # nothing inline: the policy forbids it
        for asset in re.findall(r"""(?:src|href)=["']\./([^"']+)""", html):
            loaded = client.get(f"/{asset}")
            assert loaded.status_code == 200 and len(loaded.content) > 100, asset
    script = client.get("/docs.js").text
    assert "validatorUrl: null" in script and "./docs.json" in script
    assert client.get("/docs.json").json()["paths"]
