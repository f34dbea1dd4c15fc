"""Apache Kafka in KRaft mode (one combined broker and controller), run from its jars with ``java``.

The jars (``org.apache.kafka:kafka_2.13`` and its runtime dependencies, ``org.apache.kafka:kafka-tools`` of the
same release for its producer and consumer performance tools, plus a log4j binding) are fetched from Maven Central
by Maven into a cache folder outside the repository; the storage is formatted per run.

With SCRAM users the broker has a second client listener, SASL_PLAINTEXT with SCRAM-SHA-512 and SCRAM-SHA-256, whose
users are written into the storage when it is formatted (``--add-scram``, KRaft's way: no broker needs to run to
create them) and set again over the plaintext listener when the storage already exists (a changed password). The
plaintext listener stays for the controller, the inter-broker traffic and the readiness probe, on loopback.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from pydantic import SecretStr

from cli.services.base import LocalService, find_binary, free_port, port_open, tail_of
from smartfarm.errors import ConfigError, ServiceError, ServiceMissingError

log = logging.getLogger(__name__)

JAVA_INSTALL = "sudo apt-get install -y openjdk-17-jre-headless"
MAVEN_INSTALL = "sudo apt-get install -y maven"
LOG4J_VERSION = "2.25.4"
_COMPLETE = ".complete-2"
"""Written once a fetch is complete; its name changes with what ``_POM`` fetches (2: kafka-tools added), so an
older cache is fetched again once."""

_POM = """\
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>smartfarm.local</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>{kafka}</version>
      <!-- The performance tools need only what the broker already brings (kafka-clients, server-common,
           argparse4j, jackson, jopt-simple); the rest (Connect, Jetty, Jersey) stays out of the broker's classpath. -->
      <exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""


def fetch_kafka_jars(kafka_home: Path, version: str, *, quiet: bool = True) -> Path:
    """Fetch the Kafka broker's jars into ``kafka_home/libs`` unless a complete copy is there; return the folder."""
    libs = kafka_home / "libs"
    if (kafka_home / _COMPLETE).exists():
        return libs
    mvn = find_binary("mvn", MAVEN_INSTALL)
    kafka_home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=kafka_home) as tmp:
        pom = Path(tmp) / "pom.xml"
        pom.write_text(_POM.format(kafka=version, log4j=LOG4J_VERSION))
        staging = Path(tmp) / "libs"
        cmd = [
            mvn,
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
        if quiet:
            cmd.insert(1, "-q")
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ServiceError(
                f"Maven could not fetch org.apache.kafka:kafka_2.13:{version}:\n"
                f"{result.stdout[-3000:]}{result.stderr[-2000:]}"
            )
        if libs.exists():
            shutil.rmtree(libs)
        staging.rename(libs)
    (kafka_home / _COMPLETE).write_text("\n".join(sorted(p.name for p in libs.iterdir())) + "\n")
    return libs


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes in URL-safe base64, unpadded (as ``kafka-storage random-uuid``)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


SCRAM_ITERATIONS = 4096
"""PBKDF2 iterations of each SCRAM credential (Kafka's default and SCRAM's minimum)."""
SCRAM_MECHANISMS = {"SCRAM-SHA-512": "sha512", "SCRAM-SHA-256": "sha256"}
"""Every SCRAM mechanism the SASL listener takes, with its hash; each user gets a credential for both."""


def scram_arguments(name: str, password: str, salt: bytes | None = None) -> list[str]:
    """``kafka-storage format --add-scram`` values creating user ``name`` for every SCRAM mechanism.

    The salted password is computed here (SCRAM's ``Hi`` is PBKDF2 with the mechanism's HMAC), so the password is
    not on the formatting command line, where ``ps`` shows it, nor parsed by Kafka's ``[k=v,...]`` syntax, which
    cuts a value at a comma."""
    arguments = []
    for mechanism, digest in SCRAM_MECHANISMS.items():
        salt_bytes = salt if salt is not None else os.urandom(32)
        salted = hashlib.pbkdf2_hmac(digest, password.encode(), salt_bytes, SCRAM_ITERATIONS)
        b64 = base64.b64encode
        arguments.append(
            f"{mechanism}=[name={name},salt={b64(salt_bytes).decode()},"
            f"saltedpassword={b64(salted).decode()},iterations={SCRAM_ITERATIONS}]"
        )
    return arguments


class Kafka(LocalService):
    """A single-node Kafka (KRaft, broker and controller in one process) on 127.0.0.1.

    Args:
        workdir: folder for the config, the log segments and the logs.
        kafka_home: folder holding ``libs/`` from ``fetch_kafka_jars``.
        port: client (PLAINTEXT) port; a free one when None.
        partitions: default partition count of auto-created topics.
        heap: the JVM's maximum heap.
        scram_users: name -> password of the users of a SASL_PLAINTEXT listener; none: no such listener.
        sasl_port: that listener's port; a free one when None.
    """

    name = "kafka"
    start_timeout_s = 90.0
    stop_timeout_s = 30.0

    def __init__(
        self,
        workdir: Path,
        kafka_home: Path,
        port: int | None = None,
        partitions: int = 6,
        heap: str = "1g",
        scram_users: Mapping[str, SecretStr] | None = None,
        sasl_port: int | None = None,
    ) -> None:
        super().__init__(workdir)
        self.java = find_binary("java", JAVA_INSTALL)
        self.libs = kafka_home / "libs"
        if not (kafka_home / _COMPLETE).exists():
            raise ServiceMissingError(
                f"the Kafka jars (in {kafka_home})",
                "smartfarm services fetch-kafka  (needs Maven: " + MAVEN_INSTALL + ")",
            )
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.controller_port = free_port()
        self.partitions = partitions
        self.heap = heap
        self.scram_users = dict(scram_users or {})
        self.sasl_port = (sasl_port or free_port()) if self.scram_users else None
        self._set_users_after_start = False
        self.data_dir = self.workdir / "data"
        self.config_path = self.workdir / "server.properties"
        self.log4j_path = self.workdir / "log4j2.yaml"

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def sasl_bootstrap_servers(self) -> str:
        """The SASL_PLAINTEXT listener's address; ServiceError when the broker has no SCRAM users."""
        if self.sasl_port is None:
            raise ServiceError("this Kafka has no SASL listener (no SCRAM users were given)")
        return f"{self.host}:{self.sasl_port}"

    def config(self) -> str:
        listeners = {"PLAINTEXT": self.port, "CONTROLLER": self.controller_port}
        protocols = {"PLAINTEXT": "PLAINTEXT", "CONTROLLER": "PLAINTEXT"}
        if self.sasl_port is not None:
            listeners["SASL"] = self.sasl_port
            protocols["SASL"] = "SASL_PLAINTEXT"
        advertised = {k: v for k, v in listeners.items() if k != "CONTROLLER"}
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": ",".join(f"{k}://{self.host}:{v}" for k, v in listeners.items()),
            "advertised.listeners": ",".join(f"{k}://{self.host}:{v}" for k, v in advertised.items()),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": ",".join(f"{k}:{v}" for k, v in protocols.items()),
            "log.dirs": str(self.data_dir),
            "num.partitions": str(self.partitions),
            # Topics are declared by the pipeline (stream.admin) and by Faust; a typo must not create one.
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "6",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.segment.bytes": str(64 * 1024 * 1024),
        }
        if self.sasl_port is not None:
            props["sasl.enabled.mechanisms"] = ",".join(SCRAM_MECHANISMS)
            for mechanism in SCRAM_MECHANISMS:
                # The broker's side of SCRAM needs a login module and no credentials of its own (the users are
                # in the metadata log); the controller and inter-broker listener stay plaintext on loopback.
                props[f"listener.name.sasl.{mechanism.lower()}.sasl.jaas.config"] = (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                )
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def prepare(self) -> None:
        self.config_path.write_text(self.config())
        self.log4j_path.write_text(
            "Configuration:\n"
            "  Appenders:\n"
            "    File:\n"
            "      name: file\n"
            f"      fileName: {self.workdir / 'server.log'}\n"
            "      PatternLayout:\n"
            '        pattern: "[%d] %p %m (%c)%n"\n'
            "  Loggers:\n"
            "    Root:\n"
            "      level: INFO\n"
            "      AppenderRef:\n"
            "        - ref: file\n"
        )
        self._set_users_after_start = False
        if (self.data_dir / "meta.properties").exists():
            self._set_users_after_start = bool(self.scram_users)
        else:
            # Formatting once keeps the data across stop() / start(), as a restarted broker would.
            scram = [
                f"--add-scram={argument}"
                for name, password in self.scram_users.items()
                for argument in scram_arguments(name, password.get_secret_value())
            ]
            result = subprocess.run(
                [
                    self.java,
                    "-cp",
                    f"{self.libs}/*",
                    "kafka.tools.StorageTool",
                    "format",
                    # One argument, "=" joined: an id may start with "-", which argparse would take for an option.
                    f"--cluster-id={new_cluster_id()}",
                    "-c",
                    str(self.config_path),
                    *scram,
                ],
                capture_output=True,
                text=True,
                check=False,
                cwd=self.workdir,
            )
            if result.returncode != 0:
                raise ServiceError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")

    def ports(self) -> list[int]:
        return [self.port, self.controller_port] + ([self.sasl_port] if self.sasl_port is not None else [])

    def start(self) -> Self:
        super().start()
        if self._set_users_after_start:
            self._set_scram_users()
            self._set_users_after_start = False
        return self

    def _set_scram_users(self) -> None:
        """Create or replace the SCRAM users over the plaintext listener (a storage formatted earlier holds the
        users and passwords of then)."""
        from confluent_kafka.admin import (
            AdminClient,
            ScramCredentialInfo,
            ScramMechanism,
            UserScramCredentialAlteration,
            UserScramCredentialUpsertion,
        )

        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
        for mechanism in SCRAM_MECHANISMS:  # Kafka takes one change per user and request
            upserts: list[UserScramCredentialAlteration] = [
                UserScramCredentialUpsertion(
                    name,
                    ScramCredentialInfo(getattr(ScramMechanism, mechanism.replace("-", "_")), SCRAM_ITERATIONS),
                    password.get_secret_value().encode(),
                )
                for name, password in self.scram_users.items()
            ]
            for user, future in admin.alter_user_scram_credentials(upserts).items():
                try:
                    future.result(30)
                except Exception as exc:
                    raise ServiceError(f"Kafka did not take the {mechanism} credentials of {user!r}: {exc}") from exc
        self._wait_for_logins()

    def _wait_for_logins(self, timeout_s: float = 30.0) -> None:
        """Return once every SCRAM user logs in at the SASL listener: the broker applies credentials from its
        metadata log a moment after the change is acknowledged (seconds, on a loaded machine)."""
        from smartfarm.settings import KafkaSecurity, KafkaSettings
        from stream.admin import check_login

        deadline = time.monotonic() + timeout_s
        for name, password in self.scram_users.items():
            for mechanism in SCRAM_MECHANISMS:
                login = KafkaSettings(
                    bootstrap_servers=self.sasl_bootstrap_servers,
                    security_protocol=KafkaSecurity.SASL_PLAINTEXT,
                    sasl_mechanism=mechanism,
                    sasl_username=name,
                    sasl_password=password,
                )
                while True:
                    try:
                        check_login(login)
                        break
                    except ConfigError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.25)

    def command(self) -> list[str]:
        return [
            self.java,
            "-Xms256m",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j_path}",
            "-cp",
            f"{self.libs}/*",
            "kafka.Kafka",
            str(self.config_path),
        ]

    def is_ready(self) -> bool:
        from kafka import KafkaAdminClient

        if not port_open(self.port):
            return False
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap_servers, request_timeout_ms=2000)
        try:
            brokers = admin.describe_cluster().get("brokers", [])
            return len(brokers) > 0
        finally:
            admin.close()

    def log_tail(self, lines: int = 30) -> str:
        server_log = self.workdir / "server.log"
        if server_log.exists():
            return f"{super().log_tail(lines)}\n--- server.log ---\n{tail_of(server_log, lines)}"
        return super().log_tail(lines)
