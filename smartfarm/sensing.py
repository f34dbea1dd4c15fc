"""How each sensor kind moves in nature, as one table: what the rules that judge readings hold them against.

Two rules read it: the cleaner (``stream.clean``), one reading at a time as it arrives, and the fault detector
(``ml.faultdetect``), a sensor's whole hour at a time. Where they need different numbers for the same question the
table says why, side by side: a spike the cleaner must call on one step, with no way back to confirm it, so its
threshold stays clear of real one-way changes (a front passing, a downpour wetting the topsoil, a valve opening);
the detector sees the reading come back, and an out-and-back that large is never weather, so it can call a
smaller one. The numbers come from the simulated seasons' clean steps (the 99.9th percentile of the change
between two readings 15 minutes apart: air 2.9 degC, humidity 14 %, sun 245 W/m2, wind 1.9 m/s, rain 1.3 mm,
soil moisture 1.5 %, soil 0.5 degC) and the faults the simulator throws (``edge.faults``).

Beside it, ``PRECISION``: how finely a working sensor of each kind reads and how much it scatters, which the
simulator draws its readings with (``edge.sensors``) and the fault detector's stuck rule reads (a working sensor's
readings move by its noise, so a long run of exact repeats is not a working sensor).
"""

from __future__ import annotations

from dataclasses import dataclass

from smartfarm.layout import SensorKind


@dataclass(frozen=True, slots=True)
class Motion:
    """How one sensor kind moves, and the limits its readings are judged by."""

    spike_step: float | None
    """Cleaner: a jump from the sensor's last good value at least this large, within an hour, is a spike. Set
    well above weather's one-way changes between readings minutes apart; None (leaf wetness): rain wets a leaf
    at once, so no step is too large."""
    jump: float
    """Fault detector: an out-and-back of one reading at least this large is a spike; about three times the
    largest clean step, below the smallest spike a broken sensor throws (``edge.faults.SPIKE``). Leaf wetness
    jumps 0 to 100 when rain starts but does not jump back a reading later."""
    max_rate_per_h: float | None
    """Cleaner: a steadier change than a spike, but faster per hour than nature changes this kind (a battery
    collapsing); None where weather can (sun, wind, rain, leaves)."""
    drift_bound: float | None
    """Fault detector: an hourly mean this far from the median of its peers (same zone, kind and depth) drifts;
    about three standard deviations of two working sensors' calibration offsets (``edge.sensors.ERRORS``) and
    half a drift's final offset (``edge.faults.DRIFT``). None: a rain gauge does not drift in offset, and
    batteries differ by charge."""
    drift_shift: float | None
    """Fault detector: an hourly mean whose offset from its peers moved this far from its usual offset (the median
    over the past week) drifts. Working sensors keep their calibration offsets, so only noise moves this: set near
    the largest such move of the simulated seasons' clean hours (soil moisture 0.9 %, the 99.99th percentile; air
    temperature 0.5 degC, the 99.9th; humidity 4 %, between the 99.9th and the 99.99th; soil temperature 0.3 degC,
    the 99.5th: two probes' hourly difference scatters more than their noise says) and, for kinds without a peer
    in the default farm, at four standard deviations of two sensors' hourly means' difference by their noise
    (``PRECISION``), rounded up. About a tenth of a drift's final offset (``edge.faults.DRIFT``), where
    ``drift_bound`` waits for half of it. None where ``drift_bound`` is None."""
    never_rests: bool
    """Noise alone moves its readings, so exact repeats for long mean a stuck sensor (the cleaner's ``stuck``
    flag); rain, sun, wind and leaf wetness sit at zero for hours."""
    steps_into_last: bool
    """Never steps a ``jump`` in nature, so a jump into the hour's last reading (whose way back the next hour
    brings) is a spike too; sun, rain and leaf wetness can step that far once (a cloud, a downpour)."""
    plateaus_judged: bool
    """The fault detector judges a flat hour of it as stuck; it leaves the ends of the range alone (no sun at
    night, calm air, humidity at saturation, dry or soaked leaves). Rain is zero most hours; a battery rests at
    full charge."""


MOTION: dict[SensorKind, Motion] = {
    SensorKind.AIR_TEMPERATURE: Motion(10.0, 8.0, 15.0, 2.0, 0.5, True, True, True),
    SensorKind.AIR_HUMIDITY: Motion(30.0, 25.0, 60.0, 8.0, 4.0, True, True, True),
    SensorKind.SOLAR_RADIATION: Motion(500.0, 450.0, None, 80.0, 15.0, False, False, True),
    SensorKind.WIND_SPEED: Motion(12.0, 10.0, None, 1.5, 0.5, False, True, True),
    SensorKind.RAINFALL: Motion(15.0, 15.0, None, None, None, False, False, False),
    SensorKind.SOIL_MOISTURE: Motion(15.0, 10.0, 30.0, 4.5, 0.9, True, True, True),
    SensorKind.SOIL_TEMPERATURE: Motion(8.0, 6.0, 10.0, 1.0, 0.3, True, True, True),
    SensorKind.LEAF_WETNESS: Motion(None, 60.0, None, 20.0, 6.0, False, False, True),
    SensorKind.BATTERY: Motion(0.5, 0.5, 0.3, None, None, False, False, False),
}
"""Every kind's motion: the one table both judges read."""


@dataclass(frozen=True, slots=True)
class Precision:
    """How a working sensor of one kind reads: its random noise and the step its readings come in."""

    noise_sd: float
    """Standard deviation of a reading about the true value (0: a tipping bucket counts whole tips)."""
    resolution: float
    """Readings are whole multiples of this."""


PRECISION: dict[SensorKind, Precision] = {
    SensorKind.AIR_TEMPERATURE: Precision(0.15, 0.01),
    SensorKind.AIR_HUMIDITY: Precision(0.8, 0.1),
    SensorKind.SOLAR_RADIATION: Precision(5.0, 1),
    SensorKind.WIND_SPEED: Precision(0.15, 0.1),
    SensorKind.RAINFALL: Precision(0.0, 0.2),
    SensorKind.SOIL_MOISTURE: Precision(0.3, 0.1),
    SensorKind.SOIL_TEMPERATURE: Precision(0.05, 0.01),
    SensorKind.LEAF_WETNESS: Precision(2.0, 1),
    SensorKind.BATTERY: Precision(0.005, 0.001),
}
"""Typical farm sensors' datasheet figures: a thermistor to 0.15 degC, a capacitive humidity probe to 0.8 %, a
thermopile pyranometer to 5 W/m2, a cup anemometer to 0.15 m/s, a 0.2 mm tipping bucket, a capacitance soil
probe to 0.3 % (after its field calibration), a buried thermistor to 0.05 degC, a leaf-wetness grid to 2 %, a
node's ADC reading its cell to 5 mV."""
