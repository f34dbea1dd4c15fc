"""The bridge's acknowledgement window: which MQTT messages may be acknowledged now, decided without any I/O.

MQTT requires QoS 1 acknowledgements in the order the messages came in, and the bridge may acknowledge a message
only once Kafka confirmed the record it became. Kafka confirms out of order (records go to different partitions),
so the window holds every received message in arrival order and releases the confirmed ones from its head.
A reconnect starts a new generation: the broker redelivers whatever the old connection left unacknowledged, so
the old entries are forgotten and their late confirmations acknowledge nothing.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any


class Unacknowledged:
    """One received MQTT message until it is acknowledged, with the record it became (to send it again)."""

    __slots__ = ("done", "generation", "kind", "mid", "qos", "received", "record")

    def __init__(self, mid: int, qos: int, generation: int, received: float, kind: str, record: Any) -> None:
        self.mid = mid
        self.qos = qos
        self.generation = generation
        self.received = received
        self.kind = kind
        self.record = record
        self.done = False


@dataclass(slots=True)
class Released:
    """What one ``release()`` took off the head of the window."""

    mids: list[int] = field(default_factory=list)
    """Packet ids to acknowledge, in arrival order (QoS 0 messages have none)."""
    kinds: Counter[str] = field(default_factory=Counter)
    """How many messages of each kind were released."""

    @property
    def total(self) -> int:
        return sum(self.kinds.values())


class AckWindow:
    """Received messages in arrival order, released from the head as Kafka confirms them. Thread-safe: paho's
    callbacks add, the producer's delivery callbacks confirm, the bridge's loop releases."""

    def __init__(self) -> None:
        self._pending: deque[Unacknowledged] = deque()
        self._lock = threading.Lock()
        self.generation = 0

    def new_connection(self) -> int:
        """Forget what the previous connection left unacknowledged; return the new generation (1 for the first)."""
        with self._lock:
            self.generation += 1
            self._pending.clear()
            return self.generation

    def track(self, mid: int, qos: int, received: float, kind: str, record: Any) -> Unacknowledged:
        """Add a message received now on the current connection."""
        with self._lock:
            entry = Unacknowledged(mid, qos, self.generation, received, kind, record)
            self._pending.append(entry)
        return entry

    def is_current(self, entry: Unacknowledged) -> bool:
        """Whether ``entry`` came on the current connection (an older one's is redelivered by the broker)."""
        return entry.generation == self.generation

    def release(self) -> Released:
        """Take every confirmed message off the head, stopping at the first unconfirmed one."""
        out = Released()
        with self._lock:
            pending = self._pending
            while pending and pending[0].done:
                entry = pending.popleft()
                if entry.generation == self.generation:
                    out.kinds[entry.kind] += 1
                    if entry.qos:
                        out.mids.append(entry.mid)
        return out

    def any_confirmed(self) -> bool:
        """Whether some message is confirmed but waits behind an unconfirmed one."""
        with self._lock:
            return any(e.done for e in self._pending)

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)
