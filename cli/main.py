"""The ``smartfarm`` command. Each subcommand is registered by the module of this package that runs it."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from cli.console import warn
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


COMMANDS: dict[str, str] = {
    "up": "cli.up",
    "edge": "cli.edge",
    "forecast": "cli.forecast",
    "bridge": "cli.bridge",
    "broker-auth": "cli.brokerauth",
    "influx-users": "cli.influxusers",
    "train": "cli.train",
    "season": "cli.season",
    "models": "cli.models",
    "balance": "cli.balance",
    "worker": "cli.worker",
    "layout": "cli.layout",
    "api": "cli.api",
    "services": "cli.services.command",
}
"""Each command and the module that registers and runs it, in the order ``--help`` lists them. A process imports
only its own command's module: a bridge or an edge process does not pay seconds of CPU for scikit-learn, MLflow
and FastAPI it never calls (``smartfarm up`` starts several of them)."""


def _chosen(argv: list[str]) -> str | None:
    """The command ``argv`` names, if it names a known one; None for ``--help``, ``--version`` or a mistake (the
    full parser then answers, listing every command)."""
    front = argparse.ArgumentParser(add_help=False)
    front.add_argument("--log-level")
    front.add_argument("command", nargs="?")
    known, _ = front.parse_known_args(argv)
    return known.command if known.command in COMMANDS else None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line, with every command or, given ``only``, with that one alone."""
    parser = argparse.ArgumentParser(prog="smartfarm", description="SmartFarm: an IoT stream processor for farms.")
    parser.add_argument("--version", action="version", version=f"smartfarm {__version__}")
    parser.add_argument("--log-level", default="WARNING", help="logging level of the process (default WARNING)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        if only in (None, name):
            importlib.import_module(module).register(commands)
        if name == "api" and only is None:
            _register_bench(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # every option, --help too, is the benchmark's own
        return run_bench(argparse.Namespace(options=argv[1:]))
    args = build_parser(_chosen(argv)).parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args))
    except SmartFarmError as exc:
        warn(f"smartfarm {args.command}: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
