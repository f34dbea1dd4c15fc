"""The settings base every settings class derives from, and the connection settings several components share.

Each component has one pydantic-settings class with its own env prefix, read once at the entry point and passed
down. The connections to Mosquitto (``SMARTFARM_MQTT_``), Kafka (``SMARTFARM_KAFKA_``) and InfluxDB
(``SMARTFARM_INFLUX_``) are used by more than one component, so their classes live here; what only one component
reads (``EdgeSettings``, ``BridgeSettings``, ``ServicesSettings``) lives with it. Two variables are shared by all
and carry no component prefix: ``SMARTFARM_PROFILE`` and ``SMARTFARM_LAYOUT``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from smartfarm.topics import MqttTopics

ENV_PREFIX = "SMARTFARM_"
"""Every setting's environment variable begins with this (``component_config``)."""

# Secrets that ship in .env.example and the dev defaults; refused outside the development profile.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "smartfarm-dev", "smartfarm-dev-admin", "smartfarm-dev-reader"})


class Profile(StrEnum):
    """Where the process runs; decides whether placeholder secrets are tolerated."""

    DEVELOPMENT = "development"
    """A developer's machine or CI: placeholder secrets are fine."""
    PRODUCTION = "production"
    """A real farm: every secret must be set to a real value."""


class ComponentSettings(BaseSettings):
    """Base class: adds the shared profile and refuses placeholder secrets in production."""

    # Empty variables count as unset, so a copied .env.example with blanks means "the default".
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True, env_ignore_empty=True)

    profile: Profile = Field(
        Profile.DEVELOPMENT,
        validation_alias=f"{ENV_PREFIX}PROFILE",
        description="development or production; production refuses placeholder secrets",
    )

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Self:
        if self.profile is Profile.PRODUCTION:
            for name, value in self:
                if isinstance(value, SecretStr) and value.get_secret_value() in PLACEHOLDER_SECRETS:
                    env = env_name(type(self), name)
                    raise ValueError(f"{env} holds a placeholder secret; set a real one for the production profile")
        return self


def component_config(component: str = "") -> SettingsConfigDict:
    """The config of a settings class: its variables are ``SMARTFARM_{COMPONENT}_{FIELD}`` (``SMARTFARM_{FIELD}``
    without a component), read from the environment and ``.env`` (``ComponentSettings`` holds the rest)."""
    return SettingsConfigDict(env_prefix=f"{ENV_PREFIX}{component.upper()}_" if component else ENV_PREFIX)


class LayoutSettings(ComponentSettings):
    """Which farm layout file every component reads."""

    model_config = component_config()

    layout: Path | None = Field(None, description="farm layout YAML; the bundled default farm when unset")


def env_name(cls: type[BaseSettings], field: str) -> str:
    """The environment variable that sets ``field`` of settings class ``cls``."""
    info = cls.model_fields[field]
    if isinstance(info.validation_alias, str):
        return info.validation_alias
    prefix: Any = cls.model_config.get("env_prefix", "")
    return f"{prefix}{field}".upper()


def environment(settings: ComponentSettings) -> dict[str, str]:
    """The variables that give a child process the same ``settings`` (the shared profile aside), secrets in clear:
    for a child's environment, never for a log."""
    cls = type(settings)
    out = {}
    for field in cls.model_fields:
        value = getattr(settings, field)
        if field == "profile" or value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        out[env_name(cls, field)] = value.value if isinstance(value, StrEnum) else str(value)
    return out


MQTT_TLS_PORT = 8883
"""MQTT over TLS's registered port: the broker's TLS listener unless a port is set."""


class MqttSettings(ComponentSettings):
    """Where the MQTT broker is and under which topic root the farm publishes."""

    model_config = component_config("mqtt")

    host: str = Field("127.0.0.1", description="broker host")
    port: int = Field(1883, ge=1, le=65535, description="broker port; 8883 when unset and tls is on")
    tls: bool = Field(False, description="connect over TLS, verifying the broker's certificate (never without)")
    ca_file: Path | None = Field(
        None, description="the CA that signed the broker's certificate (.smartfarm/tls/ca.crt); the system's when unset"
    )
    cert_file: Path | None = Field(
        None, description="a client certificate to log in with (its common name is the user), with key_file"
    )
    key_file: Path | None = Field(None, description="the private key of cert_file")
    username: str = Field("", description="user name of services (bridge); devices use their own id")
    password: SecretStr = Field(
        SecretStr(""), description="password of services; empty when the broker allows anonymous"
    )
    topic_root: str = Field("smartfarm", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="first level of every topic")
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keepalive; the last will fires after 1.5x this")

    @model_validator(mode="after")
    def _tls_port_and_pair(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("SMARTFARM_MQTT_CERT_FILE and SMARTFARM_MQTT_KEY_FILE go together: set both or neither")
        if self.tls and "port" not in self.model_fields_set:
            self.port = MQTT_TLS_PORT
        return self

    def over_tls(self, ca_file: Path, port: int | None = None) -> Self:
        """These settings with TLS on, trusting ``ca_file``; on ``port``, else this port if it was set, else 8883."""
        if port is None:
            port = self.port if "port" in self.model_fields_set else MQTT_TLS_PORT
        return self.model_copy(update={"tls": True, "ca_file": ca_file, "port": port})

    @property
    def url(self) -> str:
        """The broker as a device is told it: ``mqtts://host:port`` over TLS, ``mqtt://host:port`` without."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def topics(self) -> MqttTopics:
        return MqttTopics(self.topic_root)


class KafkaSecurity(StrEnum):
    """How the clients talk to Kafka (Kafka's ``security.protocol``)."""

    PLAINTEXT = "PLAINTEXT"
    """No authentication, no encryption: a broker on loopback or a closed network (the local stack's default)."""
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    """SCRAM authentication (the password never crosses the wire), records unencrypted: docker compose's network."""


class ScramMechanism(StrEnum):
    """The SCRAM hash (Kafka's ``sasl.mechanism``); the broker holds a credential per mechanism for each user."""

    SCRAM_SHA_512 = "SCRAM-SHA-512"
    """The default: what compose and the local stack create for every user."""
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    """For brokers that hold only SHA-256 credentials."""


class KafkaSettings(ComponentSettings):
    """Where Kafka is, how the pipeline's topics are named, and how clients authenticate.

    ``smartfarm.kafkaclient`` turns these into each client library's options; no client is made otherwise."""

    model_config = component_config("kafka")

    bootstrap_servers: str = Field("127.0.0.1:9092", description="comma-separated host:port list")
    topic_prefix: str = Field(
        "smartfarm", pattern=r"^[A-Za-z0-9._-]{1,100}$", description="every topic is named {prefix}.{topic}"
    )
    partitions: int = Field(6, ge=1, le=1000, description="partitions of each pipeline topic when created")
    replication_factor: int = Field(1, ge=1, le=7, description="replicas of each pipeline topic when created")
    security_protocol: KafkaSecurity = Field(
        KafkaSecurity.PLAINTEXT,
        description="PLAINTEXT, or SASL_PLAINTEXT to log in with SCRAM (`smartfarm up` then runs its Kafka so)",
    )
    sasl_mechanism: ScramMechanism = Field(
        ScramMechanism.SCRAM_SHA_512, description="SCRAM-SHA-512 or SCRAM-SHA-256 (with SASL_PLAINTEXT)"
    )
    sasl_username: str = Field(
        "smartfarm-services",
        pattern=r"^[A-Za-z0-9._-]{0,64}$",
        description="the Kafka user of the services (with SASL_PLAINTEXT)",
    )
    sasl_password: SecretStr = Field(SecretStr(""), description="its SCRAM password (with SASL_PLAINTEXT)")

    @model_validator(mode="after")
    def _credentials_with_sasl(self) -> Self:
        if self.sasl and not (self.sasl_username and self.sasl_password.get_secret_value()):
            cls = type(self)
            raise ValueError(
                f"{env_name(cls, 'security_protocol')}={self.security_protocol.value} needs "
                f"{env_name(cls, 'sasl_username')} and {env_name(cls, 'sasl_password')}"
            )
        return self

    @property
    def servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]

    @property
    def sasl(self) -> bool:
        """Whether the clients log in (SASL); False for a plaintext broker."""
        return self.security_protocol is not KafkaSecurity.PLAINTEXT


DEV = "; the development default is a placeholder the production profile refuses"

USERNAME = r"^[A-Za-z0-9_.@-]{0,64}$"
"""An InfluxDB user name as the settings accept it: no quotes, so a statement naming it needs no escaping."""


@dataclass(frozen=True, slots=True)
class InfluxLogin:
    """Who logs in to InfluxDB, and the settings that say so (errors name them, never the password).

    Args:
        username: the InfluxDB user; empty sends no credentials (a server with authentication off).
        password: its password.
        settings: the variables that set both, for messages (``SMARTFARM_INFLUX_USERNAME/_PASSWORD``).
    """

    username: str
    password: SecretStr
    settings: str


class InfluxSettings(ComponentSettings):
    """Where InfluxDB (1.x HTTP API) is, which database the pipeline writes, and the component's own user: the
    pipeline's writer (ALL on that database: the workers write points and read zone windows back; the farm API
    reads and records farmers' decisions). ``InfluxUsers`` holds the admin and the reader."""

    model_config = component_config("influx")

    url: str = Field("http://127.0.0.1:8086", description="base URL of the InfluxDB HTTP API")
    database: str = Field("smartfarm", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="database to write and query")
    username: str = Field(
        "smartfarm-writer",
        pattern=USERNAME,
        description="this component's InfluxDB user: the pipeline's writer (ALL on the database, not admin); "
        "empty sends no credentials (a server with authentication off)",
    )
    password: SecretStr = Field(SecretStr("smartfarm-dev"), description=f"its password{DEV}")
    timeout_s: float = Field(10.0, gt=0, le=300, description="HTTP timeout of one request")
    retention: str = Field("52w", pattern=r"^(INF|\d+[hdw])$", description="retention of the database when created")

    @property
    def retention_s(self) -> float | None:
        """The retention in seconds; None for INF (kept for ever)."""
        if self.retention == "INF":
            return None
        return int(self.retention[:-1]) * {"h": 3600, "d": 86400, "w": 7 * 86400}[self.retention[-1]]

    @property
    def login(self) -> InfluxLogin:
        """The component's own user (the writer)."""
        return InfluxLogin(self.username, self.password, _login_settings(type(self), "username", "password"))


class InfluxUsers(ComponentSettings):
    """InfluxDB's other two users, beside the writer of ``InfluxSettings``: the admin, which declares the database,
    the users and their grants (``storage.accounts``; ``smartfarm up`` and ``smartfarm influx-users``), and the
    reader (READ on the database) that the dashboards and ``smartfarm up``'s live status log in as."""

    model_config = component_config("influx")

    admin_username: str = Field(
        "smartfarm-admin", pattern=USERNAME, min_length=1, description="InfluxDB's admin, made at its first start"
    )
    admin_password: SecretStr = Field(SecretStr("smartfarm-dev-admin"), description=f"the admin's password{DEV}")
    reader_username: str = Field(
        "smartfarm-reader", pattern=USERNAME, min_length=1, description="the dashboards' user: READ on the database"
    )
    reader_password: SecretStr = Field(SecretStr("smartfarm-dev-reader"), description=f"the reader's password{DEV}")

    @property
    def admin(self) -> InfluxLogin:
        return self._login("admin")

    @property
    def reader(self) -> InfluxLogin:
        return self._login("reader")

    def _login(self, role: str) -> InfluxLogin:
        username, password = f"{role}_username", f"{role}_password"
        return InfluxLogin(
            getattr(self, username), getattr(self, password), _login_settings(type(self), username, password)
        )


def _login_settings(cls: type[BaseSettings], username: str, password: str) -> str:
    return f"{env_name(cls, username)} and {env_name(cls, password)}"
