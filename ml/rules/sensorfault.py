"""Sensor faults: a sensor whose readings the stream flagged in most of the hour."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from ml.context import Advice, SensorSuspicion, ZoneContext, fit_message, num
from ml.waterbalance import (
    clamp,
)
from smartfarm.records import Flag, RecommendationKind, Severity

MIN_READINGS = 3
"""Fewer readings than this in an hour are too few to call a sensor broken, except for out-of-range values."""
_FLAG_ORDER = (Flag.OUT_OF_RANGE, Flag.STUCK, Flag.SPIKE, Flag.RATE_OF_CHANGE)
"""On a tie, the flag named in the message: the most certain sign of a fault first."""


def _dominant_flag(flags: Mapping[str, int]) -> tuple[str, int]:
    rank = {f.value: i for i, f in enumerate(_FLAG_ORDER)}
    name = min(flags, key=lambda f: (-flags[f], rank.get(f, len(rank)), f))
    return name, flags[name]


def _fault_description(s: SensorSuspicion, flag: str, n: int) -> str:
    low, high = s.kind.physical_range
    what = {
        Flag.STUCK.value: f"it repeated the very same value in {n} of {s.readings} readings, as if stuck",
        Flag.OUT_OF_RANGE.value: (
            f"{n} of {s.readings} readings were outside what a working sensor can report "
            f"({num(low)} to {num(high)} {s.kind.unit})"
        ),
        Flag.SPIKE.value: f"{n} of {s.readings} readings jumped further than {s.kind.value} can between two readings",
        Flag.RATE_OF_CHANGE.value: f"{n} of {s.readings} readings changed faster than {s.kind.value} does in nature",
    }
    return what.get(flag, f"{n} of {s.readings} readings were flagged {flag}")


def _is_faulty(s: SensorSuspicion, flagged: int) -> bool:
    out_of_range = s.flags.get(Flag.OUT_OF_RANGE.value, 0)
    return (s.readings >= MIN_READINGS and 2 * flagged >= s.readings) or 2 * out_of_range > s.readings


def _sensor_fault(s: SensorSuspicion) -> Advice | None:
    if not s.flags or s.readings <= 0:
        return None
    flag, flagged = _dominant_flag(s.flags)
    if not _is_faulty(s, flagged):
        return None
    message = (
        f"Check sensor {s.sensor} ({s.kind.value}) on device {s.device}: {_fault_description(s, flag, flagged)} "
        "in the last hour. Clean, re-seat or replace it; until then its flagged readings stay out of the zone's "
        "figures."
    )
    return Advice(
        kind=RecommendationKind.SENSOR_FAULT,
        severity=Severity.WARNING if flagged >= s.readings else Severity.ADVISORY,
        message=fit_message(message),
        confidence=clamp(flagged / s.readings, 0.5, 0.95),
        inputs={"readings": float(s.readings), "flagged": float(flagged)}
        | {f"flag_{name}": float(count) for name, count in s.flags.items()},
        valid_for=timedelta(hours=24),
        device=s.device,
        sensor=s.sensor,
    )


def sensor_fault(context: ZoneContext) -> list[Advice]:
    """A fault for each sensor whose readings of the last hour were mostly flagged (any majority out of range)."""
    found = (_sensor_fault(s) for s in context.suspicions)
    return [a for a in found if a is not None]
