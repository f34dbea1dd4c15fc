"""``smartfarm season``: one simulated season, three ways of irrigating it, and what each did for the crops.

The same season (seed, weather, soils) is simulated three times: with the irrigation advisor's recommendations
applied by the valves (the closed loop, through the very pieces that run live: the stream's ``advise`` with its
pending plans, cancellations and cooldowns, and the valves' ``IrrigationSchedule`` holding each until its
``start_at``; the advisor's context carries the season's weather forecasts, as the stream's does), with a fixed
calendar schedule, and with no irrigation. Per zone: water applied, days under water stress (Ks below 1) and the
yield effect by FAO-33 (``ml.outcome``); a PNG per zone shows the advisor's season.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cli.console import add_settings_options, say, settings_from
from edge.faults import FaultRates
from edge.forecast import ERROR_MODELS, ForecastErrors
from edge.schedule import IrrigationSchedule
from edge.season import SeasonRecipe, SeasonTables, run_season, season_forecasts
from edge.simulator import FarmSimulation, Message
from ml.advisor import SoilForecast
from ml.context import SensorHour, ZoneContext, sensor_hour
from ml.irrigation import POLICIES as CROP_POLICIES
from ml.models import IrrigationAdvisor
from ml.outcome import WATER_SAVING, SeasonOutcome, judge, outcome, season_days
from ml.settings import ModelSettings
from ml.timeline import ZoneTimeline, hour_aggregates
from smartfarm.errors import ConfigError
from smartfarm.forecast import WeatherForecast, newest
from smartfarm.layout import Farm, Layout, SensorKind, Zone, load_layout
from smartfarm.records import RecommendationKind
from smartfarm.settings import LayoutSettings
from stream.advice import advise

POLICIES = ("advisor", "calendar", "none")


@dataclass
class ZoneLog:
    """What the advisor's run saw and did in one zone, for its plot."""

    forecasts: list[tuple[datetime, float]] = field(default_factory=list)
    """(time forecast for, soil moisture %) of each hour's 24 h forecast."""
    recommended: list[tuple[datetime, float]] = field(default_factory=list)
    """(valve start, mm) of each irrigation recommendation."""


@dataclass
class Calendar:
    """A fixed schedule: ``mm`` on every zone with a crop in the field every ``every_days`` days at 06:00 farm
    time. Not before planting nor after harvest: water the calendar gave an empty field would be water ``outcome``
    does not count (it counts the crop's season) that still wets the soil the crop starts in."""

    every_days: int
    mm: float

    def __call__(self, time: datetime, messages: list[Message], sim: FarmSimulation) -> None:
        del messages
        for farm in sim.layout.farms:
            local = time.astimezone(ZoneInfo(farm.timezone))
            if local.hour == 6 and local.toordinal() % self.every_days == 0:
                for zone in farm.zones:
                    first, last = season_days(zone, local.date(), local.date())
                    if first <= last:
                        sim.irrigate(farm.id, zone.id, self.mm)


class OnceAnHour:
    """A forecaster that forecasts each zone's hour once: the plot's log and the scorer (which ``advise`` may call
    twice, once as if nothing were planned) ask for the same hour; the features do not depend on what is planned.
    They do on the weather forecast, which the advisor's look-ahead leaves out (``ml.advisor``): two per hour."""

    def __init__(self, forecaster: SoilForecast) -> None:
        self.forecaster = forecaster
        self._hour: tuple[str, datetime] | None = None
        self._found: dict[bool, Mapping[int, float]] = {}

    def forecast(self, context: ZoneContext) -> Mapping[int, float]:
        if self._hour != (context.zone.id, context.window_end):
            self._hour, self._found = (context.zone.id, context.window_end), {}
        weather = context.forecast is not None
        if weather not in self._found:
            self._found[weather] = self.forecaster.forecast(context)
        return self._found[weather]


@dataclass
class SeasonForecasts:
    """The season's weather forecasts as the zone stage shows them: the simulated provider's, of the running
    simulation's own weather (issued on the first hour), the newest by each hour."""

    recipe: SeasonRecipe
    errors: ForecastErrors
    issued: dict[str, list[WeatherForecast]] | None = None

    def newest(self, sim: FarmSimulation, farm: str, time: datetime) -> WeatherForecast | None:
        if self.issued is None:
            self.issued = season_forecasts(sim.weather, self.recipe, self.errors)
        return newest(self.issued.get(farm, ()), time)


class ClosedLoop:
    """The advisor's valves: each hour the zones' new aggregates, closed days and recommendations, applied when due.

    Each zone runs the stream's zone stage (``ml.timeline``): the hour's aggregates of its readings, the days
    before today closed, the context at the hour's close scored by ``stream.advice.advise``."""

    def __init__(self, layout: Layout, forecaster: SoilForecast | None, weather: SeasonForecasts | None = None) -> None:
        self.forecaster = OnceAnHour(forecaster) if forecaster is not None else None
        self.weather = weather
        self.scorer = IrrigationAdvisor(self.forecaster)
        self.zones: list[tuple[Farm, Zone]] = [(f, z) for f in layout.farms for z in f.zones]
        self.timelines = {z.id: ZoneTimeline(f, z) for f, z in self.zones}
        self.state: dict[str, dict[str, Any]] = {z.id: {} for _, z in self.zones}
        self.zone_of = {d.id: d.zone for f in layout.farms for d in f.devices}
        self.soil_depth = {
            (d.id, s.id): s.depth_cm
            for f in layout.farms
            for d in f.devices
            for s in d.sensors
            if s.kind is SensorKind.SOIL_MOISTURE
        }
        self.schedule = IrrigationSchedule()
        self.log = {z.id: ZoneLog() for _, z in self.zones}

    def soil_hours(self, zone: Zone, messages: list[Message]) -> list[SensorHour]:
        """Each soil-moisture sensor's hour in ``zone``, as the stream hands them to a scorer: the advisor compares
        the depths its probes watch (``ml.irrigation.driest_layer``)."""
        pairs: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for m in messages:
            if self.zone_of.get(m.device) == zone.id:
                for r in m.readings:
                    if (m.device, r.sensor) in self.soil_depth:
                        pairs.setdefault((m.device, r.sensor), []).append((m.ts.timestamp(), r.value))
        return [
            sensor_hour(device, sensor, SensorKind.SOIL_MOISTURE, self.soil_depth[(device, sensor)], found)
            for (device, sensor), found in pairs.items()
        ]

    def __call__(self, time: datetime, messages: list[Message], sim: FarmSimulation) -> None:
        for farm, zone in self.zones:
            timeline = self.timelines[zone.id]
            readings = (
                (m.ts.timestamp(), r.kind, r.value)
                for m in messages
                if self.zone_of.get(m.device) == zone.id
                for r in m.readings
            )
            timeline.add_hours(hour_aggregates(farm.id, zone.id, readings))
            timeline.close_days(before=time.astimezone(timeline.tz).date())
            forecast = self.weather.newest(sim, farm.id, time) if self.weather is not None else None
            context = timeline.context(time, sensors=self.soil_hours(zone, messages), forecast=forecast)
            if self.forecaster is not None:
                ahead = self.forecaster.forecast(context).get(24)
                if ahead is not None:
                    self.log[zone.id].forecasts.append((time + timedelta(hours=24), ahead))
            for rec in advise(self.scorer, context, self.state[zone.id]):
                self.schedule.offer(rec)
                if rec.kind is RecommendationKind.IRRIGATION and rec.amount_mm:
                    self.log[zone.id].recommended.append((rec.start_at or time, rec.amount_mm))
        for irrigation in self.schedule.due(time):
            sim.irrigate(irrigation.farm, irrigation.zone, irrigation.amount_mm)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    season = commands.add_parser(
        "season",
        help="a simulated season irrigated by the advisor, by a calendar and not at all: water, stress, yield",
        description="Simulates one season of the layout three times with the same weather: the irrigation "
        "advisor's recommendations applied by the valves (with the promoted forecaster when the registry has one, "
        "and the season's weather forecasts unless --forecasts none), a fixed calendar schedule, and no "
        "irrigation. Prints water applied, days under water stress (Ks < 1) and the FAO-33 yield estimate per zone "
        "and policy, and writes a plot per zone of the advisor's season.",
    )
    season.add_argument("--start", default="2026-04-01", help="first day, a UTC date (default 2026-04-01)")
    season.add_argument("--days", type=int, default=150, help="days to simulate (default 150)")
    season.add_argument("--seed", type=int, default=7, help="seed of the season's weather and devices (default 7)")
    season.add_argument("--calendar-days", type=int, default=3, help="calendar: irrigate every N days (default 3)")
    season.add_argument("--calendar-mm", type=float, default=15.0, help="calendar: millimetres each time (default 15)")
    season.add_argument(
        "--forecasts",
        choices=[*sorted(ERROR_MODELS), "none"],
        default="simulated",
        help="the weather forecasts the advisor is shown: the simulated provider's (a real one's errors), perfect "
        "ones, or none (default simulated)",
    )
    season.add_argument("--out", type=Path, default=Path(".smartfarm/season"), help="folder for the plots")
    add_settings_options(season, LayoutSettings, "layout")
    add_settings_options(season, ModelSettings, "store")
    season.set_defaults(run=run_season_command)


def _forecaster(settings: ModelSettings) -> tuple[SoilForecast | None, str]:
    from ml.models import FORECASTER
    from ml.registry import Follower, Registry

    follower = Follower(Registry(settings), FORECASTER)
    follower.refresh(force=True)
    loaded = follower.current()
    if loaded is None:
        return None, f"no promoted {FORECASTER} in {settings.store}: the advisor looks ahead with crop water use"
    model: SoilForecast = loaded.model  # type: ignore[assignment]
    return model, f"{FORECASTER} version {loaded.version}"


def run_season_command(args: argparse.Namespace) -> int:
    if args.days < 3 or args.calendar_days < 1 or args.calendar_mm < 0:
        raise ConfigError("--days must be at least 3, --calendar-days at least 1 and --calendar-mm not negative")
    try:
        start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    except ValueError as exc:
        raise ConfigError(f"--start {args.start!r} is not a date; give one like 2026-04-01") from exc
    layout = load_layout(settings_from(LayoutSettings, args).layout)
    forecaster, which = _forecaster(settings_from(ModelSettings, args))
    say(f"season: {args.days} days from {start:%Y-%m-%d}, seed {args.seed}; {which}; forecasts: {args.forecasts}")
    recipe = SeasonRecipe(seed=args.seed, start=start, days=args.days, rates=FaultRates.none(), replant=False)
    weather = SeasonForecasts(recipe, ERROR_MODELS[args.forecasts]) if args.forecasts in ERROR_MODELS else None
    loop = ClosedLoop(layout, forecaster, weather)
    runs: dict[str, SeasonTables] = {}
    for policy, hook in (
        ("advisor", loop),
        ("calendar", Calendar(args.calendar_days, args.calendar_mm)),
        ("none", None),
    ):
        t = time.perf_counter()
        runs[policy] = run_season(layout, recipe, hook)
        say(f"  {policy}: simulated in {time.perf_counter() - t:.1f} s")
    zones = [z for f in layout.farms for z in f.zones]
    outcomes = [
        outcome(runs[p].truth, z, p, CROP_POLICIES[z.crop] if p == "advisor" else None) for z in zones for p in POLICIES
    ]
    for line in table(outcomes):
        say(line)
    by_run = {(o.zone, o.policy): o for o in outcomes}
    say(f"against the calendar (the target: at least {100 * WATER_SAVING:.0f}% less water):")
    for z in zones:
        say("  " + judge(by_run[(z.id, "advisor")], by_run[(z.id, "calendar")], CROP_POLICIES[z.crop]).line())
    from cli.plots import season_plot

    args.out.mkdir(parents=True, exist_ok=True)
    for farm in layout.farms:
        for zone in farm.zones:
            path = args.out / f"{farm.id}-{zone.id}.png"
            season_plot(path, farm, zone, {p: runs[p] for p in POLICIES}, loop.log[zone.id])
            say(f"season: wrote {path}")
    return 0


def table(outcomes: Sequence[SeasonOutcome]) -> list[str]:
    """One line per zone and way of irrigating; the advisor's also give the stressed days its crop's policy
    planned and the yield it promised."""
    head = f"{'zone':<16} {'run':<9} {'days':>4} {'irrigation mm':>13} {'rain mm':>8} {'ETa/ETm':>8} "
    head += f"{'stress days':>11} {'planned':>7} {'yield %':>8} {'promised %':>10}"
    lines = [head, "-" * len(head)]
    for o in outcomes:
        r = o.row()
        planned, promised = ("-", "-") if o.promised_yield_pct is None else (o.planned_days, o.promised_yield_pct)
        lines.append(
            f"{o.zone:<16} {o.policy:<9} {o.days:>4} {r['irrigation_mm']:>13} {r['rain_mm']:>8} {r['eta_etm']:>8} "
            f"{o.stressed_days:>11} {planned:>7} {r['yield_pct']:>8} {promised:>10}"
        )
    return lines


__all__ = ["POLICIES", "ClosedLoop", "register", "table"]
