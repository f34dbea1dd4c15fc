"""Settings of the MQTT connection, shared by devices (real or simulated) and the bridge."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from edge.contract import Topics
from smartfarm.settings import ComponentSettings


class MqttSettings(ComponentSettings):
    """Where the MQTT broker is and under which topic root the farm publishes."""

    model_config = SettingsConfigDict(env_prefix="SMARTFARM_MQTT_", env_file=".env", extra="ignore")

    host: str = Field("127.0.0.1", description="broker host")
    port: int = Field(1883, ge=1, le=65535, description="broker port")
    username: str = Field("", description="user name of services (bridge); devices use their own id")
    password: SecretStr = Field(
        SecretStr(""), description="password of services; empty when the broker allows anonymous"
    )
    topic_root: str = Field("smartfarm", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="first level of every topic")
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keepalive; the last will fires after 1.5x this")

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_root)
