"""``smartfarm layout``: check the layout file, or move it into and out of the farm registry.

- ``smartfarm layout`` (or ``layout check``): validate the file and summarise it;
- ``smartfarm layout import``: make the registry's farms those of the file (a device the file drops is retired);
- ``smartfarm layout export``: the registry as a layout file (stdout, or ``--out``), which ``import`` reads back.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from cli.console import add_settings_options, say, settings_from
from smartfarm.layout import Layout, load_layout
from smartfarm.settings import LayoutSettings
from storage.registry.settings import RegistrySettings
from storage.registry.store import migrated

ACTIONS = ("check", "import", "export")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    layout = commands.add_parser(
        "layout",
        help="check the farm layout file, or import it into / export it from the farm registry",
        description="check: validate the layout file and summarise it. import: make the registry's farms what the "
        "file says (devices it no longer lists are retired, never deleted). export: write the registry as a layout "
        "file that import reads back.",
    )
    layout.add_argument("action", nargs="?", choices=ACTIONS, default="check", help="default: check")
    layout.add_argument("--out", type=Path, help="export: write here instead of to standard output")
    add_settings_options(layout, LayoutSettings, "layout")
    add_settings_options(layout, RegistrySettings, "url")
    layout.set_defaults(run=run_layout)


def run_layout(args: argparse.Namespace) -> int:
    path = settings_from(LayoutSettings, args).layout
    if args.action == "check":
        say(f"{path or 'bundled default layout'}: valid")
        summary(load_layout(path))
        return 0
    with migrated(settings_from(RegistrySettings, args).url.get_secret_value()) as registry:
        if args.action == "import":
            layout = load_layout(path)
            registry.import_layout(layout)
            say(f"imported {len(layout.farms)} farm(s) into the registry at {registry.engine.url!r}")
            summary(registry.layout(f.id for f in layout.farms))
            return 0
        text = dump(registry.layout())
    if args.out is None:
        print(text, end="")  # noqa: T201 - the file itself, for a pipe
    else:
        args.out.write_text(text)
        say(f"wrote {args.out}")
    return 0


def dump(layout: Layout) -> str:
    """The layout as the YAML file ``smartfarm.layout.parse_layout`` reads back to an equal layout."""
    return yaml.safe_dump(layout.model_dump(mode="json", exclude_none=True), sort_keys=False, allow_unicode=True)


def summary(layout: Layout) -> None:
    for farm in layout.farms:
        say(f"farm {farm.id} ({farm.name}) at {farm.latitude:.2f}, {farm.longitude:.2f}")
        for zone in farm.zones:
            devices = [d for d in farm.devices if d.zone == zone.id]
            sensors = sum(len(d.sensors) for d in devices)
            say(
                f"  zone {zone.id:<20} {zone.crop.value:<8} {zone.soil.value:<16} {zone.area_ha:>7.2f} ha  "
                f"{len(devices)} devices, {sensors} sensors"
            )
