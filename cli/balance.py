"""``smartfarm balance``: a field season in pyfao56's files through our FAO-56 root-zone water balance."""

from __future__ import annotations

import argparse
from datetime import date, datetime
from pathlib import Path

import pandas as pd

from cli.console import say
from ml.field import (
    Season,
    balance_inputs,
    balance_season,
    compare,
    load_season,
    measured_depletion,
    measurement_skill,
    read_fit,
    read_out,
)
from ml.waterbalance import DEFAULT_GAIN
from smartfarm.errors import ConfigError


def _day(text: str) -> date:
    """A date as YYYY-DDD (pyfao56's year and day of year) or YYYY-MM-DD."""
    for pattern in ("%Y-%j", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise argparse.ArgumentTypeError(f"{text!r} is not a date: give YYYY-DDD (e.g. 2022-111) or YYYY-MM-DD")


def _gain(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a gain: give a number from 0 to 1")
    return value


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    balance = commands.add_parser(
        "balance",
        help="run a field season (pyfao56 files) through the FAO-56 root-zone water balance",
        description="Reads a season in pyfao56's file formats, runs our daily root-zone water balance (FAO-56 "
        "chapter 8, dual crop coefficients from the season's inputs) and prints the season's totals; with --ref "
        "it compares the depletion with pyfao56's own output, with --sws it corrects the balance with the "
        "measured soil water and reports the error before and after each measurement.",
    )
    files = balance.add_argument_group("season files (pyfao56 formats)")
    files.add_argument("--par", type=Path, required=True, metavar="PAR", help="crop and soil parameters (.par)")
    files.add_argument("--wth", type=Path, required=True, metavar="WTH", help="daily weather with ETref (.wth)")
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
    balance.add_argument(
        "--gain", type=_gain, default=DEFAULT_GAIN, help=f"sensor correction gain 0..1 (default {DEFAULT_GAIN})"
    )
    balance.add_argument("--out", type=Path, metavar="CSV", help="write the daily table to this CSV file")
    balance.set_defaults(run=run_balance)


def run_balance(args: argparse.Namespace) -> int:
    reference = read_out(args.ref) if args.ref else None
    start = args.start or (reference.index[0].date() if reference is not None else None)
    end = args.end or (reference.index[-1].date() if reference is not None else None)
    season = load_season(args.par, args.wth, args.irr, args.sol, args.upd, start, end)
    measured = _measured(args.sws, season, args.constant_p) if args.sws else None
    table = balance_season(season, measured, args.gain, args.constant_p)
    _summary(season, table)
    if reference is not None:
        ours = table["open_loop_Dr"] if "open_loop_Dr" in table else table["Dr"]  # same physics, no sensors
        say(f"  against pyfao56 ({args.ref.name}), open loop: {compare(ours, reference['Dr']).line()}")
    if measured is not None:
        _skill(table, args.gain, args.fit)
    if args.out:
        _write(table, args.out)
    return 0


def _measured(path: Path, season: Season, constant_p: bool) -> pd.Series:
    """The measured Dr over the balance's own root zone on each date, the Zr pyfao56's fit uses."""
    root_depth = {d.day: d.root_depth_m for d in balance_inputs(season, constant_p).days}
    measured = measured_depletion(path, season, root_depth)
    if measured.empty:
        raise ConfigError(f"{path} has no measurement between {season.start} and {season.end}: check --sws")
    return measured


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


def _skill(table: pd.DataFrame, gain: float, fit: Path | None) -> None:
    skill = measurement_skill(table, gain)
    say(f"  against {skill.prior.days} measurements, corrected with gain {gain:g}:")
    say(f"    prior (before each measurement): {skill.prior.line()}")
    say(f"    posterior (after it):            {skill.posterior.line()}")
    say(f"    open loop (no correction):       {skill.open_loop.line()}")
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
