"""Parameters of the synthetic cohort's causal model (documented in CAUSAL_MODEL.md).

Kept in one place because the simulator and the oracle must use exactly the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.vocab import Education, Employment, EventType, Marital, Offence, SupervisionType

DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12
PRE_WINDOW_DAYS = 365  # history observed before supervision start (family changes, disputes, ...)

SUPERVISION_SHARES = {SupervisionType.PROBATION: 0.88, SupervisionType.PAROLE: 0.10, SupervisionType.MEDICAL: 0.02}
LOCAL_SHARE = 0.60
MALE_SHARE = 0.86
EDUCATION_SHARES = {
    Education.PRIMARY_OR_LESS: 0.25,
    Education.JUNIOR_SECONDARY: 0.40,
    Education.SENIOR_SECONDARY: 0.22,
    Education.TERTIARY: 0.13,
}
EMPLOYMENT_SHARES = {Employment.EMPLOYED: 0.55, Employment.UNEMPLOYED: 0.35, Employment.OTHER: 0.10}
MARITAL_SHARES = {Marital.SINGLE: 0.35, Marital.MARRIED: 0.50, Marital.DIVORCED: 0.12, Marital.WIDOWED: 0.03}

#: offence category: (share, effect on the latent propensity)
OFFENCES: dict[Offence, tuple[float, float]] = {
    Offence.DANGEROUS_DRIVING: (0.24, -0.6),
    Offence.THEFT: (0.15, 0.7),
    Offence.FRAUD: (0.10, 0.3),
    Offence.ASSAULT: (0.10, 0.4),
    Offence.TRAFFIC: (0.08, -0.7),
    Offence.DRUG: (0.07, 0.8),
    Offence.AFFRAY: (0.06, 0.6),
    Offence.GAMBLING: (0.04, 0.3),
    Offence.DUTY_CRIME: (0.04, -1.0),
    Offence.ROBBERY: (0.03, 0.8),
    Offence.GANG: (0.015, 0.9),
    Offence.WEAPONS: (0.01, 0.5),
    Offence.TERROR_CULT: (0.005, 0.5),
    Offence.OTHER: (0.05, 0.0),
}

#: effects of person attributes on the latent propensity (log-hazard scale)
EFFECTS = {
    "age_under_25": 0.6,
    "age_25_34": 0.3,
    "age_50_plus": -0.4,
    "log1p_priors": 0.45,
    "unemployed": 0.35,
    "three_withouts": 0.6,
    "mental_illness": 0.4,
    "drug_use": 0.4,
    "abscond_tendency": 0.5,
    "male": 0.3,
    "non_local": 0.1,
}
SIGMA_U = 0.6  # sd of the unobserved part of the propensity
SUPERVISION_DAMPING = 0.3  # baseline hazard multiplier while under supervision (kappa): lower than after release


@dataclass(frozen=True)
class EventProcess:
    """Poisson process of one event type: ``rate * exp(slope * z)`` events per year.

    ``pre``: also observed in the year before supervision start (otherwise only during the term).
    ``bump``/``bump_days``: the re-offence hazard rises by ``bump`` times the person's baseline
    hazard for ``bump_days`` after each event (0: a marker of propensity only).
    ``drug_rate``: extra yearly rate for people with a history of drug use.
    """

    event_type: EventType
    rate: float
    slope: float
    pre: bool = False
    bump: float = 0.0
    bump_days: int = 0
    drug_rate: float = 0.0


PROCESSES: tuple[EventProcess, ...] = (
    EventProcess(EventType.FAMILY_DIVORCE, 0.04, 0.5, pre=True, bump=3.0, bump_days=90),
    EventProcess(EventType.FAMILY_DEATH, 0.05, 0.0, pre=True, bump=3.0, bump_days=90),
    EventProcess(EventType.FAMILY_CONFLICT, 0.08, 0.7, pre=True, bump=3.0, bump_days=90),
    EventProcess(EventType.RESIDENCE_CHANGE, 0.25, 0.3, pre=True),
    EventProcess(EventType.JOB_LOSS, 0.15, 0.5, pre=True),
    EventProcess(EventType.DISPUTE, 0.08, 0.6, pre=True),
    EventProcess(EventType.PETITION, 0.04, 0.3, pre=True),
    EventProcess(EventType.REPORT_MISSED, 0.8, 0.8),
    EventProcess(EventType.REPORT_LATE, 1.2, 0.5),
    EventProcess(EventType.LEAVE_REQUEST, 1.0, 0.0),
    EventProcess(EventType.UNAUTHORISED_ABSENCE, 0.15, 1.0, bump=2.0, bump_days=60),
    EventProcess(EventType.OVERDUE_RETURN, 0.10, 0.8),
    EventProcess(EventType.EM_BOUNDARY, 0.25, 0.9, bump=2.0, bump_days=60),
    EventProcess(EventType.EM_SEPARATION, 0.25, 0.9, bump=2.0, bump_days=60),
    EventProcess(EventType.WARNING, 0.10, 1.0),
    EventProcess(EventType.POLICE_PENALTY, 0.04, 1.0),
    EventProcess(EventType.EDUCATION_MISSED, 0.4, 0.6),
    EventProcess(EventType.DRUG_TEST_POSITIVE, 0.02, 0.8, drug_rate=0.5),
    EventProcess(EventType.DRUG_TEST_NEGATIVE, 0.0, 0.0, drug_rate=3.0),
    EventProcess(EventType.COMMENDATION, 0.3, -0.8),
)
#: events that lower the monthly points score, and by how much
POINT_DEDUCTIONS = {
    EventType.UNAUTHORISED_ABSENCE: 10.0,
    EventType.OVERDUE_RETURN: 6.0,
    EventType.EM_BOUNDARY: 8.0,
    EventType.EM_SEPARATION: 8.0,
    EventType.WARNING: 15.0,
    EventType.POLICE_PENALTY: 15.0,
    EventType.REPORT_MISSED: 5.0,
    EventType.REPORT_LATE: 2.0,
    EventType.EDUCATION_MISSED: 3.0,
}
POINTS_BASE, POINTS_NOISE = 100.0, 3.0
GRADE_GOOD_FROM, GRADE_UNQUALIFIED_BELOW, GRADE_NOISE = 97.0, 90.0, 1.5
REVOCATION_WARNINGS = 3  # the third warning leads to revocation (收监执行)


def process_rates(z: np.ndarray, drug_use: np.ndarray) -> np.ndarray:
    """Yearly rates of every process for each person: shape (persons, processes)."""
    rates = np.empty((len(z), len(PROCESSES)))
    for k, proc in enumerate(PROCESSES):
        rates[:, k] = (proc.rate + proc.drug_rate * drug_use) * np.exp(proc.slope * z)
    return rates
