"""A batch of Faust events: its records as the cleaner reads them, pinned when it must not be acknowledged, and
handled so that one record that breaks the handler is dead-lettered alone instead of stalling its partition."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiokafka.errors import KafkaError
from faust.types import EventT

from smartfarm.errors import ContractError, RejectReason, StorageDenied, StorageError
from smartfarm.records import DeadLetter, RejectStage
from stream.clean import RawMessage

log = logging.getLogger(__name__)


def raw_message(event: EventT) -> RawMessage:
    message = event.message
    pairs = header_pairs(message.headers)
    return RawMessage(message.value or b"", pairs, message.topic, message.partition, message.offset)


def header_pairs(headers: Any) -> list[tuple[str, bytes]]:
    """A record's headers as (name, value) pairs, from faust's headers (a mapping or a list of pairs)."""
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers or ())


def pin(events: Sequence[EventT]) -> None:
    """Keep ``events`` from ever being acknowledged by this worker, so no offset past them is committed."""
    for event in events:
        event.message.incref()


async def isolating(
    events: Sequence[EventT],
    handle: Callable[[Sequence[EventT]], Awaitable[bool]],
    dead_letters: Callable[[Sequence[tuple[bytes, DeadLetter]]], Awaitable[None]],
    stage: RejectStage,
) -> bool:
    """``handle(events)``; if it raises for a reason of the data (anything but ``infrastructure``), the records
    are handled again one at a time and each one that still raises alone goes to ``dead_letters``
    (``invalid_payload``, the error in the detail, logged with its trace), so one bad record never stalls its
    partition and is never retried for ever. Handling a record twice is harmless (points are overwritten, windows
    recomputed, duplicates dropped by sequence number). False if the worker began stopping."""
    try:
        return await handle(events)
    except Exception as exc:
        if infrastructure(exc):
            raise
        log.exception("the %s stage failed on a batch of %d records; handling them one by one", stage, len(events))
    for event in events:
        try:
            if not await handle([event]):
                return False
        except Exception as exc:
            if infrastructure(exc):
                raise
            message = event.message
            log.exception("the %s stage failed on %s offset %s; dead-lettered", stage, message.tp, message.offset)
            error = ContractError(RejectReason.INVALID_PAYLOAD, f"the {stage} stage failed on it: {exc!r}")
            await dead_letters([(message.key or b"unknown", DeadLetter.of_record(error, message, stage))])
    return True


def infrastructure(exc: BaseException) -> bool:
    """Kafka, the network or InfluxDB failing for a while (retrying the same records later can succeed), or
    InfluxDB refusing the worker's login or grant (``StorageDenied``: every record would fail alike until an
    operator fixes it), as against a record whose handling fails for what it holds."""
    if isinstance(exc, StorageError):
        return exc.transient or isinstance(exc, StorageDenied)
    return isinstance(exc, KafkaError | asyncio.TimeoutError | ConnectionError)
