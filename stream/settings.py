"""Settings of the Kafka connection, shared by the bridge and the Faust agents."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from smartfarm.settings import ComponentSettings


class KafkaSettings(ComponentSettings):
    """Where Kafka is and how the pipeline's topics are named."""

    model_config = SettingsConfigDict(env_prefix="SMARTFARM_KAFKA_", env_file=".env", extra="ignore")

    bootstrap_servers: str = Field("127.0.0.1:9092", description="comma-separated host:port list")
    topic_prefix: str = Field(
        "smartfarm", pattern=r"^[A-Za-z0-9._-]{1,100}$", description="every topic is named {prefix}.{topic}"
    )
    partitions: int = Field(6, ge=1, le=1000, description="partitions of each pipeline topic when created")
    replication_factor: int = Field(1, ge=1, le=7, description="replicas of each pipeline topic when created")

    @property
    def servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]
