"""``KafkaSettings`` as each Kafka client library's options: the one place a client learns where Kafka is and how
to log in.

Every client of the product is made with these: kafka-python's admin, consumers and producers (``kafka_python``;
aiokafka takes the same names), confluent-kafka's producer (``confluent``) and the Faust app (``faust_broker``,
over aiokafka). A new option for all of them (TLS, another mechanism) is added here once.

The options hold the password in clear, as the libraries want it: pass them to a constructor, never log them.
``login_hint`` and ``no_answer_hint`` are what a refused client is told (``stream.admin.check_login``, at every
command's start).
"""

from __future__ import annotations

from typing import Any

from smartfarm.settings import KafkaSettings, env_name

KAFKA_PYTHON_NAMES = (
    "bootstrap_servers",
    "security_protocol",
    "sasl_mechanism",
    "sasl_plain_username",
    "sasl_plain_password",
)
CONFLUENT_NAMES = ("bootstrap.servers", "security.protocol", "sasl.mechanism", "sasl.username", "sasl.password")
"""Each library's names for: the brokers, the protocol, the SCRAM mechanism, the user, the password."""


def _options(kafka: KafkaSettings, names: tuple[str, ...], servers: object, protocol: str) -> dict[str, Any]:
    values = [servers, protocol]
    if kafka.sasl:
        values += [kafka.sasl_mechanism.value, kafka.sasl_username, kafka.sasl_password.get_secret_value()]
    return dict(zip(names, values, strict=False))


def kafka_python(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments of kafka-python's ``KafkaAdminClient``, ``KafkaConsumer`` and ``KafkaProducer`` (and of
    aiokafka's clients, which take the same names)."""
    return _options(kafka, KAFKA_PYTHON_NAMES, kafka.servers, kafka.security_protocol.value)


def confluent(kafka: KafkaSettings) -> dict[str, Any]:
    """The librdkafka configuration entries of confluent-kafka's ``Producer`` (and ``AdminClient``)."""
    return _options(kafka, CONFLUENT_NAMES, kafka.bootstrap_servers, kafka.security_protocol.value.lower())


def faust_broker(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments of ``faust.App``: ``broker`` and ``broker_credentials`` (None without SASL)."""
    credentials = None
    if kafka.sasl:
        import faust

        credentials = faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value(),
            mechanism=kafka.sasl_mechanism.value,
        )
    return {"broker": [f"kafka://{server}" for server in kafka.servers], "broker_credentials": credentials}


def login_hint(kafka: KafkaSettings, error: object) -> str:
    """What a refused login says: which user at which broker, and which settings hold the credentials."""
    cls = type(kafka)
    return (
        f"Kafka at {kafka.bootstrap_servers} refused the login of {kafka.sasl_username!r} "
        f"({kafka.sasl_mechanism.value}): check {env_name(cls, 'sasl_username')}, "
        f"{env_name(cls, 'sasl_password')} and {env_name(cls, 'sasl_mechanism')} ({error})"
    )


def no_answer_hint(kafka: KafkaSettings, error: object, timeout_s: float) -> str:
    """What a client that got no answer says; a plaintext client is told how to log in, since a broker that
    requires a login closes its connections without a word."""
    cls = type(kafka)
    text = (
        f"Kafka at {kafka.bootstrap_servers} did not answer a {kafka.security_protocol.value} client within "
        f"{timeout_s:.0f}s ({error})"
    )
    if not kafka.sasl:
        text += (
            f"; if it requires a login, set {env_name(cls, 'security_protocol')}=SASL_PLAINTEXT with "
            f"{env_name(cls, 'sasl_username')} and {env_name(cls, 'sasl_password')}"
        )
    return text
