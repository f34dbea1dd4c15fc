"""What every wire contract shares: a versioned, strict pydantic base and bytes <-> model translation.

A contract model refuses unknown fields, names its schema version, and is parsed from bytes through
``decode`` so that every rejection carries a ``RejectReason`` for the dead-letter record.
"""

from __future__ import annotations

import contextlib
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Self

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, ValidationError, field_validator

from smartfarm.errors import ContractError, RejectReason


class Strict(BaseModel):
    """Immutable, refuses unknown fields and non-finite numbers: the base of every wire model and part."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @classmethod
    def trusted(cls, **fields: Any) -> Self:
        """A model built from values the caller already validated, with every field given: what
        ``model_construct`` builds (equal, and encoded alike), at a quarter of its cost, which loops over the
        fields in Python for defaults and aliases. For the clean stage's hot path (nine models per device
        message); ``tests/unit/smartfarm/test_contract.py`` holds the two alike."""
        model = cls.__new__(cls)
        object.__setattr__(model, "__dict__", fields)
        object.__setattr__(model, "__pydantic_fields_set__", set(fields))
        object.__setattr__(model, "__pydantic_extra__", None)
        object.__setattr__(model, "__pydantic_private__", None)
        return model


class Contract(Strict):
    """Base of every top-level message model. Subclasses set ``SCHEMA_VERSION`` and ``MAX_BYTES``."""

    SCHEMA_VERSION: ClassVar[int] = 1
    MAX_BYTES: ClassVar[int] = 64 * 1024

    schema_version: int

    @field_validator("schema_version", mode="before")
    @classmethod
    def _known_version(cls, value: Any) -> Any:
        if value != cls.SCHEMA_VERSION:
            raise ValueError(f"unknown schema_version {value!r}; this build reads {cls.SCHEMA_VERSION}")
        return value

    @classmethod
    def create(cls, **fields: Any) -> Self:
        """Build a message of the current schema version."""
        return cls(schema_version=cls.SCHEMA_VERSION, **fields)

    def encode(self) -> bytes:
        """The message as compact UTF-8 JSON."""
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Parse and validate ``data``; raise ContractError with the reason code when it breaks the contract.

        A valid message is parsed by pydantic's own JSON parser in one step (about twice as fast as ``json.loads``
        and validating the objects); one it refuses is read again the slow way, which tells the reasons apart."""
        text = check_bytes(data, cls.MAX_BYTES, cls.__name__)
        with contextlib.suppress(ValidationError, RecursionError):
            return cls.model_validate_json(data)
        try:
            obj = loads_on_any_stack(text)
        except RecursionError as exc:  # deeply nested arrays or objects
            raise ContractError(RejectReason.INVALID_JSON, f"{cls.__name__}: nested too deeply") from exc
        except ValueError as exc:  # JSONDecodeError, and integers over Python's 4,300-digit limit
            raise ContractError(RejectReason.INVALID_JSON, f"{cls.__name__}: {exc}") from exc
        if isinstance(obj, dict) and "schema_version" in obj and obj["schema_version"] != cls.SCHEMA_VERSION:
            raise ContractError(
                RejectReason.UNKNOWN_SCHEMA_VERSION,
                f"{cls.__name__}: schema_version {obj['schema_version']!r} is unknown; "
                f"this build reads {cls.SCHEMA_VERSION}",
            )
        try:
            return cls.model_validate(obj)
        except ValidationError as exc:
            raise ContractError(reason_of(exc), describe(cls.__name__, exc)) from exc
        except RecursionError as exc:  # a nesting json.loads took but validation cannot walk
            raise ContractError(RejectReason.INVALID_PAYLOAD, f"{cls.__name__}: nested too deeply") from exc


def loads_on_any_stack(text: str) -> Any:
    """``json.loads``, with the same verdict on nesting wherever it is called. The parser's recursion counts against
    the caller's stack: deep in an event loop (a Faust agent), a value nested 200 deep ran out of room that a
    shallow caller had, and a payload's reason changed with where it was decoded. So a parse that runs out of room
    is tried once more on a fresh thread's stack; RecursionError there means the payload itself nests too deep."""
    try:
        return json.loads(text)
    except RecursionError:
        pass
    found: list[Any] = []
    failed: list[BaseException] = []

    def parse() -> None:
        try:
            found.append(json.loads(text))
        except BaseException as exc:  # handed to the caller's thread below, as raised
            failed.append(exc)

    thread = threading.Thread(target=parse, name="json-fresh-stack")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return found[0]


def check_bytes(data: bytes, max_bytes: int, what: str) -> str:
    """``data`` as text if it is non-empty, within ``max_bytes`` and UTF-8; ContractError naming ``what`` if not."""
    if not data:
        raise ContractError(RejectReason.EMPTY_PAYLOAD, f"{what}: the payload is empty")
    if len(data) > max_bytes:
        raise ContractError(
            RejectReason.PAYLOAD_TOO_LARGE, f"{what}: {len(data)} bytes is over the {max_bytes}-byte limit"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContractError(RejectReason.NOT_UTF8, f"{what}: byte {exc.start} is not UTF-8") from exc


_REASONS = {reason.value: reason for reason in RejectReason}


def reason_of(exc: ValidationError) -> RejectReason:
    """The reason code a validator raised with ``smartfarm.errors.reject``, else ``INVALID_PAYLOAD``."""
    for err in exc.errors(include_url=False):
        reason = _REASONS.get(err["type"])
        if reason is not None:
            return reason
    return RejectReason.INVALID_PAYLOAD


def describe(model: str, exc: ValidationError) -> str:
    """One line naming each offending field and what is wrong with it."""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(message)"
        parts.append(f"{where}: {err['msg']}")
    return f"{model}: " + "; ".join(parts)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def epoch_us(when: datetime) -> int:
    """Whole microseconds since the epoch of a timezone-aware time, exactly (no float rounding)."""
    return (when - _EPOCH) // _MICROSECOND


def _not_a_number(value: Any) -> Any:
    # pydantic reads a number as seconds since the epoch, or as milliseconds above 2e10: a guess at the unit.
    if isinstance(value, int | float):
        raise ValueError("a timestamp is ISO 8601 text with an offset, not a number")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_not_a_number)]
"""Timestamps on the wire are ISO 8601 with an offset; naive times and numbers are refused, never guessed."""
