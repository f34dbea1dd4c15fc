"""The bridge's fast MQTT receive path against the real Mosquitto: it must hand on exactly what paho would."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cli.services import Mosquitto
from edge.loadgen import publish_messages
from smartfarm.certificates import installation_tls
from smartfarm.mqtt import Session, connect, mqtt_client
from smartfarm.settings import MqttSettings
from stream.mqttio import BatchingClient
from tests.helpers import unique

Received = tuple[str, bytes, int, bool]


def subscribe_paho(broker: Mosquitto, topic: str, got: list[Received]) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("paho-"), protocol=mqtt.MQTTv5)
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda _c, _u, m: got.append((m.topic, m.payload, m.qos, bool(m.retain)))
    client.connect(broker.host, broker.port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    assert subscribed.wait(5)
    return client


def test_the_fast_path_hands_on_what_paho_would(mosquitto: Mosquitto) -> None:
    root = unique("io")
    batching = BatchingClient(
        CallbackAPIVersion.VERSION2, client_id=unique("batch-"), protocol=mqtt.MQTTv5, manual_ack=True
    )
    fast: list[Received] = []
    acked: list[int] = []

    def on_publish(topic: str, payload: bytes, mid: int, qos: int, _dup: bool) -> None:
        fast.append((topic, payload, qos, False))
        if qos:
            acked.append(mid)

    batching.on_publish_packet = on_publish
    batching.on_subscribe = lambda *_: None
    batching.connect(mosquitto.host, mosquitto.port)
    batching.subscribe(f"{root}/#", qos=1)
    batching.flush()
    reference: list[Received] = []
    paho_client = subscribe_paho(mosquitto, f"{root}/#", reference)
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            rc = batching.read_packets(500) if batching.has_buffered else batching.loop(timeout=0.01)
            assert rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN), mqtt.error_string(rc)
            batching.puback(acked)
            acked.clear()
            batching.flush()

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.5)

    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("origin", "test"), ("k", "v" * 300)]
    props.MessageExpiryInterval = 3600
    props.PayloadFormatIndicator = 1
    props.ContentType = "application/json"
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("pub-"), protocol=mqtt.MQTTv5)
    publisher.connect(mosquitto.host, mosquitto.port)
    publisher.loop_start()
    messages = [(f"{root}/a/{i % 7}", f'{{"seq": {i}}}'.encode(), i % 2, None) for i in range(3000)]
    messages += [
        (f"{root}/props", b"with properties", 1, props),
        (f"{root}/empty", b"", 1, None),
        (f"{root}/big", bytes(range(256)) * 800, 1, None),  # 200 KiB: spans several reads, goes through paho
        (f"{root}/ünïcode/topic", "payload ü".encode(), 1, None),
        (f"{root}/long/{'x' * 2000}", b"long topic", 0, None),
    ]
    infos = [publisher.publish(t, p, qos=q, properties=pr) for t, p, q, pr in messages]
    for info in infos:
        info.wait_for_publish(10)
    deadline = time.monotonic() + 20
    while (len(fast) < len(messages) or len(reference) < len(messages)) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(5)
    publisher.loop_stop()
    paho_client.loop_stop()
    in_flight = len(batching._out_messages)
    batching.disconnect()

    sent = [(t, p, q, False) for t, p, q, _ in messages]
    for qos in (0, 1):  # MQTT keeps order within a QoS level, not across levels
        assert (
            [m for m in fast if m[2] == qos]
            == [m for m in reference if m[2] == qos]
            == [m for m in sent if m[2] == qos]
        )
    # How many lie whole in one read depends on how the broker's bytes arrive (over 83% in earlier runs, 82% once
    # under load); "most" is the claim, the equality with paho above is the test.
    assert batching.parsed_here > len(messages) // 2, "most packets took the fast path"
    assert batching.parsed_here < len(messages), "some went through paho (at least the one that spans reads)"
    assert in_flight == 0


def test_unacknowledged_messages_come_back_and_acknowledged_ones_do_not(mosquitto: Mosquitto) -> None:
    """PUBACKs written by ``puback`` are real acknowledgements: after a reconnect only the others return."""
    root = unique("ack")
    client_id = unique("batch-")
    got: list[tuple[str, int, bool]] = []

    def session() -> BatchingClient:
        client = BatchingClient(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True)
        client.on_publish_packet = lambda t, _p, mid, _q, dup: got.append((t, mid, dup))
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 300
        client.connect(mosquitto.host, mosquitto.port, clean_start=False, properties=props)
        return client

    def pump(client: BatchingClient, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            client.read_packets(500) if client.has_buffered else client.loop(timeout=0.01)
            client.flush()

    first = session()
    first.subscribe(f"{root}/#", qos=1)
    first.flush()
    pump(first, 0.5)
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("pub-"), protocol=mqtt.MQTTv5)
    publisher.connect(mosquitto.host, mosquitto.port)
    publisher.loop_start()
    for i in range(10):
        publisher.publish(f"{root}/{i}", b"x", qos=1).wait_for_publish(5)
    pump(first, 1.0)
    assert [t for t, _, _ in got] == [f"{root}/{i}" for i in range(10)]
    first.puback(mid for _, mid, _ in got[:6])
    first.flush()
    pump(first, 0.5)
    first._sock_close()  # dropped without DISCONNECT: the session keeps what was not acknowledged
    got.clear()

    second = session()
    pump(second, 1.5)
    publisher.loop_stop()
    assert [(t, dup) for t, _, dup in got] == [(f"{root}/{i}", True) for i in range(6, 10)]
    second.puback(mid for _, mid, _ in got)
    second.flush()
    second.disconnect()


def test_a_publish_that_comes_alone_takes_the_fast_path(mosquitto: Mosquitto) -> None:
    """Under live load most reads find one packet: ``wait_and_read`` fills its buffer before parsing, so that one
    is parsed here too rather than read by paho byte by byte (and it is still handed on exactly)."""
    root = unique("alone")
    client = BatchingClient(
        CallbackAPIVersion.VERSION2, client_id=unique("batch-"), protocol=mqtt.MQTTv5, manual_ack=True
    )
    got: list[tuple[str, bytes]] = []

    def on_publish(topic: str, payload: bytes, mid: int, _qos: int, _dup: bool) -> None:
        got.append((topic, payload))
        client.puback([mid])

    client.on_publish_packet = on_publish
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect(mosquitto.host, mosquitto.port)
    client.subscribe(f"{root}/#", qos=1)

    def pump(until: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 5
        while not until() and time.monotonic() < deadline:
            client.wait_and_read(0.01, 500)
            client.flush()

    pump(subscribed.is_set)
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("pub-"), protocol=mqtt.MQTTv5)
    publisher.connect(mosquitto.host, mosquitto.port)
    publisher.loop_start()
    sent = [(f"{root}/d/{i}", f'{{"seq": {i}}}'.encode()) for i in range(20)]
    for n, (topic, payload) in enumerate(sent, 1):
        publisher.publish(topic, payload, qos=1).wait_for_publish(5)
        pump(lambda n=n: len(got) >= n)
    publisher.loop_stop()
    client.disconnect()
    assert got == sent
    assert client.parsed_here == len(sent), "each one alone in its read, and parsed here"


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A broker of this module's own that listens over TLS only, with a CA made for it."""
    folder = tmp_path_factory.mktemp("tls-broker")
    with Mosquitto(folder / "broker", tls=installation_tls(folder / "tls")) as broker:
        yield broker


def test_over_tls_a_full_socket_keeps_every_acknowledgement_and_writes_it_once(tls_broker: Mosquitto) -> None:
    """Over TLS a write the socket cannot take raises SSLWantWriteError: the acknowledgements must stay and go
    later, once each. A small send buffer and thousands of PUBACKs written at once make it happen; afterwards the
    session holds nothing unacknowledged (nothing comes back on reconnecting) and nothing came twice."""
    settings = tls_broker.client_settings(MqttSettings(topic_root=unique("tls")))
    root = settings.topic_root
    client_id = unique("batch-")
    got: list[tuple[str, int, bool]] = []
    subscribed = threading.Event()

    def session() -> BatchingClient:
        client = mqtt_client(settings, client_id, cls=BatchingClient, manual_ack=True)
        client.on_publish_packet = lambda t, _p, mid, _q, dup: got.append((t, mid, dup))
        client.on_subscribe = lambda *_: subscribed.set()
        connect(client, settings, Session(expiry_s=300), background=False)
        sock = client.socket()
        assert isinstance(sock, ssl.SSLSocket), "the client speaks TLS by its settings alone"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        return client

    def pump(client: BatchingClient, until: Callable[[], bool], seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not until() and time.monotonic() < deadline:
            client.wait_and_read(0.01, 500)
            client.flush()
        return until()

    first = session()
    first.subscribe(f"{root}/#", qos=1)
    first.flush()
    assert pump(first, subscribed.is_set, 5)
    publisher = mqtt_client(settings, unique("pub-"))
    connect(publisher, settings, background=False)
    publisher.loop_start()
    count = 20_000
    payload = b"x" * 120
    infos = [publisher.publish(f"{root}/d/{i % 50}", payload, qos=1) for i in range(count)]
    assert pump(first, lambda: len(got) >= count, 60), f"{len(got)} of {count} arrived"
    for info in infos:
        info.wait_for_publish(10)
    publisher.loop_stop()
    publisher.disconnect()
    assert len({mid for _, mid, _ in got}) == count and not any(dup for _, _, dup in got), "each came once"
    assert first.parsed_here > count // 2, "most took the fast path over TLS too"

    first.puback(mid for _, mid, _ in got)  # 80 KB of acknowledgements at once, into a 4 KiB send buffer
    partial = 0
    while not first.flush():
        partial += 1
        first.wait_and_read(0.01, 500)  # waits for room, and writes on
        assert partial < 10_000, "the acknowledgements stalled"
    assert pump(first, lambda: False, 0.5) is False and len(got) == count, "no message came again"
    first._sock_close()  # dropped without DISCONNECT: the session keeps what was not acknowledged
    got.clear()

    second = session()
    pump(second, lambda: False, 1.5)
    second.disconnect()
    assert got == [], "every message was acknowledged, none comes back"
    assert partial > 0, "the socket could not take them all at once (the case under test)"


def test_over_tls_a_read_that_ends_inside_a_packet_reads_on(tls_broker: Mosquitto) -> None:
    """A TLS read returns one record (one packet, as Mosquitto writes them). The packet a chunk cuts in two is
    finished by paho's read, which must read a chunk too: were it one record, the turn would end there with
    ``behind`` saying nothing waits, and the bridge would pause with a backlog waiting (it once ran at a third of
    its speed over TLS)."""
    settings = tls_broker.client_settings(MqttSettings(topic_root=unique("behind")))
    client_id = unique("batch-")
    got: list[int] = []
    subscribed = threading.Event()

    def session() -> BatchingClient:
        client = mqtt_client(settings, client_id, cls=BatchingClient, manual_ack=True)
        client.on_publish_packet = lambda _t, _p, mid, _q, _d: got.append(mid)
        client.on_subscribe = lambda *_: subscribed.set()
        connect(client, settings, Session(expiry_s=300), background=False)
        client.flush()  # the CONNECT
        return client

    first = session()
    first.subscribe(f"{settings.topic_root}/#", qos=1)
    first.flush()
    while not subscribed.is_set():
        first.wait_and_read(0.05, 10)
    first._sock_close()  # the session queues what comes next: 300 KB, far more than one 64 KiB read
    publish_messages(settings, [(f"{settings.topic_root}/d", b"x" * 1000) for _ in range(300)], client_id=unique("p"))
    second = session()
    time.sleep(0.5)  # the CONNACK and the queue arrive
    second.read_packets(10_000)  # the packets read at once, a chunk's end cutting one of them
    assert len(got) == 300 or second.behind or second.has_buffered, (
        f"{len(got)} of 300 read, and the client does not know that more waits"
    )
    second.disconnect()
