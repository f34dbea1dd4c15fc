"""The web app's SVG charts: where points land, where lines break, bars from zero, round ticks, an empty chart."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from zoneinfo import ZoneInfo

import pytest

from api.web.charts import (
    Chart,
    Frame,
    Mark,
    Scale,
    Series,
    bar_rects,
    line_path,
    midnights,
    nice_ticks,
    render,
    value_range,
)

UTC = ZoneInfo("UTC")
FRAME = Frame(width=200, height=120, left=20, right=0, top=10, bottom=10)  # a plot of 180 x 100
SCALE = Scale(FRAME, start_s=0, end_s=3600, low=0, high=50)
SVG = "{http://www.w3.org/2000/svg}"


def test_points_map_to_the_plot_corners_and_between() -> None:
    assert (SCALE.x(0), SCALE.y(0)) == (20, 110)  # the start at the lowest value: bottom left
    assert (SCALE.x(3600), SCALE.y(50)) == (200, 10)  # the end at the highest: top right
    assert (SCALE.x(900), SCALE.y(25)) == (65, 60)


def test_a_line_goes_through_its_points_in_time_order() -> None:
    assert line_path([(1800, 25.0), (0, 0.0), (3600, 50.0)], SCALE) == "M20.0,110.0 L110.0,60.0 L200.0,10.0"


@pytest.mark.parametrize(
    ("points", "gap_s", "pens"),
    [
        ([(0, 1.0), (600, 2.0), (1200, 3.0)], None, "MLL"),
        ([(0, 1.0), (600, None), (1200, 3.0), (1800, 4.0)], None, "MML"),  # a missing value breaks the line
        ([(0, 1.0), (600, 2.0), (3000, 3.0), (3600, 4.0)], 900, "MLML"),  # so does a silence longer than gap_s
        ([(0, 1.0), (600, 2.0), (3000, 3.0)], 3600, "MLL"),
        ([(-600, 1.0), (600, 2.0), (4000, 3.0)], None, "M"),  # points outside the span are left out
    ],
)
def test_gaps_break_lines(points: list[tuple[float, float | None]], gap_s: float | None, pens: str) -> None:
    assert re.sub(r"[^ML]", "", line_path(points, SCALE, gap_s)) == pens


def test_nothing_to_draw_is_an_empty_path() -> None:
    assert line_path([], SCALE) == "" and line_path([(0, None)], SCALE) == ""


def test_bars_stand_on_zero() -> None:
    scale = Scale(FRAME, 0, 36000, -10, 10)  # zero is halfway up
    ((x, y, width, height),) = bar_rects([(3600, 5.0)], scale, bar_s=3600)
    assert (x, y, height) == (38, 35, 25) and width == pytest.approx(14.4)  # 80 % of an hour's 18 units
    ((_, y, _, height),) = bar_rects([(3600, -10.0)], scale, bar_s=3600)
    assert (y, height) == (60, 50)
    assert bar_rects([(3600, None), (36000, 1.0)], scale, 3600) == []  # no value; at the span's end


@pytest.mark.parametrize(
    ("low", "high", "ticks"),
    [
        (0, 10, [0, 5, 10]),
        (13.2, 27.9, [10, 15, 20, 25, 30]),
        (0.1, 0.9, [0, 0.2, 0.4, 0.6, 0.8, 1]),
        (5, 5, [5]),
    ],
)
def test_ticks_are_round_and_span_the_values(low: float, high: float, ticks: list[float]) -> None:
    assert nice_ticks(low, high) == ticks


def test_midnights_are_local_and_follow_dst() -> None:
    paris = ZoneInfo("Europe/Paris")
    start = 1774825200 - 2 * 86400  # 2026-03-28 00:00 in Paris (UTC+1); clocks go forward on the 29th
    days = midnights(start - 3600, start + 3 * 86400 - 7200, paris)
    assert [label for _, label in days] == ["Sat 28", "Sun 29", "Mon 30"]
    assert days[2][0] - days[1][0] == 23 * 3600


def test_a_chart_is_valid_svg_with_its_series_its_ticks_and_its_days() -> None:
    chart = Chart(
        title="Soil moisture",
        unit="% vol",
        start_s=0,
        end_s=2 * 86400,
        series=(
            Series("measured", [(0, 20.0), (3600, 21.0)], "moisture"),
            Series("trigger", [(0, 18.0), (2 * 86400, 18.0)], "trigger", Mark.DASHED),
            Series("rain", [(7200, 4.0)], "rain", Mark.BARS),
        ),
        include=(0,),
    )
    root = ET.fromstring(render(chart, UTC))
    assert root.get("aria-label") == "Soil moisture (% vol)"
    paths = root.findall(f"{SVG}path")
    assert [p.get("class") for p in paths] == ["series-moisture", "series-trigger dashed"]
    assert [r.get("class") for r in root.findall(f"{SVG}rect")] == ["series-rain"]
    texts = [t.text for t in root.findall(f"{SVG}text")]
    assert {"0", "10", "20"} <= set(texts) and "Thu 1" in texts and "Fri 2" in texts  # 1970-01-01 was a Thursday


def test_an_empty_chart_says_so_and_escapes_its_title() -> None:
    chart = Chart(title="Rain & <water>", unit="mm", start_s=0, end_s=86400, series=(Series("rain", [], "rain"),))
    svg = render(chart, UTC)
    root = ET.fromstring(svg)
    assert root.get("aria-label") == "Rain & <water> (mm)"
    assert [t.text for t in root.findall(f"{SVG}text")] == ["No data for these days yet"]
    assert root.findall(f"{SVG}path") == []


def test_a_flat_series_of_amounts_stands_on_its_floor() -> None:
    chart = Chart("Rain", "mm", 0, 86400, (Series("rain", [(3600, 0.0), (7200, 0.0)], "rain", Mark.BARS),), (0.0,))
    assert value_range(chart) == (0, 1)
    flat = Chart("Air", "°C", 0, 86400, (Series("air", [(3600, 12.0)], "air"),))
    assert value_range(flat) == (11, 13)
