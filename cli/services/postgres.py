"""PostgreSQL from the Debian package, on a free loopback port, its cluster in a temp folder (the farm registry's
server database; SQLite is the default)."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from cli.services.base import LocalService, free_port
from smartfarm.errors import ServiceError, ServiceMissingError

INSTALL = "sudo apt-get install -y postgresql"
USER = "smartfarm"
"""The cluster's superuser (trust authentication, loopback only) and the database made for the registry."""


def _bin_dir() -> Path:
    """The newest PostgreSQL server's binaries (Debian keeps them in /usr/lib/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise ServiceMissingError("postgres", INSTALL)
    return found[-1].parent


class PostgreSQL(LocalService):
    """A PostgreSQL cluster of its own on 127.0.0.1 with database and superuser ``smartfarm``.

    PostgreSQL refuses to run as root; as root, the cluster is made and run as the ``postgres`` user the Debian
    package creates.
    """

    name = "postgresql"
    start_timeout_s = 60.0
    stop_timeout_s = 20.0

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir)
        self.bin = _bin_dir()
        self.host = "127.0.0.1"
        self.port = port or free_port()
        # As root, the cluster is the postgres user's, in a folder of its own under the system temp folder: the
        # workdir may sit below folders only root can enter (pytest's are 0700).
        self.data = self.workdir / "cluster"
        if os.geteuid() == 0:
            self.data = Path(tempfile.mkdtemp(prefix="smartfarm-postgresql-")) / "cluster"
            atexit.register(shutil.rmtree, self.data.parent, ignore_errors=True)

    def _as_owner(self, command: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command

    def prepare(self) -> None:
        if self.data.exists():
            return
        self.data.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.data.parent, "postgres")
            shutil.chown(self.data, "postgres")
        init = [str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8"]
        done = subprocess.run(self._as_owner(init), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServiceError(f"initdb failed: {done.stderr.strip()[-500:]}")

    def ports(self) -> list[int]:
        return [self.port]

    def command(self) -> list[str]:
        server = [
            str(self.bin / "postgres"),
            "-D", str(self.data),
            "-p", str(self.port),
            "-k", str(self.data),
            "-c", f"listen_addresses={self.host}",
            "-c", "fsync=off",  # a test and local cluster: speed over surviving a power cut
        ]  # fmt: skip
        return self._as_owner(server)

    def is_ready(self) -> bool:
        done = subprocess.run(
            [str(self.bin / "pg_isready"), "-h", self.host, "-p", str(self.port), "-U", USER],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            return False
        with socket.create_connection((self.host, self.port), timeout=1.0):
            return True

    def create_database(self, name: str) -> str:
        """A new database of the cluster; its SQLAlchemy URL."""
        done = subprocess.run(
            [str(self.bin / "createdb"), "-h", self.host, "-p", str(self.port), "-U", USER, name],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise ServiceError(f"createdb {name} failed: {done.stderr.strip()}")
        return f"postgresql+psycopg://{USER}@{self.host}:{self.port}/{name}"
