"""The fault matrix's bookkeeping: identities sent against identities stored, the scripted devices' plans, the
table, and the seconds a fault took to recover from."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter

import pytest

from benchmarks.accounting import Arrivals
from benchmarks.matrix import (
    DRAIN_RATE,
    HEADER,
    INTERVAL_S,
    RESET_CLOCK_TS,
    Case,
    Reading,
    Sent,
    back_from_outage,
    flooding,
    recovery,
    reset_clock,
    sent_log,
    stored_readings,
    table,
    tally,
    to_ns,
)
from benchmarks.openloop import Plan

T0 = 1_780_000_000.0


def payload(device: str, seq: int, ts: str, values: tuple[float, ...] = (21.5, 3.7)) -> bytes:
    readings = [{"sensor": s, "value": v} for s, v in zip(("sm-15", "bat"), values, strict=True)]
    return json.dumps({"schema_version": 1, "device": device, "seq": seq, "ts": ts, "readings": readings}).encode()


def test_a_message_is_its_key_and_a_reading_per_sensor_stamped_in_nanoseconds() -> None:
    m = Sent.parse(payload("d1", 7, "2026-06-01T12:00:00.123Z", (21.5, 4)))
    ns = to_ns("2026-06-01T12:00:00.123Z")
    assert ns == 1_780_315_200_123_000_000
    assert m.key == ("d1", 7, ns)
    assert m.readings == (("d1", "sm-15", ns, 21.5), ("d1", "bat", ns, 4.0))
    assert to_ns("2000-01-01T00:00:00.000Z") == 946_684_800 * 10**9


def test_the_log_is_one_payload_a_line_blank_lines_skipped() -> None:
    lines = [payload("d1", 0, "2026-06-01T12:00:00.000Z"), b"", payload("d1", 1, "2026-06-01T12:00:01.000Z")]
    assert [m.key[1] for m in sent_log(lines)] == [0, 1]


def test_stored_points_are_counted_by_identity_per_series() -> None:
    series = [
        {"name": "reading", "tags": {"device": "d1", "sensor": "bat", "zone": "a"}, "values": [[5, 3.7], [6, 3.6]]},
        {"name": "reading", "tags": {"device": "d1", "sensor": "bat", "zone": "b"}, "values": [[5, 3.7]]},
    ]
    assert stored_readings(series) == Counter({("d1", "bat", 5, 3.7): 2, ("d1", "bat", 6, 3.6): 1})


def _sent() -> list[Sent]:
    return sent_log(payload("d1", s, f"2026-06-01T12:00:0{s}.000Z", (20.0 + s, 3.0 + s)) for s in range(4))


def _all(sent: list[Sent]) -> Counter[Reading]:
    return Counter(r for m in sent for r in m.readings)


def test_everything_stored_once() -> None:
    sent = _sent()
    t = tally(sent, _all(sent))
    assert (t.messages, t.readings, t.stored_once, t.lost, t.stored_twice, t.by_design) == (4, 8, 8, 0, 0, 0)


def test_a_missing_reading_is_lost_and_named() -> None:
    sent = _sent()
    stored = _all(sent)
    gone = sent[2].readings[1]
    del stored[gone]
    t = tally(sent, stored)
    assert (t.stored_once, t.lost, t.stored_twice) == (7, 1, 0)
    assert t.lost_examples == (gone,)


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(lambda r: r, id="the same identity in a second series"),
        pytest.param(lambda r: (r[0], r[1], r[2] + 1_000_000, r[3]), id="under another time"),
        pytest.param(lambda r: (r[0], r[1], r[2], r[3] + 1), id="with another value"),
    ],
)
def test_a_reading_stored_beyond_its_one_copy_is_stored_twice(extra) -> None:  # type: ignore[no-untyped-def]
    sent = _sent()
    stored = _all(sent)
    stored[extra(sent[1].readings[0])] += 1
    t = tally(sent, stored)
    assert (t.stored_once, t.lost, t.stored_twice) == (8, 0, 1)
    assert len(t.twice_examples) == 1


def test_a_loss_balanced_by_a_reading_stored_twice_shows_both() -> None:
    sent = _sent()
    stored = _all(sent)
    del stored[sent[0].readings[0]]
    stored[sent[3].readings[0]] += 1
    assert sum(stored.values()) == 8  # a count would say all is well
    t = tally(sent, stored)
    assert (t.lost, t.stored_twice) == (1, 1)


def test_a_message_refused_by_design_is_not_lost_but_one_refused_otherwise_is() -> None:
    sent = _sent()
    stored = _all(sent)
    for m in sent[:2]:
        for r in m.readings:
            del stored[r]
    t = tally(sent, stored, refused=[sent[0].key])
    assert (t.stored_once, t.by_design, t.lost) == (4, 2, 2)


def test_a_message_logged_twice_counts_once() -> None:
    sent = _sent()
    t = tally([*sent, sent[0]], _all(sent))
    assert (t.messages, t.readings, t.stored_once) == (4, 8, 8)


def test_a_device_back_from_six_hours_offline_sends_its_buffer_then_goes_live() -> None:
    (backlog, [d1]), (live, [d2]) = back_from_outage("d", T0, rate=2.0, seconds=24, at_s=6)
    assert d1 == d2 == "d"
    assert backlog.count == 72 and backlog.t0 == T0 + 6 and backlog.rate == DRAIN_RATE
    stamps = [backlog.stamp_ms(i) / 1000 for i in range(backlog.count)]
    assert stamps[0] == T0 + 6 - 6 * 3600 and stamps[-1] == T0 + 6 - INTERVAL_S
    assert {b - a for a, b in itertools.pairwise(stamps)} == {INTERVAL_S}
    assert backlog.seq_base == 0 and live.seq_base == 72  # its count runs on
    assert live.t0 > backlog.due(backlog.count - 1) and live.ts0 == live.t0 and live.speed == 1
    assert live.due(live.count - 1) <= T0 + 24


def test_a_reset_clock_starts_count_and_time_over_then_is_set_again() -> None:
    (before, _), (reset, _), (after, _) = reset_clock("d", T0, rate=2.0, seconds=24, at_s=6, stale=10)
    assert before.count == 12 and before.seq_base == 0 and before.ts0 == T0
    assert reset.seq_base == 0 and reset.count == 10 and reset.stamp_ms(0) == RESET_CLOCK_TS * 1000
    assert reset.t0 == before.due(before.count)  # right after the last message before the swap
    assert after.seq_base == 10 and after.t0 == after.ts0 == reset.due(reset.count)
    assert after.due(after.count - 1) <= T0 + 24 + 1 / 2.0


def test_a_flooding_device_publishes_a_hundred_times_its_rate() -> None:
    assert flooding("d", T0, rate=2.0, seconds=24) == [(Plan(t0=T0, rate=200.0, count=4800, ts0=T0), ["d"])]


def test_the_table_has_a_row_per_case() -> None:
    sent = _sent()
    lost = tally(sent, Counter())
    text = table([Case("bridge SIGKILL", tally(sent, _all(sent)), 6.34), Case("device", lost), Case("x", lost, None)])
    lines = text.splitlines()
    assert lines[0] == "| " + " | ".join(HEADER) + " |"
    assert lines[2] == "| bridge SIGKILL | 4 | 8 | 8 | 0 | 0 | 0 | 6.3 |"
    assert lines[3] == "| device | 4 | 8 | 0 | 8 | 0 | 0 | - |"
    assert lines[4].endswith("| not recovered |")
    assert (recovery(math.nan), recovery(None), recovery(0.0)) == ("-", "not recovered", "0.0")
    assert Case("a", lost, None).as_dict()["recovered"] is False


def test_recovery_runs_from_the_fault_to_the_last_bucket_it_delayed() -> None:
    arrivals = Arrivals([Plan(t0=100.0, rate=10.0, count=100, ts0=100.0)], bucket_s=1.0, horizon_s=60)
    for second in range(100, 110):
        arrivals.observe(second + 1.0, {second * 1000: 10})
    assert arrivals.recovery_s(fault_at=103.0) == 0.0  # nothing was stored late
    late = Arrivals([Plan(t0=100.0, rate=10.0, count=100, ts0=100.0)], bucket_s=1.0, horizon_s=60)
    for second in (100, 101, 102):
        late.observe(second + 1.0, {second * 1000: 10})
    assert late.recovery_s(fault_at=103.0) is None  # 103-109 not stored yet
    late.observe(112.0, {s * 1000: 10 for s in range(103, 110)})  # stored in one go after the restart
    assert late.recovery_s(fault_at=103.0) == 9.0
