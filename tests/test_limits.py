"""Bounded parsing (issue 23): a deeply nested or oversized body is refused before anything parses it, on
every route of the service (the API's, the console's forms, an unknown path).

The latency of these refusals is measured by ``benchmarks/bench_limits.py`` (target: <= 100 ms at any depth).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from service_support import ServiceModels, headers, in_process_service, service_routes, write_auth
from starlette.testclient import TestClient

from serving.api import DepthGauge, json_depth
from serving.settings import get_settings

LIMIT = get_settings().max_json_depth
DEPTHS = (10**3, 10**4, 10**5, 10**6)


def true_depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((true_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((true_depth(v) for v in value), default=0)
    return 0


# text that looks like structure: brackets, quotes and backslashes inside strings must not count
tricky_text = st.text(alphabet=st.sampled_from(list('[]{}"\\:,ab 中\n')), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | tricky_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky_text, inner, max_size=4),
    max_leaves=40,
)


@settings(max_examples=120, deadline=None)
@given(
    value=json_values,
    indent=st.sampled_from([None, 1]),
    ascii_only=st.booleans(),
    chunk=st.sampled_from([1, 2, 3, 5, 8, 1 << 20]),
)
def test_the_measured_depth_is_the_depth_of_every_json_text(
    value: Any, indent: int | None, ascii_only: bool, chunk: int
) -> None:
    """Whatever the text and wherever the chunks split it (an escape, a run of backslashes, a string)."""
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_only).encode()
    assert json_depth(text, chunk=chunk) == true_depth(value)
    limit = true_depth(value)  # a body no deeper than the limit is never over it
    assert json_depth(text, limit=limit) == limit


@settings(max_examples=60, deadline=None)
@given(value=json_values, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6))
def test_a_body_fed_in_pieces_measures_as_the_whole(value: Any, cuts: list[int]) -> None:
    """As the pieces of a request arrive: the depth does not depend on where the network split the body."""
    text = json.dumps(value).encode()
    gauge = DepthGauge()
    edges = [0, *sorted(c for c in cuts if c < len(text)), len(text)]
    for start, end in itertools.pairwise(edges):
        gauge.feed(text[start:end])
    assert gauge.deepest == true_depth(value)


def nested(depth: int, kind: str) -> bytes:
    """A body ``depth`` levels deep: arrays, objects, or a score request whose record is nested."""
    if kind == "arrays":
        return b"[" * depth + b"]" * depth
    if kind == "objects":
        return b'{"a":' * depth + b"1" + b"}" * depth
    return b'{"stage":"intake","person":' + b'{"p":' * depth + b"0" + b"}" * depth + b"}"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, service_models: ServiceModels) -> Iterator[TestClient]:
    home = tmp_path_factory.mktemp("limits-home")
    write_auth(home)
    with in_process_service(home, RISK_CHECKPOINT_INTERVAL_S="0") as c:
        yield c


def post_routes(client: TestClient) -> list[str]:
    """Every path that takes a POST (API and console, path parameters filled in) and one nobody routes."""
    paths = sorted(route.split(" ", 1)[1] for route in service_routes(client.app) if route.startswith("POST "))
    return [re.sub(r"\{[^}]+\}", "x", path) for path in paths] + ["/no/such/route"]


def test_every_post_route_is_covered(client: TestClient) -> None:
    routes = post_routes(client)
    assert {"/score", "/score_batch", "/cases/approve", "/console/login", "/console/score"} <= set(routes)


@pytest.mark.parametrize("kind", ["arrays", "objects", "record"])
@pytest.mark.parametrize("depth", DEPTHS)
def test_a_deeply_nested_body_is_refused_naming_the_limit_on_every_route(
    client: TestClient, depth: int, kind: str
) -> None:
    body = nested(depth, kind)
    for i, path in enumerate(post_routes(client)):
        media = ("application/json", "text/plain")[i % 2]  # a body that says another type is measured too
        r = client.post(path, content=body, headers={**headers("supervisor"), "Content-Type": media})
        assert r.status_code == 400, (path, media, r.status_code, r.text[:200])
        assert r.json()["error"] == (
            f"request body is nested deeper than the limit of {LIMIT} levels (RISK_MAX_JSON_DEPTH)"
        ), path


def test_a_body_at_the_limit_goes_on_to_validation(client: TestClient) -> None:
    r = client.post("/score", content=nested(LIMIT - 2, "record"), headers=headers("caseworker"))
    assert r.status_code == 400 and "RISK_MAX_JSON_DEPTH" not in r.text  # refused by the schema, naming fields
    assert r.json()["detail"][0]["loc"][0] in ("person", "events", "as_of")


def test_a_console_form_is_not_measured_as_json_but_its_size_is(client: TestClient) -> None:
    form = {"csrf": "x", "token": "[" * 5000}
    r = client.post("/console/login", data=form)
    assert r.status_code == 403  # no sign-in form cookie: refused by the CSRF check, not by a JSON limit
    big = b"token=" + b"a" * (get_settings().max_body_bytes + 1)
    r = client.post("/console/login", content=big, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413 and "over the limit" in r.json()["error"]


def test_a_body_without_a_length_is_refused_once_it_passes_the_limit(client: TestClient) -> None:
    limit = get_settings().max_body_bytes

    def chunks() -> Iterator[bytes]:  # no Content-Length: the body arrives in pieces
        for _ in range(limit // (1 << 20) + 2):
            yield b" " * (1 << 20)

    r = client.post("/console/score", content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413 and f"{limit:,} bytes" in r.json()["error"]
