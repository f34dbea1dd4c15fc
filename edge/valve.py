"""The zones' irrigation valves: they subscribe to each zone's recommendation topic and accept irrigation.

Paho's network thread only decodes and queues; the fleet's loop drains the queue and applies the water to the
simulated soil, so the effect of a recommendation shows in later readings (the closed loop).
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from edge.device import DeviceRefusedError
from smartfarm.errors import ContractError
from smartfarm.mqtt import connect, mqtt_client
from smartfarm.records import Recommendation, RecommendationKind
from smartfarm.settings import MqttSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Irrigation:
    """An accepted irrigation recommendation."""

    farm: str
    zone: str
    amount_mm: float
    recommendation: str


class Valves:
    """One MQTT client that plays the valves of every zone of the given farms.

    Args:
        username: its MQTT user name (and client id); the password is derived like a device's.
    """

    def __init__(self, farms: list[str], settings: MqttSettings, username: str, password: str) -> None:
        self.farms = farms
        self.settings = settings
        self.accepted: queue.SimpleQueue[Irrigation] = queue.SimpleQueue()
        self.refused = 0
        self.error: Exception | None = None
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        client = mqtt_client(settings, username, username=username, password=password)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        self.client = client

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        if reason.is_failure:
            self.error = DeviceRefusedError(f"the broker refused the valves: {reason}")
            client.disconnect()
            return
        client.subscribe([(self.settings.topics.recommendations(farm, "+"), 1) for farm in self.farms])

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            rec = Recommendation.decode(bytes(message.payload))
        except ContractError as exc:
            log.warning("valve: refused a message on %s: %s", message.topic, exc)
            self.refused += 1
            return
        if message.topic != self.settings.topics.recommendations(rec.farm, rec.zone):
            log.warning("valve: recommendation for %s/%s arrived on %s", rec.farm, rec.zone, message.topic)
            self.refused += 1
            return
        if rec.kind is not RecommendationKind.IRRIGATION or not rec.amount_mm:
            return
        with self._lock:
            # Retained messages come again on every (re)subscription: water once per recommendation.
            if str(rec.id) in self._seen:
                return
            self._seen.add(str(rec.id))
        self.accepted.put(Irrigation(rec.farm, rec.zone, rec.amount_mm, str(rec.id)))

    def start(self) -> None:
        connect(self.client, self.settings, background=True)
        self.client.loop_start()

    def drain(self) -> list[Irrigation]:
        if self.error is not None:
            raise self.error
        out = []
        while True:
            try:
                out.append(self.accepted.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
