"""A batch whose handling raises: the record behind it is dead-lettered and the rest handled, never retried for
ever; Kafka or InfluxDB failing is not the data's fault and is raised for the worker to take the batch again."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from aiokafka.errors import KafkaTimeoutError

from smartfarm.errors import RejectReason, StorageDenied, StorageError
from smartfarm.records import DeadLetter, RejectStage
from stream.worker import infrastructure, isolating


@dataclass(frozen=True)
class Message:
    value: bytes
    offset: int
    key: bytes = b"dev-1"
    topic: str = "t.telemetry.raw"
    partition: int = 2

    @property
    def tp(self) -> tuple[str, int]:
        return (self.topic, self.partition)


@dataclass(frozen=True)
class Event:
    message: Message


def events(*values: bytes) -> list[Event]:
    return [Event(Message(v, i)) for i, v in enumerate(values)]


class Stage:
    """Handles records, raising on a poisoned one, as a stage with a bug for some input would."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.handled: list[bytes] = []
        self.letters: list[tuple[bytes, DeadLetter]] = []
        self.fail = fail

    async def handle(self, batch: Sequence[Event]) -> bool:
        if any(e.message.value == b"poison" for e in batch):
            raise self.fail or ZeroDivisionError("a bug that only this input reaches")
        self.handled += [e.message.value for e in batch]
        return True

    async def dead_letters(self, letters: Sequence[tuple[bytes, DeadLetter]]) -> None:
        self.letters += letters


def run(stage: Stage, batch: list[Event]) -> bool:
    return asyncio.run(isolating(batch, stage.handle, stage.dead_letters, RejectStage.AGGREGATE))  # type: ignore[arg-type]


def test_a_batch_that_handles_is_handled_once() -> None:
    stage = Stage()
    assert run(stage, events(b"a", b"b")) is True
    assert stage.handled == [b"a", b"b"] and stage.letters == []


def test_the_record_a_stage_raises_on_is_dead_lettered_and_the_others_are_handled() -> None:
    stage = Stage()
    assert run(stage, events(b"a", b"poison", b"c", b"poison")) is True
    assert stage.handled == [b"a", b"c"]
    assert [(key, letter.reason, letter.stage, letter.source_offset) for key, letter in stage.letters] == [
        (b"dev-1", RejectReason.INVALID_PAYLOAD, RejectStage.AGGREGATE, 1),
        (b"dev-1", RejectReason.INVALID_PAYLOAD, RejectStage.AGGREGATE, 3),
    ]
    assert "ZeroDivisionError" in stage.letters[0][1].detail and stage.letters[0][1].payload == b"poison"


@pytest.mark.parametrize(
    "failure",
    [
        KafkaTimeoutError(),
        TimeoutError(),
        ConnectionRefusedError(),
        StorageError("unreachable", None),
        StorageDenied("refused 401: set SMARTFARM_INFLUX_USERNAME", 401, "w", "SMARTFARM_INFLUX_USERNAME"),
        StorageDenied("refused 403: lacks the grant", 403, "w", "SMARTFARM_INFLUX_USERNAME"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_kafka_or_the_database_failing_is_raised_not_dead_lettered(failure: Exception) -> None:
    stage = Stage(failure)
    with pytest.raises(type(failure)):
        run(stage, events(b"a", b"poison"))
    assert stage.letters == [] and infrastructure(failure)


def test_a_refusal_for_good_is_the_datas() -> None:
    assert not infrastructure(StorageError("InfluxQL refused", 400))
    assert not infrastructure(ValueError("a bug"))
