"""The stop signal every long-running loop waits on."""

from __future__ import annotations

import time
from typing import Protocol


class Stop(Protocol):
    """What a long-running loop waits on: a ``threading.Event`` or a ``StopFlag``."""

    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class StopFlag:
    """A stop signal that a signal handler can set.

    ``threading.Event`` cannot be set from a handler: Python runs handlers on the main thread between bytecodes,
    and when the main thread is inside ``Event.wait`` holding the event's (non-reentrant) lock, ``set()`` waits
    for that lock forever (a bridge hung on SIGTERM this way). Setting this flag takes no lock; waiting polls it
    every 50 ms.
    """

    POLL_S = 0.05

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until set or ``timeout`` seconds passed; return whether it is set."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._set:
            left = self.POLL_S if deadline is None else min(self.POLL_S, deadline - time.monotonic())
            if left <= 0:
                break
            time.sleep(left)
        return self._set
