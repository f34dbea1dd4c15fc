"""``smartfarm forecast``: each farm's weather forecast onto Kafka's ``weather.forecast`` (keyed by farm id, where
the workers follow it), once or every ``--every`` minutes of the farm's clock; or, with ``--verify DAYS``, the
simulated provider's skill by lead time over a stretch of simulated days.

A provider that fails for a farm (Open-Meteo unreachable after its tries, a refusal, an answer that cannot be read;
Kafka not taking the record) is reported and the round goes on with the next farm; on a schedule the next round
comes all the same. Run once, the command exits 1 when a farm had no forecast published.

The farm's clock: the real one for Open-Meteo; for the simulated provider the simulated farm's, from
``SMARTFARM_EDGE_START`` (now when unset) at ``SMARTFARM_EDGE_SPEED``, as ``smartfarm edge`` runs it (without its
catch-up, which goes as fast as the pipeline takes it: ``smartfarm up`` follows its own farm's clock instead).
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cli.console import KAFKA_LOGIN, add_settings_options, say, settings_from, stop_on_signals, warn
from edge.forecast import SimulatedForecasts, verify
from edge.providers import ForecastProvider, provider
from edge.settings import EdgeSettings, ForecastSettings, ForecastSource
from edge.weather import FarmWeather
from smartfarm.errors import ConfigError, SmartFarmError
from smartfarm.forecast import WeatherForecast
from smartfarm.layout import Farm, Layout, load_layout
from smartfarm.settings import KafkaSettings, LayoutSettings
from stream.admin import ensure_topics
from stream.publisher import FarmPublisher

log = logging.getLogger(__name__)

DAY = timedelta(days=1)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    forecast = commands.add_parser(
        "forecast",
        help="publish each farm's weather forecast to Kafka (simulated or Open-Meteo), once or on a schedule",
        description="Publishes the forecast of every farm of the layout to the weather.forecast topic, keyed by "
        "farm id, where the stream workers hand it to the advice. --provider simulated forecasts the simulated "
        "farm's own weather (its seed and scenarios) with errors that grow with lead time; --provider open-meteo "
        "asks Open-Meteo's hourly API at the farm's coordinates. A failed farm is reported and the others go on.",
    )
    forecast.add_argument(
        "--verify",
        type=int,
        metavar="DAYS",
        help="print the simulated provider's skill by lead time (hit rate, false alarms, rain RMSE, Brier score, "
        "temperature RMSE, ET0 bias) over DAYS simulated days from SMARTFARM_EDGE_START (else the layout's first "
        "planting) and exit; nothing is published",
    )
    add_settings_options(forecast, ForecastSettings, "provider", "every", "openmeteo_url", "timeout_s", "attempts")
    add_settings_options(forecast, EdgeSettings, "seed", "speed", "start", "weather")
    add_settings_options(forecast, KafkaSettings, "bootstrap_servers", "topic_prefix", "partitions", *KAFKA_LOGIN)
    add_settings_options(forecast, LayoutSettings, "layout")
    forecast.set_defaults(run=run_forecast)


@dataclass(frozen=True)
class FarmClock:
    """The farm's time: ``start`` when the command started, running ``speed`` times real time."""

    start: datetime
    speed: float = 1.0
    began: float = field(default_factory=time.monotonic)

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self.began) * self.speed)

    def real_seconds(self, minutes: float) -> float:
        """Real seconds in ``minutes`` of the farm's clock."""
        return minutes * 60 / self.speed


def farm_clock(settings: ForecastSettings, edge: EdgeSettings) -> FarmClock:
    if settings.provider is ForecastSource.OPEN_METEO:
        return FarmClock(datetime.now(UTC))
    return FarmClock(edge.start or datetime.now(UTC), edge.speed)


@dataclass
class Round:
    """What one round published, and what failed, farm by farm."""

    published: list[WeatherForecast] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(farm id, what went wrong)."""


def publish_round(
    source: ForecastProvider, farms: Sequence[Farm], publish: Callable[[WeatherForecast], None], at: datetime
) -> Round:
    """Each farm's forecast issued at ``at``, published; a farm that fails is noted and the round goes on."""
    done = Round()
    for farm in farms:
        try:
            forecast = source.forecast(farm, at)
            publish(forecast)
        except SmartFarmError as exc:  # the provider's failure or refusal, Kafka's: reported, never a crash
            done.failed.append((farm.id, str(exc)))
            continue
        except Exception as exc:  # a bug; the next farm and the next round still come
            log.exception("farm %s: the forecast failed unexpectedly", farm.id)
            done.failed.append((farm.id, f"unexpected {type(exc).__name__}: {exc}"))
            continue
        done.published.append(forecast)
    return done


def describe(forecast: WeatherForecast) -> str:
    """One line on a published forecast: its issue, reach, and the next day's rain and reference ET."""
    start, day = forecast.issued_at, min(24, len(forecast.hours))
    et0 = forecast.et0_mm(start, day)
    return (
        f"{forecast.farm}: issued {start:%Y-%m-%d %H:%M} UTC by {forecast.source}, {len(forecast.hours)} h; next "
        f"{day} h: rain {forecast.rain_mm(start, day):.1f} mm (chance {forecast.rain_chance(start, day):.0%}), "
        + (f"ET0 {et0:.1f} mm" if et0 is not None else "no ET0")
    )


def run_forecast(args: argparse.Namespace) -> int:
    settings = settings_from(ForecastSettings, args)
    edge = settings_from(EdgeSettings, args)
    layout = load_layout(settings_from(LayoutSettings, args).layout)
    if args.verify is not None:
        return run_verify(layout, edge, args.verify)
    kafka = settings_from(KafkaSettings, args)
    ensure_topics(kafka)  # a refused Kafka login stops it here, naming the settings to fix
    stop = stop_on_signals()
    source = provider(settings, layout.farms, edge, stop)
    clock = farm_clock(settings, edge)
    publisher = FarmPublisher(kafka, client_id="smartfarm-forecast")
    every = f"every {settings.every:g} min of the farm's clock" if settings.every else "once"
    say(f"forecast: {len(layout.farms)} farm(s) from {source.name} -> Kafka {kafka.bootstrap_servers}, {every}")
    try:
        while True:
            next_round = time.monotonic() + clock.real_seconds(settings.every)
            done = publish_round(source, layout.farms, publisher.forecast, clock.now())
            for forecast in done.published:
                say(f"  {describe(forecast)}")
            for farm, problem in done.failed:
                warn(f"  {farm}: no forecast published: {problem}")
            if not settings.every:
                return 1 if done.failed else 0
            if stop.wait(max(0.0, next_round - time.monotonic())):
                return 0
    finally:
        publisher.close()
        source.close()


def run_verify(layout: Layout, edge: EdgeSettings, days: int) -> int:
    """The simulated provider's forecasts over ``days`` days, each farm's judged against its simulated weather."""
    if days < 2:
        raise ConfigError(f"--verify {days}: give at least 2 days (a forecast looks two days ahead)")
    first = min(z.planting_date for f in layout.farms for z in f.zones)
    start = edge.start or datetime(first.year, first.month, first.day, tzinfo=UTC)
    say(
        f"The simulated provider (seed {edge.seed}) against the simulated weather, {days} days from "
        f"{start:%Y-%m-%d %H:%M} UTC, 4 issues a day, 24 h blocks:"
    )
    for farm in layout.farms:
        simulated = SimulatedForecasts(FarmWeather(farm, edge.seed, edge.climate), edge.seed)
        skills = verify(simulated.issues(start, start + days * DAY - timedelta(seconds=1)), simulated.weather)
        say(f"\n{farm.id}")
        say(
            f"  {'lead h':<8}{'blocks':>7}{'hit rate':>10}{'false alarms':>14}{'rain RMSE mm':>14}{'Brier':>7}"
            f"{'temp RMSE C':>13}{'ET0 bias mm/d':>15}"
        )
        for s in skills:
            say(
                f"  {f'{s.lead_h[0]}-{s.lead_h[1]}':<8}{s.blocks:>7}{_rate(s.hit_rate):>10}"
                f"{_rate(s.false_alarm_ratio):>14}{s.rain_rmse_mm:>14.1f}{s.brier:>7.3f}{s.temp_rmse_c:>13.2f}"
                f"{s.et0_bias_mm_day:>+15.2f}"
            )
    say(
        "\nhit rate: wet blocks (>= 1 mm) forecast wet; false alarms: blocks forecast wet that stayed dry; rain RMSE "
        "over blocks wet in fact or forecast; Brier: of the block's highest hourly probability against rain."
    )
    return 0


def _rate(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"
