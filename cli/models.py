"""``smartfarm models``: list the registered models' versions and their metrics, or promote one by hand."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cli.console import add_settings_options, say, settings_from
from ml.settings import ModelSettings
from smartfarm.errors import ConfigError

if TYPE_CHECKING:
    from ml.registry import ModelVersionInfo

PROMOTED_MARK = "*"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    models = commands.add_parser(
        "models",
        help="list the registered models' versions, metrics and which one is promoted; promote one by hand",
        description="Lists every version of every model that `smartfarm train` registered in MLflow's local store, "
        f"newest first, with its key metrics and checksum; {PROMOTED_MARK} marks the promoted one, which the workers "
        "load. --promote moves the alias to another version after checking its file.",
    )
    models.add_argument(
        "--promote",
        nargs=2,
        metavar=("NAME", "VERSION"),
        help="promote VERSION of model NAME (after checking its file's checksum), then list",
    )
    add_settings_options(models, ModelSettings, "store", "alias")
    models.set_defaults(run=run_models)


def run_models(args: argparse.Namespace) -> int:
    settings = settings_from(ModelSettings, args)
    promote = _promotion(args.promote)
    # MLflow takes seconds to import: only this command pays for it, not every `smartfarm --help`.
    from ml.registry import Registry

    registry = Registry(settings)
    if promote is not None:
        info = registry.promote(*promote)
        say(f"models: promoted {info.name} version {info.version} as {settings.alias}")
    versions = registry.versions()
    if not versions:
        say(f"models: no models registered in {settings.store} yet; run `smartfarm train` to train and register some")
        return 0
    for line in table(versions, settings.alias):
        say(line)
    return 0


def _promotion(given: Sequence[str] | None) -> tuple[str, int] | None:
    if given is None:
        return None
    name, version = given
    if not version.isdigit():
        raise ConfigError(f"--promote {name} {version}: the version must be a number, as `smartfarm models` lists")
    return name, int(version)


def table(versions: Sequence[ModelVersionInfo], alias: str) -> list[str]:
    """Lines of the listing: per model a header, then its versions newest first; the promoted one marked."""
    lines: list[str] = []
    for name in sorted({info.name for info in versions}):
        own = sorted((info for info in versions if info.name == name), key=lambda info: -info.version)
        promoted = next((info.version for info in own if info.promoted), None)
        shown = f"{alias}: version {promoted}" if promoted is not None else f"no {alias} yet (workers use baselines)"
        lines.append(f"{name} ({len(own)} versions; {shown})")
        lines.append(f"  {'':1} {'version':>7}  {'created (UTC)':<16}  {'sha256':<12}  {'beats':<5}  metrics")
        lines += [_row(info) for info in own]
    return lines


def _row(info: ModelVersionInfo) -> str:
    mark = PROMOTED_MARK if info.promoted else ""
    metrics = "  ".join(f"{key}={value:.4g}" for key, value in sorted(info.metrics.items())) or "-"
    return (
        f"  {mark:1} {info.version:>7}  {info.created:%Y-%m-%d %H:%M}  {(info.sha256 or '?')[:12]:<12}  "
        f"{'yes' if info.beats_baseline else 'no':<5}  {metrics}"
    )
