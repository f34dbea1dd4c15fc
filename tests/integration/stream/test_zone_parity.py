"""One zone stage for serving and training: the readings of a simulated season, stored in the real InfluxDB and run
through the stream's zone stage hour by hour as the worker runs it (windows read back from what is stored, days
closed at local midnight, its own points written back), show the scorer the features the training tables are
built from, value for value, at every hour of every zone; and the fault detector each sensor's hour as its
training table holds it, with the readings before it and its hourly means of the week before."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd

from edge.season import SeasonRecipe, farmer_valves, run_season
from ml.context import HISTORY_H, SensorHour
from ml.dataset import forecast_table
from ml.faultdetect import STAT_COLUMNS, sensor_hours_table
from ml.faulthistory import FARM_KINDS
from ml.features import FEATURES, zone_features
from ml.scoring import Advice, Baselines, ZoneContext
from smartfarm.layout import load_layout
from storage.influx import InfluxClient
from tests.integration.zonedata import step_zones, store_readings

START = datetime(2026, 6, 1, 7, tzinfo=UTC)
DAYS = 3


class Recording(Baselines):
    """The baseline rules, keeping the features and the sensor-hours of every context the stage shows them."""

    wants_sensor_hours = True

    def __init__(self) -> None:
        self.seen: dict[tuple[str, datetime], dict[str, float]] = {}
        self.sensors: list[tuple[str, SensorHour]] = []
        self.peers: dict[tuple[str, datetime], list[tuple[str, SensorHour]]] = {}

    def score(self, context: ZoneContext) -> list[Advice]:
        self.seen[(context.zone.id, context.window_end)] = zone_features(context)
        self.sensors += [(context.zone.id, h) for h in context.sensors]
        self.peers[(context.zone.id, context.window_end)] = list(context.farm_sensors)
        return super().score(context)


def test_the_stream_shows_a_scorer_the_features_training_learns_from(influx: InfluxClient) -> None:
    season = run_season(load_layout(), SeasonRecipe(seed=11, start=START, days=DAYS, replant=False), farmer_valves(11))
    readings = season.readings
    store_readings(influx, readings)
    scorer = Recording()
    counted, read_back = step_zones(influx, season.layout, readings, scorer)
    # In steady state the stage computes a closing window from its own count, not from a readback of its readings.
    assert counted > 0 and read_back == 0, (counted, read_back)

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

    table = sensor_hours_table(readings)
    keys = list(zip(table["device"], table["sensor"], table["hour"], strict=True))
    rows = dict(zip(keys, table[list(STAT_COLUMNS)].to_numpy(dtype=float), strict=True))
    means = dict(zip(keys, table["mean"], strict=True))
    zone_of = dict(zip(table["device"], table["zone"], strict=False))
    farm_wide = table[table["kind"].isin([k.value for k in FARM_KINDS])]
    for (zone_id, end), peers in list(scorer.peers.items())[::7]:
        start = int(end.timestamp()) - 3600
        own = set(farm_wide.loc[farm_wide["zone"] == zone_id, "kind"])  # peers of the kinds the zone has
        want_peers = farm_wide[(farm_wide["hour"] == start) & (farm_wide["zone"] != zone_id)]
        want_peers = want_peers[want_peers["kind"].isin(own)]
        got = {(z, h.device, h.sensor) for z, h in peers}
        assert got == set(zip(want_peers["zone"], want_peers["device"], want_peers["sensor"], strict=True)), end
    served = scorer.sensors + [(z, h) for peers in scorer.peers.values() for z, h in peers]
    for zone_id, hour in served[::3]:  # a third of them: enough, and the check costs a second for all
        assert zone_of[hour.device] == zone_id
        key = (hour.device, hour.sensor, int(hour.first_ts // 3600 * 3600))
        for name, trained in zip(STAT_COLUMNS, rows[key], strict=True):
            served = getattr(hour, name)
            same = (served is None and math.isnan(trained)) or math.isclose(served, trained, abs_tol=1e-9)
            assert same, f"{key}: {name} served {served}, trained {trained}"
        want = [means.get((*key[:2], key[2] - 3600 * (i + 1)), math.nan) for i in range(HISTORY_H)]
        same_past = [
            math.isclose(a, b) or (math.isnan(a) and math.isnan(b)) for a, b in zip(hour.history, want, strict=True)
        ]
        assert all(same_past), key
    assert len(scorer.sensors) > DAYS * 24 * 40 and any(h.run for _, h in scorer.sensors)
    closed = DAYS * 24 - 1  # hours closed in each zone
    assert sum(map(len, scorer.peers.values())) == closed * 4 * 3 * 2, "three other zones' air temperature, humidity"
