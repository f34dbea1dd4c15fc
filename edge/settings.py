"""Settings of the simulated fleet (the MQTT connection's are ``smartfarm.settings.MqttSettings``) and of the weather
forecast providers (``smartfarm forecast``)."""

from __future__ import annotations

import json
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Literal, Self

from pydantic import AwareDatetime, Field, SecretStr, field_validator, model_validator

from edge.faults import FaultRates
from edge.weather import Climate, WeatherEvent, check_events
from smartfarm.settings import ComponentSettings, component_config


class EdgeSettings(ComponentSettings):
    """The simulated fleet: time, size, seed, faults and where to log what it did."""

    model_config = component_config("edge")

    speed: float = Field(60.0, gt=0, le=1e6, description="simulated seconds per real second (1: real time)")
    duration: timedelta = Field(timedelta(0), description="simulated time to run, e.g. PT6H or P2D; 0: until stopped")
    interval_s: float = Field(300.0, ge=1, le=86400, description="simulated seconds between a device's readings")
    start: AwareDatetime | None = Field(None, description="simulated start time (ISO 8601); now when unset")
    catch_up: timedelta = Field(
        timedelta(0),
        description="simulated time from the start played as fast as the broker takes it, then paced at the speed "
        "(e.g. P36D: the season so far, then live)",
    )
    seed: int = Field(42, description="same seed, same layout and start: same data")
    devices: int | None = Field(None, ge=1, le=100_000, description="grow the layout to this many devices")
    shard: str = Field("0/1", pattern=r"^\d+/[1-9]\d*$", description="i/n: this process drives every n-th device")
    device_secret: SecretStr = Field(
        SecretStr("smartfarm-dev"), description="fleet secret device passwords derive from"
    )
    valves: Literal["auto", "accepted"] = Field(
        "auto",
        description="auto: the valves follow every irrigation recommendation (and accepted ones); accepted: only "
        "those a person accepted through the API",
    )
    window: int = Field(20, ge=1, le=1000, description="QoS 1 messages a device has unacknowledged at most")
    buffer_limit: int = Field(10_000, ge=1, description="messages a device buffers while offline; oldest dropped")
    ground_truth: Path | None = Field(None, description="append injected faults here as JSON lines")
    record: Path | None = Field(None, description="write every reading sent to this CSV (replayable)")
    progress_s: float = Field(5.0, gt=0, description="real seconds between progress lines")
    fault_stuck: float = Field(FaultRates().stuck, ge=0, le=1, description="per-tick rate: a sensor sticks")
    fault_spike: float = Field(FaultRates().spike, ge=0, le=1, description="per-tick rate: a reading spikes")
    fault_drift: float = Field(FaultRates().drift, ge=0, le=1, description="per-tick rate: a sensor starts drifting")
    fault_dropout: float = Field(FaultRates().dropout, ge=0, le=1, description="per-tick rate: a device goes silent")
    fault_battery_death: float = Field(
        FaultRates().battery_death, ge=0, le=1, description="per-tick rate: a battery dies"
    )
    fault_duplicate: float = Field(
        FaultRates().duplicate, ge=0, le=1, description="per-tick rate: a message is doubled"
    )
    fault_out_of_order: float = Field(FaultRates().out_of_order, ge=0, le=1, description="per-tick rate: a swap")
    fault_late: float = Field(FaultRates().late, ge=0, le=1, description="per-tick rate: a device holds its messages")
    fault_malformed: float = Field(FaultRates().malformed, ge=0, le=1, description="per-tick rate: a broken payload")
    fault_clock_reset: float = Field(
        FaultRates().clock_reset, ge=0, le=1, description="per-tick rate: a device's clock resets to 2000-01-01"
    )
    weather: tuple[WeatherEvent, ...] = Field(
        (),
        description='weather scenarios as a JSON list, e.g. [{"kind": "dry", "start": "2026-07-01T00:00Z", '
        '"end": "2026-07-08T00:00Z"}, {"kind": "rain", "start": ..., "end": ..., "rain_mm": 40}]',
    )

    @field_validator("duration", "catch_up", mode="before")
    @classmethod
    def _seconds_are_a_duration(cls, value: object) -> object:
        if isinstance(value, str) and value.replace(".", "", 1).isdigit():
            return float(value)
        return value

    @field_validator("weather", mode="before")
    @classmethod
    def _weather_is_json(cls, value: object) -> object:
        # The environment's JSON is decoded by pydantic-settings; an option arrives as the raw string.
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else ()
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON list of weather events: {exc}") from exc
        return value

    @field_validator("weather")
    @classmethod
    def _weather_events_do_not_overlap(cls, value: tuple[WeatherEvent, ...]) -> tuple[WeatherEvent, ...]:
        return check_events(value)

    @property
    def climate(self) -> Climate:
        """The default climate with this run's weather scenarios."""
        return Climate(events=self.weather)

    @property
    def fault_rates(self) -> FaultRates:
        return FaultRates(**{name: getattr(self, f"fault_{name}") for name in FaultRates.model_fields})

    @property
    def shard_index(self) -> tuple[int, int]:
        index, count = (int(x) for x in self.shard.split("/"))
        return index, count

    @model_validator(mode="after")
    def _shard_in_range(self) -> Self:
        index, count = self.shard_index
        if index >= count:
            raise ValueError(f"shard {self.shard}: the index must be below the count")
        return self


class ForecastSource(StrEnum):
    """Where ``smartfarm forecast`` gets each farm's weather forecast (``edge.providers``)."""

    SIMULATED = "simulated"
    """The simulated provider (``edge.forecast``): the simulated farm's own weather (``SMARTFARM_EDGE_SEED`` and
    ``SMARTFARM_EDGE_WEATHER``), forecast with errors that grow with lead time. No network."""
    OPEN_METEO = "open-meteo"
    """Open-Meteo's hourly forecast API (``edge.openmeteo``) at the farm's coordinates: the real weather."""


class ForecastSettings(ComponentSettings):
    """The weather forecast provider and how often ``smartfarm forecast`` publishes."""

    model_config = component_config("forecast")

    provider: ForecastSource = Field(ForecastSource.SIMULATED, description="simulated or open-meteo")
    every: float = Field(
        0.0,
        ge=0,
        le=7 * 24 * 60,
        description="minutes between two forecasts of each farm, on the farm's clock (the simulated farm's, at "
        "SMARTFARM_EDGE_SPEED, for the simulated provider); 0: publish once and exit",
    )
    openmeteo_url: str = Field(
        "https://api.open-meteo.com",
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="the root of an Open-Meteo server (its API is /v1/forecast under it)",
    )
    api_key: SecretStr | None = Field(
        None, description="Open-Meteo's API key, for its commercial servers (customer-api.open-meteo.com) only"
    )
    timeout_s: float = Field(10.0, gt=0, le=300, description="seconds to connect, and again to read the answer")
    attempts: int = Field(
        4, ge=1, le=20, description="tries of a request that fails transiently (unreachable, timeout, 5xx)"
    )
    backoff_s: float = Field(1.0, ge=0, le=600, description="seconds before the second try; doubled before each next")
