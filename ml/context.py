"""What a scorer is given and what it answers: a zone's recent data in, advice out.

These live apart from ``ml.scoring`` so that the rules in ``ml.rules`` and the ``Scorer`` that combines them
can both import them without an import cycle; ``ml.scoring`` re-exports them, and callers import from there.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from smartfarm.forecast import WeatherForecast
from smartfarm.layout import Farm, SensorKind, Zone
from smartfarm.records import RecommendationKind, Severity, ZoneAggregate, ZoneDay


@dataclass(frozen=True, slots=True)
class SensorSuspicion:
    """How often one sensor's readings were flagged over the window that just closed."""

    device: str
    sensor: str
    kind: SensorKind
    readings: int
    """Readings of this sensor in the window."""
    flags: Mapping[str, int]
    """Flag name (``smartfarm.records.Flag`` value) -> readings so flagged; one reading may carry several flags."""


STEP_WITHIN_S = 3600.0
"""A change between two readings further apart than this is not a step: an hour's silence can hide a real change
(the stream's cleaning judges jumps over the same span, ``stream.clean.SPIKE_WITHIN_S``)."""
RUN_BEFORE = 8
"""How many of a sensor's readings before an hour its ``SensorHour.run`` counts back over: more than the longest
run of repeats the fault detector waits for (``ml.faultdetect.STUCK_REPEATS``), so a sensor stuck since before
the hour is known stuck in the hour its value comes free. Eight readings span at most 7 h of steps (a step is at
most ``STEP_WITHIN_S``), within the 12 h the stream looks back for them."""
HISTORY_H = 168
"""Hours of a sensor's hourly means before an hour that its ``SensorHour.history`` carries: a week, so the
median of its offset from its peers over them is its usual offset even while a drift of up to three days (the
simulator's longest, ``edge.faults.DURATION``) is under way or just over."""


@dataclass(frozen=True, slots=True)
class SensorHour:
    """One sensor's readings over one hour, summed up for the fault detector (``ml.faultdetect``).

    Steps are the changes between consecutive readings in time order, from the sensor's previous reading before
    the hour (when known) to its last one in the hour, leaving out pairs further apart than ``STEP_WITHIN_S``.
    """

    device: str
    sensor: str
    kind: SensorKind
    depth_cm: float | None
    count: int
    """Readings in the hour (at least one)."""
    mean: float
    std: float
    """Population standard deviation (0 for one reading)."""
    min: float
    max: float
    last: float
    """The value with the latest time."""
    first_ts: float
    last_ts: float
    """Epoch seconds of the first and last reading in the hour."""
    steps: int
    """How many steps were measured."""
    max_step: float
    """The largest absolute step (0 when there is none)."""
    repeats: int
    """Steps of exactly zero: readings equal to their predecessor."""
    excursion: float
    """The largest out-and-back of one reading inside the hour: for a reading whose step in and step out have
    opposite signs, the smaller of the two sizes (0 when there is none). A spike shows here; a level shift not."""
    last_step: float
    """The absolute step into the hour's last reading from the one before it in the hour (0 with one reading): a
    spike on the last reading has no way back yet when the hour closes."""
    gap_s: float | None
    """Seconds from the sensor's previous reading to the hour's first one; None when no previous one is known."""
    run: int = 0
    """The most steps of exactly zero in a row, in a stretch that reaches into the hour: a stretch that began
    before the hour counts its steps there too, over at most ``RUN_BEFORE`` readings before it."""
    history: tuple[float, ...] = ()
    """The sensor's hourly means of the ``HISTORY_H`` hours before this one (over all its readings, as ``mean``),
    the hour just before first; NaN for an hour without readings. Empty when none is known."""


def _excursion(values: Sequence[float], steps_in: Sequence[float | None]) -> float:
    """The largest one-reading out-and-back: ``steps_in[i]`` is the step into ``values[i]`` or None."""
    best = 0.0
    for i in range(len(values) - 1):
        into, out = steps_in[i], steps_in[i + 1]
        if into is not None and out is not None and into * out < 0:
            best = max(best, min(abs(into), abs(out)))
    return best


def _steps(chain: Sequence[tuple[float, float]]) -> list[float | None]:
    """The change between each two consecutive ``(time, value)`` readings; None across more than
    ``STEP_WITHIN_S``."""
    return [b[1] - a[1] if b[0] - a[0] <= STEP_WITHIN_S else None for a, b in itertools.pairwise(chain)]


def _run(before: Sequence[tuple[float, float]], readings: Sequence[tuple[float, float]]) -> int:
    """``SensorHour.run``: the most zero steps in a row ending at one of ``readings``, counted back over the last
    ``RUN_BEFORE`` of ``before``."""
    chain = [*before[-RUN_BEFORE:], *readings]
    first_inside = len(chain) - len(readings)  # chain index of the hour's first reading
    best = current = 0
    for i, step in enumerate(_steps(chain), start=1):
        current = current + 1 if step == 0 else 0
        if i >= first_inside:
            best = max(best, current)
    return best


def sensor_hour(
    device: str,
    sensor: str,
    kind: SensorKind,
    depth_cm: float | None,
    pairs: Iterable[tuple[float, float]],
    before: Iterable[tuple[float, float]] = (),
    history: Sequence[float] = (),
) -> SensorHour:
    """The statistics of one sensor's ``(epoch seconds, value)`` readings of an hour, in any order.

    Args:
        before: the sensor's latest readings before the hour, ``(epoch seconds, value)``, as many as are stored
            (``RUN_BEFORE`` are enough): the last one gives the gap before the hour (a dropout ends with one) and
            the step into the hour's first reading; all of them, how long a repeated value has held.
        history: ``SensorHour.history``, the hour just before first.
    """
    readings = sorted(pairs)
    if not readings:
        raise ValueError(f"sensor {device}/{sensor}: no readings in the hour")
    earlier = sorted(before)
    previous = earlier[-1] if earlier else None
    values = [v for _, v in readings]
    chain = [previous, *readings] if previous is not None else readings
    steps = _steps(chain)
    steps_in: list[float | None] = [] if previous is not None else [None]
    steps_in += steps
    measured = [abs(s) for s in steps if s is not None]
    n = len(values)
    mean = math.fsum(values) / n
    last_in = steps_in[-1] if n > 1 else None
    return SensorHour(
        device=device,
        sensor=sensor,
        kind=kind,
        depth_cm=depth_cm,
        count=n,
        mean=mean,
        std=math.sqrt(math.fsum((v - mean) ** 2 for v in values) / n),
        min=min(values),
        max=max(values),
        last=values[-1],
        first_ts=readings[0][0],
        last_ts=readings[-1][0],
        steps=len(measured),
        max_step=max(measured, default=0.0),
        repeats=sum(1 for s in measured if s == 0),
        excursion=_excursion(values, steps_in),
        last_step=abs(last_in) if last_in is not None else 0.0,
        gap_s=readings[0][0] - previous[0] if previous is not None else None,
        run=_run(earlier, readings),
        history=tuple(float(v) for v in history),
    )


@dataclass(frozen=True, slots=True)
class ZoneContext:
    """One zone's data at the close of a 1-hour window: everything a scorer may use, so scoring stays pure."""

    farm: Farm
    zone: Zone
    window_end: datetime
    """End of the 1-hour window that just closed (event time, aware)."""
    hours: Mapping[SensorKind, Sequence[ZoneAggregate]]
    """The zone's 1-hour aggregates of the last 48 h up to ``window_end``, oldest first, latest revision only."""
    days: Sequence[ZoneDay]
    """The zone's closed days since planting, oldest first."""
    suspicions: Sequence[SensorSuspicion]
    """Per sensor, over the window that just closed."""
    pending_irrigation_mm: float = 0.0
    """Irrigation recommended and not yet due or applied, so it is not recommended twice."""
    sensors: Sequence[SensorHour] = ()
    """Per sensor with readings in the window that just closed, good or suspect (``ml.faultdetect`` reads them)."""
    forecast: WeatherForecast | None = None
    """The farm's newest weather forecast issued by ``window_end`` (``smartfarm.forecast.newest``), if any."""
    farm_sensors: Sequence[tuple[str, SensorHour]] = ()
    """The same of the farm's other zones' sensors of a kind that reads the farm's weather, alike in every zone
    (``ml.faulthistory.FARM_KINDS``), each with its zone: the peers ``ml.faultdetect`` holds the zone's own weather
    sensors against (each zone judges its own)."""


MAX_MESSAGE = 500
"""``Recommendation.message``'s limit, characters."""


def fit_message(message: str) -> str:
    """The message within the contract's 500 characters; zone names are free text, so this is a guard."""
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


def num(value: float, digits: int = 1) -> str:
    """A number as a farmer reads it: 18 rather than 18.0, 18.5 kept."""
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True, slots=True)
class Advice:
    """One piece of advice for the zone; the stream turns it into a ``Recommendation``."""

    kind: RecommendationKind
    severity: Severity
    message: str
    """Plain words for the farmer, at most 500 characters, with the numbers behind it."""
    confidence: float
    """0..1"""
    inputs: Mapping[str, float]
    """Every number the decision used, named."""
    valid_for: timedelta
    amount_mm: float | None = None
    start_at: datetime | None = None
    """Irrigation: when to open the valve."""
    device: str | None = None
    """Sensor fault: the device."""
    sensor: str | None = None
    """Sensor fault: the sensor."""
    due: datetime | None = None
    """Harvest: when the crop is predicted ready."""
