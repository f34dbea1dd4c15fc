"""Settings of the local services that ``smartfarm up`` and the integration tests start."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from smartfarm.settings import ComponentSettings, component_config


def _default_cache() -> Path:
    return Path.home() / ".cache" / "smartfarm"


class ServicesSettings(ComponentSettings):
    """Where the Kafka jars are cached, which Kafka release runs, and how the services `smartfarm up` starts
    listen."""

    model_config = component_config("services")

    cache_dir: Path = Field(default_factory=_default_cache, description="where fetched Kafka jars are kept")
    kafka_version: str = Field("4.3.1", pattern=r"^\d+\.\d+\.\d+$", description="org.apache.kafka:kafka_2.13 release")
    kafka_heap: str = Field("1g", pattern=r"^\d+[mg]$", description="the Kafka JVM's maximum heap")
    workdir: Path = Field(Path(".smartfarm"), description="data and logs of the services `smartfarm up` starts")
    prometheus_port: int = Field(9090, ge=1, le=65535, description="the port of the Prometheus `smartfarm up` runs")
    mqtt_tls: bool = Field(
        True,
        description="the broker `smartfarm up` runs listens over TLS only (its CA in <workdir>/tls/ca.crt, port 8883 "
        "unless SMARTFARM_MQTT_PORT is set) and has no plaintext listener; false: plaintext only",
    )
    mqtt_cert_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="with mqtt_tls, a second TLS listener on this port where a device logs in with a client "
        "certificate alone (`smartfarm broker-auth --device-cert`); none when unset",
    )

    @property
    def kafka_home(self) -> Path:
        return self.cache_dir / f"kafka_2.13-{self.kafka_version}"
