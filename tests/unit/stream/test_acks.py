"""The acknowledgement window, table-driven: arrival order, out-of-order confirmations, reconnects."""

from __future__ import annotations

import pytest

from stream.acks import AckWindow


@pytest.mark.parametrize(
    ("arrivals", "confirmed", "mids", "left"),
    [
        ([(1, 1), (2, 1), (3, 1)], [], [], 3),
        ([(1, 1), (2, 1), (3, 1)], [1, 2, 3], [1, 2, 3], 0),
        ([(1, 1), (2, 1), (3, 1)], [3, 2], [], 3),  # the head is unconfirmed: nothing may go out
        ([(1, 1), (2, 1), (3, 1)], [3, 1], [1], 2),  # 3 waits behind 2
        ([(1, 0), (2, 1), (3, 0)], [1, 2, 3], [2], 0),  # QoS 0 messages take no acknowledgement
    ],
)
def test_acknowledgements_go_out_in_arrival_order(
    arrivals: list[tuple[int, int]], confirmed: list[int], mids: list[int], left: int
) -> None:
    window = AckWindow()
    window.new_connection()
    entries = {mid: window.track(mid, qos, 0.0, "telemetry", None) for mid, qos in arrivals}
    for mid in confirmed:
        entries[mid].done = True
    released = window.release()
    assert released.mids == mids
    assert released.total == len(arrivals) - left
    assert len(window) == left
    waiting = [mid for mid, _ in arrivals[len(arrivals) - left :]]
    assert window.any_confirmed() is any(mid in confirmed for mid in waiting)


def test_a_reconnect_forgets_what_the_old_connection_left_unacknowledged() -> None:
    window = AckWindow()
    assert window.new_connection() == 1
    old = window.track(7, 1, 0.0, "telemetry", None)
    assert window.is_current(old)
    assert window.new_connection() == 2, "the broker redelivers the old connection's messages"
    assert len(window) == 0 and not window.is_current(old)
    old.done = True  # a late confirmation of the old record acknowledges nothing
    new = window.track(7, 1, 1.0, "status", None)
    assert window.release().mids == []
    new.done = True
    released = window.release()
    assert released.mids == [7] and released.kinds == {"status": 1}


def test_released_messages_are_counted_by_kind() -> None:
    window = AckWindow()
    window.new_connection()
    for mid, kind in enumerate(["telemetry", "status", "deadletter", "telemetry"], start=1):
        window.track(mid, 1, 0.0, kind, None).done = True
    released = window.release()
    assert released.kinds == {"telemetry": 2, "status": 1, "deadletter": 1}
    assert released.mids == [1, 2, 3, 4]
