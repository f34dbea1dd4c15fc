"""How finely a series over a time range is served: the ``every`` of a bucketed read, chosen or checked.

Pure: no clock, no I/O. A bucket width is spelt as InfluxQL spells a duration (``30s``, ``15m``, ``1h``, ``1d``);
buckets are aligned to multiples of their width since the epoch (UTC), as InfluxQL's ``GROUP BY time()`` aligns them.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

TARGET_POINTS = 1000
"""Buckets per series a range gets when it does not say ``every``: enough for a chart a screen wide."""
MAX_POINTS = 10_000
"""The most buckets per series a request may ask for with ``every``; more is refused (422)."""
MIN_EVERY_S = 60
"""The finest bucket: a minute (devices report every few minutes)."""
MAX_EVERY_S = 366 * 86400

LADDER_S: tuple[int, ...] = (
    60,
    5 * 60,
    15 * 60,
    30 * 60,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
    7 * 86400,
    30 * 86400,
)
"""The widths chosen automatically: round ones a person reads at a glance."""

UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EVERY = re.compile(r"^([1-9][0-9]{0,6})([smhd])$")


class BadEvery(ValueError):
    """An ``every`` that cannot be served; the message says why and what would do."""


def parse_every(text: str) -> int:
    """Seconds of a width like ``15m``; BadEvery for another spelling, or for one under a minute or over a year."""
    match = _EVERY.match(text)
    if match is None:
        raise BadEvery(f"every {text!r}: a whole number and a unit of s, m, h or d, like 15m or 1h")
    seconds = int(match[1]) * UNITS_S[match[2]]
    if not MIN_EVERY_S <= seconds <= MAX_EVERY_S:
        raise BadEvery(f"every {text!r}: from 1m to 366d")
    return seconds


def spell(seconds: int) -> str:
    """A width in the largest unit that divides it: 900 -> ``15m``, 86400 -> ``1d``."""
    for unit, size in sorted(UNITS_S.items(), key=lambda item: -item[1]):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("a second divides every whole number")


def buckets(span: timedelta, every_s: int) -> int:
    """How many buckets of ``every_s`` a range of ``span`` touches at most (aligned buckets may straddle both ends)."""
    return math.ceil(span.total_seconds() / every_s) + 1


def choose_every(span: timedelta, every: str | None) -> int:
    """The bucket width for a range: ``every`` when given, checked against ``MAX_POINTS``; otherwise the finest
    width of ``LADDER_S`` that keeps the range within ``TARGET_POINTS``."""
    if every is not None:
        seconds = parse_every(every)
        if buckets(span, seconds) > MAX_POINTS:
            finest = next(s for s in (*LADDER_S, MAX_EVERY_S) if buckets(span, s) <= MAX_POINTS)
            raise BadEvery(
                f"every {every!r} makes {buckets(span, seconds):,} points per series over this range, more than "
                f"{MAX_POINTS:,}: ask for every={spell(finest)} or more, or a shorter range"
            )
        return seconds
    return next((s for s in LADDER_S if buckets(span, s) <= TARGET_POINTS), LADDER_S[-1])
