"""Draw the persons of the synthetic cohort and their latent propensity."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from features.synthetic import _spec as spec
from features.vocab import Employment, Offence, SupervisionType


@dataclass
class People:
    """Column arrays of the drawn persons; dates are integer days since 1970-01-01."""

    n: int
    male: np.ndarray
    age_years: np.ndarray
    birth: np.ndarray
    start: np.ndarray
    end: np.ndarray
    supervision_type: np.ndarray  # codes into SupervisionType
    offence: np.ndarray  # codes into Offence
    education: np.ndarray
    employment: np.ndarray
    marital: np.ndarray
    local: np.ndarray
    sentence_months: np.ndarray
    priors: np.ndarray
    prior_supervisions: np.ndarray
    flags: dict[str, np.ndarray]
    eta: np.ndarray  # observable part of the propensity
    z: np.ndarray  # eta + sigma_u * u


def _choice(rng: np.random.Generator, shares: Mapping[Any, float], n: int) -> np.ndarray:
    p = np.array(list(shares.values()), dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int16)


def _term_months(rng: np.random.Generator, sup_type: np.ndarray) -> np.ndarray:
    """Supervision term in months: probation 6-60 (median ~22), parole 3-36, medical 6-36."""
    n = len(sup_type)
    months = np.clip(np.round(rng.lognormal(np.log(22), 0.5, n)), 6, 60)
    parole = sup_type == list(SupervisionType).index(SupervisionType.PAROLE)
    months[parole] = np.clip(np.round(rng.lognormal(np.log(12), 0.6, parole.sum())), 3, 36)
    medical = sup_type == list(SupervisionType).index(SupervisionType.MEDICAL)
    months[medical] = np.clip(np.round(rng.lognormal(np.log(12), 0.5, medical.sum())), 6, 36)
    return months


def draw_people(rng: np.random.Generator, n: int, *, start_from: int, start_to: int) -> People:
    """Draw ``n`` persons with supervision starting uniformly between the two day numbers."""
    male = rng.random(n) < spec.MALE_SHARE
    age = np.clip(18 + rng.gamma(2.2, 9.0, n), 18, 80)
    start = rng.integers(start_from, start_to + 1, n)
    birth = start - np.round(age * spec.DAYS_PER_YEAR).astype(np.int64)
    sup_type = _choice(rng, spec.SUPERVISION_SHARES, n)
    offence = _choice(rng, {k: v[0] for k, v in spec.OFFENCES.items()}, n)
    months = _term_months(rng, sup_type)
    end = start + np.round(months * spec.DAYS_PER_MONTH).astype(np.int64)
    sentence = np.where(
        sup_type == 0, np.round(months * rng.uniform(0.4, 1.0, n)), np.round(months + rng.uniform(6, 60, n))
    )
    employment = _choice(rng, spec.EMPLOYMENT_SHARES, n)
    local = rng.random(n) < spec.LOCAL_SHARE
    acquisitive = np.isin(
        offence, [list(Offence).index(o) for o in (Offence.THEFT, Offence.DRUG, Offence.ROBBERY, Offence.GAMBLING)]
    )
    priors = rng.poisson(0.35 * np.exp(0.8 * acquisitive + 0.3 * male))
    unemployed = employment == list(Employment).index(Employment.UNEMPLOYED)
    drug_offence = offence == list(Offence).index(Offence.DRUG)
    flags = {
        "flag_mental_illness": rng.random(n) < 0.03,
        "flag_serious_illness": rng.random(n) < np.where(sup_type == 2, 0.8, 0.04),
        "flag_three_withouts": rng.random(n) < np.where(unemployed & ~local, 0.10, 0.015),
        "flag_gang": (offence == list(Offence).index(Offence.GANG)) | (rng.random(n) < 0.005),
        "flag_drug_use": rng.random(n) < np.where(drug_offence, 0.6, 0.04),
        "flag_abscond_tendency": rng.random(n) < 0.02,
    }
    eta = _propensity(offence, age, priors, unemployed, flags, male, local)
    return People(
        n=n,
        male=male,
        age_years=age,
        birth=birth,
        start=start,
        end=end,
        supervision_type=sup_type,
        offence=offence,
        education=_choice(rng, spec.EDUCATION_SHARES, n),
        employment=employment,
        marital=_choice(rng, spec.MARITAL_SHARES, n),
        local=local,
        sentence_months=sentence,
        priors=priors,
        prior_supervisions=rng.binomial(priors, 0.3),
        flags=flags,
        eta=eta,
        z=eta + spec.SIGMA_U * rng.standard_normal(n),
    )


def _propensity(
    offence: np.ndarray,
    age: np.ndarray,
    priors: np.ndarray,
    unemployed: np.ndarray,
    flags: dict[str, np.ndarray],
    male: np.ndarray,
    local: np.ndarray,
) -> np.ndarray:
    """Observable part of the latent propensity (log-hazard scale, centred later by the intercept)."""
    e = spec.EFFECTS
    offence_effect = np.array([v[1] for v in spec.OFFENCES.values()])[offence]
    eta: np.ndarray = (
        offence_effect
        + e["age_under_25"] * (age < 25)
        + e["age_25_34"] * ((age >= 25) & (age < 35))
        + e["age_50_plus"] * (age >= 50)
        + e["log1p_priors"] * np.log1p(priors)
        + e["unemployed"] * unemployed
        + e["three_withouts"] * flags["flag_three_withouts"]
        + e["mental_illness"] * flags["flag_mental_illness"]
        + e["drug_use"] * flags["flag_drug_use"]
        + e["abscond_tendency"] * flags["flag_abscond_tendency"]
        + e["male"] * male
        + e["non_local"] * ~local
    )
    return eta
