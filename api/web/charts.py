"""Charts as inline SVG, drawn on the server: the web app loads nothing from the internet and runs no script.

Pure: series of ``(time_s, value)`` in, SVG markup out. A chart has one time axis (``start_s`` to ``end_s``, labelled
at the farm's local midnights) and one value axis (rounded ticks around what is drawn). Lines break where a value
is missing (``None``) or where two neighbours are further apart than the series' ``gap_s`` (a device that fell
silent is not drawn as a straight line across its silence); bars stand on zero. A chart with nothing to draw says
so in words.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from html import escape
from zoneinfo import ZoneInfo

Point = tuple[float, float | None]
"""A time in epoch seconds and the value then (None: no value, a gap)."""


class Mark(StrEnum):
    """How a series is drawn."""

    LINE = "line"
    """A polyline through the points, broken at gaps."""
    DASHED = "dashed"
    """A dashed polyline: a forecast or a threshold."""
    BARS = "bars"
    """A bar per point from zero, ``bar_s`` wide: amounts (rain, irrigation)."""


@dataclass(frozen=True, slots=True)
class Series:
    """One thing drawn on a chart. ``css`` names its colour in the stylesheet (``.series-<css>``)."""

    label: str
    points: Sequence[Point]
    css: str
    mark: Mark = Mark.LINE
    gap_s: float | None = None
    """Break the line where neighbours are further apart than this (None: only at missing values)."""
    bar_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class Frame:
    """The chart's size in SVG units and the room kept around the plot for the axes' labels."""

    width: float = 360.0
    height: float = 180.0
    left: float = 38.0
    right: float = 8.0
    top: float = 10.0
    bottom: float = 24.0

    @property
    def plot_width(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> float:
        return self.height - self.top - self.bottom


@dataclass(frozen=True, slots=True)
class Scale:
    """Maps times and values into the plot area of a frame (SVG's y grows downwards)."""

    frame: Frame
    start_s: float
    end_s: float
    low: float
    high: float

    def x(self, t: float) -> float:
        return self.frame.left + (t - self.start_s) / (self.end_s - self.start_s) * self.frame.plot_width

    def y(self, v: float) -> float:
        return self.frame.top + (self.high - v) / (self.high - self.low) * self.frame.plot_height


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart's content: its series over a time span, in one unit, with the value axis kept to include
    ``include`` (zero for amounts)."""

    title: str
    unit: str
    start_s: float
    end_s: float
    series: Sequence[Series]
    include: Sequence[float] = field(default_factory=tuple)


def _fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """About ``count`` round values (steps of 1, 2 or 5 times a power of ten) spanning ``low`` to ``high``."""
    if not high > low:
        return [low]
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    last = math.ceil(high / step) * step
    n = round((last - first) / step)
    return [round(first + i * step, 10) for i in range(n + 1)]


def value_range(chart: Chart) -> tuple[float, float] | None:
    """The value axis: round ticks around every value in the time span (and ``include``); None when there is none."""
    drawn = [v for s in chart.series for t, v in s.points if v is not None and chart.start_s <= t <= chart.end_s]
    if not drawn:
        return None
    values = drawn + list(chart.include)
    low, high = min(values), max(values)
    if high == low:  # one level only (a dry week of rain): a unit above it, and below unless it is a floor
        low, high = (low if low in chart.include else low - 1), high + 1
    ticks = nice_ticks(low, high)
    return ticks[0], ticks[-1]


def line_path(points: Sequence[Point], scale: Scale, gap_s: float | None = None) -> str:
    """SVG path data through the points in the time span, a new ``M`` after each gap (a missing value, or
    neighbours further apart than ``gap_s``); "" when nothing is drawn."""
    parts: list[str] = []
    previous: float | None = None
    for t, v in sorted(points, key=lambda p: p[0]):
        if v is None or not scale.start_s <= t <= scale.end_s:
            previous = None
            continue
        pen = "M" if previous is None or (gap_s is not None and t - previous > gap_s) else "L"
        parts.append(f"{pen}{scale.x(t):.1f},{scale.y(v):.1f}")
        previous = t
    return " ".join(parts)


def bar_rects(points: Sequence[Point], scale: Scale, bar_s: float) -> list[tuple[float, float, float, float]]:
    """``(x, y, width, height)`` of a bar from zero per point with a value in the time span."""
    zero = scale.y(max(scale.low, min(0.0, scale.high)))
    width = max(1.0, bar_s / (scale.end_s - scale.start_s) * scale.frame.plot_width * 0.8)
    out = []
    for t, v in points:
        if v is None or not scale.start_s <= t < scale.end_s:
            continue
        top = scale.y(v)
        out.append((scale.x(t), min(top, zero), width, abs(zero - top)))
    return out


def midnights(start_s: float, end_s: float, tz: ZoneInfo) -> list[tuple[float, str]]:
    """The local midnights in the span, labelled with their weekday and day of month ("Tue 2")."""
    day = datetime.fromtimestamp(start_s, tz).replace(hour=0, minute=0, second=0, microsecond=0)
    out = []
    while day.timestamp() <= end_s:
        if day.timestamp() >= start_s:
            out.append((day.timestamp(), f"{day:%a} {day.day}"))
        # by date, not by 24 h: a day at a DST change is 23 or 25 hours long
        day = datetime.combine(day.date() + timedelta(days=1), datetime.min.time(), tz)
    return out


def render(chart: Chart, tz: ZoneInfo, frame: Frame = Frame(), now_s: float | None = None) -> str:
    """The chart as an ``<svg>`` element, sized by its viewBox (it fills its container's width), with a line marked
    "now" at ``now_s`` when it is in the span."""
    label = escape(f"{chart.title} ({chart.unit})")
    head = (
        f'<svg class="chart" viewBox="0 0 {frame.width:g} {frame.height:g}" role="img" aria-label="{label}" '
        'xmlns="http://www.w3.org/2000/svg">'
    )
    span = value_range(chart)
    if span is None:
        middle = frame.top + frame.plot_height / 2
        return (
            f'{head}<text class="empty" x="{frame.width / 2:g}" y="{middle:g}" text-anchor="middle">'
            "No data for these days yet</text></svg>"
        )
    scale = Scale(frame, chart.start_s, chart.end_s, *span)
    out = [head]
    left, right, top, bottom = frame.left, frame.width - frame.right, frame.top, frame.height - frame.bottom
    for tick in nice_ticks(*span):
        y = scale.y(tick)
        out.append(f'<line class="grid" x1="{left:g}" x2="{right:g}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text class="tick" x="{frame.left - 4:g}" y="{y + 4:.1f}" text-anchor="end">{_fmt(tick)}</text>')
    for t, text in midnights(chart.start_s, chart.end_s, tz):
        x = scale.x(t)
        out.append(f'<line class="day" x1="{x:.1f}" x2="{x:.1f}" y1="{top:g}" y2="{bottom:g}"/>')
        out.append(f'<text class="tick" x="{x + 3:.1f}" y="{frame.height - 8:g}">{escape(text)}</text>')
    if now_s is not None and chart.start_s <= now_s <= chart.end_s:
        x = scale.x(now_s)
        out.append(f'<line class="now" x1="{x:.1f}" x2="{x:.1f}" y1="{top:g}" y2="{bottom:g}"/>')
        out.append(f'<text class="now" x="{x - 3:.1f}" y="{frame.top + 10:g}" text-anchor="end">now</text>')
    for s in chart.series:
        css = f"series-{escape(s.css)}"
        if s.mark is Mark.BARS:
            out += [
                f'<rect class="{css}" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}"/>'
                for x, y, w, h in bar_rects(s.points, scale, s.bar_s)
            ]
        elif d := line_path(s.points, scale, s.gap_s):
            dashed = " dashed" if s.mark is Mark.DASHED else ""
            out.append(f'<path class="{css}{dashed}" d="{d}"><title>{escape(s.label)}</title></path>')
    out.append("</svg>")
    return "".join(out)
