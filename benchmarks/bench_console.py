"""Server time of the console's heaviest pages: the roster, the person page, the review meeting page.

``python benchmarks/bench_console.py [--persons 20000] [--repeat 30]`` builds everything in a
temporary ``RISK_HOME``: small stage models (as the service tests train them), a synthetic cohort
imported into the case store, and tokens for a caseworker and a supervisor of the office with the
largest roll today. It runs the whole service in-process (its ASGI app: what is timed
is the server's work, no network), signs in, runs the monthly review for the office once (timed
too: it scores everyone), then times with the stores warm:

- the roster page of the office (the due list: every person's tiers and assessment states);
- the person page of people scored in the review (record, events, history chart, waterfalls);
- the review meeting page of the stored run (every person's row, sorted by risk);
- the supervisor's step-down list and the caseworker's "today" page (issue 20).

The cohort's terms run up to today, and everything is timed as of today. It prints medians and 95th
percentiles. Targets: roster, person and today page <= 300 ms p95 on 2 cores for an office of 2,000
(``--persons 40000`` gives about that); review run <= 10 s; review page <= 2 s after the review has run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _train_models(persons: int, seed: int) -> None:
    """Small stage models in the (temporary) BentoML store, as tests/service_support.py makes them."""
    from features.labels import make_stage_frame
    from features.synthetic import CohortConfig, generate_cohort
    from features.vocab import Stage
    from serving.scoring import save_served
    from serving.settings import get_settings
    from training.config import TrainConfig
    from training.fit import fit_stage

    tables = generate_cohort(CohortConfig(persons=persons, seed=seed))
    config = TrainConfig.load().override(search={"budget": 1}, booster={"max_rounds": 120})
    for stage in Stage:
        fit = fit_stage(make_stage_frame(tables, stage), config=config, seed=0, temporal=False)
        save_served(get_settings(), stage, fit.model, version="bench", metadata={})


def _times(client: Any, path: str, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        r = client.get(path)
        out.append(time.perf_counter() - started)
        if r.status_code != 200:
            raise RuntimeError(f"GET {path}: {r.status_code} {r.text[:300]}")
    return out


def _line(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"{name:<38} n={len(ms):<4} median {statistics.median(ms):8.1f} ms   p95 {p95:8.1f} ms"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20000, help="synthetic cohort in the case store")
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per page")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    home = Path(tempfile.mkdtemp(prefix="console-bench-"))
    os.environ["RISK_HOME"] = str(home)
    os.environ["BENTOML_HOME"] = str(home / "bentoml")

    from starlette.testclient import TestClient

    from features.synthetic import CohortConfig, generate_cohort
    from serving.auth import AuthConfig, Role, TokenEntry, hash_token
    from serving.cases import CaseStore

    started = time.perf_counter()
    _train_models(4000, 31)
    store = CaseStore(f"sqlite:///{home / 'cases.db'}")
    # the cohort's terms run up to today (its data cut is today): the pages are timed as of today, as the
    # caseworker's "today" page always is
    day = dt.date.today()
    cohort = CohortConfig(
        persons=args.persons,
        seed=7,
        start_from=(day - dt.timedelta(days=8 * 365)).isoformat(),
        start_to=day.isoformat(),
        data_cut=day.isoformat(),
    )
    store.import_tables(generate_cohort(cohort))
    on_roll = store.roll(None, day)
    office = str(on_roll["office"].value_counts().idxmax())
    terms = len(on_roll)
    roll = len(store.roll(office, day))  # terms covering the day, less those revoked before it
    store.close()
    tokens = {
        hash_token("bench-cw"): TokenEntry(role=Role.CASEWORKER, user="cw", office=office),
        hash_token("bench-sup"): TokenEntry(role=Role.SUPERVISOR, user="sup", office=office),
    }
    (home / "auth.json").write_text(
        json.dumps(AuthConfig(tokens=tokens, audit_secret="5e" * 32).model_dump(mode="json"))
    )
    (home / "auth.json").chmod(0o600)
    print(
        f"set-up {time.perf_counter() - started:.0f} s: {args.persons:,} persons, office {office} with "
        f"{roll:,} on the roll on {day} ({terms:,} on the roll of every office)"
    )

    from serving.api import RiskService

    app = RiskService.to_asgi()  # type: ignore[attr-defined]  # added by the @bentoml.service decorator
    with TestClient(app, base_url="https://testserver") as c:
        sign_in(c, "bench-sup")
        page = c.get("/console/review").text
        t0 = time.perf_counter()
        r = c.post("/console/review", data={"csrf": _csrf(page), "as_of": day.isoformat()}, follow_redirects=False)
        review_s = time.perf_counter() - t0
        run_path = r.headers["location"]
        people = re.findall(r'/console/person/([^"?/]+)"', c.get(run_path).text)
        print(f"review run (scores and stores {roll:,} persons)      {review_s:8.1f} s")
        roster = f"/console/roster?as_of={day.isoformat()}"
        _times(c, roster, 2)  # warm
        print(_line(f"roster page ({roll:,} persons)", _times(c, roster, args.repeat)))
        person_times = [t for pid in people[: args.repeat] for t in _times(c, f"/console/person/{pid}", 1)]
        print(_line("person page", person_times))
        print(_line(f"review page ({roll:,} rows)", _times(c, run_path, max(5, args.repeat // 3))))
        print(_line("review CSV", _times(c, f"{run_path}/csv", 5)))
        print(_line(f"step-down list ({roll:,} persons)", _times(c, "/console/step_down", max(5, args.repeat // 3))))
        c.post("/console/logout", data={"csrf": _csrf(c.get("/console/today").text)})
        sign_in(c, "bench-cw")
        _times(c, "/console/today", 2)  # warm
        print(_line(f"today page ({roll:,} persons)", _times(c, "/console/today", args.repeat)))


def sign_in(client: Any, token: str) -> None:
    page = client.get("/console/login").text
    r = client.post("/console/login", data={"csrf": _csrf(page), "token": token}, follow_redirects=False)
    if r.status_code != 303:
        raise RuntimeError(f"sign-in refused: {r.status_code}")


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    if not found:
        raise RuntimeError("no CSRF field on the page")
    return found.group(1)


if __name__ == "__main__":
    main()
