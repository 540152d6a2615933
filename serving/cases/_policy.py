"""The review policy file (``serving/cases/review_policy.yaml``): due windows, review stages, four-colour alerts."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.vocab import Labelled, Lang, Stage, assessment_offset_days
from models.cutoffs import Cutoff, cutoff_form, cutoff_words
from models.policy_file import load_policy_file
from models.tier_policy import Band

if TYPE_CHECKING:
    from models.tier_policy import TierPolicy
    from serving.cases._schemas import ReviewRow


class Colour(Labelled):
    """The four-colour alert (四色预警), most urgent first."""

    RED = "red", "红色预警", "red alert"
    ORANGE = "orange", "橙色预警", "orange alert"
    YELLOW = "yellow", "黄色预警", "yellow alert"
    BLUE = "blue", "蓝色预警", "blue alert"


class Anchor(StrEnum):
    START = "start"
    MIDPOINT = "midpoint"
    END = "end"


class Window(BaseModel):
    """When one stage's assessment is due, relative to its anchor date."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    anchor: Anchor
    opens_days: int = Field(description="days after the anchor the window opens (negative: before)")
    closes_days: int = Field(description="days after the anchor the window closes; after it: overdue")

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.closes_days < self.opens_days:
            raise ValueError("closes_days must not be before opens_days")
        return self

    def dates(self, start: dt.date, end: dt.date, midpoint: dt.date | None = None) -> tuple[dt.date, dt.date]:
        """(opens, closes) for a term from ``start`` to ``end`` (``midpoint``: :func:`term_midpoint`, if known)."""
        if self.anchor is Anchor.START:
            anchor = start
        elif self.anchor is Anchor.END:
            anchor = end
        else:
            anchor = midpoint or term_midpoint(start, end)
        return anchor + dt.timedelta(days=self.opens_days), anchor + dt.timedelta(days=self.closes_days)


def term_midpoint(start: dt.date, end: dt.date) -> dt.date:
    """The mid-term assessment's date of a term (the anchor of the mid-term window)."""
    return start + dt.timedelta(days=int(assessment_offset_days(Stage.MIDTERM, (end - start).days)))


class DuePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    upcoming_days: int = Field(ge=0)
    intake: Window
    midterm: Window
    release: Window

    def window(self, stage: Stage) -> Window:
        window: Window = getattr(self, Stage(stage).value)
        return window


class AlertEntry(BaseModel):
    """Holds when all of its keys hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bands: list[Band] | None = None
    rules: list[str] | None = None
    min_rise: float | None = Field(None, gt=-1, lt=1)

    def holds(self, *, band: Band, rule_id: str | None, rise: float | None) -> bool:
        if self.bands is not None and band not in self.bands:
            return False
        if self.rules is not None and rule_id not in self.rules:
            return False
        return self.min_rise is None or (rise is not None and rise >= self.min_rise)

    def words(
        self,
        lang: Lang,
        tiers: TierPolicy,
        *,
        band: Band | None = None,
        rule_id: str | None = None,
        rise: float | None = None,
    ) -> str:
        """The condition in words (rules by their text in ``tiers``); given one person's band, rule and rise
        (for which it holds), their own: "风险等级为高，且风险比上次评估升高5.2个百分点（5个及以上）"."""
        zh = lang == "zh"
        parts = []
        if self.bands is not None:
            names = ("或" if zh else " or ").join(b.label(lang) for b in ([band] if band else self.bands))
            parts.append(f"风险等级为{names}" if zh else f"risk band {names}")
        if self.rules is not None:
            texts = {r.id: (r.zh if zh else r.en) for s in Stage for r in tiers.stage(s).rules}
            ids = [rule_id] if rule_id else self.rules
            named = ("；" if zh else "; ").join(texts.get(i, i) for i in ids)
            one = len(ids) == 1
            if zh:
                parts.append(f"适用强制规则{'' if one else '之一'}（{named}）")
            else:
                parts.append(f"{'a mandatory rule' if one else 'one of the mandatory rules'} applies ({named})")
        if self.min_rise is not None:
            least = f"{100 * self.min_rise:g}"
            if rise is None:
                parts.append(
                    f"风险比上次评估升高{least}个百分点及以上"
                    if zh
                    else f"risk up {least} percentage points or more since the previous assessment"
                )
            else:
                parts.append(
                    f"风险比上次评估升高{100 * rise:.1f}个百分点（{least}个及以上）"
                    if zh
                    else f"risk up {100 * rise:.1f} points since the previous assessment ({least} or more)"
                )
        return ("，且" if zh else ", and ").join(parts)


class AlertLevel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    colour: Colour
    any_of: list[AlertEntry] = Field(min_length=1)


class Alerts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    default: Colour
    levels: list[AlertLevel]


class ReviewSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    release_window_days: int = Field(ge=0)


class DeferReason(Labelled):
    """Why a supervisor says "not now" to a step-down (controlled list; each has a period in the policy)."""

    RECENT_VIOLATION = "recent_violation", "近期有违规", "a recent violation"
    PENDING_MATTER = "pending_matter", "有待查事项", "a matter under inquiry"
    FAMILY_CRISIS = "family_crisis", "家庭变故，需稳定", "a family crisis: stability first"
    OBSERVE = "observe", "需继续观察", "needs more observation"
    OTHER = "other", "其他（须写明）", "other (in writing)"


class StepDownSettings(BaseModel):
    """Who comes up on the supervisor's step-down list, and for how long a "not now" holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ordinary_reviews: int = Field(ge=1, description="ordinary by risk at this many latest reviews in a row")
    defer_days: dict[DeferReason, int] = Field(description="days a 'not now' of each reason holds")

    @model_validator(mode="after")
    def _every_reason(self) -> StepDownSettings:
        missing = [r.value for r in DeferReason if r not in self.defer_days]
        if missing or any(days < 1 for days in self.defer_days.values()):
            raise ValueError(f"step_down.defer_days needs a period of at least 1 day for every reason: {missing}")
        return self


class ReviewPolicy(BaseModel):
    """Due windows, the review meeting's stage choice, the alert mapping and the step-down list (load with
    :meth:`load`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    due: DuePolicy
    review: ReviewSettings
    alerts: Alerts
    step_down: StepDownSettings

    @classmethod
    def load(cls, path: Path | str | None = None) -> ReviewPolicy:
        """Read and validate the file (default: ``review_policy.yaml`` beside this module); ValueError names it."""
        return load_policy_file(
            cls,
            path,
            default=("serving.cases", "review_policy.yaml"),
            error=ValueError,
            describe=lambda exc, _raw: f"invalid review policy: {exc}",
        )

    def alert(self, *, band: Band, rule_id: str | None, rise: float | None) -> Colour:
        """The alert colour of one person (first level that holds, else the default)."""
        return self.alert_because(band=band, rule_id=rule_id, rise=rise)[0]

    def alert_because(self, *, band: Band, rule_id: str | None, rise: float | None) -> tuple[Colour, AlertEntry | None]:
        """The alert colour of one person and the entry that gave it (None: the default colour)."""
        for level in self.alerts.levels:
            for entry in level.any_of:
                if entry.holds(band=band, rule_id=rule_id, rise=rise):
                    return level.colour, entry
        return self.alerts.default, None

    def alert_reason(self, row: ReviewRow, version: str, lang: Lang, tiers: TierPolicy) -> str | None:
        """Why a stored review row has its colour, in words: the condition that gave it, with the person's own
        band, rule and rise. None for the default colour, and for a run made under another version of this
        policy (``version``: the run's), whose conditions may have been other."""
        if version != self.version:
            return None
        band = Band(row.band)
        rise = None if row.previous_probability is None else row.probability - row.previous_probability
        colour, entry = self.alert_because(band=band, rule_id=row.rule_id, rise=rise)
        if entry is None or colour.value != row.alert:
            return None
        return entry.words(lang, tiers, band=band, rule_id=row.rule_id, rise=rise)

    def legend(self, lang: Lang, tiers: TierPolicy) -> list[tuple[Colour, list[str]]]:
        """What each colour means, in words: the colours in the order they are tried, each with its
        conditions (any one of them gives the colour); the default colour last, "none of the above"."""
        out = [(level.colour, [e.words(lang, tiers) for e in level.any_of]) for level in self.alerts.levels]
        out.append((self.alerts.default, ["不符合以上任一条件" if lang == "zh" else "none of the above"]))
        return out

    def legend_notes(self, lang: Lang, tiers: TierPolicy) -> list[str]:
        """How to read the legend: tried in order, the band cut-offs of each stage (they differ), and that the
        colour depends on more than the probability when a level names rules or a rise."""
        zh = lang == "zh"
        by_cutoffs: dict[tuple[str, str], list[str]] = {}
        for stage in Stage:
            sp = tiers.stage(stage)
            key = (_from_words(sp.medium_from, Band.MEDIUM, lang), _from_words(sp.high_from, Band.HIGH, lang))
            by_cutoffs.setdefault(key, []).append(stage.label(lang))
        cutoffs = ("；" if zh else "; ").join(
            f"{'、'.join(names)}：{m}，{h}" if zh else f"{', '.join(names)}: {m}, {h}"
            for (m, h), names in by_cutoffs.items()
        )
        relative = any(tiers.stage(stage).relative for stage in Stage)
        notes = [
            "按上表顺序判断，先符合的颜色为准。"
            if zh
            else "Tried from the top: the first colour whose condition holds.",
            f"风险等级按各评估阶段的分界划分（{cutoffs}）。"
            if zh
            else f"Risk bands by each stage's cut-offs ({cutoffs}).",
        ]
        if relative:
            notes.append(
                "相对分界（基础率的倍数、风险最高的比例）按各阶段模型的训练人群换算为概率；每份评估结果注明所用的分界。"
                if zh
                else "Relative cut-offs (a multiple of the base rate, the riskiest share) are turned into "
                "probabilities from each stage's model's training persons; every assessment gives the cut-offs it used."
            )
        if len(by_cutoffs) > 1 or relative:
            notes.append(
                "同一概率在不同阶段可能属于不同风险等级，因而颜色不同。"
                if zh
                else "The same probability can fall in different bands at different stages, and so have another colour."
            )
        entries = [e for level in self.alerts.levels for e in level.any_of]
        if any(e.rules is not None or e.min_rise is not None for e in entries):
            notes.append(
                "颜色不只取决于概率：强制规则和与上次评估相比的风险升高也会提高预警颜色，"
                "因此概率较低的人可能比概率较高的人颜色更高。"
                if zh
                else "The colour depends on more than the probability: a mandatory rule or a rise since the "
                "previous assessment raises it, so a person with a lower probability can have a higher colour."
            )
        return notes

    def review_stage(self, end: dt.date, as_of: dt.date) -> Literal[Stage.MIDTERM, Stage.RELEASE]:
        """The model a review meeting on ``as_of`` scores a person with: release in the term's last window."""
        if (end - as_of).days < self.review.release_window_days:
            return Stage.RELEASE
        return Stage.MIDTERM


def _from_words(cutoff: Cutoff, band: Band, lang: Lang) -> str:
    """Where ``band`` starts, in words: "15% 及以上为中", "medium from the riskiest 30%"."""
    said = cutoff_words(cutoff, lang)
    if lang != "zh":
        return f"{band.en} from {said}"
    if cutoff_form(cutoff) == "riskiest_share":
        return f"{said}为{band.zh}" + ("及以上" if band is not Band.HIGH else "")
    return f"{said}{' ' if cutoff_form(cutoff) == 'probability' else ''}及以上为{band.zh}"
