"""The ``smartfarm`` command. Each subcommand is registered by the module of this package that runs it."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from cli import balance, bridge, brokerauth, edge, models, season, train, up, worker
from cli.console import add_settings_options, say, settings_from, warn
from cli.services import command as services
from smartfarm import __version__
from smartfarm.errors import SmartFarmError
from smartfarm.layout import load_layout
from smartfarm.settings import LayoutSettings


def _register_layout(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    layout = commands.add_parser("layout", help="validate the farm layout file and summarise it")
    add_settings_options(layout, LayoutSettings, "layout")
    layout.set_defaults(run=run_layout)


def run_layout(args: argparse.Namespace) -> int:
    settings = settings_from(LayoutSettings, args)
    path = Path(settings.layout) if settings.layout else None
    layout = load_layout(path)
    say(f"{path or 'bundled default layout'}: valid")
    for farm in layout.farms:
        say(f"farm {farm.id} ({farm.name}) at {farm.latitude:.2f}, {farm.longitude:.2f}")
        for zone in farm.zones:
            devices = [d for d in farm.devices if d.zone == zone.id]
            sensors = sum(len(d.sensors) for d in devices)
            say(
                f"  zone {zone.id:<20} {zone.crop.value:<8} {zone.soil.value:<16} {zone.area_ha:>7.2f} ha  "
                f"{len(devices)} devices, {sensors} sensors"
            )
    return 0


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
    bridge.register(commands)
    brokerauth.register(commands)
    train.register(commands)
    season.register(commands)
    models.register(commands)
    balance.register(commands)
    worker.register(commands)
    _register_layout(commands)
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
