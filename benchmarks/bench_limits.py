"""How fast a deeply nested body is refused by a real ``bentoml serve`` (issue 23: <= 100 ms at any depth).

``python benchmarks/bench_limits.py [--repeat 5]`` builds a temporary ``RISK_HOME`` (small stage models, as
the service tests train them, and a token per role), starts ``bentoml serve`` on a free localhost port and,
for depths 10^3 to 10^6 (arrays, objects, and a score request whose record is nested), posts the body to
every route that takes a POST (the API's with a valid supervisor's token, the console's sign-in and scoring
forms, an unknown path) and times the answer, a 400 naming the limit. Then it sends deep bodies from 8
clients for a few seconds while one more client scores a person, and prints that client's latencies: a
refused body must not hold a worker. Prints medians and maxima per depth.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

KINDS = ("arrays", "objects", "record")
DEPTHS = (10**3, 10**4, 10**5, 10**6)


def nested(depth: int, kind: str) -> bytes:
    if kind == "arrays":
        return b"[" * depth + b"]" * depth
    if kind == "objects":
        return b'{"a":' * depth + b"1" + b"}" * depth
    return b'{"stage":"intake","person":' + b'{"p":' * depth + b"0" + b"}" * depth + b"}"


def _set_up(home: Path) -> Any:
    """Small models, tokens; returns the cohort (for one valid score request)."""
    from features.labels import make_stage_frame
    from features.synthetic import CohortConfig, generate_cohort
    from features.vocab import Stage
    from serving.auth import AuthConfig, Role, TokenEntry, hash_token
    from serving.scoring import save_served
    from serving.settings import get_settings
    from training.config import TrainConfig
    from training.fit import fit_stage

    tables = generate_cohort(CohortConfig(persons=3000, seed=31))
    config = TrainConfig.load().override(search={"budget": 1}, booster={"max_rounds": 60})
    for stage in Stage:
        fit = fit_stage(make_stage_frame(tables, stage), config=config, seed=0, temporal=False)
        save_served(get_settings(), stage, fit.model, version="bench", metadata={})
    tokens = {
        hash_token("bench-sup"): TokenEntry(role=Role.SUPERVISOR, user="sup", office="hexi"),
        hash_token("bench-cw"): TokenEntry(role=Role.CASEWORKER, user="cw", office="hexi"),
    }
    auth = AuthConfig(tokens=tokens, audit_secret="5e" * 32)
    (home / "auth.json").write_text(json.dumps(auth.model_dump(mode="json")))
    (home / "auth.json").chmod(0o600)
    return tables


def _routes() -> list[str]:
    from serving.api import ROUTE_PERMISSIONS

    return [*ROUTE_PERMISSIONS, "/console/login", "/console/score", "/no/such/route"]


def _time_refusals(url: str, repeat: int) -> None:
    auth = {"Authorization": "Bearer bench-sup", "Content-Type": "application/json"}
    with httpx.Client(base_url=url, timeout=60) as client:
        for depth in DEPTHS:
            times, statuses = [], set()
            for kind in KINDS:
                body = nested(depth, kind)
                for path in _routes():
                    for _ in range(repeat):
                        started = time.perf_counter()
                        r = client.post(path, content=body, headers=auth)
                        times.append(time.perf_counter() - started)
                        statuses.add(r.status_code)
            ms = [t * 1000 for t in times]
            print(
                f"depth {depth:>9,}: {len(ms):4d} requests ({len(_routes())} routes x {len(KINDS)} shapes), "
                f"status {sorted(statuses)}, median {statistics.median(ms):6.1f} ms, max {max(ms):7.1f} ms"
            )


def _score_under_flood(url: str, request: dict[str, Any], seconds: float) -> None:
    stop = threading.Event()
    deep = nested(10**5, "objects")
    sent = [0]

    def flood() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            while not stop.is_set():
                client.post("/score", content=deep, headers={"Authorization": "Bearer bench-cw"})
                sent[0] += 1

    times = []
    with ThreadPoolExecutor(8) as pool, httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(8):
            pool.submit(flood)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            r = client.post("/score", json=request, headers={"Authorization": "Bearer bench-cw"})
            times.append(time.perf_counter() - started)
            if r.status_code != 200:
                raise RuntimeError(f"/score under the flood: {r.status_code} {r.text[:300]}")
        stop.set()
    ms = sorted(t * 1000 for t in times)
    print(
        f"/score while 8 clients sent {sent[0]:,} bodies 100,000 deep: {len(ms)} answered 200, "
        f"median {statistics.median(ms):.1f} ms, max {ms[-1]:.1f} ms"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="requests per route, shape and depth")
    parser.add_argument("--flood-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="limits-bench-"))
    os.environ["RISK_HOME"] = str(home)
    os.environ["BENTOML_HOME"] = str(home / "bentoml")
    os.environ["RISK_CHECKPOINT_INTERVAL_S"] = "0"
    tables = _set_up(home)

    from features.vocab import Stage
    from serving.cli import running_service
    from serving.scoring import requests_from_tables

    request = requests_from_tables(tables.persons.head(1), tables.events, Stage.MIDTERM, lang="en")[0]
    with running_service(log_path=home / "serve.log") as url:
        _time_refusals(url, args.repeat)
        _score_under_flood(url, request, args.flood_seconds)


if __name__ == "__main__":
    main()
