"""Features: canonical records in, point-in-time feature matrix out.

- :mod:`features.vocab` — controlled vocabularies with Chinese and English labels;
- :mod:`features.schema` — the canonical tables (persons, events, outcomes) and their validation;
- :mod:`features.catalog` — one entry per feature: labels, explanation templates, stages, direction;
- :mod:`features.pipeline` — the point-in-time feature builder shared by training and serving;
- :mod:`features.labels` — stage labels with censoring, and the stage frame used for training;
- :mod:`features.synthetic` — the synthetic cohort with a documented causal structure and oracle.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from features.catalog import CATALOG, FeatureSpec, features_for
    from features.labels import StageFrame, make_stage_frame
    from features.pipeline import assessment_dates, build_features
    from features.schema import CaseTables, DataValidationError, Problem, validate_tables
    from features.vocab import EventType, Offence, Stage, SupervisionType

#: where each public name lives; imported on first use (PEP 562), so that ``riskctl --help`` and
#: modules that need only the vocabularies do not pay for pandas and pandera at start-up
_HOMES = {
    "CATALOG": "catalog",
    "FeatureSpec": "catalog",
    "features_for": "catalog",
    "StageFrame": "labels",
    "make_stage_frame": "labels",
    "assessment_dates": "pipeline",
    "build_features": "pipeline",
    "CaseTables": "schema",
    "DataValidationError": "schema",
    "Problem": "schema",
    "validate_tables": "schema",
    "EventType": "vocab",
    "Offence": "vocab",
    "Stage": "vocab",
    "SupervisionType": "vocab",
}

__all__ = [
    "CATALOG",
    "CaseTables",
    "DataValidationError",
    "EventType",
    "FeatureSpec",
    "Offence",
    "Problem",
    "Stage",
    "StageFrame",
    "SupervisionType",
    "assessment_dates",
    "build_features",
    "features_for",
    "make_stage_frame",
    "validate_tables",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"features.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
