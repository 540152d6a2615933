"""Benchmark of the scoring service against ``mlflow models serve`` (issue 4's targets).

``python benchmarks/bench_service.py`` (after ``make demo``) starts ``bentoml serve`` with the models in the
BentoML store and a fresh audit store, then measures with the same client (the standard library's, one
keep-alive connection per client thread):

- one person per request (mid-term, reasons and audit write included) from 8 concurrent clients:
  p50 / p99 latency and requests per second;
- batches of 5,000 persons (``/score_batch``): persons per second;
- BentoML's own floor on this machine: :class:`FloorService` takes the same request, validates it
  against the same schema and answers at once (no scoring, no audit, no auth), under the same
  service settings and client;
- the same mid-term champion behind ``mlflow models serve`` (scores only: features computed by the
  client, no reasons, no audit), single rows from 8 clients and 5,000-row batches.

Targets: p50 <= 10 ms and p99 <= 50 ms with 8 clients; >= 2,000 persons/s in batches.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import bentoml
import numpy as np
from pydantic import BaseModel

from features.vocab import Stage
from serving.scoring.schemas import ScoreRequest
from serving.settings import get_settings

if TYPE_CHECKING:
    import pandas as pd

    from features.schema import CaseTables
    from features.settings import Settings


class FloorAnswer(BaseModel):
    ok: bool


@bentoml.service(name="bench_floor", workers="cpu_count", threads=16)
class FloorService:
    """BentoML with nothing to do: the same request schema as ``/score``, a constant answer.

    The answer is a pydantic model, as ``/score``'s is: for an answer typed ``dict`` BentoML
    builds a JSON schema on every response to find its media type (about 12% of this floor).
    """

    @bentoml.api(input_spec=ScoreRequest)
    def score(self, **request: object) -> FloorAnswer:
        return FloorAnswer(ok=True)


def _connection(url: str, timeout: float) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    if parts.hostname is None:
        raise ValueError(f"no host in the URL {url!r}")
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)


def _post(conn: http.client.HTTPConnection, url: str, body: bytes, headers: dict[str, str]) -> None:
    conn.request("POST", urlsplit(url).path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"POST {url}: {response.status} {data[:300]!r}")


def _latencies(
    url: str, bodies: list[bytes], headers: dict[str, str], *, clients: int, requests: int
) -> tuple[np.ndarray, float]:
    """Per-request latency (s) of ``requests`` POSTs from ``clients`` threads, and the wall time.

    Each client keeps one connection open. The client is the standard library's: the server and
    the clients share this machine's cores, and httpx spent 1.9 ms of CPU per request where
    ``http.client`` spends 0.4 ms, CPU the servers measured here would otherwise have had.
    """

    def worker(k: int) -> list[float]:
        out, conn = [], _connection(url, timeout=120)
        try:
            for i in range(k, requests, clients):
                t = time.perf_counter()
                _post(conn, url, bodies[i % len(bodies)], headers)
                out.append(time.perf_counter() - t)
        finally:
            conn.close()
        return out

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        lat = [x for part in pool.map(worker, range(clients)) for x in part]
    return np.array(lat), time.perf_counter() - start


def _batch_rate(url: str, body: bytes, n: int, headers: dict[str, str], repeat: int) -> list[float]:
    rates, conn = [], _connection(url, timeout=600)
    try:
        for _ in range(repeat):
            t = time.perf_counter()
            _post(conn, url, body, headers)
            rates.append(n / (time.perf_counter() - t))
    finally:
        conn.close()
    return rates


def _report(name: str, lat: np.ndarray, wall: float) -> None:
    print(
        f"{name:44s} p50 {np.median(lat) * 1e3:7.1f} ms  p99 {np.percentile(lat, 99) * 1e3:7.1f} ms  "
        f"{len(lat) / wall:7.0f} req/s  (n={len(lat)})"
    )


def main() -> None:
    import pandas as pd

    from serving.auth import AuthConfig, TokenEntry, hash_token
    from serving.cli import running_service, use_project_bentoml_home
    from serving.scoring import requests_from_tables

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("var/demo/data"), help="canonical tables (make demo)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-mlflow", action="store_true")
    args = parser.parse_args()
    settings = get_settings()
    use_project_bentoml_home(settings)
    from features.schema import CaseTables

    tables = CaseTables.read(args.data, validate=False)
    ended = tables.persons[tables.persons["supervision_end"] <= pd.Timestamp.today().normalize()]  # none dated later
    people = ended.head(args.batch)
    bodies = requests_from_tables(people, tables.events, Stage.MIDTERM, lang="zh")
    single = [json.dumps(b).encode() for b in bodies[:500]]
    batch = json.dumps({"records": bodies[: args.batch]}).encode()
    print(
        f"{os.cpu_count()} cores; mid-term requests with {np.mean([len(b['events']) for b in bodies]):.0f} "
        f"events on average; batch {len(bodies[: args.batch]):,} persons ({len(batch) / 1e6:.1f} MB)"
    )

    home = Path(tempfile.mkdtemp(prefix="bench-home-"))
    token = "bench-caseworker-token"
    (home / "auth.json").write_text(
        AuthConfig(
            tokens={hash_token(token): TokenEntry(role="caseworker", user="bench")}, audit_secret="ab" * 32
        ).model_dump_json()
    )
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with running_service(env={"RISK_HOME": str(home)}, log_path=home / "serve.log") as url:
        _latencies(f"{url}/score", single, headers, clients=args.clients, requests=100)  # warm-up
        lat, wall = _latencies(f"{url}/score", single, headers, clients=args.clients, requests=args.requests)
        _report(f"BentoML /score, reasons + audit, {args.clients} clients", lat, wall)
        lat1, wall1 = _latencies(f"{url}/score", single, headers, clients=1, requests=min(500, args.requests))
        _report("BentoML /score, reasons + audit, 1 client", lat1, wall1)
        rates = _batch_rate(f"{url}/score_batch", batch, len(bodies[: args.batch]), headers, args.repeat)
        print(
            f"{'BentoML /score_batch, reasons + audit':44s} median {statistics.median(rates):7.0f} persons/s "
            f"(runs: {', '.join(f'{r:.0f}' for r in rates)})"
        )
    with running_service(
        "bench_service:FloorService", log_path=home / "floor.log", env={"PYTHONPATH": str(Path(__file__).parent)}
    ) as url:
        _latencies(f"{url}/score", single, headers, clients=args.clients, requests=100)
        lat, wall = _latencies(f"{url}/score", single, headers, clients=args.clients, requests=args.requests)
        _report(f"BentoML floor (validate only), {args.clients} clients", lat, wall)
        lat1, wall1 = _latencies(f"{url}/score", single, headers, clients=1, requests=min(500, args.requests))
        _report("BentoML floor (validate only), 1 client", lat1, wall1)
    if not args.skip_mlflow:
        _mlflow_side(settings, tables, people, args)


def _mlflow_side(settings: Settings, tables: CaseTables, people: pd.DataFrame, args: argparse.Namespace) -> None:
    """The mid-term champion behind ``mlflow models serve``: feature rows in, probabilities out."""
    from features.pipeline import assessment_dates, build_features
    from serving.cli import free_port, running_server
    from training.tracking import as_plain_columns

    X = as_plain_columns(
        build_features(people, tables.events, assessment_dates(people, Stage.MIDTERM), stage=Stage.MIDTERM)
    )
    rows = [
        json.dumps({"dataframe_split": X.iloc[[i]].to_dict(orient="split")}, default=float).encode()
        for i in range(min(500, len(X)))
    ]
    batch = json.dumps({"dataframe_split": X.to_dict(orient="split")}, default=float).encode()
    port = free_port()
    env = {
        "MLFLOW_TRACKING_URI": settings.resolved_tracking_uri(),  # it execs uvicorn from PATH
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        f"models:/{settings.model_name(Stage.MIDTERM)}@{settings.champion_alias}",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        str(os.cpu_count() or 1),
    ]  # as many workers as BentoML
    with running_server(cmd, port=port, ready_path="/ping", env=env, timeout_s=240) as url:
        headers = {"Content-Type": "application/json"}
        _latencies(f"{url}/invocations", rows, headers, clients=args.clients, requests=100)
        lat, wall = _latencies(f"{url}/invocations", rows, headers, clients=args.clients, requests=args.requests)
        _report(f"mlflow models serve, scores only, {args.clients} clients", lat, wall)
        rates = _batch_rate(f"{url}/invocations", batch, len(X), headers, args.repeat)
        print(
            f"{'mlflow models serve, scores only, batch':44s} median {statistics.median(rates):7.0f} rows/s "
            f"(runs: {', '.join(f'{r:.0f}' for r in rates)})"
        )


if __name__ == "__main__":
    main()
