"""Band cut-offs in three forms, and the reference statistics of a model's training rows that resolve them.

The tier policy states each stage's cut-offs (``medium_from``, ``high_from``) in one of three forms
(design.md, "Face validity"):

- a **probability**, the absolute cut-off on the calibrated risk: ``0.25``;
- a **multiple of the stage's base rate**: ``{times_base_rate: 2}`` is twice the re-offence rate of the
  model's training rows;
- the **share to flag**: ``{riskiest_share: 0.10}`` is the risk of the riskiest 10% of the model's
  training rows (one row per person at a stage), so that the band holds about that share of them.

The two relative forms are resolved against :class:`RiskReference`, statistics of the training rows kept
with the model when it is fitted (its base rate and the distribution of its calibrated risk), so a served
model resolves exactly the cut-offs it was judged with at training, whatever data it later scores, and a
policy change to a relative form needs no retrain. :func:`resolve_cutoffs` gives a stage's
:class:`BandCutoffs`: the absolute cut-offs, with how the policy states each one and the share of the
training rows at or above it, which an answer stores so that its band can be explained later.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from features.vocab import Lang, Stage

#: how a cut-off is stated in the policy
CutoffForm = Literal["probability", "times_base_rate", "riskiest_share"]
CUTOFF_FORMS: tuple[CutoffForm, ...] = get_args(CutoffForm)
#: a reference keeps every distinct risk of its rows up to this many, else a grid of quantiles
MAX_LEVELS = 2000
#: the quantile grid of a reference whose rows have more distinct risks than MAX_LEVELS (0.1% of the rows)
GRID = 1000
_HOW = "write a probability (0.25), {times_base_rate: 2} or {riskiest_share: 0.1}"


class RelativeCutoff(BaseModel):
    """A cut-off stated relative to the model's training rows: a multiple of their base rate, or a share to flag."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    times_base_rate: float | None = Field(None, gt=0, allow_inf_nan=False)
    riskiest_share: float | None = Field(None, gt=0, lt=1)

    @model_validator(mode="after")
    def _one_form(self) -> RelativeCutoff:
        if (self.times_base_rate is None) == (self.riskiest_share is None):
            raise ValueError(f"a relative cut-off needs exactly one of times_base_rate, riskiest_share: {_HOW}")
        return self

    @model_serializer
    def _as_written(self) -> dict[str, float]:
        """As the policy file writes it: ``{riskiest_share: 0.1}``."""
        return {self.form: self.value}

    @property
    def form(self) -> CutoffForm:
        return "times_base_rate" if self.times_base_rate is not None else "riskiest_share"

    @property
    def value(self) -> float:
        """The number the policy states: the multiple or the share."""
        number = self.times_base_rate if self.times_base_rate is not None else self.riskiest_share
        assert number is not None  # the validator guarantees one of them
        return number


#: a cut-off as the policy states it: a probability, or relative to the model's training rows
Cutoff = float | RelativeCutoff


def parse_cutoff(value: Any) -> Cutoff:
    """A cut-off from the policy file: a number (a probability) or a one-key mapping naming its form.

    Raises
    ------
    ValueError
        If the value is none of the three forms or out of its range; the message says what to write.
    """
    if isinstance(value, RelativeCutoff):
        return value
    if isinstance(value, Mapping):
        if len(value) != 1 or next(iter(value)) not in CUTOFF_FORMS:
            raise ValueError(f"unknown cut-off {dict(value)!r}: {_HOW}")
        form, number = next(iter(value.items()))
        x = _number(number, form)
        if form == "times_base_rate":
            if not x > 0:
                raise ValueError(f"times_base_rate must be a positive multiple of the base rate, got {number!r}")
            return RelativeCutoff(times_base_rate=x)
        if form == "riskiest_share":
            if not 0 < x < 1:
                raise ValueError(
                    "riskiest_share is the share of the stage's training persons to flag: it must be greater "
                    f"than 0 and less than 1, got {number!r}"
                )
            return RelativeCutoff(riskiest_share=x)
        value = x
    x = _number(value, "a cut-off")
    if not 0 < x < 1:
        raise ValueError(f"a probability cut-off must be greater than 0 and less than 1, got {value!r}")
    return x


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}: {_HOW}")
    return float(value)


def cutoff_form(cutoff: Cutoff) -> CutoffForm:
    return "probability" if not isinstance(cutoff, RelativeCutoff) else cutoff.form


def cutoff_value(cutoff: Cutoff) -> float:
    """The number the policy states (a probability, a multiple of the base rate, or a share)."""
    return cutoff.value if isinstance(cutoff, RelativeCutoff) else float(cutoff)


def percent(p: float) -> str:
    """A probability or share as a percentage with at most two decimals: ``10%``, ``7.35%``."""
    return f"{100 * p:.2f}".rstrip("0").rstrip(".") + "%"


def stated_words(form: CutoffForm, value: float, lang: Lang) -> str:
    """How the policy states a cut-off, in words: ``25%``, ``2 × the base rate``, ``the riskiest 10%``."""
    if form == "probability":
        return percent(value)
    if form == "times_base_rate":
        return f"基础率的{value:g}倍" if lang == "zh" else f"{value:g} × the base rate"
    return f"风险最高的{percent(value)}" if lang == "zh" else f"the riskiest {percent(value)}"


def cutoff_words(cutoff: Cutoff, lang: Lang) -> str:
    """:func:`stated_words` of a cut-off as the policy states it."""
    return stated_words(cutoff_form(cutoff), cutoff_value(cutoff), lang)


def order_problem(medium: Cutoff, high: Cutoff) -> str | None:
    """What is wrong with the order of two cut-offs stated in the same form (None: nothing, or not comparable
    before they are resolved against a model)."""
    if cutoff_form(medium) != cutoff_form(high):
        return None
    m, h = cutoff_value(medium), cutoff_value(high)
    if cutoff_form(medium) == "riskiest_share":
        if not m > h:
            return f"cut-offs must increase: medium_from must flag more than high_from (riskiest_share {m:g} ≤ {h:g})"
        return None
    if not m < h:
        said = cutoff_words(medium, "en"), cutoff_words(high, "en")
        return f"cut-offs must increase: medium_from ({said[0]}) must be below high_from ({said[1]})"
    return None


@dataclass(frozen=True)
class RiskReference:
    """Statistics of a model's training rows at one stage, kept with the model to resolve relative cut-offs.

    ``levels`` are risks of the rows in increasing order, ``shares[k]`` the share of the rows whose calibrated
    risk is at least ``levels[k]`` (``shares[0]`` is 1). With at most :data:`MAX_LEVELS` distinct risks (an
    isotonic calibrator's steps) the levels are all of them (``complete``): every share the rows allow is
    known exactly. Otherwise the levels are the risks at a grid of :data:`GRID` quantiles (their shares are
    still exact), and on rows without ties a share can be met to within one grid step.
    """

    stage: str
    rows: int
    base_rate: float
    levels: tuple[float, ...]
    shares: tuple[float, ...]
    complete: bool

    @classmethod
    def from_scores(
        cls,
        stage: Stage | str,
        *,
        y_true: np.ndarray,
        risk: np.ndarray,
        max_levels: int = MAX_LEVELS,
        grid: int = GRID,
    ) -> RiskReference:
        """The reference of rows with outcomes ``y_true`` (0/1) and calibrated risks ``risk`` (in [0, 1]):
        every distinct risk when there are at most ``max_levels``, else the risks at ``grid`` quantiles."""
        y, p = np.asarray(y_true, dtype=float).ravel(), np.asarray(risk, dtype=float).ravel()
        if len(y) != len(p) or len(p) == 0:
            raise ValueError(f"a risk reference needs as many outcomes as risks, and some: got {len(y)} and {len(p)}")
        if not np.isin(y, (0.0, 1.0)).all():
            raise ValueError("the outcomes of a risk reference must be 0 or 1")
        if not ((p >= 0) & (p <= 1)).all():
            raise ValueError("the risks of a risk reference must be probabilities in [0, 1]")
        ordered = np.sort(p)
        distinct = np.unique(ordered)
        complete = len(distinct) <= max_levels
        if complete:
            levels = distinct
        else:
            levels = np.unique(np.quantile(ordered, np.linspace(0, 1, grid + 1), method="inverted_cdf"))
        below = np.searchsorted(ordered, levels, side="left")
        shares = (len(ordered) - below) / len(ordered)
        return cls(
            Stage(stage).value,
            len(p),
            float(y.mean()),
            tuple(float(v) for v in levels),
            tuple(float(s) for s in shares),
            complete,
        )

    def share_at_or_above(self, probability: float) -> float:
        """The share of the rows whose risk is at least ``probability`` (exact when ``complete``, else the
        share at the next quantile of the grid, within 1/GRID)."""
        k = int(np.searchsorted(self.levels, probability, side="left"))
        return 0.0 if k == len(self.levels) else self.shares[k]

    def riskiest(self, share: float, *, below: float | None = None) -> float:
        """The cut-off that flags the share of the rows nearest ``share`` (the smaller share on a tie), among
        cut-offs under ``below`` when given.

        With a complete reference the cut-off is the shortest decimal that flags exactly the same rows
        (``0.23`` rather than ``0.2285714``); otherwise it is a risk of the rows.
        """
        levels = np.asarray(self.levels)
        usable = len(levels) if below is None else int(np.searchsorted(levels, below, side="left"))
        if usable == 0:
            raise ValueError(f"no risk of the model's training rows is below {percent(below or 0.0)}")
        gaps = np.abs(np.asarray(self.shares[:usable]) - share)
        k = usable - 1 - int(np.argmin(gaps[::-1]))  # the last of the nearest: the smaller share on a tie
        if not self.complete:
            return float(levels[k])
        return _shortest_decimal(float(levels[k - 1]) if k > 0 else 0.0, float(levels[k]))

    def record(self) -> dict[str, Any]:
        """The reference as JSON-ready values (logged with the model's run)."""
        return {**asdict(self), "levels": list(self.levels), "shares": list(self.shares)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> RiskReference:
        return cls(
            str(record["stage"]),
            int(record["rows"]),
            float(record["base_rate"]),
            tuple(float(v) for v in record["levels"]),
            tuple(float(v) for v in record["shares"]),
            bool(record["complete"]),
        )


def _shortest_decimal(low: float, high: float) -> float:
    """The number in ``(low, high]`` with the fewest decimals (two to six), else ``high``."""
    for places in range(2, 7):
        scale = 10.0**places
        candidate = round(math.floor(high * scale + 1e-9) / scale, places)
        if low < candidate <= high:
            return candidate
    return high


@dataclass(frozen=True)
class ResolvedCutoff:
    """One absolute cut-off, how the policy states it, and the share of the model's training rows at or above it
    (None without a reference)."""

    probability: float
    form: CutoffForm
    stated: float
    training_share: float | None = None

    def words(self, lang: Lang) -> str:
        """How the policy states it, with the probability it resolves to when it is relative."""
        said = stated_words(self.form, self.stated, lang)
        return said if self.form == "probability" else f"{said} ({percent(self.probability)})"


@dataclass(frozen=True)
class BandCutoffs:
    """The absolute band cut-offs of one stage for one model (``low < medium_from <= medium < high_from <= high``).

    ``base_rate`` and ``training_rows`` are the model's reference statistics (None without one).
    """

    medium_from: ResolvedCutoff
    high_from: ResolvedCutoff
    base_rate: float | None = None
    training_rows: int | None = None

    @property
    def edges(self) -> tuple[float, float]:
        """The two cut-offs as probabilities, increasing."""
        return self.medium_from.probability, self.high_from.probability

    def record(self) -> dict[str, Any]:
        """The cut-offs as stored with an answer (JSON-ready)."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> BandCutoffs:
        """The cut-offs an answer stored (:meth:`record`)."""
        return cls(
            ResolvedCutoff(**record["medium_from"]),
            ResolvedCutoff(**record["high_from"]),
            record.get("base_rate"),
            record.get("training_rows"),
        )


def resolve_cutoffs(
    stage: Stage | str, medium: Cutoff, high: Cutoff, reference: RiskReference | None = None
) -> BandCutoffs:
    """A stage's absolute cut-offs: probabilities as they are, relative forms against ``reference``.

    Raises
    ------
    ValueError
        If a cut-off is relative and there is no reference, the reference is of another stage, a multiple of
        the base rate reaches 1, or the resolved cut-offs do not increase; the message names the cut-off.
    """
    stage = Stage(stage)
    if reference is not None and reference.stage != stage.value:
        raise ValueError(f"the risk reference is of the {reference.stage} stage, not {stage.value}")
    relative = [name for name, c in (("medium_from", medium), ("high_from", high)) if isinstance(c, RelativeCutoff)]
    if relative and reference is None:
        raise ValueError(
            f"{' and '.join(relative)} {'is' if len(relative) == 1 else 'are'} stated relative to the model's "
            "training rows, and no reference statistics of those rows were given (a model trained before they were "
            "kept has none): retrain the model, or state this stage's cut-offs as probabilities in the tier policy"
        )
    high_p = _resolve("high_from", high, reference, below=None)
    medium_p = _resolve("medium_from", medium, reference, below=high_p)
    if not medium_p < high_p:
        raise ValueError(
            f"cut-offs must increase: medium_from ({cutoff_words(medium, 'en')}) resolves to {percent(medium_p)}, "
            f"not below high_from ({cutoff_words(high, 'en')}) at {percent(high_p)}"
        )

    def resolved(cutoff: Cutoff, p: float) -> ResolvedCutoff:
        share = None if reference is None else reference.share_at_or_above(p)
        return ResolvedCutoff(p, cutoff_form(cutoff), cutoff_value(cutoff), share)

    return BandCutoffs(
        resolved(medium, medium_p),
        resolved(high, high_p),
        None if reference is None else reference.base_rate,
        None if reference is None else reference.rows,
    )


def _resolve(name: str, cutoff: Cutoff, reference: RiskReference | None, *, below: float | None) -> float:
    if not isinstance(cutoff, RelativeCutoff):
        return float(cutoff)
    assert reference is not None  # resolve_cutoffs refuses a relative cut-off without one
    if cutoff.times_base_rate is not None:
        if reference.base_rate <= 0:
            raise ValueError(f"{name}: no re-offence in the model's training rows: a multiple of their base rate is 0")
        p = cutoff.times_base_rate * reference.base_rate
        if not p < 1:
            raise ValueError(
                f"{name}: {cutoff.times_base_rate:g} × the base rate {percent(reference.base_rate)} is {percent(p)}, "
                "not a probability below 1"
            )
        return p
    try:
        return reference.riskiest(cutoff.value, below=below)
    except ValueError as exc:
        raise ValueError(f"{name} ({cutoff_words(cutoff, 'en')}): {exc}") from exc


__all__ = [
    "CUTOFF_FORMS",
    "BandCutoffs",
    "Cutoff",
    "CutoffForm",
    "RelativeCutoff",
    "ResolvedCutoff",
    "RiskReference",
    "cutoff_form",
    "cutoff_value",
    "cutoff_words",
    "order_problem",
    "parse_cutoff",
    "percent",
    "resolve_cutoffs",
    "stated_words",
]
