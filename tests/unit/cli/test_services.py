"""The local service launchers, against the real Mosquitto, Kafka and InfluxDB."""

from __future__ import annotations

from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cli.services import Kafka
from cli.services.base import find_binary, tail_of
from cli.services.mosquitto import TUNING
from smartfarm.errors import ServiceMissingError
from smartfarm.settings import MqttSettings
from tests.helpers import repo_root


def client(settings: MqttSettings, client_id: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.connect(settings.host, settings.port, keepalive=settings.keepalive_s)
    return c


def test_a_missing_binary_names_its_install_command() -> None:
    with pytest.raises(ServiceMissingError, match="install it with: sudo apt-get install -y nothing-here"):
        find_binary("smartfarm-no-such-binary", "sudo apt-get install -y nothing-here", extra_dirs=())


def test_missing_kafka_jars_name_the_fetch_command(tmp_path: Path) -> None:
    with pytest.raises(ServiceMissingError, match="smartfarm services fetch-kafka"):
        Kafka(tmp_path / "work", tmp_path / "no-kafka-here")


def test_the_repository_mosquitto_conf_has_the_launchers_tuning() -> None:
    conf = (repo_root() / "mosquitto.conf").read_text()
    for key, value in TUNING.items():
        assert f"\n{key} {value}\n" in conf, f"mosquitto.conf lacks '{key} {value}'"


def test_tail_of_gives_the_last_lines_of_a_log(tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    log.write_bytes(b"".join(f"line {i}\n".encode() for i in range(100)) + b"bad \xff byte\n")
    assert tail_of(log, 3) == "line 98\nline 99\nbad \ufffd byte"
    assert tail_of(tmp_path / "missing.log") == "(no log)"
