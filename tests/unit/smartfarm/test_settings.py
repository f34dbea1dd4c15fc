"""Settings: env prefixes, the production profile's refusal of placeholder secrets, and .env.example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings

from api.settings import ApiSettings
from cli.services.settings import ServicesSettings
from edge.settings import EdgeSettings, ForecastSettings
from smartfarm.settings import (
    PLACEHOLDER_SECRETS,
    InfluxSettings,
    InfluxUsers,
    KafkaSettings,
    LayoutSettings,
    MqttSettings,
    env_name,
)
from storage.registry.settings import RegistrySettings
from stream.settings import BridgeSettings, WorkerSettings
from tests.helpers import repo_root

ALL: list[type[BaseSettings]] = [
    ApiSettings,
    RegistrySettings,
    LayoutSettings,
    EdgeSettings,
    ForecastSettings,
    BridgeSettings,
    WorkerSettings,
    MqttSettings,
    KafkaSettings,
    InfluxSettings,
    InfluxUsers,
    ServicesSettings,
]


def test_each_component_reads_its_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTFARM_MQTT_PORT", "11883")
    monkeypatch.setenv("SMARTFARM_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1, 127.0.0.1:2")
    monkeypatch.setenv("SMARTFARM_INFLUX_DATABASE", "farmdb")
    assert MqttSettings().port == 11883
    assert KafkaSettings().servers == ["127.0.0.1:1", "127.0.0.1:2"]
    assert InfluxSettings().database == "farmdb"


def test_production_refuses_placeholder_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTFARM_PROFILE", "production")
    monkeypatch.setenv("SMARTFARM_INFLUX_PASSWORD", "changeme")
    with pytest.raises(ValidationError, match="SMARTFARM_INFLUX_PASSWORD holds a placeholder secret"):
        InfluxSettings()
    monkeypatch.setenv("SMARTFARM_INFLUX_PASSWORD", "s3cret-from-the-vault")
    settings = InfluxSettings()
    assert settings.password.get_secret_value() == "s3cret-from-the-vault"
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize("placeholder", sorted(PLACEHOLDER_SECRETS))
def test_production_refuses_every_placeholder_in_every_secret(
    monkeypatch: pytest.MonkeyPatch, placeholder: str
) -> None:
    """Each secret setting of every component, left at its default or set to a placeholder (the development
    fleet secret among them), stops a production start with the variable to set."""
    monkeypatch.setenv("SMARTFARM_PROFILE", "production")
    secret_fields = [
        (cls, f)
        for cls in ALL
        for f, info in cls.model_fields.items()
        if info.annotation is SecretStr and info.default.get_secret_value() in PLACEHOLDER_SECRETS
    ]  # the registry's URL is a SecretStr for the password it may hold, but its default (SQLite) is a real one
    names = {env_name(cls, f) for cls, f in secret_fields}
    assert {"SMARTFARM_EDGE_DEVICE_SECRET", "SMARTFARM_MQTT_PASSWORD", "SMARTFARM_INFLUX_PASSWORD"} <= names
    assert {"SMARTFARM_INFLUX_ADMIN_PASSWORD", "SMARTFARM_INFLUX_READER_PASSWORD"} <= names
    for cls, field in secret_fields:
        others = {env_name(cls, f): "a-real-secret" for c, f in secret_fields if c is cls and f != field}
        for name, value in others.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv(env_name(cls, field), placeholder)
        with pytest.raises(ValidationError, match=f"{env_name(cls, field)} holds a placeholder secret"):
            cls()
        for name in [*others, env_name(cls, field)]:
            monkeypatch.delenv(name)


def test_development_tolerates_placeholders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMARTFARM_PROFILE", raising=False)
    assert MqttSettings().password.get_secret_value() == ""


def test_env_example_lists_every_variable_and_nothing_else() -> None:
    wanted = {"SMARTFARM_PROFILE"} | {env_name(cls, f) for cls in ALL for f in cls.model_fields}
    listed = set(re.findall(r"^(SMARTFARM_[A-Z0-9_]+)=", (repo_root() / ".env.example").read_text(), re.M))
    assert listed == wanted


def test_env_example_loads_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    for line in (repo_root() / ".env.example").read_text().splitlines():
        if line.startswith("SMARTFARM_"):
            name, _, value = line.partition("=")
            monkeypatch.setenv(name, value)
    for cls in ALL:
        cls()


def test_edge_durations_take_seconds_or_iso_8601() -> None:
    from datetime import timedelta

    assert EdgeSettings(duration="5400").duration == timedelta(minutes=90)
    assert EdgeSettings(duration="P2DT6H").duration == timedelta(days=2, hours=6)
    with pytest.raises(ValidationError, match="shard 3/3"):
        EdgeSettings(shard="3/3")


def test_mqtt_over_tls_defaults_to_8883_and_wants_a_certificate_with_its_key(tmp_path: Path) -> None:
    assert (MqttSettings().port, MqttSettings().url) == (1883, "mqtt://127.0.0.1:1883")
    assert MqttSettings(tls=True).url == "mqtts://127.0.0.1:8883"
    assert MqttSettings(tls=True, port=1884).port == 1884, "a port that is set is kept"
    ca = tmp_path / "ca.crt"
    assert MqttSettings().over_tls(ca).model_dump(include={"tls", "ca_file", "port"}) == {
        "tls": True,
        "ca_file": ca,
        "port": 8883,
    }
    assert MqttSettings(port=2000).over_tls(ca).port == 2000
    assert MqttSettings().over_tls(ca, 3000).port == 3000
    with pytest.raises(ValidationError, match="SMARTFARM_MQTT_CERT_FILE and SMARTFARM_MQTT_KEY_FILE go together"):
        MqttSettings(tls=True, cert_file=tmp_path / "device.crt")
