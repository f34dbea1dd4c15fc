"""The local installation's secrets: generated at its first start, kept in ``{workdir}/secrets.env``.

``smartfarm up`` never runs on the development placeholders (``smartfarm-dev``, ``changeme``): the first start
draws a random value for each secret the installation needs (the fleet secret device passwords derive from, the
services' broker password, the InfluxDB and Kafka users' passwords) into ``secrets.env`` in its data folder,
readable by its owner only (0600), and every later start reads the same values, so stored data, broker logins and
dashboards keep working across restarts. A secret set in the environment, in ``.env`` or as an option wins and is
neither generated nor written. The file is in the ``KEY=value`` form of ``.env``, so a component run by hand
against the stack takes it with ``set -a; . .smartfarm/secrets.env; set +a``.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from pathlib import Path

from dotenv import dotenv_values
from pydantic_settings import BaseSettings

from edge.settings import EdgeSettings
from smartfarm.credentials import replace_file
from smartfarm.errors import ConfigError
from smartfarm.settings import InfluxSettings, InfluxUsers, KafkaSettings, MqttSettings, env_name

FILE_NAME = "secrets.env"

GENERATED: tuple[tuple[type[BaseSettings], str], ...] = (
    (EdgeSettings, "device_secret"),
    (MqttSettings, "password"),
    (KafkaSettings, "sasl_password"),
    (InfluxSettings, "password"),
    (InfluxUsers, "admin_password"),
    (InfluxUsers, "reader_password"),
)
"""The settings whose value an installation draws at its first start."""


def generated_names() -> list[str]:
    """The environment variables of ``GENERATED``."""
    return [env_name(cls, field) for cls, field in GENERATED]


def new_secret() -> str:
    """A random secret: 32 bytes from the OS, URL-safe text (no quoting needed in a shell or an env file)."""
    return secrets.token_urlsafe(32)


def load_or_create(path: Path, names: Iterable[str]) -> dict[str, str]:
    """The secrets kept at ``path``, each of ``names`` it lacks drawn now and written back (mode 0600).

    ConfigError when the file can be read by others than its owner (as ssh refuses such a key): it must be
    made private, or removed to draw new secrets."""
    kept: dict[str, str] = {}
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(
                f"{path} holds the installation's secrets but others may read it (mode {mode:o}); run "
                f"`chmod 600 {path}`, or remove it to draw new ones (then the stored data stays, its logins change)"
            )
        kept = {k: v for k, v in dotenv_values(path).items() if v}
    missing = [name for name in names if name not in kept]
    if missing:
        kept |= {name: new_secret() for name in missing}
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = "".join(f"{name}={value}\n" for name, value in kept.items())
        replace_file(path, "# drawn by smartfarm up at the first start; keep private (0600)\n" + lines, 0o600)
    return kept


def apply(
    kept: Mapping[str, str], environ: MutableMapping[str, str] = os.environ, dotenv: Path = Path(".env")
) -> list[str]:
    """Put each kept secret into ``environ`` unless ``environ`` or the ``.env`` file sets it (those win); returns
    the names put in."""
    configured = {name for name, value in environ.items() if value}  # empty counts as unset, as in the settings
    configured |= {name for name, value in dotenv_values(dotenv).items() if value}
    applied = [name for name in kept if name not in configured]
    for name in applied:
        environ[name] = kept[name]
    return applied


@contextmanager
def installation_secrets(workdir: Path, environ: MutableMapping[str, str] = os.environ) -> Iterator[list[str]]:
    """The installation's secrets at ``workdir`` in ``environ`` where nothing else sets them (drawn first if this
    is the first start), for as long as the block runs: the stack's settings and its child processes read them
    there. Yields the names put in, and takes them out again at the end, so a caller in the same process (a test)
    finds its environment as it was."""
    applied = apply(load_or_create(workdir / FILE_NAME, generated_names()), environ)
    try:
        yield applied
    finally:
        for name in applied:
            environ.pop(name, None)
