"""The cohort generator: persons, dated events, outcomes and the oracle (see the package face)."""

from __future__ import annotations

import logging
from dataclasses import asdict

import numpy as np
import pandas as pd

from features.schema import CURRENT_TIER_COLUMN, CaseTables
from features.synthetic import _spec as spec
from features.synthetic._config import CohortConfig
from features.synthetic._events import (
    Events,
    draw_process_events,
    nth_warning_day,
    points_and_grades,
    truncate,
)
from features.synthetic._hazard import calibrate_h0, draw_reoffence, oracle_probability
from features.synthetic._persons import People, draw_people
from features.vocab import (
    CATEGORICAL_COLUMNS,
    DEFAULT_HORIZON_MONTHS,
    EventType,
    Offence,
    Stage,
    Tier,
    assessment_offset_days,
)

log = logging.getLogger(__name__)


def _day(date: str) -> int:
    return int(np.datetime64(date, "D").astype(np.int64))


def _dates(days: np.ndarray) -> np.ndarray:
    """Integer (or inf) day numbers to datetime64[ns]; non-finite days become NaT."""
    days = np.asarray(days, dtype=float)
    out = np.full(len(days), np.datetime64("NaT"), dtype="datetime64[ns]")
    ok = np.isfinite(days)
    out[ok] = days[ok].astype(np.int64).astype("datetime64[D]").astype("datetime64[ns]")
    return out


def stage_days(people: People, stage: Stage) -> np.ndarray:
    """Assessment day of each person at ``stage`` (:func:`features.vocab.assessment_offset_days`)."""
    days: np.ndarray = people.start + assessment_offset_days(stage, people.end - people.start)
    return days


def generate_cohort(config: CohortConfig | None = None) -> CaseTables:
    """Draw a cohort; returns canonical tables with ``extra["truth"]`` (oracle probabilities)."""
    config = config or CohortConfig()
    rng = np.random.default_rng(config.seed)
    people = draw_people(rng, config.persons, start_from=_day(config.start_from), start_to=_day(config.start_to))
    events = draw_process_events(rng, people)
    third_warning = nth_warning_day(people, events)
    events = truncate(events, third_warning)
    h0 = calibrate_h0(people, events, config.base_rate, DEFAULT_HORIZON_MONTHS[Stage.INTAKE] * spec.DAYS_PER_MONTH)
    reoffence = np.floor(draw_reoffence(rng, people, events, h0))
    revocation = np.minimum(third_warning, np.where(reoffence < people.end, reoffence, np.inf))
    events = truncate(events, revocation)
    lost = people.start + rng.exponential(spec.DAYS_PER_YEAR / config.loss_per_year, people.n)
    followup_end = np.floor(np.minimum(lost, _day(config.data_cut)))
    events = Events.concat([events, points_and_grades(rng, people, events, np.minimum(revocation, followup_end))])
    events = truncate(events, followup_end).sorted()
    truth = _truth(people, events, h0)
    log.info("cohort of %d persons, %d events, h0=%.3g/day", people.n, len(events.day), h0)
    persons = _persons_frame(people, config.seed)
    persons[CURRENT_TIER_COLUMN] = _current_tier(people, events, cut=_day(config.data_cut))
    tables = CaseTables(
        persons=persons,
        events=_events_frame(events, people.n),
        outcomes=pd.DataFrame(
            {
                "person_id": _ids(people.n),
                "reoffence_date": _dates(np.where(reoffence <= followup_end, reoffence, np.inf)),
                "revocation_date": _dates(np.where(revocation <= followup_end, revocation, np.inf)),
                "followup_end": _dates(followup_end),
            }
        ),
        extra={"truth": truth},
    )
    if config.shift_to is not None:
        tables = _shifted(tables, pd.Timestamp(config.shift_to) - pd.Timestamp(config.data_cut))
    tables.extra["truth"].attrs["config"] = asdict(config) | {"h0_per_day": h0}
    tables.extra["truth"].attrs["horizon_months"] = {s.value: m for s, m in DEFAULT_HORIZON_MONTHS.items()}
    return tables


def _shifted(tables: CaseTables, by: pd.Timedelta) -> CaseTables:
    """The same cohort with every date moved by ``by`` (whole days)."""
    persons, events = tables.persons.copy(), tables.events.copy()
    for col in ("birth_date", "supervision_start", "supervision_end"):
        persons[col] = persons[col] + by
    events["date"] = events["date"] + by
    outcomes = None
    if tables.outcomes is not None:
        outcomes = tables.outcomes.copy()
        for col in ("reoffence_date", "revocation_date", "followup_end"):
            outcomes[col] = outcomes[col] + by
    return CaseTables(persons=persons, events=events, outcomes=outcomes, extra=tables.extra)


def _truth(people: People, events: Events, h0: float) -> pd.DataFrame:
    truth = {"person_id": _ids(people.n), "eta": people.eta, "z": people.z}
    for stage, months in DEFAULT_HORIZON_MONTHS.items():
        truth[f"p_{stage.value}"] = oracle_probability(
            people, events, stage_days(people, stage), months * spec.DAYS_PER_MONTH, h0
        )
    return pd.DataFrame(truth)


def _ids(n: int) -> np.ndarray:
    width = max(7, len(str(n)))
    return np.char.add("S", np.char.zfill(np.arange(n).astype(str), width)).astype(object)


def _persons_frame(people: People, seed: int) -> pd.DataFrame:
    codes = {
        "sex": np.where(people.male, 0, 1),
        "education": people.education,
        "employment": people.employment,
        "marital": people.marital,
        "supervision_type": people.supervision_type,
        "offence": people.offence,
    }
    frame = {"person_id": _ids(people.n)}
    for name, vocab in CATEGORICAL_COLUMNS.items():
        frame[name] = np.array(vocab.codes(), dtype=object)[codes[name]]
    frame.update(
        {
            "birth_date": _dates(people.birth),
            "local": people.local,
            "sentence_months": people.sentence_months.astype(float),
            "supervision_start": _dates(people.start),
            "supervision_end": _dates(people.end),
            "prior_convictions": people.priors.astype(np.int64),
            "prior_supervisions": people.prior_supervisions.astype(np.int64),
        }
    )
    frame.update({k: v.astype(bool) for k, v in people.flags.items()})
    frame["office"] = _offices(people.n, seed)
    frame["office_name"] = np.array([OFFICE_NAMES[o] for o in frame["office"]], dtype=object)
    return pd.DataFrame(frame)


def _current_tier(people: People, events: Events, *, cut: float) -> np.ndarray:
    """Each person's management tier in the export at the data cut (严管 strict / 普管 ordinary).

    What an office's records would plausibly hold: strict where a mandatory rule of the tier policy
    requires it (gang, terrorism or cult; the first two months; two or more warnings or police
    penalties; an unqualified grade), and for the tenth of the rest an officer would judge riskiest
    (the observable propensity); ordinary otherwise. Not a model input, drawn from nothing random, so
    the rest of the cohort is unchanged.
    """
    offences = Offence.codes()
    rule = np.isin(people.offence, [offences.index(Offence.GANG.value), offences.index(Offence.TERROR_CULT.value)])
    rule |= people.flags["flag_gang"].astype(bool)
    rule |= (cut - people.start) < 61
    kinds = EventType.codes()
    seen = events.day <= cut
    sanctions = np.isin(events.kind, [kinds.index(e.value) for e in (EventType.WARNING, EventType.POLICE_PENALTY)])
    rule |= np.bincount(events.person[seen & sanctions], minlength=people.n) >= 2
    unqualified = events.kind == kinds.index(EventType.GRADE_UNQUALIFIED.value)
    rule |= np.bincount(events.person[seen & unqualified], minlength=people.n) >= 1
    judged = people.eta >= np.quantile(people.eta[~rule], 0.9) if (~rule).any() else np.zeros(people.n, bool)
    return np.where(rule | judged, Tier.STRICT.value, Tier.ORDINARY.value).astype(object)


#: The synthetic cohort's offices (司法所) and their shares of the roll; not a model input.
OFFICES: dict[str, float] = {
    "chengguan": 0.30,
    "dongcheng": 0.22,
    "xicheng": 0.18,
    "nanhu": 0.12,
    "beishan": 0.10,
    "hexi": 0.08,
}


#: Their names, as an agency's export would give them.
OFFICE_NAMES: dict[str, str] = {
    "chengguan": "城关司法所",
    "dongcheng": "东城司法所",
    "xicheng": "西城司法所",
    "nanhu": "南湖司法所",
    "beishan": "北山司法所",
    "hexi": "河西司法所",
}


def _offices(n: int, seed: int) -> np.ndarray:
    """Each person's office, from a stream of its own so that the rest of the cohort is unchanged."""
    rng = np.random.default_rng([seed, 0x0FF1CE])
    shares = np.array(list(OFFICES.values()))
    return np.array(list(OFFICES), dtype=object)[rng.choice(len(shares), size=n, p=shares / shares.sum())]


def _events_frame(events: Events, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "person_id": pd.Categorical.from_codes(events.person, categories=pd.Index(_ids(n))),
            "date": _dates(events.day),
            "event_type": pd.Categorical.from_codes(events.kind, categories=pd.Index(EventType.codes())),
            "value": events.value.astype(float),
        }
    )
