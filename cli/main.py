"""The ``smartfarm`` command. Each subcommand is registered by the module of this package that runs it."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from cli import api, balance, bridge, brokerauth, edge, forecast, influxusers, layout, models, season, train, up, worker
from cli.console import warn
from cli.services import command as services
from smartfarm import __version__
from smartfarm.errors import SmartFarmError


def _register_bench(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser(
        "bench",
        add_help=False,
        help="the benchmark on local services: each stage against its ceiling, end to end, peers (--help for more)",
    )
    bench.add_argument("options", nargs=argparse.REMAINDER)
    bench.set_defaults(run=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    """Hand over to ``python -m benchmarks``: the benchmarks sit above the command line (they drive the services
    and processes it launches), so the command runs them as a program, as git runs ``git-foo`` for ``git foo``."""
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks", *args.options])
    return 0  # not reached


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smartfarm", description="SmartFarm: an IoT stream processor for farms.")
    parser.add_argument("--version", action="version", version=f"smartfarm {__version__}")
    parser.add_argument("--log-level", default="WARNING", help="logging level of the process (default WARNING)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up.register(commands)
    edge.register(commands)
    forecast.register(commands)
    bridge.register(commands)
    brokerauth.register(commands)
    influxusers.register(commands)
    train.register(commands)
    season.register(commands)
    models.register(commands)
    balance.register(commands)
    worker.register(commands)
    layout.register(commands)
    api.register(commands)
    _register_bench(commands)
    services.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # every option, --help too, is the benchmark's own
        return run_bench(argparse.Namespace(options=argv[1:]))
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args))
    except SmartFarmError as exc:
        warn(f"smartfarm {args.command}: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
