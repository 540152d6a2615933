"""The re-offence hazard: drawing re-offence dates, and the oracle probability of each stage's label.

Hazard of person i at day t (CAUSAL_MODEL.md):

    h(t) = h0 * exp(z) * ( m(t) + sum over bump events e of  bump_e * 1[start <= t, 0 <= t - day_e < bump_days_e] )

with ``m(t) = kappa`` during the term and 1 after it. The hazard is additive in the bumps, so
(a) a re-offence date is the earliest of independent exponential clocks (baseline, one per
bump), and (b) the expectation over future events in the oracle factorises per process.

The oracle is the Bayes-optimal probability given what is observable before the assessment
date D: the unobserved part ``u`` of the propensity is integrated out over its posterior given
the event counts seen before D (Poisson likelihood) and survival to D, by Gauss-Hermite
quadrature; events after D are integrated out in closed form.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from features.synthetic import _spec as spec
from features.synthetic._events import EVENT_CODES, Events, process_window
from features.synthetic._persons import People

GH_NODES = 20
BUMP_PROCESSES = [p for p in spec.PROCESSES if p.bump > 0]
INFORMATIVE = [p for p in spec.PROCESSES if p.slope != 0]


def _bump_arrays() -> tuple[np.ndarray, np.ndarray]:
    bump = np.zeros(len(EVENT_CODES))
    days = np.zeros(len(EVENT_CODES))
    for p in BUMP_PROCESSES:
        bump[EVENT_CODES[p.event_type]] = p.bump
        days[EVENT_CODES[p.event_type]] = p.bump_days
    return bump, days


def draw_reoffence(rng: np.random.Generator, people: People, events: Events, h0: float) -> np.ndarray:
    """Re-offence day of each person (float; ``inf`` never within the simulation)."""
    c = h0 * np.exp(people.z)
    kappa = spec.SUPERVISION_DAMPING
    e = rng.exponential(size=people.n)
    term = people.end - people.start
    in_term = e < kappa * c * term
    t: np.ndarray = np.where(in_term, people.start + e / (kappa * c), people.end + (e - kappa * c * term) / c)
    bump, days = _bump_arrays()
    has = bump[events.kind] > 0
    p, d, k = events.person[has], events.day[has].astype(float), events.kind[has]
    lo = np.maximum(d, people.start[p])
    hi = d + days[k]
    clock = lo + rng.exponential(size=len(p)) / (c[p] * bump[k])
    ok = (lo < hi) & (clock < hi)
    np.minimum.at(t, p[ok], clock[ok])
    return t


def _overlap(lo: np.ndarray, hi: np.ndarray | float, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    overlap: np.ndarray = np.clip(np.minimum(hi, b) - np.maximum(lo, a), 0, None)
    return overlap


def _person_sums(
    people: People, events: Events, as_of: np.ndarray, horizon: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-person quantities that do not depend on u: counts, exposures, bump overlaps."""
    n = people.n
    before = events.day < as_of[events.person]
    ev = events.select(before)
    counts = np.zeros((n, len(INFORMATIVE)))
    exposure = np.zeros((n, len(INFORMATIVE)))
    for j, proc in enumerate(INFORMATIVE):
        mine = ev.kind == EVENT_CODES[proc.event_type]
        counts[:, j] = np.bincount(ev.person[mine], minlength=n)
        lo, hi = process_window(people, proc)
        exposure[:, j] = np.clip(np.minimum(hi, as_of) - lo, 0, None)
    bump, days = _bump_arrays()
    has = bump[ev.kind] > 0
    p, d, k = ev.person[has], ev.day[has].astype(float), ev.kind[has]
    lo, hi = np.maximum(d, people.start[p]), d + days[k]
    pre = np.bincount(p, weights=bump[k] * _overlap(lo, hi, people.start[p], as_of[p]), minlength=n)
    fut = np.bincount(p, weights=bump[k] * _overlap(lo, hi, as_of[p], as_of[p] + horizon), minlength=n)
    return counts, exposure, pre, fut


def _future_integral(a: np.ndarray, w: float, low: np.ndarray, horizon: float) -> np.ndarray:
    """Integral over t in (low, H] of 1 - exp(-a * min(w, t)); ``a`` is (n, J), ``low`` is (n, 1)."""
    t1, t2 = low, np.minimum(w, horizon)
    part1 = np.where(t1 < t2, (t2 - t1) - (np.exp(-a * t1) - np.exp(-a * t2)) / a, 0.0)
    t3 = np.maximum(low, w)
    part2 = np.where(t3 < horizon, (horizon - t3) * (1 - np.exp(-a * w)), 0.0)
    return part1 + part2


def oracle_probability(
    people: People, events: Events, as_of: np.ndarray, horizon_days: float, h0: float, *, chunk: int = 200_000
) -> np.ndarray:
    """P(re-offence in [D, D + H) | everything observable before D), for each person."""
    counts, exposure, pre_bump, fut_bump = _person_sums(people, events, as_of, horizon_days)
    x, w = np.polynomial.hermite_e.hermegauss(GH_NODES)
    logw = np.log(w / w.sum())
    kappa = spec.SUPERVISION_DAMPING
    out = np.empty(people.n)
    for s in range(0, people.n, chunk):
        sl = slice(s, s + chunk)
        z = people.eta[sl, None] + spec.SIGMA_U * x[None, :]
        c = h0 * np.exp(z)
        start, end, d = people.start[sl, None], people.end[sl, None], as_of[sl, None]
        a_end = d + horizon_days
        loglik = logw[None, :] - c * (kappa * (d - start) + pre_bump[sl, None])
        drug = people.flags["flag_drug_use"][sl, None]
        for j, proc in enumerate(INFORMATIVE):
            rate = (proc.rate + proc.drug_rate * drug) * np.exp(proc.slope * z) / spec.DAYS_PER_YEAR
            loglik += proc.slope * counts[sl, j, None] * z - exposure[sl, j, None] * rate
        base = kappa * _overlap(start, end, d, a_end) + _overlap(end, np.inf, d, a_end)
        log_s = -c * (base + fut_bump[sl, None])
        low = a_end - np.minimum(a_end, end)  # future events happen only before the end of the term
        for proc in BUMP_PROCESSES:
            rate = (proc.rate + proc.drug_rate * drug) * np.exp(proc.slope * z) / spec.DAYS_PER_YEAR
            integral = np.where(end > d, _future_integral(c * proc.bump, proc.bump_days, low, horizon_days), 0.0)
            log_s -= rate * integral
        post = np.exp(loglik - loglik.max(axis=1, keepdims=True))
        post /= post.sum(axis=1, keepdims=True)
        out[sl] = (post * -np.expm1(log_s)).sum(axis=1)
    return out


def calibrate_h0(
    people: People, events: Events, base_rate: float, horizon_days: float, *, sample: int = 20_000
) -> float:
    """Baseline hazard per day such that P(re-offence within ``horizon_days`` of intake) = ``base_rate``."""
    n = min(sample, people.n)
    sub = _subset(people, events, n)
    lo, hi = np.log(1e-8), np.log(1e-1)
    for _ in range(40):
        mid = (lo + hi) / 2
        mean = oracle_probability(sub[0], sub[1], sub[0].start, horizon_days, float(np.exp(mid))).mean()
        lo, hi = (mid, hi) if mean < base_rate else (lo, mid)
    return float(np.exp((lo + hi) / 2))


def _subset(people: People, events: Events, n: int) -> tuple[People, Events]:
    fields = {f: getattr(people, f) for f in People.__dataclass_fields__}
    sub: dict[str, Any] = {f: (v[:n] if isinstance(v, np.ndarray) else v) for f, v in fields.items()}
    sub["flags"] = {k: v[:n] for k, v in people.flags.items()}
    sub["n"] = n
    return People(**sub), events.select(events.person < n)
