"""The settings base every component's settings class derives from.

Each component has one pydantic-settings class with its own env prefix (``SMARTFARM_MQTT_``,
``SMARTFARM_KAFKA_``, ...), read once at the entry point and passed down. Two variables are shared by
all of them and carry no component prefix: ``SMARTFARM_PROFILE`` and ``SMARTFARM_LAYOUT``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Secrets that ship in .env.example and the dev defaults; refused outside the development profile.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "smartfarm-dev"})


class Profile(StrEnum):
    """Where the process runs; decides whether placeholder secrets are tolerated."""

    DEVELOPMENT = "development"
    """A developer's machine or CI: placeholder secrets are fine."""
    PRODUCTION = "production"
    """A real farm: every secret must be set to a real value."""


class ComponentSettings(BaseSettings):
    """Base class: adds the shared profile and refuses placeholder secrets in production."""

    # Empty variables count as unset, so a copied .env.example with blanks means "the default".
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True, env_ignore_empty=True)

    profile: Profile = Field(
        Profile.DEVELOPMENT,
        validation_alias="SMARTFARM_PROFILE",
        description="development or production; production refuses placeholder secrets",
    )

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Self:
        if self.profile is Profile.PRODUCTION:
            for name, value in self:
                if isinstance(value, SecretStr) and value.get_secret_value() in PLACEHOLDER_SECRETS:
                    env = env_name(type(self), name)
                    raise ValueError(f"{env} holds a placeholder secret; set a real one for the production profile")
        return self


class LayoutSettings(ComponentSettings):
    """Which farm layout file every component reads."""

    model_config = SettingsConfigDict(env_prefix="SMARTFARM_", env_file=".env", extra="ignore")

    layout: Path | None = Field(None, description="farm layout YAML; the bundled default farm when unset")


def env_name(cls: type[BaseSettings], field: str) -> str:
    """The environment variable that sets ``field`` of settings class ``cls``."""
    info = cls.model_fields[field]
    if isinstance(info.validation_alias, str):
        return info.validation_alias
    prefix: Any = cls.model_config.get("env_prefix", "")
    return f"{prefix}{field}".upper()
