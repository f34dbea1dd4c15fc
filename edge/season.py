"""A simulated season recorded as tables: every reading with its ground-truth fault, and each zone's true state.

This is what training data and the closed-loop season are made of. ``SeasonRecipe`` says what to simulate (seed,
start, length, reading interval, fault rates, and how the layout's zones are re-planted so that seasons differ in
crop, soil and planting date); ``run_season`` advances a ``FarmSimulation`` through it and returns ``SeasonTables``:

- ``readings``: one row per reading a device delivered (the messages the stream refuses left out, as it
  dead-letters them: malformed payloads, a reset clock's stamps; a duplicate kept once), with ``fault`` naming
  the ground-truth fault that touched it, or empty;
- ``truth``: one row per zone and tick with the soil water the sensors try to measure and what moved it;
- ``faults``: the simulator's ground-truth log, one row per fault occurrence;
- ``weather``: each farm's weather as simulated, which ``season_forecasts`` forecasts as the simulated provider
  (``edge.forecast``) would have over the season.

Pure: no clock, no I/O. A caller acts as the valves through ``on_hour``, called at every whole simulated hour (UTC)
with the messages of the hour that ended, and may call ``FarmSimulation.irrigate``: that is how a policy closes the
loop.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from edge.faults import FaultKind, FaultRates, FaultRecord
from edge.forecast import ISSUE_EVERY, ForecastErrors, SimulatedForecasts
from edge.simulator import FarmSimulation, Message
from edge.weather import FarmWeather, Weather
from smartfarm.agronomy import CROPS, SOILS
from smartfarm.forecast import WeatherForecast
from smartfarm.layout import Crop, Layout

READING_COLUMNS = ("farm", "zone", "device", "sensor", "kind", "depth_cm", "seq", "ts", "value", "fault")
TRUTH_COLUMNS = (
    "farm",
    "zone",
    "ts",
    "theta_top",
    "theta_low",
    "rain_mm",
    "irrigation_mm",
    "etc_mm",
    "et0_mm",
    "air_temp_c",
)
DEVICE_FAULTS = frozenset({FaultKind.DROPOUT, FaultKind.BATTERY_DEATH})
"""Faults of a whole device: a dropout is labelled on the first message after the silence, a battery death on the
battery readings of its collapse."""


@dataclass(frozen=True, slots=True)
class SeasonRecipe:
    """What one simulated season is: everything needed to make it again, byte for byte."""

    seed: int
    start: datetime
    """Aware; the first tick's time."""
    days: int
    interval_s: float = 900.0
    rates: FaultRates = field(default_factory=FaultRates.none)
    replant: bool = True
    """Draw each zone's crop and planting date from the seed, so seasons differ; False keeps the layout. Soils
    stay: a farm's fields keep their soil from season to season, and a model serves the farm it learnt."""

    def describe(self) -> dict[str, object]:
        """The recipe as plain values, for a dataset's record and a training run's parameters."""
        return {
            "seed": self.seed,
            "start": self.start.isoformat(),
            "days": self.days,
            "interval_s": self.interval_s,
            "rates": self.rates.model_dump(),
            "replant": self.replant,
        }


def replanted(layout: Layout, recipe: SeasonRecipe) -> Layout:
    """The layout with each zone's crop and planting date drawn from the recipe's seed (its soil kept): planted
    between 20 days before the season's start and 10 days after it, so every season holds young and established
    crops."""
    if not recipe.replant:
        return layout
    rng = random.Random(f"{recipe.seed}:replant")
    crops = list(Crop)
    farms = []
    for farm in layout.farms:
        zones = [
            zone.model_copy(
                update={
                    "crop": rng.choice(crops),
                    "planting_date": (recipe.start + timedelta(days=rng.randint(-20, 10))).date(),
                }
            )
            for zone in farm.zones
        ]
        farms.append(farm.model_copy(update={"zones": tuple(zones)}))
    return layout.model_copy(update={"farms": tuple(farms)})


@dataclass(frozen=True)
class SeasonTables:
    recipe: SeasonRecipe
    layout: Layout
    """The layout as simulated (re-planted)."""
    readings: pd.DataFrame
    truth: pd.DataFrame
    faults: pd.DataFrame
    weather: Mapping[str, FarmWeather] = field(default_factory=dict)
    """Each farm's weather as simulated, by farm id."""


def season_forecasts(
    weather: Mapping[str, FarmWeather], recipe: SeasonRecipe, errors: ForecastErrors | None = None
) -> dict[str, list[WeatherForecast]]:
    """Per farm, every forecast the simulated provider issues over the season of ``recipe`` (each ``ISSUE_EVERY``,
    from the last issue before its start): what the compacted ``weather.forecast`` topic holds as the season goes,
    of which the zone stage shows a scorer the newest issued by each hour (``smartfarm.forecast.newest``).

    Args:
        weather: the season's weather by farm id (``SeasonTables.weather``, or the running ``FarmSimulation``'s).
        errors: the provider's errors; ``ForecastErrors.perfect()`` forecasts the weather that comes.
    """
    start = recipe.start - ISSUE_EVERY
    end = recipe.start + timedelta(days=recipe.days)
    return {farm: SimulatedForecasts(w, recipe.seed, errors).issues(start, end) for farm, w in weather.items()}


OnHour = Callable[[datetime, list[Message], FarmSimulation], None]


class _Recorder:
    """Collects a season's rows column by column (appending to lists is far cheaper than growing a frame)."""

    def __init__(self, layout: Layout) -> None:
        self.readings: dict[str, list[object]] = {c: [] for c in READING_COLUMNS if c != "fault"}
        self.truth: dict[str, list[object]] = {c: [] for c in TRUTH_COLUMNS}
        self.faults: list[FaultRecord] = []
        self.seen: set[tuple[str, int]] = set()
        self.sensors = {
            (d.id, s.id): (farm.id, d.zone, s.depth_cm)
            for farm in layout.farms
            for d in farm.devices
            for s in d.sensors
        }
        self.refused: set[tuple[str, int]] = set()

    def message(self, m: Message) -> None:
        key = (m.device, m.seq)
        if key in self.seen or key in self.refused:
            return
        self.seen.add(key)
        rows = self.readings
        for r in m.readings:
            farm, zone, depth = self.sensors[(m.device, r.sensor)]
            rows["farm"].append(farm)
            rows["zone"].append(zone)
            rows["device"].append(m.device)
            rows["sensor"].append(r.sensor)
            rows["kind"].append(r.kind.value)
            rows["depth_cm"].append(depth)
            rows["seq"].append(m.seq)
            rows["ts"].append(m.ts)
            rows["value"].append(r.value)


FARMER_EVERY_DAYS = 3


def farmer_valves(seed: int, share_of_raw: tuple[float, float] = (0.6, 1.3)) -> OnHour:
    """The valves of a farmer who irrigates by feel: at 06:00 UTC, at most every ``FARMER_EVERY_DAYS``, a zone
    whose top layer has lost more than a drawn share of its readily available water gets a drawn 15-40 mm.
    Training seasons use it so that their soil is wetted and dried as on a farm, not only by rain, with whole
    days of drying between waterings; the draws make seasons differ."""
    rng = random.Random(f"{seed}:farmer")
    last: dict[tuple[str, str], datetime] = {}

    def on_hour(time: datetime, messages: list[Message], sim: FarmSimulation) -> None:
        del messages
        if time.hour != 6:
            return
        for (farm, zone_id), state in sim.zones.items():
            soil, crop = SOILS[state.zone.soil], CROPS[state.zone.crop]
            raw = crop.p * (soil.field_capacity - soil.wilting_point)
            recent = (farm, zone_id) in last and time - last[(farm, zone_id)] < timedelta(days=FARMER_EVERY_DAYS)
            if not recent and soil.field_capacity - state.theta[0] > rng.uniform(*share_of_raw) * raw:
                sim.irrigate(farm, zone_id, rng.uniform(15.0, 40.0))
                last[(farm, zone_id)] = time

    return on_hour


def run_season(layout: Layout, recipe: SeasonRecipe, on_hour: OnHour | None = None) -> SeasonTables:
    """Simulate ``recipe`` on ``layout`` (re-planted as the recipe says) and record it as tables."""
    planted = replanted(layout, recipe)
    sim = FarmSimulation(planted, recipe.seed, recipe.start, interval_s=recipe.interval_s, rates=recipe.rates)
    recorder = _Recorder(planted)
    ticks = int(recipe.days * 86400 / recipe.interval_s)
    hour: list[Message] = []
    for _ in range(ticks):
        tick = sim.step()
        _record_tick(recorder, sim, tick.time, tick.messages, tick.faults, tick.weather)
        hour.extend(tick.messages)
        if on_hour is not None and tick.time.timestamp() % 3600 == 0:
            on_hour(tick.time, hour, sim)
            hour = []
    last = sim.finish()
    _record_tick(recorder, sim, None, last.messages, last.faults, {})
    return SeasonTables(
        recipe=recipe,
        layout=planted,
        readings=label_readings(_frame(recorder.readings, READING_COLUMNS[:-1]), recorder.faults),
        truth=_frame(recorder.truth, TRUTH_COLUMNS),
        faults=fault_frame(recorder.faults),
        weather=sim.weather,
    )


def _record_tick(
    recorder: _Recorder,
    sim: FarmSimulation,
    time: datetime | None,
    messages: Iterable[Message],
    faults: Iterable[FaultRecord],
    weather: Mapping[str, Weather],
) -> None:
    for fault in faults:
        recorder.faults.append(fault)
        recorder.refused.update(fault.refused())
    for m in messages:
        recorder.message(m)
    if time is None:
        return
    rows = recorder.truth
    for (farm, zone), state in sim.zones.items():
        w = weather[farm]
        rows["farm"].append(farm)
        rows["zone"].append(zone)
        rows["ts"].append(time)
        rows["theta_top"].append(state.theta[0])
        rows["theta_low"].append(state.theta[1])
        rows["rain_mm"].append(state.last.rain_mm)
        rows["irrigation_mm"].append(state.last.irrigation_mm)
        rows["etc_mm"].append(state.last.etc_mm)
        rows["et0_mm"].append(w.et0_mm)
        rows["air_temp_c"].append(w.air_temp_c)


def _frame(columns: dict[str, list[object]], names: Iterable[str]) -> pd.DataFrame:
    frame = pd.DataFrame({name: columns[name] for name in names})
    if "ts" in frame:
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def fault_frame(faults: Iterable[FaultRecord]) -> pd.DataFrame:
    """The ground-truth log as a table (``fault``, ``device``, ``sensor``, ``seq``, ``ticks``, ``ts``)."""
    rows = [
        {
            "fault": f.fault.value,
            "device": f.device,
            "sensor": f.sensor or "",
            "seq": f.seq,
            "ticks": f.ticks,
            "ts": f.ts,
        }
        for f in faults
    ]
    frame = pd.DataFrame(rows, columns=["fault", "device", "sensor", "seq", "ticks", "ts"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def label_readings(readings: pd.DataFrame, faults: Iterable[FaultRecord]) -> pd.DataFrame:
    """``readings`` with a ``fault`` column: the kind of the ground-truth fault each reading carries, or "".

    A stuck, spiking or drifting sensor's readings of the episode (from its first sequence number, ``ticks`` long);
    a battery death's battery readings; a dropout's first message after the silence (every reading of it). When
    two overlap, the later-listed fault wins; the simulator keeps one lasting fault of a kind per device.
    """
    out = readings.copy()
    labels = pd.Series("", index=out.index, dtype=object)
    by_device = {device: group for device, group in out.groupby("device", sort=False)}
    for f in faults:
        group = by_device.get(f.device)
        if group is None or f.fault not in _LABELLED:
            continue
        if f.fault is FaultKind.DROPOUT:
            hit = group.index[group["seq"] == f.seq]
        else:
            in_episode = (group["seq"] >= f.seq) & (group["seq"] < f.seq + f.ticks)
            if f.fault is FaultKind.BATTERY_DEATH:
                hit = group.index[in_episode & (group["kind"] == "battery")]
            else:
                hit = group.index[in_episode & (group["sensor"] == f.sensor)]
        labels.loc[hit] = f.fault.value
    out["fault"] = labels
    return out


_LABELLED = frozenset({FaultKind.STUCK, FaultKind.SPIKE, FaultKind.DRIFT, *DEVICE_FAULTS})
__all__ = [
    "SeasonRecipe",
    "SeasonTables",
    "farmer_valves",
    "label_readings",
    "replanted",
    "run_season",
    "season_forecasts",
]
