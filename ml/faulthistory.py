"""A sensor's past as the fault detector reads it: its usual offset from its peers, its own change over a day, and
the change the zone's water balance or its air temperature explains.

The detector's drift rule needs more than the hour it judges. Two working probes at one depth differ by their
calibration offsets, which stay put; a drifting one moves away from that usual difference, slowly. So a sensor's
offset from its peers is held against its median over the past week (``baseline``), and of two probes that moved
apart the one named is the one whose own change over the last day (``change``) is the less explained: for soil
moisture by the FAO-56 balance, which lets the soil dry by at most Kc x ET0 a day once water above field capacity
has drained (``ml.waterbalance.dry_theta_pct``; rain and irrigation show on both probes alike), for soil
temperature by the zone's air temperature, which the soil follows with a lag the detector learns per depth from
the training seasons (``learn_soil_lags``).

All of it works on one frame of sensor-hours, in training a recorded season's whole table and in service the
hour's ``SensorHour``s with their ``history`` laid out as rows of earlier hours (``ml.faultdetect.hour_frame``):
the same functions on the same columns, so the two cannot drift apart. Each sensor's hours are laid out on an
hourly grid (a pivot), so a rolling median or a day's lag is a shift along it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ml.context import HISTORY_H
from ml.features import ASSUMED_ET0_MM, HOUR_S, zone_features
from ml.waterbalance import dry_theta_pct
from smartfarm.layout import SensorKind

if TYPE_CHECKING:
    from ml.context import ZoneContext

BASELINE_MIN_H = 24
"""Hours of a sensor's offset from its peers in the past week before its median counts as the usual offset:
fewer (a season's first day, a node back from a long silence) leave the drift rule to its static bound."""
CHANGE_H = 24
"""The span of a sensor's own change that the balance or the air must explain: a whole day, so the daily cycle of
temperature falls out of it, and a drift has moved by a day's worth (at least a third of its final offset in the
simulator's longest ones)."""
BALANCE_INPUTS = ("kc", "et0_last_day", "root_depth_m", "field_capacity_pct")
"""The zone's water-balance inputs the soil-moisture expectation reads, by their ``ml.features.zone_features``
names: service takes them from the zone's context, training from the season's forecast table of the same rows."""
SOIL_LAGS_H = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)
"""Time constants (hours) tried for how the soil at a depth follows the air: a first-order lag, as heat diffusing
into the ground damps and delays the air's swings the more, the deeper (a 15 cm probe lags a few hours)."""
SOIL_LAG_MIN_ROWS = 48
"""Clean soil-temperature hours a depth needs before its lag is learnt."""


FARM_KINDS = frozenset(
    {
        SensorKind.AIR_TEMPERATURE,
        SensorKind.AIR_HUMIDITY,
        SensorKind.SOLAR_RADIATION,
        SensorKind.WIND_SPEED,
        SensorKind.RAINFALL,
    }
)
"""Kinds that read the farm's weather, alike in every one of its zones, so a sensor's peers are the farm's others:
a weather node is the only one of its kind in its zone, and without them its drift would go unseen (a quarter to
a half of the simulated seasons' drifting hours). Leaf wetness is the zone's canopy (and sprinklers), soil the
zone's own."""


def peer_keys(frame: pd.DataFrame) -> list[pd.Series]:
    """A sensor's peers: same farm, kind, depth and hour, same zone but for ``FARM_KINDS``, and, in a table of
    several seasons, same season."""
    farm_wide = frame["kind"].isin([k.value for k in FARM_KINDS])
    zone = frame["zone"].where(~farm_wide, "*") if farm_wide.any() else frame["zone"]
    keys = [frame["farm"], zone, frame["kind"], frame["depth_cm"].fillna(-1.0), frame["hour"]]
    if "season" in frame:  # tables of several recorded seasons: peers only within one (their hours overlap)
        keys.append(frame["season"])
    return keys


def peer_residual(frame: pd.DataFrame, values: pd.Series | None = None) -> pd.Series:
    """Each sensor-hour's value (``mean`` by default) minus the median of its peers' values (``peer_keys``); NaN
    without a peer, and where the value is NaN (a NaN peer is no peer). Groups are small (two or three sensors), so
    the median of the others is their mean up to two of them; larger groups take the exact leave-one-out median."""
    v = (frame["mean"] if values is None else values).astype(float)
    keys = peer_keys(frame)
    group = v.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()
    present = v.notna().to_numpy()
    filled = v.fillna(0.0).to_numpy()
    others_n = np.bincount(group, weights=present)[group] - present
    with np.errstate(invalid="ignore", divide="ignore"):
        others = (np.bincount(group, weights=filled)[group] - filled) / np.where(others_n > 0, others_n, np.nan)
    residual = pd.Series(v.to_numpy() - others, index=frame.index)
    large = (others_n > 2) & present
    if large.any():
        residual[large] = v.to_numpy()[large] - _loo_median(v.to_numpy(), group, large)
    return residual


def _loo_median(values: np.ndarray, group: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each of ``rows`` (a mask of present values): the median of the other present values of its group.
    Vectorised by group size: with a group's m values sorted, the median of all but the j-th is read off the
    sorted row, one place further along from j on."""
    present = ~np.isnan(values)
    size = np.bincount(group[present], minlength=int(group.max()) + 1)
    medians = np.full(len(values), np.nan)
    for m in np.unique(size[group[rows]]):
        members = np.flatnonzero(present & (size[group] == m))
        members = members[np.lexsort((values[members], group[members]))]  # by group, then by value
        table = values[members].reshape(-1, m)
        which = np.repeat(np.arange(len(table)), m)
        rank = np.tile(np.arange(m), len(table))
        lo, hi = (m - 2) // 2, (m - 1) // 2  # the middle of the m - 1 others
        lo_at, hi_at = lo + (lo >= rank), hi + (hi >= rank)
        medians[members] = (table[which, lo_at] + table[which, hi_at]) / 2
    return medians[rows]


class _Grid:
    """One block of a frame's rows on an hourly grid: a row per hour from the first to the last, a column per key."""

    def __init__(self, block: pd.DataFrame, keys: Sequence[str]) -> None:
        hours = block["hour"].to_numpy(dtype=np.int64)
        self.start = int(hours.min())
        self.row = (hours - self.start) // HOUR_S
        names = block[keys[0]].astype(str)
        for key in keys[1:]:  # one string per key (a MultiIndex factorizes ten times slower)
            names = names + "\x1f" + block[key].astype(str)
        codes, uniques = pd.factorize(names)
        self.col = codes
        self.columns = {str(name): i for i, name in enumerate(uniques)}
        self.shape = (int(self.row.max()) + 1, len(uniques))

    @staticmethod
    def name(*key: str) -> str:
        """A key's column name, as ``columns`` holds it."""
        return "\x1f".join(key)

    def spread(self, values: pd.Series) -> pd.DataFrame:
        """``values`` (one per row of the block, at most one per key and hour) on the grid; NaN elsewhere."""
        out = np.full(self.shape, np.nan)
        out[self.row, self.col] = values.to_numpy(dtype=float)
        return pd.DataFrame(out)

    def gather(self, grid: pd.DataFrame) -> np.ndarray:
        """The grid's value at each row of the block."""
        return grid.to_numpy()[self.row, self.col]


def _blocks(frame: pd.DataFrame) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
    """The frame's row positions and rows by season (a table of several: their hours overlap and each has its own
    grid), or whole."""
    if "season" in frame:
        for positions in frame.groupby("season", sort=False).indices.values():
            yield positions, frame.iloc[positions]
    else:
        yield np.arange(len(frame)), frame


SENSOR_KEYS = ("farm", "zone", "device", "sensor")


def history_columns(
    frame: pd.DataFrame, soil_lags: Mapping[float, float], judged: Collection[SensorKind] = frozenset(SensorKind)
) -> pd.DataFrame:
    """For each row of ``frame`` (with ``residual``: a sensor's offset from its peers over all its readings):

    - ``baseline``: the median of the sensor's ``residual`` over the ``HISTORY_H`` hours before, given at least
      ``BASELINE_MIN_H`` of them (NaN otherwise), from the peers read in the row's hour; worked out for the
      ``judged`` kinds only (the drift rule's) where a peer is silent in the hour;
    - ``change``: its ``mean`` less its mean ``CHANGE_H`` hours before (NaN without one);
    - ``expected``: the change over that day the zone explains (``expected_change``), NaN where nothing does.
    """
    columns = {name: np.full(len(frame), np.nan) for name in ("baseline", "before", "change", "anchor")}
    for positions, block in _blocks(frame):
        grid = _Grid(block, SENSOR_KEYS)
        residual = grid.spread(block["residual"])
        baseline = grid.gather(residual.shift(1).rolling(HISTORY_H, min_periods=BASELINE_MIN_H).median())
        _with_peers_of_the_hour(block, grid, baseline, judged)
        columns["baseline"][positions] = baseline
        before, change = _own_change(block, grid)
        columns["before"][positions], columns["change"][positions] = before, change
        air = _ZoneAir.of(block) if soil_lags else None
        for depth, lag_h in soil_lags.items():
            if air is not None:
                rows, values = air.change_at(block, depth, lag_h)
                columns["anchor"][positions[rows]] = values
    inputs = {c: frame[c] for c in ("kind", *BALANCE_INPUTS) if c in frame}
    expected = expected_change(pd.DataFrame(inputs | {"before": columns["before"], "anchor": columns["anchor"]}))
    out = pd.DataFrame(
        {"baseline": columns["baseline"], "change": columns["change"], "expected": expected.to_numpy()},
        index=frame.index,
    )
    keys = [c for c in ("season", "farm", "zone", "kind", "depth_cm", "hour") if c in frame]
    hours = frame["count"].notna() if "count" in frame else pd.Series(True, index=frame.index)
    out["unexplained"] = np.nan  # for the hours judged (a service frame's history rows are only the past)
    out.loc[hours, "unexplained"] = unexplained(frame.loc[hours, keys].join(out[hours]))
    return out


def unexplained(frame: pd.DataFrame) -> pd.Series:
    """How much of each sensor's ``change`` over the last day its zone does not explain (NaN without a change):

    - soil moisture: drying faster than the balance lets it (``expected``), or wetting more than water that
      reached the zone shows: rain or irrigation wets the zone's probes at the other depths too, so a probe may
      rise beyond the balance by as much as the most any of those rose beyond theirs that day, and no more;
    - other kinds: the distance from ``expected`` (from standing still without one).
    """
    change, expected = frame["change"], frame["expected"].fillna(0.0)
    excess = change - expected
    out = excess.abs()
    soil = (frame["kind"] == SensorKind.SOIL_MOISTURE.value) & change.notna()
    if soil.any():
        water = _rise_elsewhere(frame.loc[soil], excess[soil])
        out[soil] = (-excess[soil]).clip(lower=0.0) + (excess[soil] - water).clip(lower=0.0)
    return out.where(change.notna())


def _rise_elsewhere(rows: pd.DataFrame, excess: pd.Series) -> pd.Series:
    """For each row: the largest ``excess`` (rise beyond the balance) among the zone's rows of the same hour at
    another depth, 0 when none rose."""
    zone = [c for c in ("season", "farm", "zone", "hour") if c in rows]
    depth = rows["depth_cm"].fillna(-1.0)
    by_depth = excess.groupby([*(rows[c] for c in zone), depth], sort=False).max()
    levels = list(range(len(zone)))
    first = by_depth.groupby(level=levels, sort=False).transform("max")
    second = by_depth.where(by_depth < first).groupby(level=levels, sort=False).transform("max")
    tied = (by_depth == first).groupby(level=levels, sort=False).transform("sum") > 1
    table = pd.DataFrame({"own": by_depth, "first": first, "second": second, "tied": tied}).reset_index()
    table.columns = [*zone, "depth", "own", "first", "second", "tied"]
    alone_on_top = (table["own"] >= table["first"]) & ~table["tied"]
    table["other"] = np.where(alone_on_top, table["second"], table["first"])
    keys = rows[zone].assign(depth=depth.to_numpy())
    found = keys.merge(table[[*zone, "depth", "other"]], on=[*zone, "depth"], how="left")["other"].to_numpy()
    return pd.Series(np.clip(np.nan_to_num(found, nan=0.0), 0.0, None), index=rows.index)


def _with_peers_of_the_hour(
    block: pd.DataFrame, grid: _Grid, baseline: np.ndarray, judged: Collection[SensorKind]
) -> None:
    """Correct ``baseline`` (in place) where a peer group has a member silent in the row's hour: service knows a
    sensor's past only through its hour (``SensorHour.history``), so a usual offset is the offset from the peers
    read in the hour, not from every peer the week had. Silent members are rare (a dropout, a dead node), so the
    rows they touch (of the ``judged`` kinds, and of the hours judged: a service frame's history rows are only the
    past) are worked out one by one, as ``peer_residual`` would over the hour's peers."""
    group = pd.Series(0, index=block.index).groupby(peer_keys(block)[:4], sort=False, dropna=False).ngroup()
    members = pd.Series(grid.col).groupby(group.to_numpy()).unique()
    hour_group = pd.Series(0, index=block.index).groupby([group.to_numpy(), grid.row], sort=False).ngroup()
    present = np.bincount(hour_group.to_numpy())[hour_group.to_numpy()]
    short = (present < members.map(len).to_numpy()[group.to_numpy()]) & (present > 1)
    short &= block["kind"].isin([k.value for k in judged]).to_numpy() & block["count"].notna().to_numpy()
    if not short.any():
        return
    means = grid.spread(block["mean"]).to_numpy()
    by_hour = pd.Series(np.arange(len(block))).groupby(hour_group.to_numpy()).agg(list)
    for rows in by_hour[pd.unique(hour_group.to_numpy()[short])]:
        now, hour = grid.col[rows], int(grid.row[rows[0]])
        past = means[max(0, hour - HISTORY_H) : hour][:, now]
        for i, row in enumerate(rows):
            others = np.delete(past, i, axis=1)
            counts = (~np.isnan(others)).sum(axis=1)
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                peer = np.nanmean(others, axis=1)
                if (counts > 2).any():
                    peer = np.where(counts > 2, np.nanmedian(others, axis=1), peer)
            offsets = past[:, i] - peer
            offsets = offsets[~np.isnan(offsets)]
            baseline[row] = float(np.median(offsets)) if len(offsets) >= BASELINE_MIN_H else np.nan


def _own_change(block: pd.DataFrame, grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
    """Each row's mean ``CHANGE_H`` hours before, and its change since."""
    means = grid.spread(block["mean"])
    before = means.shift(CHANGE_H)
    return grid.gather(before), grid.gather(means - before)


def expected_change(frame: pd.DataFrame) -> pd.Series:
    """The change over ``CHANGE_H`` the zone explains for each row (``before``: the sensor's mean then):

    - soil moisture: the FAO-56 balance's driest day, unstressed (Ks 1): water above field capacity drained and
      Kc x ET0 transpired over the root depth, from the zone's ``BALANCE_INPUTS`` (ET0 assumed where no day is
      closed yet, as ``ml.forecast.physics`` does);
    - soil temperature: ``anchor``, the day's change of the zone's air temperature lagged to the probe's depth;
    - other kinds, or without the inputs: NaN.
    """
    kind = frame["kind"].to_numpy(dtype=object)
    nan = np.full(len(frame), np.nan)
    inputs = {c: frame[c].to_numpy(dtype=float) if c in frame else nan for c in BALANCE_INPUTS}
    before = frame["before"].to_numpy(dtype=float)
    et0 = np.where(np.isnan(inputs["et0_last_day"]), ASSUMED_ET0_MM, inputs["et0_last_day"])
    args = (inputs["field_capacity_pct"], inputs["kc"], 1.0, et0, inputs["root_depth_m"], float(CHANGE_H))
    balance = dry_theta_pct(before, *args) - before
    out = np.where(kind == SensorKind.SOIL_MOISTURE.value, balance, nan)
    out = np.where(kind == SensorKind.SOIL_TEMPERATURE.value, frame["anchor"].to_numpy(dtype=float), out)
    return pd.Series(out, index=frame.index)


class _ZoneAir:
    """A block's air temperature by zone and hour (the median of the zone's air sensors' hourly means), on a grid."""

    def __init__(self, air: pd.DataFrame) -> None:
        self.grid = _Grid(air, ["farm", "zone"])
        self.series = self.grid.spread(air["mean"])

    @classmethod
    def of(cls, block: pd.DataFrame) -> _ZoneAir | None:
        rows = block.iloc[np.flatnonzero(block["kind"].to_numpy(dtype=object) == SensorKind.AIR_TEMPERATURE.value)]
        if rows.empty:
            return None
        sensors = set(zip(rows["device"], rows["sensor"], strict=True))
        if len(sensors) > len(set(zip(rows["farm"], rows["zone"], strict=True))):  # two air sensors in a zone
            rows = rows.groupby(["farm", "zone", "hour"], sort=False)["mean"].median().reset_index()
        return cls(rows)

    def change_at(self, block: pd.DataFrame, depth_cm: float, lag_h: float) -> tuple[np.ndarray, np.ndarray]:
        """The positions in the block of its soil-temperature rows at ``depth_cm``, and for each the change over
        ``CHANGE_H`` of its zone's air lagged by ``lag_h``; NaN where the zone's air was not read in the row's hour
        (service knows an air sensor's past only through its hour: training must not know more)."""
        soil = block["kind"].to_numpy(dtype=object) == SensorKind.SOIL_TEMPERATURE.value
        rows = np.flatnonzero(soil & np.isclose(block["depth_cm"].to_numpy(dtype=float), depth_cm))
        lagged = lag_series(self.series, lag_h)
        change = (lagged - lagged.shift(CHANGE_H)).where(self.series.notna()).to_numpy()
        mine = block.iloc[rows]
        names = [_Grid.name(f, z) for f, z in zip(mine["farm"], mine["zone"], strict=True)]
        col = np.array([self.grid.columns.get(n, -1) for n in names], dtype=int)
        row = (mine["hour"].to_numpy(dtype=np.int64) - self.grid.start) // HOUR_S
        usable = (col >= 0) & (row >= 0) & (row < self.grid.shape[0])
        values = np.full(len(rows), np.nan)
        values[usable] = change[row[usable], col[usable]]
        return rows, values


def lag_series(series: pd.DataFrame, lag_h: float) -> pd.DataFrame:
    """Each column (hourly, NaN for a missing hour) as a first-order lag with time constant ``lag_h`` hours would
    follow it: an exponentially weighted mean of the hours so far, each hour back weighing exp(-1 / lag_h) less.
    A week's history forgets all but exp(-168 / 12) of what came before it, so service (a week back) and training
    (the whole season back) agree."""
    return series.ewm(alpha=1 - math.exp(-1 / lag_h)).mean()


def learn_soil_lags(frame: pd.DataFrame) -> dict[float, float]:
    """Per soil-temperature depth, the time constant of ``SOIL_LAGS_H`` with which the zone's lagged air
    temperature best explains the clean probes' changes over a day (the smallest median error), on the rows of a
    training table (``ml.faultdetect.sensor_hours_table``); depths with too few clean hours are left out."""
    clean = (frame["label"] == "").to_numpy() if "label" in frame else np.ones(len(frame), dtype=bool)
    soil = (frame["kind"] == SensorKind.SOIL_TEMPERATURE.value).to_numpy() & clean
    depths = sorted(frame.loc[soil, "depth_cm"].dropna().unique())
    errors: dict[float, dict[float, list[np.ndarray]]] = {float(d): {lag: [] for lag in SOIL_LAGS_H} for d in depths}
    for positions, block in _blocks(frame):
        air = _ZoneAir.of(block)
        if air is None:
            continue
        change = _own_change(block, _Grid(block, SENSOR_KEYS))[1]
        for depth, by_lag in errors.items():
            for lag_h, found in by_lag.items():
                rows, anchor = air.change_at(block, depth, lag_h)
                found.append((change[rows] - anchor)[soil[positions[rows]]])
    out: dict[float, float] = {}
    for depth, by_lag in errors.items():
        medians = {}
        for lag_h, found in by_lag.items():
            error = np.abs(np.concatenate(found)) if found else np.array([])
            error = error[np.isfinite(error)]
            if len(error) >= SOIL_LAG_MIN_ROWS:
                medians[lag_h] = float(np.median(error))
        if medians:
            out[depth] = min(medians, key=lambda lag: medians[lag])
    return out


def zone_inputs(context: ZoneContext) -> dict[str, float]:
    """The zone's ``BALANCE_INPUTS`` at the close of the context's hour, as ``zone_features`` gives them to the
    forecaster (and gave them to the training's forecast table)."""
    row = zone_features(context)
    return {name: row[name] for name in BALANCE_INPUTS}


def balance_inputs(forecast: pd.DataFrame) -> pd.DataFrame:
    """A season's forecast table (``ml.dataset.forecast_table``: one row per zone and hour end) as the rows
    ``ml.faultdetect.sensor_hours_table`` joins by farm, zone and hour (its start, epoch seconds)."""
    end = pd.DatetimeIndex(forecast.index)
    hour = (end - pd.Timestamp(0, tz="UTC")).total_seconds().astype("int64") - HOUR_S
    return pd.DataFrame(
        {"farm": forecast["farm"].to_numpy(), "zone": forecast["zone"].to_numpy(), "hour": np.asarray(hour)}
        | {c: forecast[c].to_numpy(dtype=float) for c in BALANCE_INPUTS}
    )


__all__ = [
    "BALANCE_INPUTS",
    "CHANGE_H",
    "FARM_KINDS",
    "balance_inputs",
    "expected_change",
    "history_columns",
    "lag_series",
    "learn_soil_lags",
    "peer_residual",
    "unexplained",
    "zone_inputs",
]
