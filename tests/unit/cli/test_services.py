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
