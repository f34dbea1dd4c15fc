"""The ``smartfarm`` command: help texts, errors that name the fix, and ``smartfarm up`` for real."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from dotenv import dotenv_values
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from pydantic import SecretStr

from cli.services import free_port
from cli.services.base import port_open
from cli.services.settings import ServicesSettings
from smartfarm import kafkaclient
from smartfarm.certificates import TlsFiles
from smartfarm.errors import ContractError, ServiceError, StorageDenied
from smartfarm.mqtt import connect, mqtt_client
from smartfarm.settings import InfluxSettings, KafkaSecurity, KafkaSettings, MqttSettings, environment
from smartfarm.telemetry import Telemetry
from smartfarm.topics import KafkaTopic, topic_specs
from storage.influx import InfluxClient
from stream.admin import check_login
from tests.integration.pipeline import plaintext_answers

KAFKA_PASSWORD = "stack-kafka-password"


@pytest.mark.long(36)
def test_up_runs_the_local_stack_until_sigterm(tmp_path: Path) -> None:
    """The stack as `smartfarm up` runs it with its documented Kafka login (SMARTFARM_KAFKA_SECURITY_PROTOCOL):
    its own Kafka's SASL listener at the configured address, and the bridge, workers, API and broker-auth
    follower logging in with SCRAM."""
    mqtt_port, kafka_port, influx_port, api_port = free_port(), free_port(), free_port(), free_port()
    kafka = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{kafka_port}",
        security_protocol=KafkaSecurity.SASL_PLAINTEXT,
        sasl_username="stack",
        sasl_password=SecretStr(KAFKA_PASSWORD),
    )
    env = {
        **environment(kafka),
        **os.environ,
        "SMARTFARM_API_PORT": str(api_port),
        "SMARTFARM_SERVICES_CACHE_DIR": str(ServicesSettings().cache_dir),
        "SMARTFARM_MQTT_USERNAME": "ops",
        "SMARTFARM_MQTT_PASSWORD": "ops-password",
        "SMARTFARM_EDGE_SPEED": "3600",
        "SMARTFARM_BRIDGE_METRICS_PORT": "0",
        "SMARTFARM_WORKER_METRICS_PORT": "0",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "up",
            "--workdir",
            str(tmp_path / "stack"),
            "--port",
            str(mqtt_port),
            "--bootstrap-servers",
            f"127.0.0.1:{kafka_port}",
            "--url",
            f"http://127.0.0.1:{influx_port}",
            "--database",
            "farmdb",
            "--no-train",
            "--prometheus-port",
            str(free_port()),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "smartfarm up exited early:\n" + "".join(lines)
            lines.append(line)
            if "data and logs in" in line:
                break
        output = "".join(lines)
        assert f"{len(KafkaTopic)} topics created under smartfarm." in output
        assert f"127.0.0.1:{kafka_port} (SASL SCRAM-SHA-512)" in output
        with pytest.raises(ServiceError, match="did not answer a PLAINTEXT client"):
            check_login(kafka.model_copy(update={"security_protocol": KafkaSecurity.PLAINTEXT}), timeout_s=3)

        tls = TlsFiles(tmp_path / "stack" / "tls")
        assert stat.S_IMODE(tls.ca_key.stat().st_mode) == stat.S_IMODE(tls.key_file.stat().st_mode) == 0o600
        assert not plaintext_answers("127.0.0.1", mqtt_port), "up's broker speaks TLS only"
        over_tls = MqttSettings(port=mqtt_port, tls=True, ca_file=tls.ca_file)
        telemetry: list[bytes] = []
        client = mqtt_client(
            over_tls.model_copy(update={"username": "ops", "password": SecretStr("ops-password")}), "probe"
        )
        client.on_message = lambda _c, _u, msg: telemetry.append(msg.payload)
        connect(client, over_tls, background=False)
        client.subscribe("smartfarm/v1/+/devices/+/telemetry", qos=1)
        client.loop_start()
        deadline = time.monotonic() + 20
        while len(telemetry) < 120 and time.monotonic() < deadline:  # every device, the slower to connect too
            time.sleep(0.1)
        client.loop_stop()
        client.disconnect()
        assert len(_devices(telemetry)) >= 10

        answers: list[object] = []
        anonymous = mqtt_client(over_tls, "anonymous")
        anonymous.on_connect = lambda _c, _u, _f, reason, _p: answers.append(reason)
        connect(anonymous, over_tls, background=False)
        while not answers:
            anonymous.loop(timeout=0.2)
        anonymous.disconnect()
        assert str(answers[0]) == "Not authorized", "the broker refuses clients without credentials"
        admin = KafkaAdminClient(**kafkaclient.kafka_python(kafka))
        topics = {t for t in admin.list_topics() if t.startswith("smartfarm.")}
        assert {t for t in topics if not t.startswith("smartfarm.worker-")} == {
            spec.name for spec in topic_specs("smartfarm").values()
        }
        admin.close()
        assert records_arrive(kafka, "smartfarm.telemetry.raw"), "the bridge forwards the farm's telemetry into Kafka"
        assert "Forecasts  simulated provider (seed 42)" in output
        assert records_arrive(kafka, "smartfarm.weather.forecast"), "the simulated provider follows the farm's clock"
        # The writer logs in with the password drawn at the first start; the development default no longer does.
        drawn = dotenv_values(tmp_path / "stack" / "secrets.env")
        writer = InfluxSettings(url=f"http://127.0.0.1:{influx_port}", database="farmdb")
        with pytest.raises(StorageDenied, match="SMARTFARM_INFLUX_PASSWORD"):
            InfluxClient(writer).check_access()
        writer = writer.model_copy(update={"password": SecretStr(drawn["SMARTFARM_INFLUX_PASSWORD"] or "")})
        with InfluxClient(writer) as influx:
            assert {"name": "farmdb"} in influx.query("SHOW DATABASES")
            deadline = time.monotonic() + 60
            stored = 0
            while stored < 24 * 3 and time.monotonic() < deadline:
                rows = influx.query("SELECT count(value) AS n FROM reading")
                stored = int(rows[0]["n"]) if rows else 0
                time.sleep(0.5)
            assert stored >= 24 * 3, "the worker stores the farm's readings in InfluxDB"
            windows: list = []
            while not windows and time.monotonic() < deadline + 30:
                windows = influx.query("SELECT count FROM zone_aggregate LIMIT 1")
                time.sleep(0.5)
            assert windows, "the zone agent aggregates the farm's readings by event time"

        assert f"API        http://127.0.0.1:{api_port}" in output
        farm, token = (tmp_path / "stack" / "api-tokens.txt").read_text().split()
        request = urllib.request.Request(
            f"http://127.0.0.1:{api_port}/farms/{farm}/zones", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            zones = json.loads(response.read())
        assert [z["id"] for z in zones] == ["tomato-north", "maize-east", "lettuce-south", "vineyard-west"]
        assert registered_device_logs_in(api_port, farm, token, tmp_path)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    for port in (mqtt_port, kafka_port, influx_port, api_port):
        assert not port_open(port), f"port {port} still open after smartfarm up stopped"
    logged = [p for p in (tmp_path / "stack").rglob("*.log") if KAFKA_PASSWORD in p.read_text(errors="replace")]
    assert not logged and KAFKA_PASSWORD not in output, f"the Kafka password is logged in {logged}"


def records_arrive(kafka: KafkaSettings, topic: str, timeout_s: float = 20) -> bool:
    """Whether ``topic`` holds a record within ``timeout_s``."""
    consumer = KafkaConsumer(**kafkaclient.kafka_python(kafka))
    partitions = [TopicPartition(topic, p) for p in range(6)]
    deadline = time.monotonic() + timeout_s
    while sum(consumer.end_offsets(partitions).values()) < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    found = sum(consumer.end_offsets(partitions).values()) >= 1
    consumer.close()
    return found


def registered_device_logs_in(api_port: int, farm: str, token: str, tmp_path: Path) -> bool:
    """A device registered through up's API can log in to up's broker soon after, configured as the API's answer
    says (mqtts:// and the CA to verify the broker with): its credentials follow."""
    device = {"id": "soil-new-1", "zone": "tomato-north", "sensors": [{"id": "bat", "kind": "battery"}]}
    register = urllib.request.Request(
        f"http://127.0.0.1:{api_port}/farms/{farm}/devices",
        data=json.dumps(device).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(register, timeout=30) as response:
        login = json.loads(response.read())["mqtt"]
    broker = urlsplit(login["broker"])
    assert broker.scheme == "mqtts" and broker.hostname and broker.port
    ca_file = tmp_path / "device-ca.crt"
    ca_file.write_text(login["ca_pem"])
    settings = MqttSettings(
        host=broker.hostname,
        port=broker.port,
        tls=True,
        ca_file=ca_file,
        username=login["username"],
        password=SecretStr(login["password"]),
    )
    answers: list[object] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not answers or str(answers[-1]) != "Success"):
        probe = mqtt_client(settings, "soil-new-1")
        probe.on_connect = lambda _c, _u, _f, reason, _p: answers.append(reason)
        connect(probe, settings, background=False)
        began = len(answers)
        while len(answers) == began and time.monotonic() < deadline:
            probe.loop(timeout=0.2)
        probe.disconnect()
        time.sleep(0.5)
    return bool(answers) and str(answers[-1]) == "Success"


def _devices(telemetry: list[bytes]) -> set[str]:
    """The devices of the well-formed messages (the farm sends malformed ones at its fault rate)."""
    devices = set()
    for payload in telemetry:
        with contextlib.suppress(ContractError):
            devices.add(Telemetry.decode(payload).device)
    return devices
