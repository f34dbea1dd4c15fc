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


def test_scram_users_are_formatted_with_salted_passwords_for_both_mechanisms() -> None:
    """``--add-scram`` values as Kafka's ScramParser reads them: the password itself stays off the command line, so
    a comma in it cannot cut the value; the salted password is PBKDF2 of the password (SCRAM's ``Hi``)."""
    import base64
    import hashlib

    from cli.services.kafka import SCRAM_ITERATIONS, scram_arguments

    salt = bytes(range(32))
    arguments = scram_arguments("svc", "pa,ss=w]ord", salt)
    assert [a.split("=", 1)[0] for a in arguments] == ["SCRAM-SHA-512", "SCRAM-SHA-256"]
    for argument, digest in zip(arguments, ("sha512", "sha256"), strict=True):
        assert "pa,ss" not in argument
        inside = argument.split("=", 1)[1]
        assert inside.startswith("[") and inside.endswith("]")
        fields = dict(part.split("=", 1) for part in inside[1:-1].split(","))
        assert fields["name"] == "svc" and int(fields["iterations"]) == SCRAM_ITERATIONS
        assert base64.b64decode(fields["salt"]) == salt
        expected = hashlib.pbkdf2_hmac(digest, b"pa,ss=w]ord", salt, SCRAM_ITERATIONS)
        assert base64.b64decode(fields["saltedpassword"]) == expected


def test_a_kafka_with_scram_users_has_a_sasl_listener_beside_the_plaintext_one(tmp_path: Path) -> None:
    from pydantic import SecretStr

    from cli.services.kafka import _COMPLETE

    (tmp_path / _COMPLETE).write_text("")
    plain = Kafka(tmp_path / "plain", tmp_path, port=19092)
    assert "SASL" not in plain.config() and plain.sasl_port is None
    sasl = Kafka(tmp_path / "sasl", tmp_path, port=19092, scram_users={"svc": SecretStr("pw")}, sasl_port=19094)
    props = dict(line.split("=", 1) for line in sasl.config().splitlines())
    assert props["listeners"].split(",")[-1] == "SASL://127.0.0.1:19094"
    assert "SASL:SASL_PLAINTEXT" in props["listener.security.protocol.map"]
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512,SCRAM-SHA-256"
    assert sasl.sasl_bootstrap_servers == "127.0.0.1:19094" and 19094 in sasl.ports()
    assert "pw" not in sasl.config()


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
