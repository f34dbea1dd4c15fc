"""Field seasons in pyfao56's file formats through our water balance (``ml.waterbalance``): files in, a daily
depletion table out, and the numbers that hold it against pyfao56's own output and against measured soil water.

The files are parsed with pyfao56's classes (``Parameters``, ``Weather``, ``Irrigation``, ``SoilProfile``,
``Update``, ``tools.SoilWaterSeries``); every number after that is ours. pyfao56 runs the dual crop coefficient
method, so ``crop_days`` builds the day's Kcb and Ke from the season's inputs as FAO-56 does (Kcb curve, table 17,
with the season's Kcb updates; Kcmax eq. 72; canopy cover eq. 76; wetted and exposed fraction eq. 75; the
evaporation layer's Kr, Ke, De, eqs. 69-79), and the root depth as pyfao56 does (growing with Kcb, FAO-56 p. 279).
The evaporation layer does not depend on the root zone's depletion, so it runs ahead of the balance. Without a
soil profile the soil is one bucket; with one, the root zone's water limits and the subsoil below it (down to the
deepest roots) come from the layers, as pyfao56's layered method. Runoff is not estimated (pyfao56's default).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyfao56
from pyfao56.tools import SoilWaterSeries

from ml import kalman
from ml.kalman import Noise, Observation
from ml.waterbalance import BalanceDay, BalanceState, run
from smartfarm.agronomy import wind_at_2m
from smartfarm.errors import ConfigError

DAY = timedelta(days=1)
PYFAO56_FIT_RMSE_MM = 80.248781
"""pyfao56's own open-loop RMSE of Dr against the measurements of cotton 2022, from cotton2022p10-2_Dr.fit."""


# --- files -------------------------------------------------------------------------------------------------


def _key(day: date) -> str:
    return day.strftime("%Y-%j")


def _day(key: str) -> date:
    return datetime.strptime(key, "%Y-%j").date()


def _load(cls: Any, path: Path | str, what: str, option: str) -> Any:
    """A pyfao56 object loaded from ``path``, or a ConfigError naming the option to fix (pyfao56's loaders print
    and carry on when a file is missing, so existence is checked first)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} file {path} not found: pass an existing pyfao56 {what} file with {option}")
    try:
        loaded = cls()
        loaded.loadfile(str(path))
    except (ValueError, IndexError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not a pyfao56 {what} file ({exc}): check the file given with {option}") from exc
    return loaded


@dataclass(frozen=True)
class Season:
    """One field season as pyfao56 objects, and the days to simulate (the first is day 0 of the crop curve)."""

    par: Any
    wth: Any
    start: date
    end: date
    irr: Any = None
    sol: Any = None
    upd: Any = None
    adjust_kc: bool = False
    """Adjust Kcb mid and end for the season's wind and humidity (``kc_adjusted``; pyfao56's ``K_adj``)."""

    @property
    def days(self) -> list[date]:
        return [self.start + i * DAY for i in range((self.end - self.start).days + 1)]


def load_season(
    par: Path | str,
    wth: Path | str,
    irr: Path | str | None = None,
    sol: Path | str | None = None,
    upd: Path | str | None = None,
    start: date | None = None,
    end: date | None = None,
    adjust_kc: bool = False,
) -> Season:
    """A season from pyfao56 files; ``start`` and ``end`` default to the weather file's first and last days."""
    season = Season(
        par=_load(pyfao56.Parameters, par, "parameter (.par)", "--par"),
        wth=_load(pyfao56.Weather, wth, "weather (.wth)", "--wth"),
        irr=None if irr is None else _load(pyfao56.Irrigation, irr, "irrigation (.irr)", "--irr"),
        sol=None if sol is None else _load(pyfao56.SoilProfile, sol, "soil profile (.sol)", "--sol"),
        upd=None if upd is None else _load(pyfao56.Update, upd, "update (.upd)", "--upd"),
        start=date.min,
        end=date.min,
    )
    keys = sorted(season.wth.wdata.index)
    if not keys:
        raise ConfigError(f"weather file {wth} has no days: pass a pyfao56 weather file with daily rows via --wth")
    first, last = start or _day(keys[0]), end or _day(keys[-1])
    missing = [d for d in (first, last) if _key(d) not in season.wth.wdata.index]
    if first > last or missing:
        raise ConfigError(
            f"the season {first}..{last} is not within the weather file {wth} ({keys[0]}..{keys[-1]}): "
            "give --start and --end inside it"
        )
    return Season(season.par, season.wth, first, last, season.irr, season.sol, season.upd, adjust_kc)


# --- soil ------------------------------------------------------------------------------------------------


def layered_mm(bottoms_m: Sequence[float], values: Sequence[float], top_m: float, bottom_m: float) -> float:
    """1000 x the integral from ``top_m`` to ``bottom_m`` of water contents given by layer (bottoms in m):
    mm of water."""
    total, upper = 0.0, 0.0
    for lower, value in zip(bottoms_m, values, strict=True):
        total += value * max(0.0, min(lower, bottom_m) - max(upper, top_m))
        upper = lower
    return 1000 * total


@dataclass(frozen=True)
class LayeredSoil:
    """Water contents (m3/m3) by layer, layer bottoms in m; the last layer reaches on without end."""

    bottoms_m: tuple[float, ...]
    fc: tuple[float, ...]
    wp: tuple[float, ...]
    theta0: tuple[float, ...]

    @classmethod
    def of(cls, season: Season) -> LayeredSoil:
        par = season.par
        if season.sol is None:
            return cls((math.inf,), (par.thetaFC,), (par.thetaWP,), (par.theta0,))
        data = season.sol.sdata
        return cls(
            tuple(float(d) / 100 for d in data.index),
            tuple(float(v) for v in data["thetaFC"]),
            tuple(float(v) for v in data["thetaWP"]),
            tuple(float(v) for v in data["theta0"]),
        )

    @property
    def layered(self) -> bool:
        return len(self.bottoms_m) > 1 or math.isfinite(self.bottoms_m[0])

    def mm(self, values: Sequence[float], top_m: float, bottom_m: float) -> float:
        return layered_mm(self.bottoms_m, values, top_m, bottom_m)

    def mean(self, values: Sequence[float], depth_m: float) -> float:
        return self.mm(values, 0.0, depth_m) / (1000 * depth_m)

    def taw_mm(self, top_m: float, bottom_m: float) -> float:
        return self.mm(self.fc, top_m, bottom_m) - self.mm(self.wp, top_m, bottom_m)


# --- crop coefficients and the evaporation layer (FAO-56 ch. 7) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class CropDay:
    """The inputs one day hands the balance: dual coefficients, root depth and water in (mm)."""

    day: date
    et0_mm: float
    rain_mm: float
    irrigation_mm: float
    kcb: float
    ke: float
    root_depth_m: float


@dataclass(slots=True)
class _Crop:
    """What carries from day to day in pyfao56's crop curve: Kcb (with updates), the trapezoid tKcb, h, Zr."""

    kcb: float
    tkcb: float
    h: float
    zr: float
    fw: float = 1.0
    de: float = 0.0


def _basal(par: Any, i: int, crop: _Crop) -> None:
    """Kcb on day ``i`` of the season, FAO-56 table 17 and fig. 34: flat, rising, flat, falling, as pyfao56
    steps it (an increment on yesterday's Kcb, which an update may have replaced)."""
    s1 = par.Lini
    s2, s3 = s1 + par.Ldev, s1 + par.Ldev + par.Lmid
    s4 = s3 + par.Lend
    if i <= s1:
        crop.kcb = crop.tkcb = par.Kcbini
    elif i <= s2:
        rise = (par.Kcbmid - par.Kcbini) / (s2 - s1)
        crop.kcb, crop.tkcb = crop.kcb + rise, crop.tkcb + rise
    elif i <= s3:
        crop.kcb = crop.tkcb = par.Kcbmid
    elif i <= s4:
        fall = (par.Kcbmid - par.Kcbend) / (s3 - s4)
        crop.kcb, crop.tkcb = crop.kcb + fall, crop.tkcb + fall
    else:
        crop.kcb = crop.tkcb = par.Kcbend


def _update(season: Season, day: date, name: str) -> float:
    if season.upd is None:
        return math.nan
    return float(season.upd.getdata(_key(day), name))


def _weather(season: Season, day: date) -> tuple[float, float, float, float]:
    """(ET0, rain, wind speed, RHmin) of ``day``, with pyfao56's fallbacks for missing values."""
    key = _key(day)
    row = season.wth.wdata.loc[key]
    et0 = float(row["ETref"])
    if math.isnan(et0):
        et0 = float(season.wth.compute_etref(key))
    wind = 2.0 if math.isnan(float(row["Wndsp"])) else float(row["Wndsp"])
    rhmin = float(row["RHmin"])
    if math.isnan(rhmin):
        tdew = float(row["Tdew"]) if not math.isnan(float(row["Tdew"])) else float(row["Tmin"])
        rhmin = _vapour_kpa(tdew) / _vapour_kpa(float(row["Tmax"])) * 100  # ASCE (2005) eqs. 7 and 8
    return et0, float(row["Rain"]), wind, 45.0 if math.isnan(rhmin) else rhmin


def _vapour_kpa(temp_c: float) -> float:
    return 0.6108 * math.exp(17.27 * temp_c / (temp_c + 237.3))


def _irrigation(season: Season, day: date) -> tuple[float, float, float] | None:
    """(gross depth mm, fraction wetted, efficiency %) of the day's irrigation, if any."""
    key = _key(day)
    if season.irr is None or key not in season.irr.idata.index:
        return None
    row = season.irr.idata.loc[key]
    return float(row["Depth"]), float(row["fw"]), float(row["ieff"])


def _climate(u2: float, rhmin: float, h: float) -> float:
    """The climate's adjustment of a crop coefficient, the term FAO-56 eqs. 70 and 72 share: [0.04 (u2 - 2) - 0.004
    (RHmin - 45)] (h / 3)^0.3, with u2 (m/s at 2 m) within 1-6 and RHmin within 20-80 %, h the crop's height (m)."""
    u2, rhmin = min(6.0, max(1.0, u2)), min(80.0, max(20.0, rhmin))
    return (0.04 * (u2 - 2) - 0.004 * (rhmin - 45)) * (h / 3) ** 0.3


def _kc_max(season: Season, kcb: float, h: float, wind: float, rhmin: float) -> float:
    """The upper limit of Kc after rain or irrigation, FAO-56 eq. 72 (wind adjusted to 2 m by eq. 47)."""
    if season.wth.rfcrp == "T":
        return max(1.0, kcb + 0.05)
    return max(1.2 + _climate(wind_at_2m(wind, season.wth.wndht), rhmin, h), kcb + 0.05)


def _canopy(season: Season, day: date, crop: _Crop, kc_max: float) -> float:
    """Canopy cover fc, FAO-56 eq. 76 (0..0.99), unless the season's updates give it."""
    par = season.par
    share = max(0.0, (crop.kcb - par.Kcbini) / (kc_max - par.Kcbini))
    fc = min(0.99, share ** (1 + 0.5 * crop.h))
    updated = _update(season, day, "fc")
    return updated if updated > 0 else fc


def _grow(season: Season, day: date, i: int, crop: _Crop) -> None:
    """Kcb, plant height and root depth of day ``i`` (FAO-56 table 17, p. 279; pyfao56's updates)."""
    par = season.par
    _basal(par, i, crop)
    updated = _update(season, day, "Kcb")
    if updated > 0:
        crop.kcb = updated
    share = (crop.kcb - par.Kcbini) / (par.Kcbmid - par.Kcbini)
    crop.h = max(par.hini + (par.hmax - par.hini) * share, 0.001, crop.h)
    updated = _update(season, day, "h")
    if updated > 0:
        crop.h = updated
    root_share = (crop.tkcb - par.Kcbini) / (par.Kcbmid - par.Kcbini)
    crop.zr = max(par.Zrini + (par.Zrmax - par.Zrini) * root_share, 0.001, crop.zr)


def _evaporate(season: Season, crop: _Crop, inputs: tuple[float, float, float], kc_max: float, fc: float) -> float:
    """Ke of the day and the evaporation layer's new depletion De, FAO-56 eqs. 71-79."""
    et0, rain, irrigation = inputs
    tew = _tew(season)
    few = min(1.0, max(0.01, min(1 - fc, crop.fw)))  # eq. 75
    kr = min(1.0, max(0.0, (tew - crop.de) / (tew - season.par.REW)))  # eq. 74
    ke = min(kr * (kc_max - crop.kcb), few * kc_max)  # eq. 71
    percolation = max(rain + irrigation / crop.fw - crop.de, 0.0)  # eq. 79
    crop.de = min(tew, max(0.0, crop.de - rain - irrigation / crop.fw + ke * et0 / few + percolation))  # eq. 77
    return ke


def _tew(season: Season) -> float:
    """Total evaporable water of the surface layer, FAO-56 eq. 73."""
    soil = LayeredSoil.of(season)
    ze = season.par.Ze
    if not soil.layered:
        return 1000 * (season.par.thetaFC - 0.5 * season.par.thetaWP) * ze
    return soil.mm(soil.fc, 0, ze) - 0.5 * soil.mm(soil.wp, 0, ze)


def kc_adjusted(season: Season) -> Any:
    """The season's parameters with Kcb mid and end adjusted for its climate, FAO-56 eq. 70 as pyfao56's
    ``K_adj`` does: Kcb + [0.04 (u2 - 2) - 0.004 (RHmin - 45)] (h / 3)^0.3 with the stage's mean wind at 2 m
    (within 1-6 m/s) and mean RHmin (within 20-80 %), h the crop's maximum height, where Kcb >= 0.45."""
    par = copy.copy(season.par)
    data = season.wth.wdata
    to_2m = wind_at_2m(1.0, season.wth.wndht)
    first = par.Lini + par.Ldev
    stages = {"Kcbmid": (first, first + par.Lmid - 1), "Kcbend": (first + par.Lmid, first + par.Lmid + par.Lend - 1)}
    for name, (begin, last) in stages.items():
        rows = data.loc[_key(season.start + begin * DAY) : _key(season.start + last * DAY)]
        change = _climate(float((rows["Wndsp"] * to_2m).mean()), float(rows["RHmin"].mean()), par.hmax)
        if getattr(par, name) >= 0.45 and not math.isnan(change):
            setattr(par, name, getattr(par, name) + round(change, 3))
    return par


def crop_days(season: Season) -> list[CropDay]:
    """Each day's ET0, rain, net irrigation, Kcb, Ke and root depth, as FAO-56's dual method gives them."""
    if season.adjust_kc:
        season = replace(season, par=kc_adjusted(season), adjust_kc=False)
    par = season.par
    crop = _Crop(kcb=par.Kcbini, tkcb=par.Kcbini, h=par.hini, zr=par.Zrini, de=_tew(season))
    out = []
    for i, day in enumerate(season.days):
        et0, rain, wind, rhmin = _weather(season, day)
        _grow(season, day, i, crop)
        kc_max = _kc_max(season, crop.kcb, crop.h, wind, rhmin)
        fc = _canopy(season, day, crop, kc_max)
        given = _irrigation(season, day)
        net = 0.0 if given is None else given[0] * given[2] / 100
        if given is not None:
            crop.fw = given[1]
        elif rain >= 3.0:
            crop.fw = 1.0  # FAO-56 table 20: rain wets the whole surface
        ke = _evaporate(season, crop, (et0, rain, net), kc_max, fc)
        out.append(CropDay(day, et0, rain, net, crop.kcb, ke, crop.zr))
    return out


# --- the balance -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeasonInputs:
    """The balance's days and its starting state."""

    days: list[BalanceDay]
    initial_depletion_mm: float
    initial_subsoil_depletion_mm: float = 0.0


def balance_inputs(season: Season, constant_p: bool = False) -> SeasonInputs:
    """The season as ``BalanceDay`` inputs. ``constant_p`` holds p at the table value (pyfao56's ``cons_p``)."""
    soil, par = LayeredSoil.of(season), season.par
    days = []
    for crop in crop_days(season):
        zr = crop.root_depth_m
        days.append(
            BalanceDay(
                day=crop.day,
                et0_mm=crop.et0_mm,
                rain_mm=crop.rain_mm,
                irrigation_mm=crop.irrigation_mm,
                kc=crop.kcb + crop.ke,
                ke=crop.ke,
                root_depth_m=zr,
                p_table=par.pbase,
                field_capacity=soil.mean(soil.fc, zr),
                wilting_point=soil.mean(soil.wp, zr),
                subsoil_taw_mm=soil.taw_mm(zr, par.Zrmax) if soil.layered else 0.0,
                adjust_p=not constant_p,
            )
        )
    start = soil.mm(soil.fc, 0, par.Zrini) - soil.mm(soil.theta0, 0, par.Zrini)  # eq. 87
    below = soil.mm(soil.fc, par.Zrini, par.Zrmax) - soil.mm(soil.theta0, par.Zrini, par.Zrmax)
    subsoil = min(max(below, 0.0), soil.taw_mm(par.Zrini, par.Zrmax)) if soil.layered else 0.0
    return SeasonInputs(days, start, subsoil)


def _table(states: Sequence[BalanceState]) -> pd.DataFrame:
    rows = {
        s.day: {
            "Dr": s.depletion_mm,
            "prior_Dr": s.prior_depletion_mm,
            "TAW": s.taw_mm,
            "RAW": s.raw_mm,
            "p": s.p,
            "Ks": s.ks,
            "ETc": s.etc_mm,
            "ETc_adj": s.etc_adj_mm,
            "rain": s.effective_rain_mm + s.runoff_mm,
            "irrigation": s.irrigation_mm,
            "DP": s.deep_percolation_mm,
            "Zr": s.root_depth_m,
            "measured_Dr": math.nan if s.measured_depletion_mm is None else s.measured_depletion_mm,
            "drift": s.drift_mm_day,
        }
        for s in states
    }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.DatetimeIndex(table.index, name="date")
    return table


def balance_season(
    season: Season,
    measured: pd.Series | None = None,
    noise: Noise | None = None,
    constant_p: bool = False,
    weight: float = 1.0,
) -> pd.DataFrame:
    """The daily depletion table of ``season`` (mm; indexed by date).

    Without ``measured`` the balance runs open loop. With it (measured Dr by date), ``ml.kalman`` corrects the
    balance with each measurement on its own day (``weight`` scales its trust); ``Dr`` is then the corrected
    depletion, ``prior_Dr`` the estimate before that day's measurement, ``drift`` the balance's systematic error
    learned so far (mm/day), ``open_loop_Dr`` the balance without any, ``measured_Dr`` the measurement."""
    inputs = balance_inputs(season, constant_p)
    subsoil = inputs.initial_subsoil_depletion_mm
    open_loop = run(inputs.days, inputs.initial_depletion_mm, initial_subsoil_depletion_mm=subsoil)
    if measured is None:
        return _table(open_loop).drop(columns=["measured_Dr", "drift"])
    observations = observations_from(measured, weight)
    states = kalman.run(
        inputs.days, inputs.initial_depletion_mm, observations, noise, initial_subsoil_depletion_mm=subsoil
    )
    table = _table(states)
    table["open_loop_Dr"] = [s.depletion_mm for s in open_loop]
    return table


def observations_from(measured: pd.Series, weight: float = 1.0) -> dict[date, Observation]:
    """Observations of measured Dr (mm) by date, all of the same ``weight``."""
    return {pd.Timestamp(when).date(): Observation(float(dr), weight) for when, dr in measured.dropna().items()}


# --- pyfao56's own numbers and the measurements ----------------------------------------------------------------


def read_out(path: Path | str) -> pd.DataFrame:
    """pyfao56's daily output (.out) as floats indexed by date: Dr, TAW, RAW, Ks, ETc, ETa, Zr, Rain, ..."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"pyfao56 output file {path} not found: pass an existing .out file")
    lines = path.read_text().splitlines()
    header = next((i for i, line in enumerate(lines) if line.startswith("Year-DOY")), None)
    if header is None:
        raise ConfigError(f"{path} is not a pyfao56 output file (no Year-DOY header): pass a .out file")
    names = lines[header].split()
    width = names.index("Runoff") + 1  # the date columns repeat after Runoff
    rows = {_day(r[0]): r[5:width] for r in (line.split() for line in lines[header + 1 :]) if r}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=names[5:width]).astype(float)
    table.index = pd.DatetimeIndex(table.index, name="date")
    return table


def read_fit(path: Path | str) -> dict[str, float]:
    """pyfao56's goodness-of-fit statistics (.fit): rmse, mae, bias (a sum), ..."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"pyfao56 fit file {path} not found: pass an existing .fit file")
    found = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition(" : ")
        if sep:
            found[name.strip()] = float(value)
    return found


def pyfao56_reference(season: Season, constant_p: bool = False) -> pd.DataFrame:
    """pyfao56's own Model run of ``season`` (for a season without a .out), its output indexed by date."""
    model = pyfao56.Model(
        _key(season.start),
        _key(season.end),
        season.par,
        season.wth,
        irr=season.irr,
        sol=season.sol,
        upd=season.upd,
        cons_p=constant_p,
        K_adj=season.adjust_kc,
    )
    model.run()
    data = model.odata.loc[:, ~model.odata.columns.duplicated()]
    table = data.drop(columns=["Year", "DOY", "DOW", "Date"]).astype(float)
    table.index = pd.DatetimeIndex([_day(k) for k in table.index], name="date")
    return table


def measured_depletion(path: Path | str, season: Season, root_depth_m: Mapping[date, float]) -> pd.Series:
    """Measured Dr (mm) by date from a .sws soil water series, over the root zone of each date.

    Parsed with ``pyfao56.tools.SoilWaterSeries``; the depletion is SoilWaterProfile.computeDr's (field capacity
    less measured water, down to Zr, negative above field capacity), integrated exactly instead of in 10^-5 m
    steps. ``root_depth_m`` should be the balance's Zr: it is the Zr pyfao56's fit used (the .sws's Zr column).
    pyfao56 1.4.3's loader reads that column one place off, so the file's own Zr is not used."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"soil water series file {path} not found: pass an existing pyfao56 .sws file with --sws")
    try:
        series = SoilWaterSeries(filepath=str(path), par=season.par, sol=season.sol)
    except (ValueError, IndexError) as exc:
        raise ConfigError(
            f"{path} is not a pyfao56 soil water series ({exc}): check the file given with --sws"
        ) from exc
    soil = LayeredSoil.of(season)
    found = {}
    for key, profile in sorted(series.swdata.items()):
        when = _day(key)
        if when not in root_depth_m:
            continue
        bottoms = sorted(profile.mvswc)
        zr = root_depth_m[when]
        water = layered_mm([b / 100 for b in bottoms], [profile.mvswc[b] for b in bottoms], 0, zr)
        found[when] = soil.mm(soil.fc, 0, zr) - water
    result = pd.Series(found, name="measured_Dr", dtype=float)
    result.index = pd.DatetimeIndex(result.index, name="date")
    return result


# --- comparisons -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comparison:
    """Errors of one depletion series against another on the days both have (mm); bias is the mean error."""

    rmse: float
    mae: float
    bias: float
    max_abs_error: float
    days: int

    def line(self) -> str:
        return (
            f"RMSE {self.rmse:.2f} mm, MAE {self.mae:.2f} mm, bias {self.bias:+.2f} mm, "
            f"max |error| {self.max_abs_error:.2f} mm over {self.days} days"
        )


def compare(ours: pd.Series, reference: pd.Series) -> Comparison:
    """``ours`` less ``reference`` on their common dates."""
    error = (ours - reference).dropna()
    if error.empty:
        raise ValueError("the two series share no dates")
    return Comparison(
        rmse=float((error**2).mean() ** 0.5),
        mae=float(error.abs().mean()),
        bias=float(error.mean()),
        max_abs_error=float(error.abs().max()),
        days=len(error),
    )


@dataclass(frozen=True, slots=True)
class MeasurementSkill:
    """Depletion against measurements: the corrected balance before (prior, one step ahead) and after
    (posterior) each measurement is assimilated, the balance with none (open loop), and the drift (mm/day) the
    filter learned by the season's end."""

    prior: Comparison
    posterior: Comparison
    open_loop: Comparison
    drift_mm_day: float


def measurement_skill(table: pd.DataFrame) -> MeasurementSkill:
    """The skill of a ``balance_season`` table made with measurements."""
    measured = table["measured_Dr"]
    return MeasurementSkill(
        prior=compare(table["prior_Dr"], measured),
        posterior=compare(table["Dr"], measured),
        open_loop=compare(table["open_loop_Dr"], measured),
        drift_mm_day=float(table["drift"].iloc[-1]),
    )


# --- the public seasons with measured soil water ------------------------------------------------------------

PUBLIC_DIR = Path(__file__).resolve().parents[1] / "data" / "fields" / "pyfao56"
"""pyfao56's public seasons, copied unchanged (data/fields/pyfao56/README.md)."""


@dataclass(frozen=True)
class MeasuredSeason:
    """A public season with measured soil water: its files (relative to ``PUBLIC_DIR``) and how pyfao56 ran it."""

    name: str
    par: str
    wth: str
    irr: str
    sws: str
    fit: str
    out: str | None = None
    """pyfao56's output, whose days are the season's; without one, ``days`` are."""
    days: tuple[date, date] | None = None
    sol: str | None = None
    upd: str | None = None
    constant_p: bool = False
    adjust_kc: bool = False


MEASURED_SEASONS = (
    MeasuredSeason(
        "cotton2022p10-2",
        "test06/cotton2022p10-2.par",
        "test06/cotton2022.wth",
        "test06/cotton2022p10-2.irr",
        "test06/cotton2022p10-2.sws",
        "test06/cotton2022p10-2_Dr.fit",
        out="test06/cotton2022p10-2.out",
        sol="test06/cotton2022p10-2.sol",
    ),
    MeasuredSeason(
        "E42FF2023",
        "test07/E42FF2023.par",
        "test07/LIRFWeather2023.wth",
        "test07/E42FF2023.irr",
        "test07/E42FF2023.sws",
        "test07/E42FF2023_Dr.fit",
        out="test07/E42FF2023.out",
        sol="test07/E42FF2023.sol",
        upd="test07/E42FF2023.upd",
        constant_p=True,  # cornE42FF2023.py runs pyfao56 with cons_p=True
    ),
    MeasuredSeason(
        "cotton2018p06-1",
        "test09/cotton2018p06-1.par",
        "test09/cotton2018.wth",
        "test09/cotton2018_full.irr",
        "test09/cotton2018p06-1.sws",
        "test09/cotton2018p06-1.fit",
        days=(date(2018, 4, 18), date(2018, 10, 30)),  # cotton2018.py: Model('2018-108', '2018-303', K_adj=True)
        sol="test09/cotton2018p06-1.sol",
        adjust_kc=True,
    ),
)


def season_measurements(path: Path | str, season: Season, constant_p: bool = False) -> pd.Series:
    """The measured Dr of a .sws over the balance's own root zone on each date, the Zr pyfao56's fit uses."""
    root_depth = {d.day: d.root_depth_m for d in balance_inputs(season, constant_p).days}
    measured = measured_depletion(path, season, root_depth)
    if measured.empty:
        raise ConfigError(f"{path} has no measurement between {season.start} and {season.end}: check --sws")
    return measured


def load_measured(case: MeasuredSeason, root: Path = PUBLIC_DIR) -> tuple[Season, pd.Series]:
    """The season over its .out's days (or its ``days``), and its measured Dr."""
    if case.out is not None:
        out = read_out(root / case.out).index
        first, last = out[0].date(), out[-1].date()
    elif case.days is not None:
        first, last = case.days
    else:
        raise ConfigError(f"season {case.name} needs its pyfao56 output or its days")
    season = load_season(
        root / case.par,
        root / case.wth,
        root / case.irr,
        None if case.sol is None else root / case.sol,
        None if case.upd is None else root / case.upd,
        first,
        last,
        case.adjust_kc,
    )
    return season, season_measurements(root / case.sws, season, case.constant_p)


def public_skill(
    noise: Noise | None = None, root: Path = PUBLIC_DIR, seasons: Sequence[MeasuredSeason] = MEASURED_SEASONS
) -> pd.DataFrame:
    """One row per public season with measured soil water (mm, drift mm/day): the open loop's RMSE against the
    measurements and pyfao56's own (its .fit), the Kalman filter's prior and posterior RMSE and bias, and the
    drift it learned by the season's end. The figures ``smartfarm train`` logs to MLflow."""
    rows = []
    for case in seasons:
        season, measured = load_measured(case, root)
        skill = measurement_skill(balance_season(season, measured, noise, case.constant_p))
        rows.append(
            {
                "season": case.name,
                "measurements": skill.prior.days,
                "open_loop_rmse": skill.open_loop.rmse,
                "pyfao56_rmse": read_fit(root / case.fit)["rmse"],
                "prior_rmse": skill.prior.rmse,
                "prior_bias": skill.prior.bias,
                "posterior_rmse": skill.posterior.rmse,
                "posterior_bias": skill.posterior.bias,
                "drift_mm_day": skill.drift_mm_day,
            }
        )
    return pd.DataFrame(rows).set_index("season")


FIELD_TABLE = "field_seasons.csv"
"""The artifact name of ``public_skill``'s table in a training run."""


def field_metrics(table: pd.DataFrame) -> dict[str, float]:
    """``public_skill``'s table as MLflow metrics: ``field_<season>_<column>``."""
    return {
        f"field_{season}_{column}": float(value) for season, row in table.iterrows() for column, value in row.items()
    }
