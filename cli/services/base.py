"""A local service: one child process on loopback ports, started, awaited and stopped by our own code.

The child gets SIGTERM when the thread that started it ends (``PR_SET_PDEATHSIG`` follows the forking thread,
not the process: start a service from a thread that lives as long as the service should, such as the main
thread), and every running service is stopped at interpreter exit, so a crashed test run leaves nothing behind.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import weakref
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Self

from smartfarm.errors import ServiceError, ServiceMissingError

log = logging.getLogger(__name__)

_running: weakref.WeakSet[LocalService] = weakref.WeakSet()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_binary(name: str, install: str, extra_dirs: tuple[str, ...] = ("/usr/sbin", "/usr/local/sbin")) -> str:
    """The path of ``name`` on PATH or in ``extra_dirs``; ServiceMissingError naming ``install`` otherwise."""
    found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(extra_dirs))
    if found is None:
        raise ServiceMissingError(name, install)
    return found


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def tail_of(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file, or "(no log)"."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) a process has used so far, from /proc; 0 for a process that is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def first_error(path: Path, lines: int = 40) -> str:
    """From the first traceback of a log file on, ``lines`` lines: a crash's cause, which its tail (the shutdown
    that followed) hides; "" if there is none."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    first = next((i for i, line in enumerate(text) if line.startswith("Traceback")), None)
    return "" if first is None else "\n".join(text[max(0, first - 3) : first + lines])


class LocalService(ABC):
    """Base class: subclasses say how to prepare, what to run and how to tell that the service is ready.

    Ports and the data folder are fixed when the object is made, so ``stop()`` then ``start()`` brings the
    same service back on the same ports with its data, as a restarted server would.
    """

    name: str = "service"
    start_timeout_s: float = 60.0
    stop_timeout_s: float = 30.0

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.ready_seconds: float | None = None

    @abstractmethod
    def command(self) -> list[str]:
        """The command line of the service process."""

    @abstractmethod
    def is_ready(self) -> bool:
        """True when the service answers as a client would use it."""

    @abstractmethod
    def prepare(self) -> None:
        """Write config files and format storage; called before every start."""

    def ports(self) -> list[int]:
        """The loopback ports the service listens on; they must be free before it starts."""
        return []

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> Self:
        """Start the process and wait until it is ready; ServiceError (with the log's tail) if it is not."""
        if self.running:
            return self
        busy = [p for p in self.ports() if port_open(p)]
        if busy:
            # Otherwise the readiness probe would take whatever answers there for our service.
            raise ServiceError(f"{self.name}: port {busy[0]} is already in use on 127.0.0.1")
        began = time.monotonic()
        self.prepare()
        with self.log_path.open("ab") as logfile:
            self._proc = subprocess.Popen(
                self.command(),
                stdout=logfile,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        _running.add(self)
        deadline = began + self.start_timeout_s
        while True:
            code = self._proc.poll()
            if code is not None:
                self._proc = None
                raise ServiceError(f"{self.name} exited with code {code} while starting:\n{self.log_tail()}")
            try:
                if self.is_ready():
                    break
            except Exception as exc:  # readiness probes fail in many ways until the service is up
                log.debug("%s not ready yet: %s", self.name, exc)
            if time.monotonic() > deadline:
                self.stop()
                raise ServiceError(f"{self.name} was not ready within {self.start_timeout_s:.0f}s:\n{self.log_tail()}")
            time.sleep(0.1)
        self.ready_seconds = time.monotonic() - began
        log.info("%s ready in %.2fs (pid %s)", self.name, self.ready_seconds, self._proc.pid)
        return self

    def stop(self) -> None:
        """Stop the process gracefully (SIGTERM), killing it if it does not exit in time."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0fs; killing it", self.name, self.stop_timeout_s)
                self.kill_process(proc)
        _running.discard(self)

    def kill(self) -> None:
        """Kill the process at once (SIGKILL), as a crash would."""
        proc, self._proc = self._proc, None
        if proc is not None:
            self.kill_process(proc)
        _running.discard(self)

    @staticmethod
    def kill_process(proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        return tail_of(self.log_path, lines)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    for service in list(_running):
        service.stop()
