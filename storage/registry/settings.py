"""Settings of the farm registry (``SMARTFARM_REGISTRY_``): which relational database holds it."""

from __future__ import annotations

from pydantic import Field, SecretStr

from smartfarm.settings import ComponentSettings, component_config


class RegistrySettings(ComponentSettings):
    """The farm registry's database: SQLite in the project's data folder unless a URL names another."""

    model_config = component_config("registry")

    url: SecretStr = Field(
        SecretStr("sqlite:///.smartfarm/registry.db"),
        description="SQLAlchemy URL of the registry: sqlite:///path or postgresql+psycopg://user:pass@host/db",
    )
