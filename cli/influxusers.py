"""``smartfarm influx-users``: InfluxDB's admin (at its first start), the pipeline's database, its writer and its
reader with their grants (``storage.accounts.declare``), as ``smartfarm up`` declares them; docker compose's
``influx-users`` one-shot runs it, and an operator runs it against an InfluxDB of their own. Idempotent: a second
run changes nothing, a changed password is set again. Passwords come from the environment only, never options."""

from __future__ import annotations

import argparse

from cli.console import add_settings_options, say, settings_from
from smartfarm.settings import InfluxSettings, InfluxUsers
from storage.accounts import declare


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = commands.add_parser(
        "influx-users",
        help="declare InfluxDB's admin, the pipeline's database, writer (ALL) and reader (READ); idempotent",
        description="Logs in as the admin (made first when InfluxDB has none) and declares the database with its "
        "retention, the writer (SMARTFARM_INFLUX_USERNAME: ALL on the database) and the reader "
        "(SMARTFARM_INFLUX_READER_USERNAME: READ on it). The passwords are read from SMARTFARM_INFLUX_PASSWORD, "
        "_ADMIN_PASSWORD and _READER_PASSWORD (environment or .env).",
    )
    add_settings_options(users, InfluxSettings, "url", "database", "retention", "username")
    add_settings_options(users, InfluxUsers, "admin_username", "reader_username")
    users.set_defaults(run=run_influx_users)


def run_influx_users(args: argparse.Namespace) -> int:
    influx = settings_from(InfluxSettings, args)
    changes = declare(influx, settings_from(InfluxUsers, args))
    for change in changes:
        say(f"  {change}")
    say(f"InfluxDB at {influx.url}: {'declared' if changes else 'already as declared'} ({len(changes)} changes)")
    return 0
