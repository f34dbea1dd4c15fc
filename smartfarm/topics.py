"""Both topic schemes: the MQTT topics devices and services use, and the pipeline's Kafka topics.

MQTT (``root`` defaults to ``smartfarm``; ``v1`` is the topic scheme's version)::

    {root}/v1/{farm}/devices/{device}/telemetry        device -> broker, QoS 1
    {root}/v1/{farm}/devices/{device}/status           device -> broker, QoS 1, retained (birth, will)
    {root}/v1/{farm}/zones/{zone}/recommendations      bridge -> broker, QoS 1, retained (latest per zone)
    {root}/v1/{farm}/zones/{zone}/commands             bridge -> broker, QoS 1: irrigations people accepted

Devices are addressed by id, not by zone: a device keeps its topics when it is moved to another zone, and the
stream looks its zone up in the farm layout. ``MqttTopics`` builds every topic, parses device topics and renders
the broker's ACL from each user's role (``grants``), so the scheme is written once. Who may do what:

==========================  =========================================  ==========================================
user (name)                 writes                                     reads
==========================  =========================================  ==========================================
device (its id)             its own telemetry and status               its zone's recommendations and commands
valves (valves-i-of-n)      nothing                                    its zones' recommendations and commands
bridge (smartfarm-bridge)   every zone's recommendations, commands     every device's telemetry and status
{farm}.dashboard            nothing                                    everything of its farm
{farm}.advice               nothing                                    its farm's recommendations and commands
==========================  =========================================  ==========================================

Nobody else logs in (no anonymous access), and no user is given the whole root.

Kafka: every topic is ``{prefix}.{name}`` (prefix ``smartfarm`` by default, so that tests and tenants can share a
cluster). Keys are UTF-8 strings; the key decides the partition, and so the order a consumer sees:

===================  =====================  =========================================================
topic                key                    value
===================  =====================  =========================================================
telemetry.raw        none (the partition    an envelope (``smartfarm.envelope``): the device messages of one
                     of its devices' ids)   partition and bridge loop turn, each with its key (device id), MQTT
                                           topic, receipt time and payload bytes untouched; headers
                                           ``envelope``=1 and ``bridge_id``. A record without the header is one
                                           payload keyed by device id, with RawHeaders (a replay tool's)
readings.clean       ``{farm}/{zone}``      ZoneReadings (JSON): a zone's clean messages of one batch, flagged
deadletter           device id, else topic  DeadLetter (JSON)
zone.aggregates      ``{farm}/{zone}``      ZoneAggregate (JSON): 15 min and 1 h windows, revised when late data comes
zone.daily           ``{farm}/{zone}``      ZoneDay (JSON): reference ET and degree days per day
recommendations      ``{farm}/{zone}``      Recommendation (JSON)
device.status        device id              DeviceStatus (JSON), compacted: latest state per device
layout               farm id                Farm (JSON, ``smartfarm.layout``), compacted, one partition: each farm's
                                           zones and active devices as the farm registry holds them now
commands             ``{farm}/{zone}``      IrrigationCommand (JSON): an irrigation a person accepted, for the valve
===================  =====================  =========================================================
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from smartfarm.errors import ContractError, RejectReason
from smartfarm.identifiers import is_identifier

TOPIC_VERSION = "v1"


class DeviceTopic(StrEnum):
    """The kinds of message a device publishes: the last level of its topics."""

    TELEMETRY = "telemetry"
    """Readings of the device's sensors."""
    STATUS = "status"
    """Birth and last-will messages, retained."""


@dataclass(frozen=True, slots=True)
class DeviceAddress:
    """What a device topic names."""

    farm: str
    device: str
    kind: DeviceTopic


_DEVICE_TOPIC_KINDS = {kind.value: kind for kind in DeviceTopic}


@dataclass(frozen=True, slots=True)
class MqttTopics:
    """Builds and parses the MQTT topics under one root, and renders the broker's ACL for them."""

    root: str = "smartfarm"

    def device(self, farm: str, device: str, kind: DeviceTopic) -> str:
        return f"{self.root}/{TOPIC_VERSION}/{farm}/devices/{device}/{kind.value}"

    def telemetry(self, farm: str, device: str) -> str:
        return self.device(farm, device, DeviceTopic.TELEMETRY)

    def status(self, farm: str, device: str) -> str:
        return self.device(farm, device, DeviceTopic.STATUS)

    def recommendations(self, farm: str, zone: str) -> str:
        return f"{self.root}/{TOPIC_VERSION}/{farm}/zones/{zone}/recommendations"

    def commands(self, farm: str, zone: str) -> str:
        return f"{self.root}/{TOPIC_VERSION}/{farm}/zones/{zone}/commands"

    def device_filter(self, kind: DeviceTopic, farm: str = "+") -> str:
        """Subscription filter for one kind of device message on every device (of one farm, or all)."""
        return self.device(farm, "+", kind)

    def parse_device(self, topic: str) -> DeviceAddress:
        """What a device topic names; ContractError(UNKNOWN_TOPIC) for anything else.

        String splits and a set test, no regex: the bridge calls this for every new topic it sees."""
        parts = topic.split("/")
        kind = _DEVICE_TOPIC_KINDS.get(parts[-1])
        if (
            len(parts) != 6
            or kind is None
            or parts[0] != self.root
            or parts[1] != TOPIC_VERSION
            or parts[3] != "devices"
            or not is_identifier(parts[2])
            or not is_identifier(parts[4])
        ):
            raise ContractError(
                RejectReason.UNKNOWN_TOPIC, f"topic {topic!r} is not a device topic under {self.root!r}"
            )
        return DeviceAddress(parts[2], parts[4], kind)

    @staticmethod
    def device_named(topic: str) -> str | None:
        """The device a (possibly invalid) topic names where it has a device level, for keying a dead letter."""
        named = MqttTopics.farm_and_device_named(topic)
        return named[1] if named else None

    @staticmethod
    def farm_and_device_named(topic: str) -> tuple[str, str] | None:
        """The farm and device levels of a topic of the device shape under any root, the device level valid; None
        for a topic of another shape. (The worker checks a payload against the topic the bridge admitted.)"""
        parts = topic.split("/")
        if len(parts) == 6 and parts[3] == "devices" and is_identifier(parts[4]):
            return parts[2], parts[4]
        return None

    def grants(self, user: MqttUser) -> list[tuple[Access, str]]:
        """What ``user`` may do under this root: (access, topic filter) pairs; everything else is refused."""
        match user.role:
            case MqttRole.DEVICE:
                ((farm, zone),) = user.zones
                return [
                    (Access.WRITE, self.telemetry(farm, user.name)),
                    (Access.WRITE, self.status(farm, user.name)),
                    (Access.READ, self.recommendations(farm, zone)),
                    (Access.READ, self.commands(farm, zone)),
                ]
            case MqttRole.VALVES:
                return [
                    (access, topic)
                    for farm, zone in user.zones
                    for access, topic in (
                        (Access.READ, self.recommendations(farm, zone)),
                        (Access.READ, self.commands(farm, zone)),
                    )
                ]
            case MqttRole.BRIDGE:
                return [
                    (Access.READ, self.device_filter(DeviceTopic.TELEMETRY)),
                    (Access.READ, self.device_filter(DeviceTopic.STATUS)),
                    (Access.WRITE, self.recommendations("+", "+")),
                    (Access.WRITE, self.commands("+", "+")),
                ]
            case MqttRole.DASHBOARD:
                return [(Access.READ, f"{self.root}/{TOPIC_VERSION}/{user.farm}/#")]
            case MqttRole.ADVICE:
                return [
                    (Access.READ, self.recommendations(user.farm, "+")),
                    (Access.READ, self.commands(user.farm, "+")),
                ]

    def acl(self, users: Iterable[MqttUser]) -> str:
        """A Mosquitto ACL granting each user what its role allows (``grants``) and nothing else: no pattern
        lines, no anonymous access, no user with the whole root."""
        blocks = []
        for user in users:
            lines = [f"user {user.name}"] + [f"topic {access} {topic}" for access, topic in self.grants(user)]
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks) + "\n"


class Access(StrEnum):
    """What an ACL line allows on its topic filter (Mosquitto's words)."""

    READ = "read"
    """Receive messages published there (a subscription is accepted, and delivers only what may be read)."""
    WRITE = "write"
    """Publish there."""


class MqttRole(StrEnum):
    """The kinds of MQTT user, each kept to its own topics (``MqttTopics.grants``)."""

    DEVICE = "device"
    """A field device, logged in with its id: writes its own telemetry and status, reads its zone's
    recommendations and commands."""
    VALVES = "valves"
    """The valves of some zones: read those zones' recommendations and commands."""
    BRIDGE = "bridge"
    """The bridge: reads every device's telemetry and status, writes every zone's recommendations and commands."""
    DASHBOARD = "dashboard"
    """A farm's reader (dashboards, a farm's own monitoring): reads everything of its farm, nothing of others."""
    ADVICE = "advice"
    """A farm's recommendation subscriber (a service acting on advice): reads its farm's recommendations and
    commands."""


FARM_ROLES = (MqttRole.DASHBOARD, MqttRole.ADVICE)
"""The roles each farm has one service user of (``MqttUser.farm_service``)."""


@dataclass(frozen=True, slots=True)
class MqttUser:
    """A broker user and what its role covers: the farm of a farm service, the zones of a device or valves."""

    name: str
    role: MqttRole
    farm: str = ""
    zones: tuple[tuple[str, str], ...] = ()
    """(farm, zone) pairs: a device's one zone, or the zones a valves user drives."""

    @classmethod
    def device(cls, device: str, farm: str, zone: str) -> MqttUser:
        return cls(device, MqttRole.DEVICE, farm, ((farm, zone),))

    @classmethod
    def valves(cls, name: str, zones: Iterable[tuple[str, str]]) -> MqttUser:
        return cls(name, MqttRole.VALVES, zones=tuple(zones))

    @classmethod
    def bridge(cls, name: str) -> MqttUser:
        return cls(name, MqttRole.BRIDGE)

    @classmethod
    def farm_service(cls, farm: str, role: MqttRole) -> MqttUser:
        """A farm's service user, named ``{farm}.{role}``: the dot is not allowed in identifiers, so the name
        never collides with a device's."""
        return cls(f"{farm}.{role.value}", role, farm)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A Kafka topic the pipeline owns."""

    name: str
    partitions: int
    compacted: bool = False
    retention_ms: int | None = None


class KafkaTopic(StrEnum):
    """The pipeline's Kafka topics, by their name under the prefix."""

    TELEMETRY_RAW = "telemetry.raw"
    """Device payloads exactly as they arrived over MQTT, packed in envelopes per partition by the bridge."""
    READINGS_CLEAN = "readings.clean"
    """A zone's validated, layout-enriched device messages of one batch per record (``ZoneReadings``), their
    readings flagged, by the cleaning agent."""
    DEADLETTER = "deadletter"
    """Everything refused anywhere in the pipeline, with the reason and the original bytes."""
    ZONE_AGGREGATES = "zone.aggregates"
    """Windowed per-zone statistics of each sensor kind."""
    ZONE_DAILY = "zone.daily"
    """Per-zone days: reference ET, growing degree days."""
    RECOMMENDATIONS = "recommendations"
    """Advice for a zone: irrigation, sensor faults, frost / heat, disease risk, harvest timing."""
    DEVICE_STATUS = "device.status"
    """Device online / offline transitions (birth and last-will messages)."""
    LAYOUT = "layout"
    """Each farm as the farm registry holds it now, keyed by farm id: what the workers and the broker's credentials
    follow, so a zone added or a device registered through the API takes effect without a restart."""
    COMMANDS = "commands"
    """Irrigations people accepted through the API, for the zone's valve (the bridge sends them over MQTT)."""
    WEATHER_FORECAST = "weather.forecast"
    """Each farm's newest hourly weather forecast (``smartfarm.forecast.WeatherForecast``), keyed by farm id."""


DEFAULT_PARTITIONS = 6
_WEEK_MS = 7 * 24 * 3600 * 1000


def topic_specs(prefix: str = "smartfarm", partitions: int = DEFAULT_PARTITIONS) -> dict[KafkaTopic, TopicSpec]:
    """The spec of every pipeline topic under ``prefix``."""
    return {
        KafkaTopic.TELEMETRY_RAW: TopicSpec(f"{prefix}.{KafkaTopic.TELEMETRY_RAW}", partitions, retention_ms=_WEEK_MS),
        KafkaTopic.READINGS_CLEAN: TopicSpec(
            f"{prefix}.{KafkaTopic.READINGS_CLEAN}", partitions, retention_ms=_WEEK_MS
        ),
        KafkaTopic.DEADLETTER: TopicSpec(f"{prefix}.{KafkaTopic.DEADLETTER}", partitions, retention_ms=4 * _WEEK_MS),
        KafkaTopic.ZONE_AGGREGATES: TopicSpec(
            f"{prefix}.{KafkaTopic.ZONE_AGGREGATES}", partitions, retention_ms=_WEEK_MS
        ),
        KafkaTopic.ZONE_DAILY: TopicSpec(f"{prefix}.{KafkaTopic.ZONE_DAILY}", partitions, retention_ms=4 * _WEEK_MS),
        KafkaTopic.RECOMMENDATIONS: TopicSpec(
            f"{prefix}.{KafkaTopic.RECOMMENDATIONS}", partitions, retention_ms=4 * _WEEK_MS
        ),
        KafkaTopic.DEVICE_STATUS: TopicSpec(f"{prefix}.{KafkaTopic.DEVICE_STATUS}", partitions, compacted=True),
        # One partition: a follower reads every farm, in the order the registry published them.
        KafkaTopic.LAYOUT: TopicSpec(f"{prefix}.{KafkaTopic.LAYOUT}", 1, compacted=True),
        KafkaTopic.COMMANDS: TopicSpec(f"{prefix}.{KafkaTopic.COMMANDS}", partitions, retention_ms=4 * _WEEK_MS),
        # Compacted: a worker that starts reads each farm's newest forecast, not the week of issues before it.
        KafkaTopic.WEATHER_FORECAST: TopicSpec(f"{prefix}.{KafkaTopic.WEATHER_FORECAST}", partitions, compacted=True),
    }


def zone_key(farm: str, zone: str) -> bytes:
    """The key of zone-scoped records: every record of one zone lands on one partition, in order."""
    return f"{farm}/{zone}".encode()


def zone_of(key: bytes) -> tuple[str, str]:
    """The (farm, zone) of a ``zone_key``."""
    farm, zone = key.decode().split("/", 1)
    return farm, zone
