"""The project's exceptions: one root, a few typed subclasses that carry what a caller needs.

Third-party errors are translated at the boundary with ``raise X(...) from exc``.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic_core import PydanticCustomError


class RejectReason(StrEnum):
    """Why a message was refused. The value is the reason code written on dead-letter records."""

    PAYLOAD_TOO_LARGE = "payload_too_large"
    """The payload is over the contract's size limit."""
    EMPTY_PAYLOAD = "empty_payload"
    """The payload has no bytes at all."""
    NOT_UTF8 = "not_utf8"
    """The bytes do not decode as UTF-8."""
    INVALID_JSON = "invalid_json"
    """The text is not a JSON document."""
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
    """The payload names a schema version this build does not read."""
    INVALID_PAYLOAD = "invalid_payload"
    """Valid JSON that breaks the contract: a missing field, a wrong type, an unknown field, a bad value."""
    UNKNOWN_TOPIC = "unknown_topic"
    """The MQTT topic is outside the topic scheme."""
    UNKNOWN_DEVICE = "unknown_device"
    """The device is not in the farm layout."""
    DEVICE_MISMATCH = "device_mismatch"
    """The payload names another device than the MQTT topic it was published on."""
    UNKNOWN_SENSOR = "unknown_sensor"
    """A reading names a sensor the device does not have in the layout, or gives it another kind."""
    DUPLICATE_SENSOR = "duplicate_sensor"
    """One message holds two readings of the same sensor."""
    NEGATIVE_SEQUENCE = "negative_sequence"
    """The message's sequence number is below zero."""
    FUTURE_TIMESTAMP = "future_timestamp"
    """The message is stamped further in the future of its receipt than clocks can drift."""
    STALE_TIMESTAMP = "stale_timestamp"
    """The message is stamped further in the past of its receipt than the database keeps (its retention, or the
    worker's ``max_past_s``): a device whose clock reset (a battery swap without GNSS or NTP) stamps 1970 or 2000."""
    STORAGE_REFUSED = "storage_refused"
    """InfluxDB refused the message's points for good (a 4xx answer: beyond the retention policy, a field type
    conflict, a line it cannot parse); its answer is the detail. The message's other points are stored."""


class SmartFarmError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigError(SmartFarmError):
    """Settings or a layout file are wrong; the message names the fix."""


def reject(reason: RejectReason, message: str) -> PydanticCustomError:
    """A validation error that ``Contract.decode`` turns into a ``ContractError`` with ``reason`` (for refusals
    that deserve their own reason code rather than ``invalid_payload``); raise it from a validator."""
    return PydanticCustomError(reason.value, message)


class ContractError(SmartFarmError):
    """A message breaks its wire contract.

    Args:
        reason: the reason code that goes on the dead-letter record.
        detail: a human-readable account of what is wrong, naming the field where there is one.
    """

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class ClockError(ContractError):
    """A message stamped too far from its receipt (``future_timestamp``, ``stale_timestamp``).

    Args:
        skew_s: the stamp minus the receipt, in seconds (negative: the device's clock is behind).
        seq: the message's sequence number.
    """

    def __init__(self, reason: RejectReason, detail: str, skew_s: float, seq: int) -> None:
        super().__init__(reason, detail)
        self.skew_s = skew_s
        self.seq = seq


class ServiceError(SmartFarmError):
    """A local service (Mosquitto, Kafka, InfluxDB) could not be started, reached or stopped."""


class ServiceMissingError(ServiceError):
    """A binary, runtime or jar a service needs is not installed; the message gives the install command."""

    def __init__(self, what: str, install: str) -> None:
        super().__init__(f"{what} is not installed; install it with: {install}")
        self.install = install


class StorageError(SmartFarmError):
    """InfluxDB refused a write or a query.

    Args:
        status: the HTTP status, or None when the server could not be reached.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def transient(self) -> bool:
        """Worth retrying as it is: unreachable or timed out (no status), overloaded (408, 429) or failing (5xx)."""
        return self.status is None or self.status in (408, 429) or self.status >= 500

    @property
    def refuses_data(self) -> bool:
        """The database refused what was sent (400 bad request or partial write, 413 too large), not who sent it:
        sending the same lines again gets the same answer, so the lines it refused are dead-lettered. Any other
        refusal is the configuration's, the same for every batch, never the data's: 401 and 403 (``StorageDenied``:
        credentials, grants) stop the worker with the setting to fix; 404 (a missing database) is retried, loudly,
        until an operator declares it."""
        return self.status in (400, 413, 422)


class StorageDenied(StorageError):
    """InfluxDB refused who asked, not what was asked: a login it does not know (401) or a user without the grant
    (403). Every request gets the same answer until an operator fixes the settings or the grant, so it is neither
    retried as transient nor dead-lettered as the data's fault: the worker stops with it (its batch is redelivered
    once the worker is back), the stack and the CLI print it. The message names the settings of the refused user.

    Args:
        user: the InfluxDB user that was refused ("" when no credentials were sent).
        settings: the variables that set that user's name and password.
    """

    def __init__(self, message: str, status: int, user: str, settings: str) -> None:
        super().__init__(message, status)
        self.user = user
        self.settings = settings


class ProviderError(SmartFarmError):
    """A weather forecast provider could not be asked, or its answer could not be read (``edge.providers``).

    Args:
        status: the HTTP status of the answer, or None when none came (unreachable, timed out).
        transient: worth asking again in a few seconds: unreachable, timed out or failing (5xx). A refusal (4xx)
            or an answer that cannot be read is not, nor is a 429 (unlike ``StorageError.transient``): a provider's
            rate limit (Open-Meteo's are per minute, hour and day) does not lift in the seconds a retry waits.
    """

    def __init__(self, message: str, status: int | None = None, transient: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient


class RegistryError(SmartFarmError):
    """The model registry (MLflow's local store) refused a request, or a registered model could not be loaded.

    Args:
        model: the registered model's name, when the request was about one.
        version: the model version, when the request was about one.
    """

    def __init__(self, message: str, model: str | None = None, version: int | None = None) -> None:
        super().__init__(message)
        self.model = model
        self.version = version


class ModelIntegrityError(RegistryError):
    """A model file does not match the checksum recorded when it was registered (or is gone); it was not unpickled.

    Args:
        expected: the sha256 recorded at registration; None when the version has none.
        actual: the sha256 of the file as found; None when the file is missing.
    """

    def __init__(self, model: str, version: int, expected: str | None, actual: str | None, fix: str) -> None:
        found = f"sha256 {actual}" if actual else "no file"
        super().__init__(
            f"model {model} version {version} failed its integrity check: registered with sha256 {expected}, "
            f"found {found}; refused without unpickling. {fix}",
            model,
            version,
        )
        self.expected = expected
        self.actual = actual
