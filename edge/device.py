"""One device's MQTT link: QoS 1 publishing paced by the broker's acknowledgements, store-and-forward while the
broker is away, a retained birth message and a last will.

Threading: paho's network thread runs the callbacks, which only update counters; every telemetry publish
happens on the thread that calls ``pump()`` (the fleet's loop), so messages leave in the order they were
produced. After a reconnect, new messages wait until paho has re-sent and the broker acknowledged what was in
flight, so a reconnect cannot reorder a device's messages either.

A broker that acknowledges a message with "no matching subscribers" (MQTT 5 reason 16) took it and handed it to
nobody: the message is gone unless the device sends it again. That happens right after Mosquitto restarts, until
the bridge has subscribed again (a shared subscription is not restored from the broker's persistence). The link
keeps every telemetry payload until its acknowledgement, puts the unrouted ones back at the head of its queue,
and sends them again ``RESEND_AFTER_S`` later; in between it publishes nothing, so the queue keeps its order
(a message acknowledged as routed while an earlier one bounced does go out before the earlier one's resend).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from smartfarm.errors import SmartFarmError
from smartfarm.mqtt import Session, Will, connect, mqtt_client
from smartfarm.settings import MqttSettings
from smartfarm.telemetry import ConnectionState, Status

log = logging.getLogger(__name__)

FIRMWARE = "smartfarm-sim-0.1"
SESSION_EXPIRY_S = 24 * 3600
NO_MATCHING_SUBSCRIBERS = 16
"""The MQTT 5 PUBACK reason code of a message the broker took but handed to nobody."""
RESEND_AFTER_S = 1.0
"""How long a link waits before it sends again what met no subscriber."""


class DeviceRefusedError(SmartFarmError):
    """The broker refused a device's connection (bad credentials, not authorised)."""


class DeviceLink:
    """The MQTT connection of one device.

    Args:
        device: the device id: MQTT client id and user name.
        farm: the farm id, for the topics.
        settings: where the broker is and the topic root.
        password: the device's password.
        window: QoS 1 messages in flight (unacknowledged) at most; publishing waits for acknowledgements.
        buffer_limit: messages held while the broker is unreachable; beyond it the oldest are dropped and counted.
    """

    def __init__(
        self,
        device: str,
        farm: str,
        settings: MqttSettings,
        password: str,
        window: int = 20,
        buffer_limit: int = 10_000,
    ) -> None:
        self.device = device
        self.settings = settings
        self.window = window
        self.topic = settings.topics.telemetry(farm, device)
        self.status_topic = settings.topics.status(farm, device)
        self.outbox: deque[bytes] = deque()
        self.buffer_limit = buffer_limit
        self.dropped = 0
        self.published = 0
        self.acked = 0
        self.unrouted = 0
        self.reconnects = 0
        self.connected = False
        self.killed = False
        self.error: Exception | None = None
        self._outstanding = 0
        self._draining_resends = False
        self._connections = 0
        self._sent: dict[int, bytes] = {}  # telemetry in flight by packet id, until the broker acknowledges it
        self._early: dict[int, int] = {}  # reason codes of acknowledgements that overtook our ``_sent`` entry
        self._bounced: list[bytes] = []  # unrouted payloads, in acknowledgement order, waiting to go again
        self._resend_at = 0.0
        self._status: set[int] = set()  # retained status messages in flight by packet id
        self._lock = threading.Lock()

        will = Status.create(device=device, state=ConnectionState.OFFLINE, ts=datetime.now(UTC), will=True)
        client = mqtt_client(
            settings, device, username=device, password=password, will=Will(self.status_topic, will.encode())
        )
        # paho's own limit sits above ours so birth and status messages never wait behind telemetry.
        client.max_inflight_messages_set(window + 4)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self.client = client

    # --- paho's network thread -------------------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        if reason.is_failure:
            self.error = DeviceRefusedError(f"the broker refused device {self.device}: {reason}")
            client.disconnect()
            return
        with self._lock:
            self._connections += 1
            if self._connections > 1:
                self.reconnects += 1
            # What paho re-sends from before the drop must be acknowledged before anything new goes out.
            self._draining_resends = self._outstanding > 0
            self._outstanding += 1
            self.published += 1  # the birth status, so that sent and acked count the same messages
            self.connected = True
        birth = Status.create(device=self.device, state=ConnectionState.ONLINE, ts=datetime.now(UTC), firmware=FIRMWARE)
        self._record(client.publish(self.status_topic, birth.encode(), qos=1, retain=True).mid, None)

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        with self._lock:
            self.connected = False
        if reason.is_failure:
            log.info("device %s lost its connection: %s", self.device, reason)

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, reason: ReasonCode, _p: object) -> None:
        with self._lock:
            self._outstanding -= 1
            if self._outstanding == 0:
                self._draining_resends = False
            if mid in self._sent:
                self._acknowledged(self._sent.pop(mid), reason.value)
            elif mid in self._status:
                self._status.discard(mid)
                self._acknowledged(None, reason.value)
            else:
                self._early[mid] = reason.value  # the publishing thread has not recorded this packet id yet

    def _record(self, mid: int, payload: bytes | None) -> None:
        """Remember what a publish sent (``None``: a retained status), or settle it if it was acknowledged
        already."""
        with self._lock:
            reason = self._early.pop(mid, None)
            if reason is not None:
                self._acknowledged(payload, reason)
            elif payload is None:
                self._status.add(mid)
            else:
                self._sent[mid] = payload

    def _acknowledged(self, payload: bytes | None, reason: int) -> None:
        """Count one acknowledgement; keep ``payload`` for a resend if it met no subscriber. Holds ``_lock``."""
        if reason == NO_MATCHING_SUBSCRIBERS and payload is not None:
            self.unrouted += 1
            self._bounced.append(payload)
            self._resend_at = time.monotonic() + RESEND_AFTER_S
        else:
            self.acked += 1

    # --- the fleet's thread ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; paho reconnects by itself after a drop."""
        connect(self.client, self.settings, Session(SESSION_EXPIRY_S), background=True)
        self.client.loop_start()

    def send(self, payload: bytes) -> None:
        """Queue a telemetry payload; ``pump()`` publishes it when the broker has room."""
        with self._lock:
            if len(self.outbox) >= self.buffer_limit:
                self.outbox.popleft()
                self.dropped += 1
            self.outbox.append(payload)

    def pump(self) -> int:
        """Publish queued payloads while connected and under the window; return how many went out."""
        if self.error is not None:
            raise self.error
        count = 0
        while True:
            with self._lock:
                if self._bounced:
                    if time.monotonic() < self._resend_at:
                        return count
                    self.outbox.extendleft(reversed(self._bounced))
                    self._bounced.clear()
                if not (
                    self.connected and self.outbox and not self._draining_resends and self._outstanding < self.window
                ):
                    return count
                payload = self.outbox.popleft()
                self._outstanding += 1
                self.published += 1
            info = self.client.publish(self.topic, payload, qos=1)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                log.warning("device %s: publish returned %s", self.device, mqtt.error_string(info.rc))
            # NO_CONN: paho keeps the message and sends it, in order, when it reconnects.
            self._record(info.mid, payload)
            count += 1

    @property
    def buffered(self) -> int:
        """Messages not yet acknowledged by the broker as routed: queued here, in flight or waiting to go again."""
        with self._lock:
            return len(self.outbox) + self._outstanding + len(self._bounced)

    def close(self, timeout_s: float = 10.0) -> None:
        """Announce a clean shutdown (retained offline status), wait for acknowledgements, disconnect."""
        if self.killed:
            return
        if self.connected:
            status = Status.create(device=self.device, state=ConnectionState.OFFLINE, ts=datetime.now(UTC))
            with self._lock:
                self._outstanding += 1
                self.published += 1
            info = self.client.publish(self.status_topic, status.encode(), qos=1, retain=True)
            self._record(info.mid, None)
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError):
                log.warning("device %s: offline status not acknowledged", self.device)
            self.client.disconnect()
        self.client.loop_stop()

    def kill(self) -> None:
        """Drop the connection without a DISCONNECT, as a device whose battery died: the broker sends its will."""
        self.killed = True
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()
        with self._lock:
            self.connected = False
