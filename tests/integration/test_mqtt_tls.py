"""MQTT over TLS against the real Mosquitto: who gets in, a device's client certificate bound by the ACL as its
password login is, and readings sent over TLS stored. One TLS broker for the module (``securing(tls=True)``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import SecretStr

from cli.services import Kafka
from edge.loadgen import publish_messages
from smartfarm.certificates import issue_client, new_ca
from smartfarm.credentials import device_password
from smartfarm.mqtt import connect, mqtt_client
from smartfarm.settings import MqttSettings
from storage.influx import InfluxClient
from stream.admin import ensure_topics
from tests.helpers import FLEET_SECRET, unique
from tests.hostile import FARM
from tests.integration.pipeline import (
    SASL_PASSWORD,
    Pipeline,
    SecuredBroker,
    plaintext_answers,
    read_raw,
    securing,
    stored_count,
    telemetry,
    wait_for,
)

OWN, OTHER = "soil-tomato-north-1", "soil-tomato-north-2"
"""Two devices of the layout: the one that logs in, and the one whose topic it must not publish under."""


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBroker]:
    with securing(tmp_path_factory.mktemp("tls"), tls=True, client_certs=True) as broker:
        yield broker


def as_device(broker: SecuredBroker, device: str, certificate: bool = False) -> MqttSettings:
    """Settings that log in as ``device``: with its password, or with a client certificate alone on the
    broker's certificate listener."""
    mosquitto, settings, _ = broker
    if not certificate:
        return settings.model_copy(
            update={"username": device, "password": SecretStr(device_password(FLEET_SECRET, device))}
        )
    assert mosquitto.tls is not None and mosquitto.cert_port is not None
    cert_file, key_file = issue_client(mosquitto.tls, device)
    return settings.model_copy(update={"port": mosquitto.cert_port, "cert_file": cert_file, "key_file": key_file})


def connack(settings: MqttSettings) -> str:
    """The broker's answer to a CONNECT with ``settings``: its reason ("Success", "Not authorized"), or how the
    connection failed."""
    client = mqtt_client(settings, unique("probe-"))
    answers: list[str] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: answers.append(str(reason))
    try:
        connect(client, settings, background=False)
    except OSError as exc:  # ssl.SSLError among them
        return f"refused: {exc}"
    deadline = time.monotonic() + 5
    while not answers and time.monotonic() < deadline:
        rc = client.loop(timeout=0.2)
        if rc != mqtt.MQTT_ERR_SUCCESS and not answers:
            return f"dropped: {mqtt.error_string(rc)}"
    client.disconnect()
    return answers[0] if answers else "no answer"


def test_only_clients_that_trust_the_ca_and_log_in_get_in(tls_broker: SecuredBroker, tmp_path: Path) -> None:
    mosquitto, settings, _ = tls_broker
    other_ca = tmp_path / "other-ca.crt"
    other_ca.write_bytes(new_ca("another installation").cert_pem)
    device = as_device(tls_broker, OWN)
    no_cert = device.model_copy(update={"port": mosquitto.cert_port})
    cases: dict[str, tuple[MqttSettings, str | tuple[str, ...]]] = {
        "the device, trusting the CA": (device, "Success"),
        "a wrong password": (device.model_copy(update={"password": SecretStr("guess")}), "Not authorized"),
        "trusting another CA": (device.model_copy(update={"ca_file": other_ca}), "refused: [SSL: CERTIFICATE_VERIFY"),
        "trusting the system's CAs only": (device.model_copy(update={"ca_file": None}), "refused: [SSL: CERTIFICATE"),
        "a device certificate alone": (as_device(tls_broker, OWN, certificate=True), "Success"),
        # TLS 1.3: the handshake ends before the broker checks the client's certificate, then it hangs up.
        "no certificate on the certificate listener": (no_cert, ("dropped", "refused")),
    }
    answers = {label: connack(s) for label, (s, _) in cases.items()}
    for label, (_, expected) in cases.items():
        assert answers[label].startswith(expected), f"{label}: {answers[label]}"
    assert "certificate verify failed" in answers["trusting another CA"], "the error says why"
    assert not plaintext_answers(settings.host, settings.port), "there is no plaintext listener"


def publish_reasons(settings: MqttSettings, topics: list[str]) -> list[str]:
    """The broker's answer to a QoS 1 message to each topic: "accepted" or its PUBACK's refusal."""
    client = mqtt_client(settings, unique("pub-"))
    reasons: dict[int, str] = {}

    def on_publish(_c: mqtt.Client, _u: object, mid: int, reason: ReasonCode, _p: object) -> None:
        reasons[mid] = str(reason) if reason.is_failure else "accepted"

    client.on_publish = on_publish
    connect(client, settings, background=False)
    client.loop_start()
    try:
        mids = [client.publish(t, b'{"probe": true}', qos=1).mid for t in topics]
        wait_for("the PUBACKs", lambda: len(reasons) == len(mids), 10)
    finally:
        client.loop_stop()
        client.disconnect()
    return [reasons[m] for m in mids]


def test_a_device_certificate_is_bound_by_the_acl_as_its_password_login_is(tls_broker: SecuredBroker) -> None:
    topics = tls_broker[1].topics
    own, others = topics.telemetry(FARM, OWN), topics.telemetry(FARM, OTHER)
    for certificate in (False, True):
        reasons = publish_reasons(as_device(tls_broker, OWN, certificate), [own, others])
        assert reasons == ["accepted", "Not authorized"], f"certificate={certificate}"


def test_readings_sent_over_every_secured_link_are_stored(
    tls_broker: SecuredBroker, kafka: Kafka, influx: InfluxClient, tmp_path: Path
) -> None:
    """The pipeline with every link secured at once: a device with its password and one with its certificate
    publish over TLS; the bridge reads them over TLS and forwards them to Kafka over SCRAM (confluent-kafka), and a
    Faust worker (aiokafka over SCRAM, its layout follower on kafka-python) stores every reading as InfluxDB's
    writer. (One pipeline for TLS and SASL: each costs a worker's start in CI.)"""
    pipeline = Pipeline(tls_broker, kafka, influx, tmp_path, sasl=True)
    try:
        assert pipeline.kafka.sasl and pipeline.kafka.bootstrap_servers == kafka.sasl_bootstrap_servers
        assert ensure_topics(pipeline.kafka) == []  # declared over SASL by the pipeline already
        worker = pipeline.worker()
        worker.wait_ready()
        start = datetime.now(UTC) - timedelta(hours=2)
        for device, certificate in ((OWN, False), (OTHER, True)):
            messages = telemetry(pipeline.mqtt, device, start, range(12), 30.0)
            publish_messages(as_device(tls_broker, device, certificate), messages, client_id=device)
        assert len(read_raw(pipeline.kafka, 2 * 12)) == 2 * 12
        wait_for("every reading", lambda: stored_count(influx) == 2 * 12 * 4)
        rows = influx.query("SELECT seq, value FROM reading WHERE sensor = 'sm-15' GROUP BY device")
        assert sorted((r["device"], r["seq"]) for r in rows) == sorted((d, s) for d in (OWN, OTHER) for s in range(12))
        worker.check()
        assert SASL_PASSWORD.get_secret_value() not in worker.log_path.read_text(), "the worker logs the password"
    finally:
        pipeline.close()
