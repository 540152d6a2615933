"""Settings of the project's data, training and registry: one typed object read from the environment
(prefix ``RISK_``).

Embedded defaults need no server: MLflow tracks into a SQLite file with local artifacts under
``RISK_HOME`` (default ``./var``); a real MLflow server (``MLFLOW_TRACKING_URI``) is taken by
configuration alone. The service's own settings (stores, tokens, limits, checkpoints, console) extend
these in :class:`serving.settings.ServiceSettings`. Nothing here does work at import time;
:func:`get_settings` reads the environment when called.

Nothing leaves the machine unless configured (design.md): :func:`keep_telemetry_off` turns off the usage
telemetry MLflow (from 3.2) and BentoML send by default, unless ``RISK_TELEMETRY=true``. Every entry point
(``riskctl``, the service and its Bento) calls it before MLflow or BentoML is imported.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from features.vocab import Stage


class Settings(BaseSettings):
    """Home, tracking URI, experiment and registry names and aliases; every field can be set as ``RISK_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="RISK_", extra="ignore")

    home: Path = Field(Path("var"), description="working directory for local stores and outputs")
    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default MLFLOW_TRACKING_URI or local SQLite"
    )
    experiment_prefix: str = Field("reoffence", description="MLflow experiment name prefix")
    registry_prefix: str = Field("reoffence", description="registered model name prefix: <prefix>-<stage>")
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"
    telemetry: bool = Field(
        False,
        description="let MLflow and BentoML send their usage telemetry (off by default: nothing leaves the "
        "machine unless configured)",
    )

    def resolved_tracking_uri(self) -> str:
        if self.tracking_uri:
            return self.tracking_uri
        if os.environ.get("MLFLOW_TRACKING_URI"):
            return os.environ["MLFLOW_TRACKING_URI"]
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    def artifact_location(self) -> str:
        return (self.home / "mlartifacts").resolve().as_uri()

    def model_name(self, stage: Stage | str) -> str:
        return f"{self.registry_prefix}-{Stage(stage).value}"

    def experiment_name(self, stage: Stage | str) -> str:
        return f"{self.experiment_prefix}-{Stage(stage).value}"


#: The environment that turns off the libraries' usage telemetry: MLflow reads ``MLFLOW_DISABLE_TELEMETRY`` and
#: the ``DO_NOT_TRACK`` convention (mlflow.telemetry.utils, 3.17), BentoML ``BENTOML_DO_NOT_TRACK``
#: (bentoml._internal.utils.analytics, 1.4); each accepts the text ``true``.
TELEMETRY_OFF = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "BENTOML_DO_NOT_TRACK": "true"}


def keep_telemetry_off() -> bool:
    """Turn off MLflow's and BentoML's usage telemetry in this process's environment (which the processes it
    starts inherit) unless ``RISK_TELEMETRY`` is true; returns whether it is off.

    Call it before MLflow or BentoML is imported: MLflow starts its telemetry client when it is imported, and
    BentoML caches its answer on first use. With ``RISK_TELEMETRY=true`` the environment is left as it is (the
    libraries' own defaults and variables apply)."""
    if Settings().telemetry:
        return False
    os.environ.update(TELEMETRY_OFF)
    return True


def get_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with explicit overrides."""
    return Settings(**overrides)
