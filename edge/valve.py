"""The zones' irrigation valves: they subscribe to each zone's recommendation topic (unless they follow accepted
irrigations only) and commands topic (irrigations a person accepted through the API), and keep its schedule.

Paho's network thread only decodes and queues; on the fleet's loop, ``Valves.due(now)`` feeds the queue to the
pure ``IrrigationSchedule`` (``edge.schedule``: hold until ``start_at``, cancel on ``supersedes``, each id once)
and returns what is due at the fleet's simulated time, which the fleet applies to the simulated soil, so the
effect of a recommendation shows in later readings (the closed loop).
"""

from __future__ import annotations

import logging
import queue
from datetime import datetime

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from edge.device import DeviceRefusedError
from edge.schedule import Irrigation, IrrigationSchedule
from smartfarm.errors import ContractError
from smartfarm.mqtt import connect, mqtt_client
from smartfarm.records import IrrigationCommand, Recommendation
from smartfarm.settings import MqttSettings

log = logging.getLogger(__name__)


class Valves:
    """One MQTT client that plays the valves of every zone of the given farms.

    Args:
        username: its MQTT user name (and client id); the password is derived like a device's.
    """

    def __init__(
        self, farms: list[str], settings: MqttSettings, username: str, password: str, follow: str = "auto"
    ) -> None:
        self.farms = farms
        self.follow = follow
        """``auto``: every irrigation recommendation and every accepted one; ``accepted``: accepted ones only."""
        self.settings = settings
        self.schedule = IrrigationSchedule()
        self.refused = 0
        self.error: Exception | None = None
        self._inbox: queue.SimpleQueue[Recommendation | IrrigationCommand] = queue.SimpleQueue()
        client = mqtt_client(settings, username, username=username, password=password)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        self.client = client

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        if reason.is_failure:
            self.error = DeviceRefusedError(f"the broker refused the valves: {reason}")
            client.disconnect()
            return
        topics = self.settings.topics
        wanted = [(topics.commands(farm, "+"), 1) for farm in self.farms]
        if self.follow == "auto":
            wanted += [(topics.recommendations(farm, "+"), 1) for farm in self.farms]
        client.subscribe(wanted)

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        topics = self.settings.topics
        what: type[Recommendation] | type[IrrigationCommand]
        what, topic_of = (
            (IrrigationCommand, topics.commands)
            if message.topic.endswith("/commands")
            else (Recommendation, topics.recommendations)
        )
        try:
            item = what.decode(bytes(message.payload))
        except ContractError as exc:
            log.warning("valve: refused a message on %s: %s", message.topic, exc)
            self.refused += 1
            return
        if message.topic != topic_of(item.farm, item.zone):
            log.warning("valve: %s for %s/%s arrived on %s", what.__name__, item.farm, item.zone, message.topic)
            self.refused += 1
            return
        # The schedule is the fleet thread's alone: this thread only hands over what it decoded.
        self._inbox.put(item)

    def start(self) -> None:
        connect(self.client, self.settings, background=True)
        self.client.loop_start()

    def due(self, now: datetime) -> list[Irrigation]:
        """The irrigation to apply now that simulated time has reached ``now``; raises what the network thread hit.

        Call from the fleet's loop only: it takes the recommendations received since the last call into the
        schedule first, so one that arrived together with its cancel is never applied.
        """
        if self.error is not None:
            raise self.error
        while True:
            try:
                rec = self._inbox.get_nowait()
            except queue.Empty:
                break
            if isinstance(rec, IrrigationCommand):
                outcome = self.schedule.accept(rec)
                log.info("valve: accepted irrigation %s for %s/%s: %s", rec.recommendation, rec.farm, rec.zone, outcome)
                continue
            outcome = self.schedule.offer(rec)
            log.debug("valve: recommendation %s for %s/%s: %s", rec.id, rec.farm, rec.zone, outcome.value)
        return self.schedule.due(now)

    @property
    def cancelled(self) -> int:
        return self.schedule.cancelled

    @property
    def too_late(self) -> int:
        return self.schedule.too_late

    @property
    def expired(self) -> int:
        return self.schedule.expired

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
