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
from stream.live import LiveMessage
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


def step_zones(influx: InfluxClient, layout: Layout, readings: pd.DataFrame, scorer: Scorer) -> tuple[int, int]:
    """The zone stage over the stored readings, each zone an hour of its clean messages at a time (counted in its
    open windows, ``stream.live``, as the agent counts them), writing what it emits back as the agent does; the due
    windows computed from the stage's own count and those read back."""
    stage = ZoneStage(layout, influx, scorer, grace_s=0.0)
    counted = read_back = 0
    by_hour: dict[tuple[str, str], dict[pd.Timestamp, dict[tuple[str, int], LiveMessage]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    columns = ("farm", "zone", "device", "seq", "ts", "sensor", "kind", "value")
    for farm, zone, device, seq, ts, sensor, kind, value in zip(*(readings[c] for c in columns), strict=True):
        found = by_hour[(farm, zone)][ts.floor("h")]
        message = found.get((device, seq)) or LiveMessage(device, int(seq), ts.timestamp(), ())
        reading = {"sensor": sensor, "kind": str(kind), "value": float(value), "quality": "good"}
        found[(device, seq)] = message._replace(readings=(*message.readings, reading))
    for (farm, zone), hours in sorted(by_hour.items()):
        clock = ZoneClock()
        for hour in sorted(hours):
            batch = sorted(hours[hour].values(), key=lambda m: m.ts)
            out = stage.step(farm, zone, clock, [m.ts for m in batch], batch)
            influx.write_lines(out.lines())  # what the agent writes, read back by the next steps
            counted, read_back = counted + out.counted, read_back + out.read_back
    return counted, read_back
