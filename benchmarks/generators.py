"""The benchmark's load generators: which one publishes, how the Go one is built and started, and their reports.

``Generator.GO`` is ``benchmarks/loadgen`` (Go, standard library only), the open-loop publisher of
``benchmarks.openloop`` written again so that the harness costs the machine little: about a tenth of the
Python generator's CPU per message. ``build`` compiles it into the cache directory, again only when its sources
change (their hash names the build); ``start_go`` runs it with the payload templates on its standard input.
``Generator.PYTHON`` is ``benchmarks.openloop`` itself, kept for the fault matrix (``benchmarks.faults``), whose
cases were measured and tested with it and whose figures are losses, not CPU.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import subprocess
import time
from collections.abc import Sequence
from enum import Enum
from pathlib import Path

from benchmarks.openloop import RECONNECT_EVERY_S, Payloads, Report
from cli.services.base import find_binary
from cli.services.settings import ServicesSettings
from edge.device import RESEND_AFTER_S
from smartfarm.errors import ServiceError
from smartfarm.settings import MqttSettings

log = logging.getLogger(__name__)

SOURCES = Path(__file__).with_name("loadgen")
"""The Go generator's module (``go.mod``, ``*.go``)."""
GO_INSTALL = "sudo apt-get install -y golang-go  (or a go1.24+ tarball from https://go.dev/dl/ on PATH)"
"""How to get Go: 1.23 builds the generator, Telegraf (``benchmarks.peers.telegraf``) needs 1.24."""
GO_DIRS = ("/usr/local/go/bin", "/usr/lib/go/bin")
"""Where Go lives when it is not on PATH (the tarball's place, Debian's)."""


class Generator(Enum):
    """Which program publishes the open-loop load."""

    GO = "go"
    """``benchmarks/loadgen``: about 20 us of CPU per message; one process offers ``GENERATOR_RATE`` msg/s."""
    PYTHON = "python"
    """``benchmarks.openloop`` on paho: about 250 us of CPU per message, so a process offers 1,000 msg/s at most."""


GENERATOR_RATE = {Generator.GO: 10_000.0, Generator.PYTHON: 1000.0}
"""Messages per second one generator process offers at most; a higher rate is shared among several."""


def find_go() -> str:
    """The ``go`` command; ServiceMissingError naming how to install it otherwise."""
    return find_binary("go", GO_INSTALL, extra_dirs=GO_DIRS)


def sources_hash(sources: Path = SOURCES) -> str:
    """A hash of the generator's module: every file that goes into its build, names and bytes."""
    digest = hashlib.sha256()
    for path in sorted(sources.iterdir()):
        if path.name in ("go.mod", "go.sum") or (path.suffix == ".go" and not path.name.endswith("_test.go")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build(cache_dir: Path, sources: Path = SOURCES) -> Path:
    """The generator's binary in ``cache_dir/loadgen/<sources hash>/``, built there first unless it is; the build
    goes to a temporary name and is renamed into place, so processes building at once never see half a binary."""
    binary = cache_dir / "loadgen" / sources_hash(sources) / "loadgen"
    if binary.exists():
        return binary
    go = find_go()
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(f"loadgen.{os.getpid()}.partial")
    # No module is fetched (standard library only); GOFLAGS keeps a go.sum out of the way should one come, and no
    # version-control stamp (the sources may sit in a git worktree).
    env = {**os.environ, "GOSUMDB": "off", "GOFLAGS": "-mod=mod -buildvcs=false", "CGO_ENABLED": "0"}
    began = time.monotonic()
    done = subprocess.run(
        [go, "build", "-trimpath", "-o", str(partial), "."],
        cwd=sources,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise ServiceError(
            f"building the Go load generator in {sources} failed (exit {done.returncode}):\n{done.stderr.strip()}"
        )
    partial.replace(binary)
    log.info("built the Go load generator in %.1f s: %s", time.monotonic() - began, binary)
    return binary


@functools.cache
def binary() -> Path:
    """The Go generator, built once per process at most (``build`` into the services' cache directory)."""
    return build(ServicesSettings().cache_dir)


def start_go(options: Sequence[str], payloads: Payloads) -> subprocess.Popen[str]:
    """The Go generator with ``options`` (``benchmarks/loadgen/main.go`` lists them; they win over the timings
    given first, the Python generator's and our devices'), ``payloads`` on its standard input;
    ``generator_report`` reads what it printed."""
    timings = [
        *("--keepalive-s", str(MqttSettings().keepalive_s), "--resend-after-s", repr(RESEND_AFTER_S)),
        *("--reconnect-every-s", repr(RECONNECT_EVERY_S)),
    ]
    proc = subprocess.Popen(
        [str(binary()), *timings, *options],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdin, proc.stdin = proc.stdin, None  # handed over whole here: ``communicate`` has nothing more to send
    assert stdin is not None
    with contextlib.suppress(BrokenPipeError):  # it exited at once (a bad option): ``generator_report`` says why
        stdin.write(payloads.to_json())
    with contextlib.suppress(BrokenPipeError):
        stdin.close()
    return proc


class HarnessError(RuntimeError):
    """The load generator could not offer what was asked (it started too late, or failed): not a figure of the
    pipeline."""


def generator_report(proc: subprocess.Popen[str]) -> Report:
    """The report a generator (either) prints last; HarnessError with what it said when it has none."""
    out, err = proc.communicate()
    lines = out.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise HarnessError(f"a load generator exited with code {proc.returncode}: {err.strip()[-500:]}")
    return Report.from_json(lines[-1])
