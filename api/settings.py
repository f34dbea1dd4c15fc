"""Settings of the farm API (``SMARTFARM_API_``): where it listens, how long ingest waits for Kafka."""

from __future__ import annotations

from pydantic import Field

from smartfarm.settings import ComponentSettings, component_config


class ApiSettings(ComponentSettings):
    model_config = component_config("api")

    host: str = Field("127.0.0.1", description="address the API listens on")
    port: int = Field(8000, ge=0, le=65535, description="port the API listens on (0: a free one)")
    kafka_timeout_s: float = Field(
        10.0, gt=0, le=120, description="ingest: how long a message waits for Kafka's confirmation before a 503"
    )
