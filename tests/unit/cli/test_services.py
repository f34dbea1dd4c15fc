"""The local service launchers, against the real Mosquitto, Kafka and InfluxDB."""

from __future__ import annotations

from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cli.services import Kafka, Mosquitto
from cli.services.base import find_binary, tail_of
from cli.services.mosquitto import CLIENT_CERT_LINES, TUNING, tls_lines
from smartfarm.certificates import TlsFiles
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


def test_a_tls_broker_has_no_plaintext_listener_and_its_certificate_listener_asks_for_one(tmp_path: Path) -> None:
    files = TlsFiles(tmp_path / "tls")  # the config names the files; none is read here
    broker = Mosquitto(tmp_path / "broker", port=18883, tls=files, client_certs=True, cert_port=18884)
    lines = broker.config().splitlines()
    assert [line for line in lines if line.startswith("listener ")] == [
        "listener 18883 127.0.0.1",
        "listener 18884 127.0.0.1",
    ]
    tls = tls_lines(str(files.ca_file), str(files.cert_file), str(files.key_file))
    first, second = lines.index("listener 18883 127.0.0.1"), lines.index("listener 18884 127.0.0.1")
    assert lines[first + 1 : second] == tls, "the TLS listener: the CA, the certificate, TLS 1.2 at least"
    assert lines[second + 1 : second + 7] == [*tls, *CLIENT_CERT_LINES]
    assert broker.ports() == [18883, 18884] and broker.url == "mqtts://127.0.0.1:18883"
    settings = broker.client_settings(MqttSettings(topic_root="t"))
    assert (settings.tls, settings.ca_file, settings.port, settings.topic_root) == (True, files.ca_file, 18883, "t")
    plain = Mosquitto(tmp_path / "plain", port=11883, client_certs=True)
    assert plain.cert_port is None and not plain.client_settings(MqttSettings()).tls
    assert "cafile" not in plain.config() and "listener 11883 127.0.0.1\n" in plain.config()
