"""Settings of the bridge (the Kafka connection's are ``smartfarm.settings.KafkaSettings``)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field

from smartfarm.settings import ComponentSettings, InfluxSettings, component_config
from stream.clean import CleanRules


class BridgeSettings(ComponentSettings):
    """The MQTT <-> Kafka bridge."""

    model_config = component_config("bridge")

    bridge_id: str = Field(
        default_factory=lambda: f"bridge-{socket.gethostname()}"[:60],
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="names this instance: its MQTT client ids and the bridge_id header; keep it across restarts",
    )
    share_group: str = Field(
        "smartfarm-bridge", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="MQTT shared-subscription group"
    )
    max_payload_bytes: int = Field(16 * 1024, ge=64, le=256 * 1024, description="larger payloads are dead-lettered")
    receive_maximum: int = Field(
        20000, ge=1, le=65535, description="unacknowledged MQTT messages the bridge holds at most (memory bound)"
    )
    session_expiry_s: int = Field(
        7 * 24 * 3600, ge=0, description="how long the broker keeps our queue while we are down"
    )
    producer: Literal["confluent", "kafka-python"] = Field(
        "confluent", description="Kafka client of the ingress producer (see architecture.md for the measurements)"
    )
    envelope_ms: int = Field(
        50,
        ge=0,
        le=1000,
        description="pack the telemetry that came within this long into one telemetry.raw record per partition (an "
        "envelope: each message's bytes, MQTT topic and receipt kept); 0: one record per message",
    )
    turn_ms: int = Field(
        20,
        ge=0,
        le=100,
        description="while messages await Kafka, read MQTT at most this often, taking what came meanwhile in one "
        "turn (fewer wake-ups a message); 0: at every message",
    )
    linger_ms: int = Field(50, ge=0, le=1000, description="Kafka producer: wait this long to fill a batch")
    batch_bytes: int = Field(256 * 1024, ge=1024, description="Kafka producer: batch size per partition")
    compression: str = Field("lz4", pattern=r"^(lz4|gzip|none)$", description="Kafka producer compression")
    delivery_timeout_ms: int = Field(60_000, ge=1000, description="a Kafka send not confirmed by then is sent again")
    egress: bool = Field(True, description="also publish Kafka recommendations to MQTT")
    metrics_host: str = Field("127.0.0.1", description="Prometheus metrics address")
    metrics_port: int = Field(9108, ge=0, le=65535, description="Prometheus metrics port (0: pick a free one)")


class WorkerSettings(ComponentSettings):
    """The stream worker (Faust): batching, cleaning rules, metrics."""

    model_config = component_config("worker")

    worker_id: str = Field(
        default_factory=lambda: f"worker-{socket.gethostname()}"[:60],
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="names this worker: its Kafka client ids and its static group membership; keep it across restarts",
    )
    batch_max: int = Field(
        200,
        ge=1,
        le=100_000,
        description="Kafka records taken per batch at most: a telemetry.raw envelope holds the messages its bridge "
        "received within envelope_ms (up to 900 KiB), so at 10,000 messages/s a batch is about 80,000 of them",
    )
    batch_within_s: float = Field(
        0.1,
        gt=0,
        le=60,
        description="a batch closes after this long even if not full: longer costs latency, shorter an InfluxDB "
        "write and a device-memory save per device more often (smartfarm bench --phases windows measures both)",
    )
    zone_within_s: float = Field(
        0.1,
        gt=0,
        le=60,
        description="the zone agent gathers readings.clean records this long before it steps the zones: a step "
        "queries InfluxDB only when windows fall due (the open ones are counted in memory), so a short wait costs "
        "little and brings advice sooner",
    )
    write_chunk: int = Field(5000, ge=100, le=100_000, description="lines per InfluxDB write request at most")
    max_future_s: float = Field(
        600, gt=0, description="messages stamped further than this after their receipt are dead-lettered"
    )
    max_past_s: float | None = Field(
        None,
        gt=0,
        description="messages stamped further than this before their receipt are dead-lettered (stale_timestamp); "
        "unset: the InfluxDB retention (ten years when it is INF), since the database would refuse them",
    )
    late_after_s: float = Field(900, gt=0, description="messages received this long after their timestamp are late")
    window_grace_s: float = Field(
        900, ge=0, le=86400, description="a zone's windows stay open this long past its latest event time"
    )
    session_timeout_s: float = Field(
        10, ge=6, le=300, description="a worker silent this long is dead: its partitions move to the others"
    )
    metrics_host: str = Field("127.0.0.1", description="Prometheus metrics address")
    metrics_port: int = Field(9109, ge=0, le=65535, description="Prometheus metrics port (0: pick a free one)")
    data_dir: Path = Field(Path(".smartfarm/worker"), description="Faust's local folder")

    def clean_rules(self, influx: InfluxSettings) -> CleanRules:
        """The cleaning thresholds, the lower time bound from ``max_past_s`` or else the database's retention."""
        max_past = self.max_past_s or influx.retention_s or NO_RETENTION_MAX_PAST_S
        return CleanRules(max_future_s=self.max_future_s, max_past_s=max_past, late_after_s=self.late_after_s)


NO_RETENTION_MAX_PAST_S = 10 * 365 * 86400.0
"""The lower time bound where the database keeps everything: a clock reset to 1970 or 2000 is still refused."""
