"""The local service launchers, against the real Mosquitto, Kafka and InfluxDB."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from kafka import KafkaAdminClient
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from pydantic import SecretStr

from cli.services import Kafka, Mosquitto
from cli.services.base import port_open
from smartfarm.errors import ServiceError
from smartfarm.settings import MqttSettings
from stream.admin import check_login
from tests.integration.pipeline import kafka_client


def client(settings: MqttSettings, client_id: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.connect(settings.host, settings.port, keepalive=settings.keepalive_s)
    return c


def test_mqtt_qos1_publish_and_subscribe_round_trip(mqtt_settings: MqttSettings) -> None:
    topic = mqtt_settings.topics.telemetry("f", "d-1")
    got: list[tuple[str, bytes, int]] = []
    subscribed, done = threading.Event(), threading.Event()
    total = 500

    sub = client(mqtt_settings, "sub-1")
    sub.on_subscribe = lambda *a: subscribed.set()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        got.append((msg.topic, msg.payload, msg.qos))
        if len(got) == total:
            done.set()

    sub.on_message = on_message
    sub.subscribe(mqtt_settings.topics.device_filter(mqtt_settings.topics.parse_device(topic).kind), qos=1)
    sub.loop_start()
    pub = client(mqtt_settings, "pub-1")
    pub.loop_start()
    try:
        assert subscribed.wait(5)
        infos = [pub.publish(topic, f"m{i}".encode(), qos=1) for i in range(total)]
        for info in infos:
            info.wait_for_publish(10)
            assert info.rc == mqtt.MQTT_ERR_SUCCESS
        assert done.wait(10), f"received {len(got)} of {total}"
    finally:
        pub.loop_stop()
        sub.loop_stop()
        pub.disconnect()
        sub.disconnect()
    assert [p for _, p, _ in got] == [f"m{i}".encode() for i in range(total)]
    assert {(t, q) for t, _, q in got} == {(topic, 1)}


def test_mqtt_broker_keeps_a_persistent_sessions_messages(mqtt_settings: MqttSettings) -> None:
    """A subscriber with a persistent session gets what was published while it was away (bridge relies on it)."""
    topic = mqtt_settings.topics.telemetry("f", "d-2")
    props = Properties(mqtt.PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600

    def persistent() -> mqtt.Client:
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"{mqtt_settings.topic_root}-bridge", protocol=mqtt.MQTTv5
        )
        c.connect(mqtt_settings.host, mqtt_settings.port, clean_start=False, properties=props)
        return c

    sub = persistent()
    sub.loop_start()
    sub.subscribe(topic, qos=1)[0]
    time.sleep(0.3)
    sub.loop_stop()
    sub.disconnect()

    pub = client(mqtt_settings, "pub-2")
    pub.loop_start()
    for i in range(50):
        pub.publish(topic, str(i).encode(), qos=1).wait_for_publish(5)
    pub.loop_stop()
    pub.disconnect()

    got: list[bytes] = []
    sub = persistent()
    sub.on_message = lambda _c, _u, msg: got.append(msg.payload)
    sub.loop_start()
    deadline = time.monotonic() + 10
    while len(got) < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    sub.loop_stop()
    sub.disconnect()
    assert got == [str(i).encode() for i in range(50)]


def test_mosquitto_restarts_on_its_port_and_stops_cleanly(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)
    with broker:
        pid = broker.pid
        assert port_open(broker.port)
        broker.stop()
        assert not port_open(broker.port)
        broker.start()
        assert broker.pid != pid and port_open(broker.port)
    assert not broker.running and not port_open(broker.port)


def test_kafka_keeps_its_topics_across_a_restart(kafka: Kafka) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    try:
        from kafka.admin import NewTopic

        admin.create_topics([NewTopic("restart-check", 2, 1)])
    finally:
        admin.close()
    kafka.stop()
    assert not port_open(kafka.port)
    # A user set after the storage was formatted: the restart sets the SCRAM users over the plaintext listener.
    kafka.scram_users["added-later"] = SecretStr("added-later-password")
    kafka.start()
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    try:
        assert "restart-check" in admin.list_topics()
    finally:
        admin.close()
    sasl = kafka_client(kafka, "restart", sasl=True)
    check_login(sasl, timeout_s=10)  # the user formatted in keeps its password
    check_login(
        sasl.model_copy(update={"sasl_username": "added-later", "sasl_password": SecretStr("added-later-password")})
    )


def test_a_service_that_dies_while_starting_reports_its_log(tmp_path: Path) -> None:
    broken = Mosquitto(tmp_path, password_file=tmp_path / "no-such-passwd")
    with pytest.raises(ServiceError, match="mosquitto exited with code") as caught:
        broken.start()
    assert "no-such-passwd" in str(caught.value)
    assert not broken.running


def test_a_port_in_use_is_refused_rather_than_mistaken_for_ours(tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "first") as first:
        clash = Mosquitto(tmp_path / "second", port=first.port)
        with pytest.raises(ServiceError, match=f"port {first.port} is already in use"):
            clash.start()


def test_kafka_formats_storage_whatever_its_cluster_id_starts_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.services import kafka as kafka_module
    from cli.services.settings import ServicesSettings

    monkeypatch.setattr(kafka_module, "new_cluster_id", lambda: "-AbCdEfGhIjKlMnOpQrStUw")
    broker = Kafka(tmp_path, ServicesSettings().kafka_home)
    broker.prepare()
    assert "cluster.id=-AbCdEfGhIjKlMnOpQrStUw" in (tmp_path / "data" / "meta.properties").read_text()
