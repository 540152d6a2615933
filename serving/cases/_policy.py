"""The review policy file (``serving/cases/review_policy.yaml``): due windows, review stages, four-colour alerts."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.vocab import Labelled, Stage, assessment_offset_days
from models.policy_file import load_policy_file
from models.tier_policy import Band


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

    def dates(self, start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
        """(opens, closes) for a term from ``start`` to ``end``."""
        midpoint = start + dt.timedelta(days=int(assessment_offset_days(Stage.MIDTERM, (end - start).days)))
        anchor = {Anchor.START: start, Anchor.MIDPOINT: midpoint, Anchor.END: end}[self.anchor]
        return anchor + dt.timedelta(days=self.opens_days), anchor + dt.timedelta(days=self.closes_days)


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


class ReviewPolicy(BaseModel):
    """Due windows, the review meeting's stage choice and the alert mapping (load with :meth:`load`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    due: DuePolicy
    review: ReviewSettings
    alerts: Alerts

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
        for level in self.alerts.levels:
            if any(e.holds(band=band, rule_id=rule_id, rise=rise) for e in level.any_of):
                return level.colour
        return self.alerts.default

    def review_stage(self, end: dt.date, as_of: dt.date) -> Literal[Stage.MIDTERM, Stage.RELEASE]:
        """The model a review meeting on ``as_of`` scores a person with: release in the term's last window."""
        if (end - as_of).days < self.review.release_window_days:
            return Stage.RELEASE
        return Stage.MIDTERM
