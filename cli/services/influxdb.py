"""InfluxDB 1.x from the Debian package (v1 HTTP API), on free loopback ports, data in a temp folder."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from cli.services.base import LocalService, find_binary, free_port

INSTALL = "sudo apt-get install -y influxdb"


class InfluxDB(LocalService):
    """An influxd on 127.0.0.1 with authentication on and usage reporting off.

    Until an admin exists it answers every request 403 but the first admin's ``CREATE USER``:
    ``storage.accounts.declare`` (or ``ensure_admin``) makes it at the first start, and the pipeline's users; a
    restart with its data finds them there.

    Args:
        workdir: folder for the config, the data, the WAL and the log.
        port: HTTP API port; a free one when None.
    """

    name = "influxdb"
    start_timeout_s = 30.0
    stop_timeout_s = 15.0

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir)
        self.binary = find_binary("influxd", INSTALL)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.rpc_port = free_port()  # the backup/restore RPC service, bound to loopback as well
        self.config_path = self.workdir / "influxdb.conf"

    def config(self) -> str:
        return f"""\
reporting-disabled = true
bind-address = "{self.host}:{self.rpc_port}"

[meta]
  dir = "{self.workdir}/meta"

[data]
  dir = "{self.workdir}/data"
  wal-dir = "{self.workdir}/wal"
  query-log-enabled = false
  index-version = "tsi1"

[monitor]
  store-enabled = false

[http]
  bind-address = "{self.host}:{self.port}"
  auth-enabled = true
  log-enabled = false

[continuous_queries]
  log-enabled = false
"""

    def prepare(self) -> None:
        self.config_path.write_text(self.config())

    def ports(self) -> list[int]:
        return [self.port, self.rpc_port]

    def command(self) -> list[str]:
        return [self.binary, "run", "-config", str(self.config_path)]

    def is_ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/ping", timeout=1.0) as response:
            return bool(response.status == 204)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"
