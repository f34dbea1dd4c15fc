"""The bridge's kafka-python producer settings, held against kafka-python's own check: it refuses a producer whose
delivery timeout is below its linger plus its request timeout (before, a bridge set to a delivery timeout of 30 s
or less could not start its egress)."""

from __future__ import annotations

import pytest
from kafka.errors import KafkaConfigurationError
from kafka.producer.record_accumulator import RecordAccumulator

from stream.producer import request_timeout_ms
from stream.settings import BridgeSettings


def accumulator(delivery_ms: int, linger_ms: int, request_ms: int) -> RecordAccumulator:
    return RecordAccumulator(delivery_timeout_ms=delivery_ms, linger_ms=linger_ms, request_timeout_ms=request_ms)


@pytest.mark.parametrize("delivery_ms", [1000, 5000, 30_000, 30_050, 60_000, 600_000])
@pytest.mark.parametrize("linger_ms", [0, 5, 50, 500])
def test_kafka_python_takes_the_bridges_timeouts(delivery_ms: int, linger_ms: int) -> None:
    bridge = BridgeSettings(bridge_id="b", delivery_timeout_ms=delivery_ms, linger_ms=linger_ms)
    request = request_timeout_ms(bridge)
    assert 0 < request <= 30_000
    accumulator(delivery_ms, linger_ms, request)


def test_the_old_request_timeout_was_refused_and_the_default_keeps_30_s() -> None:
    with pytest.raises(KafkaConfigurationError):
        accumulator(5000, 50, 5000 - 1)
    assert request_timeout_ms(BridgeSettings(bridge_id="b")) == 30_000
