"""The zone stage's own count of its open windows (``stream.live``), held against ``ml.timeline``'s rules over the
same readings: what the stage would compute from the stored readings."""

from __future__ import annotations

import random

import pytest

from ml.timeline import HOUR_S, Window, suspicions, window_stats
from smartfarm.layout import SensorKind
from storage.zones import StoredReading
from stream.live import Counted, LiveMessage, LiveZone
from stream.windows import WIDTHS_S

KINDS = (SensorKind.SOIL_MOISTURE, SensorKind.AIR_TEMPERATURE, SensorKind.BATTERY)
T0 = 1_780_000_200.0  # inside an hour, so the messages straddle hour and quarter boundaries


def messages(seed: int, devices: int = 5, per_device: int = 40) -> list[LiveMessage]:
    rng = random.Random(seed)
    out = []
    for d in range(devices):
        for seq in range(per_device):
            ts = T0 + seq * 120 + rng.choice((0, 0, 0.5))  # some devices share a time stamp: ties for ``last``
            readings = []
            for k, kind in enumerate(KINDS):
                flags = ("spike",) if rng.random() < 0.1 else ()
                if rng.random() < 0.05:
                    flags = (*flags, "stuck")
                value = round(rng.uniform(10, 30), 1) if rng.random() > 0.1 else 20.0
                quality = "suspect" if flags else "good"
                readings.append(
                    {"sensor": f"s{k}", "kind": kind.value, "value": value, "quality": quality, "flags": flags}
                )
            out.append(LiveMessage(f"dev-{d}", seq, ts, tuple(readings)))
    return out


def stored(found: list[LiveMessage]) -> list[StoredReading]:
    return [
        StoredReading(
            m.ts, m.device, r["sensor"], SensorKind(r["kind"]), r["value"], r["quality"] == "good", ",".join(r["flags"])
        )
        for m in found
        for r in m.readings
    ]


@pytest.mark.parametrize("seed", range(5))
def test_counted_windows_equal_what_the_stored_readings_give_even_when_records_come_twice(seed: int) -> None:
    sent = messages(seed)
    again = list(sent)
    random.Random(seed).shuffle(again)
    live = LiveZone()
    live.feed(sent[: len(sent) // 2])
    live.feed(again)  # redelivered and shuffled: each (device, seq) still counts once per window
    live.feed(sent[len(sent) // 2 :])
    readings = stored(sent)
    good = [(r.time_s, r.kind, r.value) for r in readings if r.good]
    for width in WIDTHS_S:
        expected = window_stats(good, width)
        windows = {Window.of(width, m.ts) for m in sent}
        got = {k: v for w in windows for k, v in live.stats(w).items()}
        assert got.keys() == expected.keys()
        for key, stats in expected.items():
            assert got[key].count == stats.count and got[key].last == stats.last
            assert (got[key].min, got[key].max) == (stats.min, stats.max)
            assert got[key].mean == pytest.approx(stats.mean, rel=1e-12)
    flags = suspicions(readings, 0, 2**40)
    for window in {Window.of(HOUR_S, m.ts) for m in sent}:
        assert live.suspicions(window) == flags[window.start_s]


def test_a_window_is_complete_only_when_its_counts_equal_the_stored_ones() -> None:
    sent = messages(7)
    live = LiveZone()
    live.feed(sent[1:])  # the first message was read by another worker before this one took the zone over
    counts: dict[tuple[Window, SensorKind], int] = {}
    for m in sent:
        for width in WIDTHS_S:
            for r in m.readings:
                key = (Window.of(width, m.ts), SensorKind(r["kind"]))
                counts[key] = counts.get(key, 0) + 1
    first = {Window.of(w, sent[0].ts) for w in WIDTHS_S}
    windows = {Window.of(w, m.ts) for m in sent for w in WIDTHS_S}
    assert live.complete(windows, counts) == windows - first
    assert live.complete(windows, {}) == set(), "nothing stored: nothing to trust"
    live.forget(w for w in windows if w.width_s != HOUR_S)
    assert live.holds(next(iter(first))), "a closed quarter is kept until its hour is computed"
    live.forget(windows)
    assert not live.windows


def test_sequence_numbers_are_counted_once_in_runs() -> None:
    counted = Counted()
    order = [5, 6, 7, 1, 3, 2, 9, 8, 4, 7, 0]
    fresh = [counted.add(s) for s in order]
    assert fresh == [True, True, True, True, True, True, True, True, True, False, True]
    assert (counted.firsts, counted.lasts) == ([0], [9]), "the runs merge as gaps fill"
    assert all(s in counted for s in range(10)) and 10 not in counted and -1 not in counted
    assert not counted.add(4)
