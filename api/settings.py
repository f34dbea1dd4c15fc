"""Settings of the farm API (``SMARTFARM_API_``): where it listens."""

from __future__ import annotations

from pydantic import Field

from smartfarm.settings import ComponentSettings, component_config


class ApiSettings(ComponentSettings):
    model_config = component_config("api")

    host: str = Field("127.0.0.1", description="address the API listens on")
    port: int = Field(8000, ge=0, le=65535, description="port the API listens on (0: a free one)")
