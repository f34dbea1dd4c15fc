"""The closed-loop season's plot per zone (matplotlib, written as PNG; no display needed)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Protocol

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI

import matplotlib.pyplot as plt
import pandas as pd

from edge.season import SeasonTables
from ml.irrigation import regime
from ml.waterbalance import depletion_fraction
from smartfarm.agronomy import CROPS, SOILS, crop_coefficient
from smartfarm.layout import Farm, SensorKind, Zone


class AdvisorLog(Protocol):
    """What the advisor's run saw and did in one zone: ``cli.season.ZoneLog``, which imports this module."""

    forecasts: list[tuple[datetime, float]]
    recommended: list[tuple[datetime, float]]


COLOURS = {"advisor": "tab:green", "calendar": "tab:orange", "none": "tab:grey"}


def _measured(season: SeasonTables, zone: Zone) -> pd.Series:
    """The zone's hourly mean soil moisture as its sensors read it (%)."""
    r = season.readings
    mine = r[(r["zone"] == zone.id) & (r["kind"] == SensorKind.SOIL_MOISTURE.value)]
    return mine.set_index("ts")["value"].resample("1h").mean()


def _by_depth(season: SeasonTables, zone: Zone) -> dict[float, pd.Series]:
    """The zone's hourly mean soil moisture at each probe depth (%): what ``ml.irrigation.driest_layer`` compares."""
    r = season.readings
    mine = r[(r["zone"] == zone.id) & (r["kind"] == SensorKind.SOIL_MOISTURE.value)]
    return {
        float(depth): rows.set_index("ts")["value"].resample("1h").mean() for depth, rows in mine.groupby("depth_cm")
    }


def _trigger(season: SeasonTables, zone: Zone) -> pd.Series:
    """Soil moisture (%) at which the depletion reaches the crop's policy's trigger, per day: RAW, FC - p (FC - WP)
    with p adjusted by the day's ETc (FAO-56 table 22), or deeper in a deficit window (``ml.irrigation``); the
    depth cancels out of the ratio."""
    soil, crop = SOILS[zone.soil], CROPS[zone.crop]
    t = season.truth[season.truth["zone"] == zone.id]
    et0 = t.set_index("ts")["et0_mm"].resample("1D").sum()
    shares = [
        regime(zone, d.date()).trigger_mm(
            depletion_fraction(crop.p, crop_coefficient(zone.crop, zone.planting_date, d.date()) * e), 1.0
        )
        for d, e in et0.items()
    ]
    return pd.Series(
        [100 * (soil.field_capacity - q * (soil.field_capacity - soil.wilting_point)) for q in shares], et0.index
    )


def season_plot(path: Path, farm: Farm, zone: Zone, runs: Mapping[str, SeasonTables], log: AdvisorLog) -> None:
    """Soil moisture measured under each policy (the advisor's also per probe depth, dashed) and forecast 24 h ahead
    (advisor), the policy's trigger, rain and the advisor's irrigation as daily bars, and its recommendations
    marked."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for policy, season in runs.items():
        measured = _measured(season, zone)
        top.plot(
            measured.index,
            measured.to_numpy(),
            color=COLOURS.get(policy, "k"),
            lw=1.2 if policy == "advisor" else 0.8,
            label=f"measured, {policy}",
        )
    for depth, series in _by_depth(runs["advisor"], zone).items():
        top.plot(series.index, series.to_numpy(), color="tab:green", lw=0.5, ls="--", alpha=0.6)
        top.annotate(f"{depth:g} cm", (series.index[-1], series.iloc[-1]), fontsize=6, color="tab:green")
    if log.forecasts:
        when, value = zip(*log.forecasts, strict=True)
        top.plot(when, value, color="tab:blue", lw=0.7, ls=":", label="advisor's 24 h forecast")
    trigger = _trigger(runs["advisor"], zone)
    top.step(
        trigger.index,
        trigger.to_numpy(),
        where="post",
        color="tab:red",
        ls="--",
        lw=1,
        label="irrigation trigger (the crop's policy)",
    )
    top.axhline(100 * SOILS[zone.soil].field_capacity, color="k", lw=0.5, ls=":", label="field capacity")
    for start, _mm in log.recommended:
        top.axvline(start, color="tab:green", alpha=0.25, lw=0.8)
    if log.recommended:
        top.scatter(
            [s for s, _ in log.recommended],
            [trigger.max() + 1] * len(log.recommended),
            marker="v",
            color="tab:green",
            s=18,
            label="recommendation",
        )
    top.set_ylabel("soil moisture, % vol")
    soil = zone.soil.value.replace("_", " ")
    top.set_title(f"{farm.name} / {zone.name}: {zone.crop.value} on {soil}, planted {zone.planting_date}")
    top.legend(loc="lower left", fontsize=7, ncol=3)
    truth = runs["advisor"].truth
    daily = truth[truth["zone"] == zone.id].set_index("ts")[["rain_mm", "irrigation_mm"]].resample("1D").sum()
    bottom.bar(daily.index, daily["rain_mm"], width=0.8, color="tab:blue", label="rain")
    bottom.bar(
        daily.index,
        daily["irrigation_mm"],
        width=0.8,
        bottom=daily["rain_mm"],
        color="tab:green",
        label="irrigation (advisor)",
    )
    bottom.set_ylabel("mm/day")
    bottom.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
