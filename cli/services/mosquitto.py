"""Mosquitto from the Debian package, with a config generated per run: loopback, a free port, a temp folder."""

from __future__ import annotations

import os
import signal
import socket
import ssl
from pathlib import Path

from cli.services.base import LocalService, find_binary, free_port
from smartfarm.certificates import TlsFiles
from smartfarm.mqtt import tls_context
from smartfarm.settings import MqttSettings

INSTALL = "sudo apt-get install -y mosquitto mosquitto-clients"

# Broker tuning shared with the repository's mosquitto.conf (a test keeps the two in step). Mosquitto's
# defaults would silently drop QoS 1 messages queued for a bridge that is down (max_queued_messages 1000)
# and throttle a fast publisher (20 in flight per client).
TUNING: dict[str, str] = {
    "persistence": "true",
    "autosave_interval": "30",
    "max_queued_messages": "1000000",
    "max_queued_bytes": "0",
    "max_inflight_messages": "0",
    "max_packet_size": "262144",
    "set_tcp_nodelay": "true",
    "persistent_client_expiration": "7d",
}


# The TLS settings of a listener: the installation's CA and the broker's certificate, TLS 1.2 at least.
def tls_lines(cafile: str, certfile: str, keyfile: str) -> list[str]:
    return [f"cafile {cafile}", f"certfile {certfile}", f"keyfile {keyfile}", "tls_version tlsv1.2"]


CLIENT_CERT_LINES = ["require_certificate true", "use_identity_as_username true"]
"""A listener where a client logs in with its certificate alone, as the user its common name names."""


def broker_answers(host: str, port: int, timeout_s: float = 1.0, tls: ssl.SSLContext | None = None) -> bool:
    """True when an MQTT broker answers at ``host:port`` (over TLS with the ``tls`` context): an MQTT 3.1.1
    CONNECT with an empty client id and clean session gets a CONNACK (whatever its code: refusing us is an answer
    too)."""
    connect = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"
    with socket.create_connection((host, port), timeout=timeout_s) as raw:
        sock = raw if tls is None else tls.wrap_socket(raw, server_hostname=host)
        sock.sendall(connect)
        return sock.recv(4)[:1] == b"\x20"


class Mosquitto(LocalService):
    """A Mosquitto broker on 127.0.0.1.

    Args:
        workdir: folder for the config, the persistence file and the log.
        port: listener port; a free one when None.
        password_file: a mosquitto_passwd file; anonymous clients are refused when it is given.
        acl_file: a mosquitto ACL file, used with ``password_file``.
        tls: the CA and the broker's certificate: ``port`` is then a TLS listener and there is no plaintext one.
        client_certs: with ``tls``, a second TLS listener (``cert_port``, a free one when None) where a device
            logs in with a client certificate signed by the CA alone, as the user its common name names.
    """

    name = "mosquitto"
    start_timeout_s = 20.0
    stop_timeout_s = 10.0

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        password_file: Path | None = None,
        acl_file: Path | None = None,
        tls: TlsFiles | None = None,
        client_certs: bool = False,
        cert_port: int | None = None,
    ) -> None:
        super().__init__(workdir)
        self.binary = find_binary("mosquitto", INSTALL)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.password_file = password_file
        self.acl_file = acl_file
        self.tls = tls
        self.cert_port = (cert_port or free_port()) if tls is not None and client_certs else None
        self.config_path = self.workdir / "mosquitto.conf"

    def config(self) -> str:
        lines = [f"listener {self.port} {self.host}"]
        if self.tls is not None:
            tls = tls_lines(str(self.tls.ca_file), str(self.tls.cert_file), str(self.tls.key_file))
            lines += tls
            if self.cert_port is not None:
                lines += [f"listener {self.cert_port} {self.host}", *tls, *CLIENT_CERT_LINES]
        lines += [
            f"persistence_location {self.workdir}/",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        ]
        lines += [f"{key} {value}" for key, value in TUNING.items()]
        if self.password_file is not None:
            lines += ["allow_anonymous false", f"password_file {self.password_file}"]
            if self.acl_file is not None:
                lines.append(f"acl_file {self.acl_file}")
        else:
            lines.append("allow_anonymous true")
        if os.geteuid() == 0:
            # Run as root keeps root: otherwise mosquitto drops to user "mosquitto", which cannot write here.
            lines.append("user root")
        return "\n".join(lines) + "\n"

    def prepare(self) -> None:
        self.config_path.write_text(self.config())

    def ports(self) -> list[int]:
        return [self.port] if self.cert_port is None else [self.port, self.cert_port]

    def command(self) -> list[str]:
        return [self.binary, "-c", str(self.config_path)]

    def is_ready(self) -> bool:
        return broker_answers(self.host, self.port, tls=None if self.tls is None else tls_context(self.tls.ca_file))

    def reload(self) -> None:
        """Have the broker read its password file and ACL again (SIGHUP): sessions stay connected, and the next
        login or publish is judged by the new files."""
        if self.pid is not None:
            os.kill(self.pid, signal.SIGHUP)

    @property
    def url(self) -> str:
        return f"{'mqtt' if self.tls is None else 'mqtts'}://{self.host}:{self.port}"

    def client_settings(self, settings: MqttSettings) -> MqttSettings:
        """``settings`` pointed at this broker: its address, and over TLS trusting its CA when it has one."""
        here = settings.model_copy(update={"host": self.host, "port": self.port})
        return here if self.tls is None else here.over_tls(self.tls.ca_file, self.port)
