"""The weather forecasts on Kafka, as the worker holds them for the zone stage.

A provider (``smartfarm forecast``, ``smartfarm up``'s simulated one) publishes each farm's forecast on the
compacted topic ``weather.forecast``, keyed by farm id. Every worker follows the whole topic from its beginning
(``ForecastFollower``, no consumer group: a worker scores zones of any farm) and keeps each farm's recent issues in
a ``ForecastBook``, pure. The zone stage asks the book for the newest forecast out by the end of the hour it scores
(``smartfarm.forecast.newest``): never one issued later, so an hour scored late (a catch-up, a revised window)
sees what was known at its close, as training and the season see it.

A record that is not a forecast of the farm it is keyed by is dead-lettered (stage ``forecast``, its reason, its
bytes and position) and the follower goes on. Every worker reads every record, so each dead-letters a bad one, and
again at each start while the topic keeps it: its letters name the same topic, partition and offset.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from kafka.consumer.fetcher import ConsumerRecord

from smartfarm.errors import ContractError, RejectReason
from smartfarm.forecast import FORECAST_HOURS, WeatherForecast, newest
from smartfarm.records import DeadLetter, RejectStage
from smartfarm.settings import KafkaSettings
from smartfarm.topics import KafkaTopic
from stream.follow import TopicFollower

log = logging.getLogger(__name__)

KEPT_FOR = timedelta(hours=FORECAST_HOURS)
"""How long before a farm's newest issue the book keeps older ones: two days, the horizon each forecasts over. An
hour scored late wants the forecast out at its end; a stage that scores hours more than two days behind the newest
issue (a long catch-up) scores them without one, as before forecasts existed, rather than with one issued later."""


def read_forecast(key: bytes | None, value: bytes | None) -> WeatherForecast:
    """A ``weather.forecast`` record's forecast; ContractError with the reason when it is not one of the farm it
    is keyed by."""
    forecast = WeatherForecast.decode(value or b"")
    if key is None or key.decode(errors="replace") != forecast.farm:
        raise ContractError(RejectReason.INVALID_PAYLOAD, f"a forecast of farm {forecast.farm!r} under the key {key!r}")
    return forecast


class ForecastBook:
    """Each farm's forecasts issued within ``KEPT_FOR`` of its newest, by issue time.

    Written by one thread (the follower) and read by another (the zone stage): each write replaces a farm's tuple
    whole, so a reader sees a farm's issues before or after a write, never halfway."""

    def __init__(self) -> None:
        self._farms: dict[str, tuple[WeatherForecast, ...]] = {}

    def take(self, forecast: WeatherForecast) -> bool:
        """Keep ``forecast`` (it replaces one of the farm's issued at the same time); whether the book changed."""
        kept = self._farms.get(forecast.farm, ())
        if forecast in kept:
            return False
        issues = {f.issued_at: f for f in kept}
        issues[forecast.issued_at] = forecast
        latest = max(issues)
        self._farms[forecast.farm] = tuple(issues[t] for t in sorted(issues) if t >= latest - KEPT_FOR)
        return forecast.issued_at >= latest - KEPT_FOR

    def issues(self, farm: str) -> tuple[WeatherForecast, ...]:
        return self._farms.get(farm, ())

    def newest(self, farm: str, at: datetime) -> WeatherForecast | None:
        """``farm``'s forecast issued last by ``at``; None when none was out by then (or it is no longer kept)."""
        return newest(self._farms.get(farm, ()), at)


class ForecastFollower(TopicFollower):
    """Follows ``weather.forecast`` into ``book``; ``refused(key, letter)`` gets the dead letter of each record that
    is not a forecast (on the follower's thread)."""

    def __init__(
        self,
        kafka: KafkaSettings,
        book: ForecastBook,
        refused: Callable[[bytes, DeadLetter], None],
        name: str = "forecast",
    ) -> None:
        super().__init__(kafka, KafkaTopic.WEATHER_FORECAST, name)
        self.book = book
        self.refused = refused

    def start(self) -> ForecastFollower:
        super().start()
        return self

    def take(self, record: ConsumerRecord) -> bool:
        if record.value is None:
            return False  # a tombstone (a farm no longer forecast): its kept issues are replaced as newer ones come
        try:
            forecast = read_forecast(record.key, record.value)
        except ContractError as exc:
            log.warning("%s[%d]@%d refused: %s", record.topic, record.partition, record.offset, exc)
            letter = DeadLetter.of_record(exc, record, RejectStage.FORECAST)
            try:
                self.refused(record.key or b"unknown", letter)
            except Exception:  # the worker stopping, Kafka away: the letter is written at the next start
                log.exception(
                    "the dead letter of %s[%d]@%d was not sent", record.topic, record.partition, record.offset
                )
            return False
        return self.book.take(forecast)

    def changed(self) -> None:
        """The book is the follower's state; the zone stage reads it when it scores."""
