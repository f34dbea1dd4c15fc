"""Settings of the model registry (``SMARTFARM_MODELS_``): where MLflow's local store is and which alias serves.

The store is a folder under the project's data folder, read by the trainer that writes it, the workers that
follow its promoted version and ``smartfarm models``; no MLflow server runs. ``ml.registry`` says why sqlite.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.request import pathname2url

from pydantic import Field, field_validator

from smartfarm.settings import ComponentSettings, component_config


class ModelSettings(ComponentSettings):
    """Where MLflow's local tracking and registry store lives, and how workers follow its promoted model."""

    model_config = component_config("models")

    store: Path = Field(
        Path(".smartfarm/mlflow"), description="folder of MLflow's local store: mlflow.db and artifacts/ beside it"
    )
    poll_s: float = Field(30.0, gt=0, le=86400, description="seconds between a worker's checks for a new champion")
    alias: str = Field(
        "champion",
        pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$",
        description="registry alias of the promoted version, the one workers load",
    )

    @field_validator("alias")
    @classmethod
    def _not_reserved(cls, alias: str) -> str:
        # MLflow reserves these: they name versions already.
        if alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
            raise ValueError(f"{alias!r} is reserved by MLflow; choose another alias")
        return alias

    @property
    def database(self) -> Path:
        """The sqlite file of runs and registered models (absolute)."""
        return (self.store / "mlflow.db").resolve()

    @property
    def tracking_uri(self) -> str:
        """The URI of the store, for the tracking and the registry client and ``mlflow ui --backend-store-uri``."""
        return "sqlite:///" + pathname2url(str(self.database))

    @property
    def artifact_root(self) -> str:
        """The ``file:`` URI of the folder beside the database that holds every run's artifacts."""
        return (self.store / "artifacts").resolve().as_uri()
