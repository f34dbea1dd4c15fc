"""The CLI's output layer: the only place that writes to the terminal, and the settings <-> options glue."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType
from typing import Any, TypeVar

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings

from smartfarm.errors import ConfigError
from smartfarm.settings import env_name
from smartfarm.stop import StopFlag

S = TypeVar("S", bound=BaseSettings)

KAFKA_LOGIN = ("security_protocol", "sasl_mechanism", "sasl_username")
"""The ``KafkaSettings`` of a login that commands take as options; the password only from the environment (or
``.env``): a command line is visible to every user of the machine."""


def say(message: str) -> None:
    print(message, flush=True)


def warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def add_settings_options(parser: argparse.ArgumentParser, cls: type[BaseSettings], *fields: str) -> None:
    """Add ``--field-name`` options for ``fields`` of ``cls``; each help text names its env variable."""
    group = parser.add_argument_group(f"{cls.__name__} (environment or .env; options win)")
    for name in fields:
        info = cls.model_fields[name]
        default = info.get_default(call_default_factory=True)
        shown = "***" if isinstance(default, SecretStr) else default
        group.add_argument(
            f"--{name.replace('_', '-')}",
            dest=f"{cls.__name__}.{name}",
            metavar=name.upper(),
            default=None,
            help=f"{info.description or name} [env: {env_name(cls, name)}; default: {shown}]",
        )


def settings_from(cls: type[S], args: argparse.Namespace) -> S:
    """Build ``cls`` from the environment, overridden by the options ``add_settings_options`` added."""
    prefix = f"{cls.__name__}."
    given: dict[str, Any] = {
        key[len(prefix) :]: value for key, value in vars(args).items() if key.startswith(prefix) and value is not None
    }
    try:
        return cls(**given)
    except ValidationError as exc:
        problems = "; ".join(_problem(cls, e["loc"], e["msg"]) for e in exc.errors(include_url=False))
        raise ConfigError(f"invalid settings: {problems}") from exc


def _problem(cls: type[BaseSettings], loc: tuple[int | str, ...], message: str) -> str:
    """One validation error: the variable it is about, or (a rule over several settings, which names them itself)
    the message alone."""
    if not loc:
        return message.removeprefix("Value error, ")
    field = str(loc[0])
    return f"{env_name(cls, field) if field in cls.model_fields else loc}: {message}"


def stop_on_signals() -> StopFlag:
    """A flag set by SIGINT or SIGTERM, so a command can stop cleanly instead of dying mid-write."""
    stop = StopFlag()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    return stop
