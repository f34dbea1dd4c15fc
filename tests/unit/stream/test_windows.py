"""Zone windows by event time: open, close as the watermark passes, re-open for late readings, revise."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from ml.timeline import Day, Stats, Window, revise, same, summarize, window_stats
from smartfarm.layout import SensorKind
from stream.windows import ZoneClock

UTC_TZ = ZoneInfo("UTC")
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC).timestamp()
GRACE = 900.0


def at(minutes: float) -> float:
    return T0 + minutes * 60


def quarter(minutes: int) -> Window:
    return Window(900, int(at(minutes)))


def hour(hours: int) -> Window:
    return Window(3600, int(at(60 * hours)))


@pytest.mark.parametrize(
    ("width", "minutes", "start_minutes"),
    [(900, 0, 0), (900, 14.99, 0), (900, 15, 15), (3600, 59.9, 0), (3600, 60, 60), (3600, -0.01, -60)],
)
def test_a_reading_falls_in_the_window_that_holds_its_time(width: int, minutes: float, start_minutes: int) -> None:
    assert Window.of(width, at(minutes)).start_s == int(at(start_minutes))


def test_windows_close_when_the_watermark_passes_their_end_not_before() -> None:
    clock = ZoneClock()
    assert not clock.observe([at(1), at(5), at(14)], GRACE, UTC_TZ)
    # 29 minutes: the watermark is at 14, the first quarter (0-15) is still open for late readings
    assert not clock.observe([at(29)], GRACE, UTC_TZ).windows
    due = clock.observe([at(30)], GRACE, UTC_TZ)
    assert due.windows == due.closed == {quarter(0)}
    due = clock.observe([at(75)], GRACE, UTC_TZ)  # watermark at 60: the quarters to 45 and the first hour close
    assert due.closed == {quarter(15), quarter(30), hour(0)}


def test_a_reading_within_the_grace_period_joins_its_open_window_and_one_after_re_opens_it() -> None:
    clock = ZoneClock()
    clock.observe([at(5)], GRACE, UTC_TZ)
    clock.observe([at(28)], GRACE, UTC_TZ)
    inside_grace = clock.observe([at(12)], GRACE, UTC_TZ)  # out of order, but its window is open
    assert not inside_grace.windows
    closing = clock.observe([at(31)], GRACE, UTC_TZ)
    assert closing.closed == {quarter(0)}
    late = clock.observe([at(3)], GRACE, UTC_TZ)  # its window closed: re-opened, computed again, not scored again
    assert late.windows == {quarter(0)} and not late.closed


def test_a_device_back_from_an_outage_re_opens_every_window_its_buffer_covers() -> None:
    clock = ZoneClock()
    clock.observe([at(m) for m in range(0, 6 * 60 + 30, 5)], GRACE, UTC_TZ)  # the zone's other devices
    buffered = [at(m) for m in range(0, 6 * 60, 5)]
    due = clock.observe(buffered, GRACE, UTC_TZ)
    assert {w for w in due.windows if w.width_s == 3600} == {hour(h) for h in range(6)}
    assert len([w for w in due.windows if w.width_s == 900]) == 24
    assert not due.closed


def test_a_batch_that_jumps_hours_ahead_closes_each_window_once() -> None:
    clock = ZoneClock()
    first = clock.observe([at(m) for m in range(0, 300, 5)], GRACE, UTC_TZ)
    assert {w for w in first.closed if w.width_s == 3600} == {hour(h) for h in range(4)}
    again = clock.observe([at(m) for m in range(290, 300, 5)], GRACE, UTC_TZ)
    assert not again.closed, "a window closes once"


def test_days_close_in_the_farms_time_zone() -> None:
    la = ZoneInfo("America/Los_Angeles")
    clock = ZoneClock()
    june1_local_evening = datetime(2026, 6, 1, 23, 50, tzinfo=la).timestamp()
    clock.observe([june1_local_evening], GRACE, la)
    assert not clock.observe([june1_local_evening + 20 * 60], GRACE, la).days  # 00:10, inside the grace period
    due = clock.observe([june1_local_evening + 30 * 60], GRACE, la)
    assert [d.day for d in due.days] == [date(2026, 6, 1)]
    assert Day.on(date(2026, 11, 1), la).end_s - Day.on(date(2026, 11, 1), la).start_s == 25 * 3600


def test_the_clock_survives_its_json_round_trip() -> None:
    clock = ZoneClock()
    clock.observe([at(1), at(20)], GRACE, UTC_TZ)
    clock.advice["cooldown"] = {"frost": at(600)}
    again = ZoneClock.from_json(clock.to_json())
    assert again == clock
    assert ZoneClock.from_json(ZoneClock().to_json()) == ZoneClock()


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], None),
        ([(2.0, 5.0)], Stats(1, 5.0, 5.0, 5.0, 5.0)),
        ([(3.0, 1.0), (1.0, 4.0), (2.0, 7.0)], Stats(3, 4.0, 1.0, 7.0, 1.0)),
    ],
)
def test_summarize(values: list[tuple[float, float]], expected: Stats | None) -> None:
    assert summarize(values) == expected


def test_revise_emits_new_and_changed_windows_with_the_next_revision_and_skips_unchanged_ones() -> None:
    a, b, c = quarter(0), quarter(15), quarter(30)
    kind = SensorKind.SOIL_MOISTURE
    stats = Stats(3, 20.0, 19.0, 21.0, 20.5)
    computed = {(a, kind): stats, (b, kind): stats, (c, kind): stats}
    stored = {(a, kind): (stats, 1), (b, kind): (Stats(2, 19.5, 19.0, 20.0, 20.0), 2)}
    out = revise("f", "z", [a, b, c], computed, stored)
    assert [(o.window_start.timestamp(), o.revision) for o in out] == [(b.start_s, 3), (c.start_s, 1)]
    assert out[0].count == 3 and out[0].last == 20.5 and out[0].width_s == 900
    assert revise("f", "z", [a], computed, stored) == [], "a recomputation of an unchanged window issues nothing"


def test_same_tolerates_the_last_bits_of_another_engines_mean_but_not_a_real_change() -> None:
    stats = Stats(4, 0.1 + 0.2, 0.0, 1.0, 0.5)
    assert same(stats, Stats(4, 0.3, 0.0, 1.0, 0.5))
    assert not same(stats, Stats(4, 0.31, 0.0, 1.0, 0.5))
    assert not same(stats, Stats(5, 0.3, 0.0, 1.0, 0.5))
    assert not same(stats, None)


def test_window_stats_summarize_each_window_and_kind() -> None:
    sm, at = SensorKind.SOIL_MOISTURE, SensorKind.AIR_TEMPERATURE
    readings = [(0.0, sm, 20.0), (899.0, sm, 22.0), (900.0, sm, 30.0), (10.0, at, 5.0), (3599.0, at, 7.0)]
    quarter = window_stats(readings, 900)
    assert quarter == {
        (Window(900, 0), sm): summarize([(0.0, 20.0), (899.0, 22.0)]),
        (Window(900, 900), sm): summarize([(900.0, 30.0)]),
        (Window(900, 0), at): summarize([(10.0, 5.0)]),
        (Window(900, 2700), at): summarize([(3599.0, 7.0)]),
    }
    hour = window_stats(readings, 3600)
    assert hour[(Window(3600, 0), sm)] == Stats(3, 24.0, 20.0, 30.0, 30.0)
    assert window_stats([], 900) == {}
