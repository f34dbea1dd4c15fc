"""A simulated farm's days in the real InfluxDB as the workers leave them: the readings as the store agent writes
them, then the zone stage stepped hour by hour as the zone agent steps it, its points (aggregates, days,
recommendations, zone states and forecasts) written back for the next steps to read."""

from __future__ import annotations

from collections import defaultdict

import pandas as pd

from ml.scoring import Scorer
from smartfarm.layout import Layout
from storage.influx import InfluxClient
from storage.schema import ReadingPoint
from stream.windows import ZoneClock
from stream.zones import ZoneStage


def store_readings(influx: InfluxClient, readings: pd.DataFrame) -> None:
    """A season's readings table (``edge.season``) as good ``reading`` points."""
    influx.write_lines(
        ReadingPoint(
            time=ts.to_pydatetime(),
            farm=farm,
            zone=zone,
            device=device,
            sensor=sensor,
            kind=kind,
            value=value,
            seq=seq,
            quality="good",
            depth_cm=None if pd.isna(depth) else depth,
        ).to_line()
        for farm, zone, device, sensor, kind, value, seq, ts, depth in zip(
            readings["farm"],
            readings["zone"],
            readings["device"],
            readings["sensor"],
            readings["kind"],
            readings["value"],
            readings["seq"],
            readings["ts"],
            readings["depth_cm"],
            strict=True,
        )
    )


def step_zones(influx: InfluxClient, layout: Layout, readings: pd.DataFrame, scorer: Scorer) -> None:
    """The zone stage over the stored readings, each zone an hour of event times at a time, writing what it
    emits back as the agent does."""
    stage = ZoneStage(layout, influx, scorer, grace_s=0.0)
    by_hour: dict[tuple[str, str], dict[pd.Timestamp, list[float]]] = defaultdict(lambda: defaultdict(list))
    for farm, zone, ts in zip(readings["farm"], readings["zone"], readings["ts"], strict=True):
        by_hour[(farm, zone)][ts.floor("h")].append(ts.timestamp())
    for (farm, zone), hours in sorted(by_hour.items()):
        clock = ZoneClock()
        for hour in sorted(hours):
            out = stage.step(farm, zone, clock, sorted(hours[hour]))
            influx.write_lines(out.lines())  # what the agent writes, read back by the next steps
