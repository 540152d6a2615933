"""Typed requests and answers of the scoring service (they make the OpenAPI page).

A request carries one person's canonical record (the ``persons`` fields of ``features.schema``)
and that person's dated events, the stage, an optional assessment date ``as_of`` and a
language. Validation happens here, before anything is computed or stored: unknown categories,
impossible dates, events dated after ``as_of`` and oversize inputs are refused with the field
path (``events[3].date``) in the message. Events dated on ``as_of`` itself are accepted and, by
the point-in-time rule, not used (the answer counts them).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, model_validator
from pydantic.config import JsonDict, JsonValue
from pydantic_core import PydanticCustomError

from features.schema import EARLIEST_DATE, LATEST_DATE, MAX_AGE_YEARS, MIN_AGE_YEARS
from features.vocab import (
    INTAKE_FLAGS,
    Education,
    Employment,
    EventType,
    Lang,
    Marital,
    Offence,
    Sex,
    Stage,
    SupervisionType,
    assessment_offset_days,
)

MAX_EVENTS = 20_000
#: The largest value an event may carry: hours of education or service, a monthly points score (0 to 100)
MAX_EVENT_VALUE = 1000.0
MAX_ID_LENGTH = 64


def _plausible(value: dt.date, info: ValidationInfo) -> dt.date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise PydanticCustomError(
            "implausible_date",
            "{field} {date} is outside the plausible range {earliest} to {latest}",
            {"field": info.field_name, "date": str(value), "earliest": str(EARLIEST_DATE), "latest": str(LATEST_DATE)},
        )
    return value


def _not_blank(value: str, info: ValidationInfo) -> str:
    if not value.strip():
        raise PydanticCustomError("blank_id", "{field} is blank", {"field": info.field_name})
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise PydanticCustomError("control_character", "{field} holds a control character", {"field": info.field_name})
    return value


#: A date between 1900-01-01 and 2100-12-31 (features.schema's bounds): nothing overflows downstream.
PlausibleDate = Annotated[dt.date, AfterValidator(_plausible)]
#: An id of 1 to 64 characters, not blank, without control characters.
Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH), AfterValidator(_not_blank)]

_PERSON_EXAMPLE: JsonDict = {
    "person_id": "S0001234",
    "sex": "male",
    "birth_date": "1990-04-12",
    "education": "junior_secondary",
    "employment": "unemployed",
    "marital": "single",
    "local": False,
    "supervision_type": "probation",
    "offence": "theft",
    "sentence_months": 18,
    "supervision_start": "2024-03-01",
    "supervision_end": "2026-03-01",
    "prior_convictions": 2,
    "prior_supervisions": 0,
    "flag_mental_illness": False,
    "flag_serious_illness": False,
    "flag_three_withouts": False,
    "flag_gang": False,
    "flag_drug_use": True,
    "flag_abscond_tendency": False,
}
_EVENTS_EXAMPLE: list[JsonValue] = [
    {"date": "2024-05-10", "event_type": "report_missed"},
    {"date": "2024-06-30", "event_type": "grade_qualified"},
    {"date": "2024-07-02", "event_type": "warning"},
    {"date": "2024-08-31", "event_type": "monthly_points", "value": 72},
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False)


def _flag(name: str) -> Any:
    """The field of an intake flag, described with the vocabulary's labels (features.vocab.INTAKE_FLAGS)."""
    zh, en = INTAKE_FLAGS[name]
    return Field(description=f"{en} ({zh}), known at intake")


class PersonRecord(_Strict):
    """One supervision term: the canonical ``persons`` fields (design.md, "Data contract")."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": _PERSON_EXAMPLE})

    person_id: Identifier = Field(description="the agency's id of the person (stored only as a keyed hash)")
    sex: Sex
    birth_date: PlausibleDate
    education: Education
    employment: Employment = Field(description="employment at intake")
    marital: Marital
    local: bool = Field(description="local resident (本地户籍)")
    supervision_type: SupervisionType
    offence: Offence = Field(description="offence category of the current sentence")
    sentence_months: float = Field(ge=0, le=600, allow_inf_nan=False)
    supervision_start: PlausibleDate
    supervision_end: PlausibleDate
    prior_convictions: int = Field(ge=0, le=200)
    prior_supervisions: int = Field(ge=0, le=100)
    flag_mental_illness: bool = _flag("flag_mental_illness")
    flag_serious_illness: bool = _flag("flag_serious_illness")
    flag_three_withouts: bool = _flag("flag_three_withouts")
    flag_gang: bool = _flag("flag_gang")
    flag_drug_use: bool = _flag("flag_drug_use")
    flag_abscond_tendency: bool = _flag("flag_abscond_tendency")

    @model_validator(mode="after")
    def _dates_in_order(self) -> PersonRecord:
        if self.supervision_start <= self.birth_date:
            raise _date_order("person.supervision_start", self.supervision_start, "person.birth_date", self.birth_date)
        age = (self.supervision_start - self.birth_date).days / 365.25
        if not MIN_AGE_YEARS <= age <= MAX_AGE_YEARS:
            raise PydanticCustomError(
                "implausible_age",
                "person.birth_date {birth_date}: age at supervision_start "
                "would be {age} years, outside {low} to {high}",
                {"birth_date": str(self.birth_date), "age": f"{age:.1f}", "low": MIN_AGE_YEARS, "high": MAX_AGE_YEARS},
            )
        if self.supervision_end <= self.supervision_start:
            raise _date_order(
                "person.supervision_end", self.supervision_end, "person.supervision_start", self.supervision_start
            )
        return self


def _date_order(later: str, later_date: dt.date, earlier: str, earlier_date: dt.date) -> PydanticCustomError:
    """A refused date order; the error type and context let the service word it in the caller's language."""
    return PydanticCustomError(
        "date_order",
        "{later} {later_date} is not after {earlier} {earlier_date}",
        {"later": later, "later_date": str(later_date), "earlier": earlier, "earlier_date": str(earlier_date)},
    )


class EventRecord(_Strict):
    """One dated event of the person (controlled vocabulary ``features.vocab.EventType``)."""

    date: PlausibleDate
    event_type: EventType
    value: float | None = Field(
        None,
        ge=0,
        le=MAX_EVENT_VALUE,
        allow_inf_nan=False,
        description=f"hours, points... where the event type has a value (0 to {MAX_EVENT_VALUE:g})",
    )


class ScoreRequest(_Strict):
    """One person's assessment at one stage."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {"person": _PERSON_EXAMPLE, "events": _EVENTS_EXAMPLE, "stage": "midterm", "lang": "zh"}
        },
    )

    person: PersonRecord
    events: list[EventRecord] = Field(
        default_factory=list, max_length=MAX_EVENTS, description="the person's dated events up to the assessment date"
    )
    stage: Stage = Field(description="intake 入矫, midterm 中期 or release 解矫")
    as_of: PlausibleDate | None = Field(
        None,
        description="assessment date, not after today; default: supervision start (intake), the "
        "term's midpoint (midterm) or supervision end (release), refused if that is after today",
    )
    lang: Lang = Field("zh", description="language of labels and reasons: zh or en")

    @model_validator(mode="after")
    def _point_in_time(self) -> ScoreRequest:
        p, as_of = self.person, self.assessment_date
        today = dt.date.today()
        if as_of > today:  # design.md, "Dates, rules and offices": never dated after the day it is made
            raise PydanticCustomError(
                "as_of_in_future",
                "{what} {as_of} is after today ({today}): an assessment is dated on or before the day it is made",
                {
                    "what": "as_of" if self.as_of is not None else f"the {self.stage.value} assessment date",
                    "as_of": str(as_of),
                    "today": str(today),
                },
            )
        if not p.supervision_start <= as_of <= p.supervision_end:
            raise PydanticCustomError(
                "as_of_outside_term",
                "as_of {as_of} is outside the supervision term {start} to {end}",
                {"as_of": str(as_of), "start": str(p.supervision_start), "end": str(p.supervision_end)},
            )
        for i, event in enumerate(self.events):
            where = {"field": f"events[{i}].date", "date": str(event.date)}
            if event.date < p.birth_date:
                raise PydanticCustomError(
                    "event_before_birth",
                    "{field} {date} is before person.birth_date {birth_date}",
                    {**where, "birth_date": str(p.birth_date)},
                )
            if event.date > as_of:
                raise PydanticCustomError(
                    "event_after_as_of",
                    "{field} {date} is after as_of {as_of}: events after "
                    "the assessment date are refused (point-in-time rule)",
                    {**where, "as_of": str(as_of)},
                )
        return self

    @property
    def assessment_date(self) -> dt.date:
        """``as_of``, or the stage's assessment date (features.pipeline.assessment_dates)."""
        if self.as_of is not None:
            return self.as_of
        return default_assessment_date(self.stage, self.person.supervision_start, self.person.supervision_end)


def default_assessment_date(stage: Stage, supervision_start: dt.date, supervision_end: dt.date) -> dt.date:
    """The stage's assessment date of a term (``features.pipeline.assessment_dates``): a request's without as_of."""
    days = assessment_offset_days(stage, (supervision_end - supervision_start).days)
    return supervision_start + dt.timedelta(days=days)


class BatchRequest(_Strict):
    """Many assessments at once (the monthly review meeting); at most ``RISK_MAX_BATCH`` records."""

    records: list[ScoreRequest] = Field(min_length=1, description="one entry per person and stage")


# ----------------------------------------------------------------------------- answers
class Coded(BaseModel):
    """A controlled value with its label in the requested language."""

    model_config = ConfigDict(frozen=True)  # one instance is shared by the answers of a batch

    code: str
    label: str


POINTS_DEFINITION = (
    "size of the reason in percentage points of risk: the calibrated probability minus the calibrated "
    "probability with this feature's log-odds contribution removed (every other contribution held), "
    "times 100, rounded to 0.1. It has the sign of the contribution (0 where the calibration is flat); the "
    "sizes of several reasons do not add up to the probability, because calibration is not linear"
)


class Reason(BaseModel):
    """One feature's share in the score, in words and in percentage points of risk."""

    feature: str = Field(description="catalog feature name", examples=["report_missed_90d"])
    label: str = Field(
        description="the feature's name in the requested language", examples=["未按时报到或迟到次数（近90天）"]
    )
    value: float | str | bool | None = Field(
        description="the person's value of the feature (null: missing)", examples=[3.0]
    )
    value_text: str = Field(description="the value in natural units", examples=["3次"])
    typical_text: str | None = Field(
        None,
        description="the typical value of the stage in the training rows "
        "(median, or share for flags and categories), in words",
        examples=["0次"],
    )
    points: float | None = Field(None, description=POINTS_DEFINITION, examples=[3.2])
    contribution: float = Field(
        description="exact contribution on the log-odds scale: TreeSHAP for a boosted "
        "model, coefficient x (value - training mean) summed over the feature's columns for "
        "a logistic one (for auditors; the stored explanation keeps every feature's)",
        examples=[0.41],
    )
    direction: Literal["raises", "lowers"]
    text: str = Field(
        description="the sentence a caseworker reads: the factor, the person's value and the stage's typical value",
        examples=["近90天未按时报到或迟到3次（同阶段一般为0次）"],
    )


class TierOut(BaseModel):
    """The effective management tier, the tier by risk, and why they differ (design.md, "Tiers")."""

    tier: Coded = Field(description="the effective tier, after the mandatory rules")
    basis: Literal["band", "rule"] = Field(description="band: the model's risk band decided; rule: a mandatory rule")
    rule_id: str | None = Field(
        None, description="the mandatory rule that decided the effective tier", examples=["first_two_months"]
    )
    text: str = Field(description="the reason for the tier, in words")
    tier_by_risk: Coded | None = Field(
        None, description="the band's tier, before any mandatory rule (absent from answers stored before it was given)"
    )
    rule_until: dt.date | None = Field(None, description="for a time-limited rule: the last day it applies")
    tier_after_rule: Coded | None = Field(
        None,
        description="for a time-limited rule: the tier from the day after "
        "rule_until (the next rule that holds, else the tier by risk)",
    )


class CutoffOut(BaseModel):
    """One band cut-off an answer used, and how the tier policy states it."""

    model_config = ConfigDict(frozen=True)  # one instance is shared by the answers of a batch

    probability: float = Field(description="the cut-off on the calibrated probability", examples=[0.231])
    form: Literal["probability", "times_base_rate", "riskiest_share"] = Field(
        description="how the tier policy states it: a probability, a multiple of the stage's base rate (that of "
        "the model's training rows), or the share of the model's training persons to flag",
        examples=["riskiest_share"],
    )
    stated: float = Field(description="the number the policy states in that form", examples=[0.1])
    training_share: float | None = Field(
        None,
        description="the share of the model's training persons at or above the cut-off (null: the model keeps "
        "no reference statistics)",
        examples=[0.1003],
    )


class BandCutoffsOut(BaseModel):
    """The band cut-offs that gave the answer its band: low < medium_from <= medium < high_from <= high."""

    model_config = ConfigDict(frozen=True)

    medium_from: CutoffOut
    high_from: CutoffOut
    base_rate: float | None = Field(None, description="the re-offence rate of the model's training rows")
    training_rows: int | None = Field(None, description="the model's training rows (persons at this stage)")


class ExplanationSummary(BaseModel):
    """How to read the contributions: base value plus all contributions is the model's raw score.

    The calibration maps the raw score to the probability; a reason's ``points`` are the change
    in that probability when its contribution is taken out of the raw score.
    """

    scale: Literal["log-odds"] = "log-odds"
    base_value: float
    raw_score: float
    calibration: str = Field(description="map from raw score to probability (isotonic or platt)")


class ModelRef(BaseModel):
    model_config = ConfigDict(frozen=True)  # one instance is shared by the answers of a batch

    name: str = Field(description="registered model name, e.g. reoffence-intake")
    version: str = Field(description="registered model version in MLflow")
    bento_tag: str


class Assessment(BaseModel):
    """One person's calibrated risk, band, tier and reasons, as stored in the audit trail."""

    assessment_id: str
    person_id: str
    stage: Coded
    as_of: dt.date
    lang: Lang
    probability: float = Field(ge=0, le=1, description="calibrated probability of a new offence within the horizon")
    horizon_months: float
    band: Coded
    band_cutoffs: BandCutoffsOut | None = Field(
        None,
        description="the cut-offs the band was given by: the tier policy's, resolved for the model that scored "
        "(absent from answers stored before they were given)",
    )
    tier: TierOut
    reasons: list[Reason] = Field(description="at most four that raise the risk, then up to two that lower it")
    explanation: ExplanationSummary
    model: ModelRef
    policy_version: str
    events_used: int = Field(description="events dated before as_of (the ones the features see)")
    events_on_as_of: int = Field(description="events dated on as_of: accepted, not used (point-in-time rule)")
    assessed_at: dt.datetime


class BatchResponse(BaseModel):
    count: int
    assessments: list[Assessment]


class OverrideOut(BaseModel):
    """A tier override recorded by the earlier ``/override`` flow (replaced by tier decisions; kept readable)."""

    override_id: str
    assessment_id: str
    tier: str
    reason: str
    actor: str
    created_at: str


class AssessmentQuery(_Strict):
    """One stored assessment, by id."""

    assessment_id: Identifier = Field(
        description="the assessment's id (a UUID)", examples=["2f1c7a52-8d0e-4a4b-9b8e-5d7c0f3e9a11"]
    )


class PersonQuery(_Strict):
    """Every stored assessment of one person."""

    person_id: Identifier = Field(description="the agency's id of the person", examples=["S0001234"])


class StoredAssessment(BaseModel):
    """An assessment as the audit trail holds it: request, answer, full explanation, overrides."""

    assessment_id: str
    seq: int
    created_at: str
    person_key: str = Field(description="HMAC of the person id; the raw id is never stored")
    stage: str
    actor: str = Field(description="user who asked for the assessment")
    model_name: str
    model_version: str
    policy_version: str
    request: dict[str, Any] = Field(description="the request as received (person ids replaced by their keys)")
    response: dict[str, Any] = Field(description="the answer exactly as returned (person ids keyed)")
    explanation: dict[str, Any] = Field(description="every feature's value and log-odds contribution")
    overrides: list[OverrideOut]
    effective_tier: str = Field(description="the latest override's tier, else the assessment's")
    prev_hash: str
    record_hash: str


class PersonAssessments(BaseModel):
    person_key: str
    count: int
    assessments: list[StoredAssessment]


class VerifyResponse(BaseModel):
    """The audit trail checked against its hash chains and every signed checkpoint."""

    ok: bool
    checked: int = Field(description="records checked in both chains")
    first_broken: str | None = Field(
        None, description="id of the first record that fails (or '<chain> seq <n>' for a missing one); null when intact"
    )
    problem: str | None = Field(None, description="what failed; null when intact")
    checkpoints_checked: int = Field(0, description="signed checkpoints the chains were checked against")
    checkpoint: dict[str, Any] | None = Field(
        None,
        description="a checkpoint of the heads just checked, signed "
        "with the service's Ed25519 key (null if broken): keep it, and verify "
        "later with riskctl audit verify --checkpoint FILE --public-key FILE",
    )
    head: dict[str, dict[str, Any]] = Field(description="each chain's length and last hash: copy it somewhere safe")
    newer: dict[str, int] = Field(
        default_factory=dict, description="records after the latest checkpoint, per chain (each signed by the signer)"
    )
    key_id: str | None = Field(None, description="id of the public key the checkpoints and records were checked with")
    refused: list[dict[str, Any]] = Field(
        default_factory=list,
        description="signing refusals not yet resolved by an auditor (riskctl audit resolve): when, by whom, why",
    )
    case_store: list[str] = Field(
        default_factory=list, description="differences between the trail and the case store (decisions, events)"
    )


class TrailStatus(BaseModel):
    """What an auditor sees of the trail's signing before verifying: the key, the anchors to keep, refusals."""

    key_id: str = Field(description="id of the signing key's public half (riskctl audit verify prints it)")
    separate_signer: bool = Field(description="the key is held by a separate signer process, not by the service")
    checkpoint_file: str = Field(description="the service's checkpoint stream: copy it off the host regularly")
    public_key_file: str | None = Field(None, description="the public key's file (with a local signer)")
    refused: list[dict[str, Any]] = Field(
        default_factory=list, description="signing refusals not yet resolved by an auditor (riskctl audit resolve)"
    )


class StageModelInfo(BaseModel):
    stage: str
    model: ModelRef
    mlflow_run_id: str | None
    alias: str
    imported_at: str
    horizon_months: float
    calibration: str
    trees: int
    kind: Literal["lightgbm", "logistic"] = Field(
        "lightgbm", description="kind of model served: lightgbm (boosted trees) or logistic", examples=["logistic"]
    )
    kind_reason: str | None = Field(
        None,
        description="why training made this kind the candidate",
        examples=["the logistic model scores at least as well as the booster in every metric"],
    )
    evaluation: dict[str, float | int | str | None] = Field(description="test-split metrics logged at training")
    gate: dict[str, Any] | None = Field(None, description="the promotion gate's decision for this version")


class UnservedStage(BaseModel):
    """A stage the service does not serve: every request that scores it is answered with 503."""

    stage: str = Field(description="the stage", examples=["release"])
    reason: Literal["not_selected", "not_in_store"] = Field(
        description="not_selected: left out of RISK_SERVED_STAGES (riskctl serve sets it to the stages whose "
        "registered model had a @champion); not_in_store: no model of the stage in the BentoML model store",
        examples=["not_selected"],
    )
    message: str = Field(description="what a modeler does about it")


class ModelsResponse(BaseModel):
    policy_version: str
    models: list[StageModelInfo] = Field(description="the model serving each served stage")
    not_served: list[UnservedStage] = Field(
        default_factory=list, description="the stages no model serves (requests for them are answered with 503)"
    )


class EmptyRequest(_Strict):
    """No fields."""


class ErrorDetail(BaseModel):
    """One refused field (``loc`` is its path) or the reason of the error."""

    loc: list[str | int] = Field(
        description="path of the refused field, e.g. ['records', 4, 'person', 'person_id']; "
        "empty when the error is not about one field",
        examples=[["person", "birth_date"]],
    )
    msg: str = Field(description="what is wrong", examples=["Value error, birth_date 1090-04-12 is before 1900-01-01"])
    type: str | None = Field(None, description="pydantic's error type, for validation errors")
    url: str | None = Field(None, description="pydantic's documentation of the error type")


class ErrorResponse(BaseModel):
    """Every error answer of the service (400, 401, 403, 404, 405, 413, 415, 500, 503) has this shape."""

    error: str = Field(description="the error in one sentence", examples=["request body is over the limit"])
    detail: list[ErrorDetail] = Field(default_factory=list, description="one entry per refused field")


def field_path(loc: tuple[Any, ...] | list[Any], whole: str = "request") -> str:
    """A pydantic error location as the messages write it: ``("events", 3, "date")`` -> ``events[3].date``.

    ``whole`` names an error of the whole object (an empty location).
    """
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
    return text or whole
