"""One zone stage for serving and training: the readings of a simulated season, stored in the real InfluxDB and run
through the stream's zone stage hour by hour as the worker runs it (windows read back from what is stored, days
closed at local midnight, its own points written back), show the scorer the features the training tables are
built from, value for value, at every hour of every zone."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime

import pandas as pd

from edge.season import SeasonRecipe, farmer_valves, run_season
from ml.dataset import forecast_table
from ml.features import FEATURES, zone_features
from ml.scoring import Advice, Baselines, ZoneContext
from smartfarm.layout import load_layout
from storage.influx import InfluxClient
from storage.schema import ReadingPoint
from stream.windows import ZoneClock
from stream.zones import ZoneStage

START = datetime(2026, 6, 1, 7, tzinfo=UTC)
DAYS = 3


class Recording(Baselines):
    """The baseline rules, keeping the features of every context the stage shows them."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, datetime], dict[str, float]] = {}

    def score(self, context: ZoneContext) -> list[Advice]:
        self.seen[(context.zone.id, context.window_end)] = zone_features(context)
        return super().score(context)


def test_the_stream_shows_a_scorer_the_features_training_learns_from(influx: InfluxClient) -> None:
    season = run_season(load_layout(), SeasonRecipe(seed=11, start=START, days=DAYS, replant=False), farmer_valves(11))
    readings = season.readings
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
    scorer = Recording()
    stage = ZoneStage(season.layout, influx, scorer, grace_s=0.0)
    by_hour: dict[tuple[str, str], dict[pd.Timestamp, list[float]]] = defaultdict(lambda: defaultdict(list))
    for farm, zone, ts in zip(readings["farm"], readings["zone"], readings["ts"], strict=True):
        by_hour[(farm, zone)][ts.floor("h")].append(ts.timestamp())
    for (farm, zone), hours in sorted(by_hour.items()):
        clock = ZoneClock()
        for hour in sorted(hours):
            out = stage.step(farm, zone, clock, sorted(hours[hour]))
            influx.write_lines(out.lines())  # what the agent writes, read back by the next steps

    training = forecast_table(season.layout, readings, season.truth, season=11)
    zones = [z for f in season.layout.farms for z in f.zones]
    for zone in zones:
        rows = training[training["zone"] == zone.id]
        served = {end: row for (z, end), row in scorer.seen.items() if z == zone.id}
        # every hour closes but the last one (no reading came after it to move the watermark past it)
        assert len(served) == len(rows) - 1 == DAYS * 24 - 1, zone.id
        for end, features in served.items():
            row = rows.loc[pd.Timestamp(end)]
            for name in FEATURES:
                a, b = features[name], float(row[name])
                same = (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
                assert same, f"{zone.id} at {end:%Y-%m-%d %H:%M}: {name} served {a}, trained {b}"
        assert rows["et0_last_day"].notna().sum() > 0, f"{zone.id}: closed days reach the rows"
