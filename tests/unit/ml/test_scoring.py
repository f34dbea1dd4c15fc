"""The scorer interface: Baselines runs every rule, tags its model, and keeps messages within the contract."""

from __future__ import annotations

import dataclasses
from datetime import date

from ml.context import SensorSuspicion
from ml.scoring import Baselines, Scorer, model_tag
from smartfarm.layout import SensorKind
from smartfarm.records import RecommendationKind
from tests.unit.ml.builders import END, FARM, context, day, hour, series


def test_model_tag() -> None:
    scorer: Scorer = Baselines()
    assert model_tag(scorer) == "fao56-baseline@1"


def test_a_calm_well_watered_zone_gets_no_advice() -> None:
    aggregates = [
        hour(SensorKind.SOIL_MOISTURE, END, 24.5),
        *series(SensorKind.AIR_TEMPERATURE, [24.0, 25.0, 26.0, 27.0, 28.0, 29.0]),
        *series(SensorKind.LEAF_WETNESS, [0.0] * 24),
    ]
    assert Baselines().score(context(aggregates=aggregates, days=[day(date(2026, 7, 14))])) == []


def test_baselines_returns_every_rule_s_advice_in_rule_order() -> None:
    aggregates = [
        hour(SensorKind.SOIL_MOISTURE, END, 18.0),
        hour(SensorKind.AIR_TEMPERATURE, END, 33.0, high=36.0),
    ]
    suspicion = SensorSuspicion("wx-tomato-north", "air-rh", SensorKind.AIR_HUMIDITY, 12, {"stuck": 12})
    found = Baselines().score(context(aggregates=aggregates, suspicions=[suspicion]))
    assert [a.kind for a in found] == [
        RecommendationKind.IRRIGATION,
        RecommendationKind.HEAT,
        RecommendationKind.SENSOR_FAULT,
    ]


def test_messages_fit_the_recommendation_contract_even_for_a_long_zone_name() -> None:
    long_zone = FARM.zones[0].model_copy(update={"name": "A very long zone name " * 20})
    ctx = context(aggregates=[hour(SensorKind.SOIL_MOISTURE, END, 15.0)], pending=10.0)
    ctx = dataclasses.replace(ctx, zone=long_zone)
    [advice] = Baselines().score(ctx)
    assert len(advice.message) == 500
    assert advice.message.endswith("...")
