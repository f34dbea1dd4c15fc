from __future__ import annotations

from datetime import timedelta

import pytest

from api.downsample import MAX_POINTS, TARGET_POINTS, BadEvery, buckets, choose_every, parse_every, spell


@pytest.mark.parametrize(
    ("text", "seconds"), [("1m", 60), ("15m", 900), ("90s", 90), ("1h", 3600), ("2d", 172800), ("366d", 366 * 86400)]
)
def test_a_width_is_a_number_and_a_unit(text: str, seconds: int) -> None:
    assert parse_every(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "m", "0m", "-5m", "1.5h", "15 m", "1w", "30s", "367d", "01m", "1H"])
def test_other_spellings_and_widths_out_of_reach_are_refused(text: str) -> None:
    with pytest.raises(BadEvery, match="every"):
        parse_every(text)


@pytest.mark.parametrize(("seconds", "text"), [(60, "1m"), (900, "15m"), (5400, "90m"), (86400, "1d"), (90, "90s")])
def test_a_width_is_spelt_in_its_largest_unit(seconds: int, text: str) -> None:
    assert spell(seconds) == text


@pytest.mark.parametrize(
    ("span", "every_s"),
    [
        (timedelta(hours=1), 60),
        (timedelta(hours=16), 60),  # 961 buckets
        (timedelta(hours=24), 5 * 60),
        (timedelta(days=7), 15 * 60),
        (timedelta(days=30), 3600),
        (timedelta(days=366), 12 * 3600),
    ],
)
def test_the_automatic_width_is_the_finest_that_keeps_a_range_within_the_target(span: timedelta, every_s: int) -> None:
    assert choose_every(span, None) == every_s
    assert buckets(span, every_s) <= TARGET_POINTS


def test_a_width_asked_for_is_kept_unless_it_makes_too_many_points() -> None:
    assert choose_every(timedelta(days=6), "1m") == 60  # 8,641 buckets
    with pytest.raises(BadEvery, match=r"10,081 points .* every=5m or more"):
        choose_every(timedelta(days=7), "1m")
    assert buckets(timedelta(days=7), 300) <= MAX_POINTS
