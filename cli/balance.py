"""``smartfarm balance``: a field season in pyfao56's files through our FAO-56 root-zone water balance."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd

from cli.console import say
from edge.faults import FaultRates
from edge.season import SeasonRecipe, farmer_valves, run_season
from ml.estimator_skill import ESTIMATORS, simulated_skill
from ml.field import (
    PUBLIC_DIR,
    Season,
    balance_season,
    compare,
    load_season,
    measurement_skill,
    public_skill,
    read_fit,
    read_out,
    season_measurements,
)
from ml.kalman import Noise
from smartfarm.errors import ConfigError
from smartfarm.layout import load_layout

SIM_START = datetime(2025, 5, 1, tzinfo=UTC)
"""Simulated seasons start a week apart from here: early summer, crops from young to established."""


def _day(text: str) -> date:
    """A date as YYYY-DDD (pyfao56's year and day of year) or YYYY-MM-DD."""
    for pattern in ("%Y-%j", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise argparse.ArgumentTypeError(f"{text!r} is not a date: give YYYY-DDD (e.g. 2022-111) or YYYY-MM-DD")


def _figure(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 10:
        raise argparse.ArgumentTypeError(f"{text!r} is not a noise figure: give a number from 0 up to 10")
    return value


NOISE_OPTIONS = {
    "et_share": ("--et-error", "SHARE", "random daily error of Kc x ET0, as a share of it"),
    "water_in_share": ("--water-in-error", "SHARE", "error of the rain and irrigation that stay, as a share"),
    "drift_mm_day": ("--drift", "MM_DAY", "spread of the balance's systematic error before any measurement"),
    "drift_change_mm_day": ("--drift-change", "MM_DAY", "how fast that error changes, per square-root day"),
    "theta_sd": ("--theta-error", "M3M3", "random error of the measured root-zone water content"),
}
"""The Kalman filter's noise figures as options, by ``Noise`` field: flag, metavar, help."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    balance = commands.add_parser(
        "balance",
        help="run a field season (pyfao56 files) through the FAO-56 root-zone water balance",
        description="Reads a season in pyfao56's file formats, runs our daily root-zone water balance (FAO-56 "
        "chapter 8, dual crop coefficients from the season's inputs) and prints the season's totals; with --ref "
        "it compares the depletion with pyfao56's own output, with --sws it corrects the balance with the "
        "measured soil water (a Kalman filter that learns the balance's drift) and reports the error before and "
        "after each measurement. --public scores every public season with measurements in data/fields/pyfao56.",
    )
    balance.add_argument(
        "--simulated",
        type=int,
        metavar="SEASONS",
        help="score the estimators on this many simulated seasons against their true soil water instead",
    )
    balance.add_argument(
        "--sim-days", type=int, default=30, metavar="DAYS", help="days per simulated season (default 30)"
    )
    balance.add_argument(
        "--public",
        action="store_true",
        help="score the filter on every public season with measured soil water instead of one season's files",
    )
    files = balance.add_argument_group("season files (pyfao56 formats)")
    files.add_argument("--par", type=Path, metavar="PAR", help="crop and soil parameters (.par)")
    files.add_argument("--wth", type=Path, metavar="WTH", help="daily weather with ETref (.wth)")
    files.add_argument("--irr", type=Path, metavar="IRR", help="irrigation events (.irr)")
    files.add_argument("--sol", type=Path, metavar="SOL", help="layered soil profile (.sol)")
    files.add_argument("--upd", type=Path, metavar="UPD", help="Kcb, height or cover updates (.upd)")
    files.add_argument("--sws", type=Path, metavar="SWS", help="measured soil water series (.sws)")
    files.add_argument("--ref", type=Path, metavar="OUT", help="pyfao56's output of the season (.out) to compare")
    files.add_argument("--fit", type=Path, metavar="FIT", help="pyfao56's fit of Dr to the measurements (.fit)")
    balance.add_argument("--start", type=_day, help="first day (YYYY-DDD); default: --ref's, else the weather's")
    balance.add_argument("--end", type=_day, help="last day (YYYY-DDD); default: --ref's, else the weather's")
    balance.add_argument(
        "--constant-p",
        action="store_true",
        help="hold p at the table value (pyfao56's cons_p) instead of adjusting it for ETc (table 22)",
    )
    noise = balance.add_argument_group(
        "sensor correction (ml.kalman's noise figures; the defaults are reasoned in its docstrings)"
    )
    for name, (flag, metavar, text) in NOISE_OPTIONS.items():
        default = getattr(Noise(), name)
        noise.add_argument(flag, dest=name, type=_figure, default=default, metavar=metavar, help=f"{text} ({default})")
    balance.add_argument(
        "--adjust-kc",
        action="store_true",
        help="adjust Kcb mid and end for the season's wind and humidity (FAO-56 eq. 70, pyfao56's K_adj)",
    )
    balance.add_argument("--out", type=Path, metavar="CSV", help="write the daily table to this CSV file")
    balance.set_defaults(run=run_balance)


def run_balance(args: argparse.Namespace) -> int:
    try:
        noise = Noise(**{name: getattr(args, name) for name in NOISE_OPTIONS})
    except ValueError as exc:
        raise ConfigError(f"{exc}: give --theta-error above 0") from exc
    if args.public:
        _public(noise)
        return 0
    if args.simulated is not None:
        _simulated(args.simulated, args.sim_days)
        return 0
    if args.par is None or args.wth is None:
        raise ConfigError("a season needs its parameters and weather: give --par and --wth (or --public)")
    reference = read_out(args.ref) if args.ref else None
    start = args.start or (reference.index[0].date() if reference is not None else None)
    end = args.end or (reference.index[-1].date() if reference is not None else None)
    season = load_season(args.par, args.wth, args.irr, args.sol, args.upd, start, end, args.adjust_kc)
    measured = season_measurements(args.sws, season, args.constant_p) if args.sws else None
    table = balance_season(season, measured, noise, args.constant_p)
    _summary(season, table)
    if reference is not None:
        ours = table["open_loop_Dr"] if "open_loop_Dr" in table else table["Dr"]  # same physics, no sensors
        say(f"  against pyfao56 ({args.ref.name}), open loop: {compare(ours, reference['Dr']).line()}")
    if measured is not None:
        _skill(table, noise, args.fit)
    if args.out:
        _write(table, args.out)
    return 0


def _public(noise: Noise) -> None:
    table = public_skill(noise)
    say(f"public seasons with measured soil water ({PUBLIC_DIR}), Dr errors in mm, drift in mm/day:")
    say(
        f"  {'season':<16} {'n':>3} {'open loop':>9} {'pyfao56':>8} {'prior':>7} {'bias':>7} "
        f"{'posterior':>9} {'bias':>7} {'drift':>6}"
    )
    for name, row in table.iterrows():
        say(
            f"  {name!s:<16} {row['measurements']:>3.0f} {row['open_loop_rmse']:>9.2f} {row['pyfao56_rmse']:>8.2f} "
            f"{row['prior_rmse']:>7.2f} {row['prior_bias']:>+7.2f} {row['posterior_rmse']:>9.2f} "
            f"{row['posterior_bias']:>+7.2f} {row['drift_mm_day']:>+6.2f}"
        )


def _simulated(seasons: int, days: int) -> None:
    """The root-zone estimators on simulated seasons (the default layout, re-planted per seed, the farmer's
    valves of the training seasons), against each zone's true soil water."""
    if not 1 <= seasons <= 20 or days < 3:
        raise ConfigError("give --simulated 1..20 seasons of --sim-days 3 or more days")
    table = pd.concat(
        [
            simulated_skill(tables.layout, tables.readings, tables.truth, season=seed)
            for seed in range(1, seasons + 1)
            for tables in [run_season(load_layout(), _recipe(seed, days), on_hour=farmer_valves(seed))]
        ]
    )
    say(f"estimated against true depletion (mm) over {seasons} simulated seasons of {days} days; RMSE / bias:")
    wide = table.pivot_table(index=["season", "zone", "crop"], columns="estimator", values=["rmse", "bias"])
    names = [n for n in ESTIMATORS if n in set(table["estimator"])]
    say(f"  {'season zone (crop)':<34}" + "".join(f"{n:>17}" for n in names))
    for (season, zone, crop), row in wide.iterrows():
        cells = "".join(f"{row[('rmse', n)]:>9.2f} /{row[('bias', n)]:>+6.2f}" for n in names)
        say(f"  {f'{season} {zone} ({crop})':<34}{cells}")
    mean = table.groupby("estimator")[["rmse", "bias"]].mean()
    say(f"  {'mean':<34}" + "".join(f"{mean.loc[n, 'rmse']:>9.2f} /{mean.loc[n, 'bias']:>+6.2f}" for n in names))


def _recipe(seed: int, days: int) -> SeasonRecipe:
    return SeasonRecipe(seed=seed, start=SIM_START + timedelta(days=7 * seed), days=days, rates=FaultRates())


def _summary(season: Season, table: pd.DataFrame) -> None:
    last = table.iloc[-1]
    say(
        f"balance: {len(table)} days {season.start}..{season.end}, root depth "
        f"{table['Zr'].min():.2f}-{table['Zr'].max():.2f} m"
    )
    say(f"  final Dr {last['Dr']:.1f} mm of TAW {last['TAW']:.1f} mm (RAW {last['RAW']:.1f} mm, Ks {last['Ks']:.2f})")
    say(
        f"  totals: ETc {table['ETc'].sum():.0f} mm, ETc adj {table['ETc_adj'].sum():.0f} mm, rain "
        f"{table['rain'].sum():.0f} mm, irrigation {table['irrigation'].sum():.0f} mm, deep percolation "
        f"{table['DP'].sum():.0f} mm; {int((table['Ks'] < 1).sum())} days under water stress (Ks < 1)"
    )


def _skill(table: pd.DataFrame, noise: Noise, fit: Path | None) -> None:
    skill = measurement_skill(table)
    figures = ", ".join(f"{NOISE_OPTIONS[k][0]} {getattr(noise, k):g}" for k in NOISE_OPTIONS)
    say(f"  against {skill.prior.days} measurements, corrected by the Kalman filter ({figures}):")
    say(f"    prior (before each measurement): {skill.prior.line()}")
    say(f"    posterior (after it):            {skill.posterior.line()}")
    say(f"    open loop (no correction):       {skill.open_loop.line()}")
    say(
        f"    learned drift of the balance: {skill.drift_mm_day:+.2f} mm/day at the season's end "
        f"({'drier' if skill.drift_mm_day > 0 else 'wetter'} than the balance says; range "
        f"{table['drift'].min():+.2f} to {table['drift'].max():+.2f})"
    )
    if fit is not None:
        rmse = read_fit(fit).get("rmse")
        if rmse is None:
            raise ConfigError(f"{fit} has no rmse line: pass pyfao56's .fit file with --fit")
        say(f"    pyfao56's own fit ({fit.name}):  RMSE {rmse:.2f} mm")


def _write(table: pd.DataFrame, path: Path) -> None:
    try:
        table.to_csv(path, float_format="%.3f")
    except OSError as exc:
        raise ConfigError(f"cannot write {path} ({exc.strerror}): give --out a writable file path") from exc
    say(f"  daily table: {path}")
