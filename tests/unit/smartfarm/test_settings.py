"""Settings: env prefixes, the production profile's refusal of placeholder secrets, and .env.example."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from api.settings import ApiSettings
from cli.services.settings import ServicesSettings
from edge.settings import EdgeSettings
from smartfarm.settings import (
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


@pytest.mark.parametrize(
    ("cls", "field"),
    [
        (InfluxSettings, "password"),
        (InfluxUsers, "admin_password"),
        (InfluxUsers, "reader_password"),
    ],
)
def test_production_refuses_the_influxdb_users_default_and_placeholder_passwords(
    monkeypatch: pytest.MonkeyPatch, cls: type[BaseSettings], field: str
) -> None:
    monkeypatch.setenv("SMARTFARM_PROFILE", "production")
    for other in ("SMARTFARM_INFLUX_PASSWORD", "SMARTFARM_INFLUX_ADMIN_PASSWORD", "SMARTFARM_INFLUX_READER_PASSWORD"):
        monkeypatch.setenv(other, f"real-{other.lower()}")
    variable = env_name(cls, field)
    monkeypatch.delenv(variable)
    with pytest.raises(ValidationError, match=f"{variable} holds a placeholder secret"):
        cls()  # the development default
    for placeholder in ("", "changeme"):
        monkeypatch.setenv(variable, placeholder)
        with pytest.raises(ValidationError, match=f"{variable} holds a placeholder secret"):
            cls()
    monkeypatch.setenv(variable, "from-the-vault")
    assert getattr(cls(), field).get_secret_value() == "from-the-vault"
    assert "from-the-vault" not in repr(cls())


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
