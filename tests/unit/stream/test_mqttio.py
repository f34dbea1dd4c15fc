"""The bridge's fast MQTT receive path against the real Mosquitto: it must hand on exactly what paho would."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from stream.mqttio import BatchingClient, _varint

Received = tuple[str, bytes, int, bool]


def test_varint_reads_mqtt_variable_byte_integers() -> None:
    for value, encoded in [(0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16_383, b"\xff\x7f"),
                           (2_097_152, b"\x80\x80\x80\x01"), (268_435_455, b"\xff\xff\xff\x7f")]:  # fmt: skip
        buf = memoryview(b"\x30" + encoded + b"rest")
        assert _varint(buf, 1, len(buf)) == (value, 1 + len(encoded))
    assert _varint(memoryview(b"\x80\x80"), 0, 2) == (-1, 0), "incomplete"
    assert _varint(memoryview(b"\x80\x80\x80\x80\x01"), 0, 5) == (-1, 0), "longer than 4 bytes"


def publish_packet(
    topic: bytes, payload: bytes, mid: int = 7, flags: int = 0x32, topic_len: int | None = None
) -> bytes:
    """An MQTT 5 PUBLISH (QoS 1 by default) with an empty property block."""
    body = (len(topic) if topic_len is None else topic_len).to_bytes(2, "big") + topic
    body += mid.to_bytes(2, "big") if flags & 0x06 else b""
    body += b"\x00" + payload
    assert len(body) < 128
    return bytes((flags, len(body))) + body


def test_the_parser_takes_whole_publishes_and_leaves_the_rest_to_paho() -> None:
    client = BatchingClient(CallbackAPIVersion.VERSION2, client_id="parser", protocol=mqtt.MQTTv5, manual_ack=True)
    got: list[tuple[str, bytes, int, int, bool]] = []
    client.on_publish_packet = lambda *args: got.append(args)

    def take(data: bytes) -> bool:
        client._rbuf = memoryview(data)
        return client._take_publish()

    good = publish_packet(b"a/b", b"hello", mid=258)
    assert take(good + b"\x30") and got == [("a/b", b"hello", 258, 1, False)] and bytes(client._rbuf) == b"\x30"
    assert take(publish_packet(b"a/b", b"", flags=0x3B)) and got[-1] == ("a/b", b"", 7, 1, True), "DUP, retain"
    assert take(publish_packet(b"q0", b"x", flags=0x30)) and got[-1] == ("q0", b"x", 0, 0, False)
    refused = {
        "QoS 2": publish_packet(b"a", b"x", flags=0x34),
        "topic alias (empty topic)": publish_packet(b"", b"x"),
        "topic longer than the packet": publish_packet(b"a/b", b"x", topic_len=200),
        "split across reads": good[:-2],
        "not a PUBLISH (PUBACK)": b"\x40\x02\x00\x01",
    }
    for case, data in refused.items():
        count = len(got)
        assert not take(data), case
        assert len(got) == count and bytes(client._rbuf) == data, f"{case}: left whole for paho"
