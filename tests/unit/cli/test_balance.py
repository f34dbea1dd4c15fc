"""``smartfarm balance``: a season's table and comparisons on the terminal, the daily CSV, and file errors that
name the fix. Driven through its own ``register`` until ``cli.main`` registers it."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pytest

from cli import balance
from smartfarm.errors import ConfigError, SmartFarmError
from tests.helpers import repo_root

SEASON = repo_root() / "data" / "fields" / "pyfao56" / "test06"
FILES = [
    "--par", str(SEASON / "cotton2022p10-2.par"),
    "--wth", str(SEASON / "cotton2022.wth"),
    "--irr", str(SEASON / "cotton2022p10-2.irr"),
    "--sol", str(SEASON / "cotton2022p10-2.sol"),
]  # fmt: skip


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="smartfarm")
    balance.register(root.add_subparsers(dest="command", required=True))
    return root


def main(argv: list[str]) -> int:
    """What ``cli.main.main`` does with a subcommand: run it, and turn our errors into exit code 2."""
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except SmartFarmError:
        return 2


def test_a_season_with_measurements_prints_the_comparisons_and_writes_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cotton2022.csv"
    extra = ["--sws", str(SEASON / "cotton2022p10-2.sws"), "--ref", str(SEASON / "cotton2022p10-2.out")]
    fit = ["--fit", str(SEASON / "cotton2022p10-2_Dr.fit"), "--out", str(out)]
    assert main(["balance", *FILES, *extra, *fit]) == 0
    text = capsys.readouterr().out
    assert "194 days 2022-04-21..2022-10-31" in text
    assert "against pyfao56 (cotton2022p10-2.out), open loop: RMSE 0.00 mm" in text
    assert "prior (before each measurement): RMSE 22.0" in text
    assert "open loop (no correction):       RMSE 80.25 mm" in text
    assert "corrected by the Kalman filter (--et-error 0.1, --water-in-error 0.1, --drift 1" in text
    assert "learned drift of the balance: -1.89 mm/day at the season's end (wetter than the balance says" in text
    assert "pyfao56's own fit (cotton2022p10-2_Dr.fit):  RMSE 80.25 mm" in text
    table = pd.read_csv(out, index_col="date", parse_dates=True)
    assert len(table) == 194
    assert {"Dr", "prior_Dr", "measured_Dr", "open_loop_Dr", "drift", "TAW", "RAW", "Ks"} <= set(table.columns)
    assert table["measured_Dr"].notna().sum() == 25


def test_without_a_reference_the_season_runs_over_the_weather_file_s_days(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["balance", *FILES, "--start", "2022-111", "--end", "2022-120"]) == 0
    text = capsys.readouterr().out
    assert "10 days 2022-04-21..2022-04-30" in text and "final Dr" in text and "against" not in text


def test_a_missing_file_is_exit_code_2_with_a_message_naming_the_option(tmp_path: Path) -> None:
    missing = tmp_path / "nope.par"
    argv = ["balance", "--par", str(missing), "--wth", str(SEASON / "cotton2022.wth")]
    assert main(argv) == 2
    args = parser().parse_args(argv)
    with pytest.raises(ConfigError, match=rf"{missing} not found: pass an existing pyfao56 parameter .* with --par"):
        args.run(args)


def test_a_file_of_the_wrong_kind_names_the_option(tmp_path: Path) -> None:
    args = parser().parse_args(["balance", *FILES, "--sws", str(SEASON / "cotton2022p10-2.par")])
    with pytest.raises(ConfigError, match="--sws"):
        args.run(args)


def test_an_unwritable_csv_is_a_clear_message(tmp_path: Path) -> None:
    args = parser().parse_args(["balance", *FILES, "--out", str(tmp_path / "no" / "such" / "dir.csv")])
    with pytest.raises(ConfigError, match="give --out a writable file path"):
        args.run(args)


def test_noise_figures_are_options_and_a_zero_sensor_error_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    extra = ["--sws", str(SEASON / "cotton2022p10-2.sws"), "--theta-error", "0.02", "--drift-change", "0.1"]
    assert main(["balance", *FILES, *extra]) == 0
    assert "--drift-change 0.1, --theta-error 0.02)" in capsys.readouterr().out
    args = parser().parse_args(["balance", *FILES, "--theta-error", "0"])
    with pytest.raises(ConfigError, match="give --theta-error above 0"):
        args.run(args)


def test_a_season_needs_its_files_unless_public() -> None:
    args = parser().parse_args(["balance"])
    with pytest.raises(ConfigError, match="give --par and --wth"):
        args.run(args)


@pytest.mark.parametrize("bad", [["--start", "2022-400"], ["--drift", "-1"], ["--theta-error", "x"]])
def test_bad_options_stop_argparse_with_code_2(bad: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["balance", *FILES, *bad]
    with pytest.raises(SystemExit) as stopped:
        parser().parse_args(argv)
    assert stopped.value.code == 2
    assert "smartfarm balance: error:" in capsys.readouterr().err
