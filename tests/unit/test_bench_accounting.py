"""The end-to-end benchmark's bookkeeping: what was due per bucket, what each poll saw, latency and loss."""

from __future__ import annotations

import math

import pytest

from benchmarks.accounting import HORIZON_S, Arrivals, Latency, Outcome
from benchmarks.openloop import Plan


def test_plan_stamps_each_message_with_its_due_time_in_whole_milliseconds() -> None:
    plan = Plan(t0=1000.0, rate=3.0, count=4, ts0=1000.0)
    assert [plan.due(i) for i in range(4)] == [1000.0, 1000 + 1 / 3, 1000 + 2 / 3, 1001.0]
    assert [plan.stamp_ms(i) for i in range(4)] == [1_000_000, 1_000_333, 1_000_666, 1_001_000]
    fast = Plan(t0=1000.0, rate=2.0, count=3, ts0=5000.0, speed=60)
    assert [fast.stamp_ms(i) for i in range(3)] == [5_000_000, 5_030_000, 5_060_000]


def test_arrivals_expect_each_bucket_its_messages() -> None:
    plans = [Plan(t0=100.0, rate=20.0, count=40, ts0=100.0), Plan(t0=100.025, rate=20.0, count=40, ts0=100.025)]
    arrivals = Arrivals(plans)
    assert arrivals.due == 80
    assert arrivals.first_ms == 100_000 and arrivals.end_ms == 102_000
    assert set(arrivals.expected.values()) == {4}  # two per generator per 100 ms
    with pytest.raises(ValueError, match="real-time"):
        Arrivals([Plan(t0=0.0, rate=1.0, count=1, ts0=0.0, speed=60)])


def test_a_poll_books_only_what_is_new_since_the_last_and_never_more_than_was_due() -> None:
    arrivals = Arrivals([Plan(t0=100.0, rate=10.0, count=10, ts0=100.0)])  # one message per 100 ms bucket
    arrivals.observe(100.5, {100_000: 1, 100_100: 1})
    arrivals.observe(100.8, {100_000: 1, 100_100: 1, 100_200: 1, 100_300: 3})  # a duplicate is not new
    assert sum(arrivals.histogram.values()) == 4
    # Latency from each bucket's middle (100.05, 100.15 | 100.25, 100.35) to the poll that first saw it.
    assert arrivals.histogram == {0.45: 2, 0.35: 1, 0.55: 1}
    assert arrivals.open[0] == 1004  # the first four buckets (1000 to 1003, of 100 ms each) are complete


def test_the_poll_window_runs_from_the_oldest_open_bucket_within_the_horizon_to_now() -> None:
    arrivals = Arrivals([Plan(t0=100.0, rate=10.0, count=10, ts0=100.0)])
    assert arrivals.window_ms(100.25) == (100_000, 100_251)
    arrivals.observe(100.3, {100_000: 1, 100_100: 1})
    assert arrivals.window_ms(100.35) == (100_200, 100_351)
    assert arrivals.window_ms(200.0) is None  # past the horizon every open bucket is given up
    assert arrivals.latency(10).late == 8  # stored in the end, but never seen within the horizon


def test_latency_percentiles_rank_over_everything_stored_and_late_ones_make_the_tail_infinite() -> None:
    histogram = {0.1: 90, 0.5: 9, 1.5: 1}
    latency = Latency.of(histogram, late=0)
    assert (latency.p50, latency.p95, latency.p99, latency.max) == (0.1, 0.5, 0.5, 1.5)
    late = Latency.of(histogram, late=2)
    assert late.p99 == math.inf and late.max == math.inf and late.p50 == 0.1
    assert math.isnan(Latency.of({}, late=0).p50)


def test_outcome_is_sustained_only_with_nothing_lost_everything_acknowledged_and_p99_under_the_limit() -> None:
    fast = Latency(0.3, 0.8, 1.2, 1.5, 0)
    ok = Outcome(500, 60, 30_000, 30_000, 240_000, 240_000, 0, fast, 0.01)
    assert ok.sustained() and ok.verdict() == "sustained" and ok.lost == 0
    lost = Outcome(500, 60, 30_000, 30_000, 240_000, 239_992, 0, fast, 0.01)
    assert lost.lost == 8 and lost.verdict() == "not sustained: 8 readings lost"
    slow = Outcome(500, 60, 30_000, 29_990, 240_000, 240_000, 0, Latency(1.0, 2.0, 2.5, 3.0, 0), 0.01)
    assert slow.verdict() == "not sustained: 10 messages never acknowledged, p99 2.50 s"
    assert HORIZON_S > 2.0  # a message later than the limit is still seen, not only counted late
