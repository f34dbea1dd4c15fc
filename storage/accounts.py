"""InfluxDB's users and grants for the pipeline, declared in one place: by ``smartfarm up``, by ``smartfarm
influx-users`` (docker compose's one-shot, and an operator's command against an InfluxDB of their own) and by the
tests. Statements are built by pure functions (``accounts``, ``create_user``, ``grant``...); ``declare`` runs them.

What it declares, as the admin:

- the admin (``InfluxUsers.admin``), when InfluxDB has none: InfluxDB 1.x with authentication on answers every
  request 403 "create admin user first" until one exists, and lets exactly that ``CREATE USER ... WITH ALL
  PRIVILEGES`` through without credentials. Once it exists it is never changed: it is who logs in to change things;
- the database, with its retention policy as the default;
- the writer (``InfluxSettings.login``): ALL on the database, no admin: the workers write points and read the zone
  windows back, the farm API reads and records farmers' decisions;
- the reader (``InfluxUsers.reader``): READ on the database, for the dashboards and the live status.

Idempotent: what already matches is left alone, so running it again changes nothing. A user whose configured
password no longer logs in gets it set again; a grant on the database that differs is set again. Grants on other
databases are left alone (a shared InfluxDB holds its operator's own), and a writer or reader that is an admin is
refused rather than demoted. Passwords never appear in what it returns or raises (``storage.influx.redacted``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import SecretStr

from smartfarm.errors import ConfigError, StorageDenied
from smartfarm.settings import InfluxLogin, InfluxSettings, InfluxUsers
from storage.influx import NO_ADMIN_YET, InfluxClient


class Privilege(StrEnum):
    """A user's privilege on one database, spelt as ``SHOW GRANTS`` shows it (and ``GRANT`` takes it)."""

    ALL = "ALL PRIVILEGES"
    """Read and write."""
    READ = "READ"
    """Query only."""


@dataclass(frozen=True, slots=True)
class Account:
    """A pipeline user and its privilege on the pipeline's database.

    Args:
        role: what it is for, in messages ("writer", "reader").
    """

    role: str
    login: InfluxLogin
    privilege: Privilege


def accounts(influx: InfluxSettings, users: InfluxUsers) -> list[Account]:
    """The writer and the reader; ConfigError when two of the three users share a name (or the writer has none)."""
    writer = Account("writer", influx.login, Privilege.ALL)
    reader = Account("reader", users.reader, Privilege.READ)
    if not writer.login.username:
        raise ConfigError(f"the pipeline's writer needs a name: set {writer.login.settings}")
    names = [users.admin_username, writer.login.username, reader.login.username]
    if len(set(names)) < len(names):
        raise ConfigError(
            f"the admin, the writer and the reader must be three users, got {names}: set "
            f"{users.admin.settings}, {writer.login.settings} and {reader.login.settings} apart"
        )
    return [writer, reader]


def _string(secret: SecretStr) -> str:
    """An InfluxQL string literal."""
    return "'" + secret.get_secret_value().replace("\\", "\\\\").replace("'", "\\'") + "'"


def create_user(login: InfluxLogin, *, admin: bool = False) -> str:
    """The statement that creates ``login``'s user (an admin with ``admin``)."""
    privileges = " WITH ALL PRIVILEGES" if admin else ""
    return f'CREATE USER "{login.username}" WITH PASSWORD {_string(login.password)}{privileges}'


def set_password(login: InfluxLogin) -> str:
    return f'SET PASSWORD FOR "{login.username}" = {_string(login.password)}'


def grant(account: Account, database: str) -> str:
    return f'GRANT {account.privilege.value} ON "{database}" TO "{account.login.username}"'


def ensure_admin(influx: InfluxSettings, admin: InfluxLogin) -> bool:
    """Make the admin if InfluxDB has none yet (its first start); True if it was made. Asked without credentials:
    an InfluxDB with an admin refuses that (401), and nothing is tried; one without answers 403 "create admin user
    first"; one with authentication off answers, and gets the admin too if it has none (for the day it is on)."""
    anonymous = InfluxLogin("", SecretStr(""), admin.settings)
    with InfluxClient(influx, anonymous) as client:
        try:
            users = client.query("SHOW USERS")
        except StorageDenied as exc:
            if NO_ADMIN_YET not in str(exc):
                return False
            users = []
        if any(row["admin"] for row in users):
            return False
        client.query(create_user(admin, admin=True), write=True)
        return True


def declare(influx: InfluxSettings, users: InfluxUsers) -> list[str]:
    """Declare the admin, the database, the writer and the reader with their grants (module docstring); return
    what changed, one line each (empty when everything already matched). StorageDenied naming the admin's
    settings when the admin cannot log in; ConfigError when a pipeline user is an admin."""
    pipeline = accounts(influx, users)
    changes = []
    if ensure_admin(influx, users.admin):
        changes.append(f"made the admin {users.admin_username!r}")
    with InfluxClient(influx, users.admin) as admin:
        known = {row["user"]: bool(row["admin"]) for row in admin.query("SHOW USERS")}
        if not known.get(users.admin_username):
            raise ConfigError(
                f"InfluxDB user {users.admin_username!r} at {influx.url} is not an admin: set {users.admin.settings} "
                "to its admin"
            )
        if influx.database not in {row["name"] for row in admin.query("SHOW DATABASES")}:
            admin.create_database()
            changes.append(f"created the database {influx.database!r} (retention {influx.retention})")
        for account in pipeline:
            changes += _declare(admin, influx, account, known)
    return changes


def _declare(admin: InfluxClient, influx: InfluxSettings, account: Account, known: dict[str, bool]) -> list[str]:
    name, changes = account.login.username, []
    if name not in known:
        admin.query(create_user(account.login), write=True)
        changes.append(f"created the {account.role} {name!r}")
    elif known[name]:
        raise ConfigError(
            f"InfluxDB user {name!r} ({account.login.settings}) is an admin; the pipeline's {account.role} must not "
            "be: name another user, or revoke its admin privilege (REVOKE ALL PRIVILEGES FROM it)"
        )
    elif not _logs_in(influx, account.login):
        admin.query(set_password(account.login), write=True)
        changes.append(f"set the {account.role} {name!r}'s password again (it had changed)")
    grants = {row["database"]: row["privilege"] for row in admin.query(f'SHOW GRANTS FOR "{name}"')}
    if grants.get(influx.database) != account.privilege.value:
        admin.query(grant(account, influx.database), write=True)
        changes.append(f"granted {account.privilege.value} on {influx.database!r} to the {account.role} {name!r}")
    return changes


def _logs_in(influx: InfluxSettings, login: InfluxLogin) -> bool:
    """Whether ``login`` logs in (a statement every user may run, whatever its grants)."""
    with InfluxClient(influx, login) as client:
        try:
            client.query("SHOW DATABASES")
        except StorageDenied as exc:
            if exc.status == 401:
                return False
            raise
    return True
