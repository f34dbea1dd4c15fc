"""KafkaSettings as each client library's options, and the settings' own refusals."""

from __future__ import annotations

import faust
import pytest
from pydantic import SecretStr, ValidationError

from smartfarm import kafkaclient
from smartfarm.settings import KafkaSettings, environment

SASL = KafkaSettings(
    bootstrap_servers="k1:9092, k2:9092",
    security_protocol="SASL_PLAINTEXT",
    sasl_mechanism="SCRAM-SHA-256",
    sasl_username="svc",
    sasl_password=SecretStr("s3cret,with=odd]chars"),
)
PLAIN = KafkaSettings(bootstrap_servers="k1:9092")


@pytest.mark.parametrize(
    ("settings", "kafka_python", "confluent"),
    [
        (
            PLAIN,
            {"bootstrap_servers": ["k1:9092"], "security_protocol": "PLAINTEXT"},
            {"bootstrap.servers": "k1:9092", "security.protocol": "plaintext"},
        ),
        (
            SASL,
            {
                "bootstrap_servers": ["k1:9092", "k2:9092"],
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "SCRAM-SHA-256",
                "sasl_plain_username": "svc",
                "sasl_plain_password": "s3cret,with=odd]chars",
            },
            {
                "bootstrap.servers": "k1:9092, k2:9092",
                "security.protocol": "sasl_plaintext",
                "sasl.mechanism": "SCRAM-SHA-256",
                "sasl.username": "svc",
                "sasl.password": "s3cret,with=odd]chars",
            },
        ),
    ],
)
def test_each_library_gets_the_same_connection(
    settings: KafkaSettings, kafka_python: dict[str, object], confluent: dict[str, object]
) -> None:
    assert kafkaclient.kafka_python(settings) == kafka_python
    assert kafkaclient.confluent(settings) == confluent


def test_faust_gets_scram_credentials_only_with_sasl() -> None:
    plain = kafkaclient.faust_broker(PLAIN)
    assert plain == {"broker": ["kafka://k1:9092"], "broker_credentials": None}
    sasl = kafkaclient.faust_broker(SASL)
    assert sasl["broker"] == ["kafka://k1:9092", "kafka://k2:9092"]
    credentials = sasl["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("svc", "s3cret,with=odd]chars")
    assert credentials.mechanism.value == "SCRAM-SHA-256" and credentials.protocol.value == "SASL_PLAINTEXT"
    assert "s3cret" not in repr(credentials)


def test_faust_hands_aiokafka_what_kafka_python_gets() -> None:
    """Faust turns its credentials into aiokafka's options; they are the ones ``kafka_python`` gives directly."""
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    auth = dict(credentials_to_aiokafka_auth(kafkaclient.faust_broker(SASL)["broker_credentials"]))
    assert auth.pop("ssl_context") is None
    expected = kafkaclient.kafka_python(SASL)
    del expected["bootstrap_servers"]
    assert auth == expected


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ({"security_protocol": "SASL_PLAINTEXT"}, "SMARTFARM_KAFKA_SASL_USERNAME and SMARTFARM_KAFKA_SASL_PASSWORD"),
        ({"security_protocol": "SASL_PLAINTEXT", "sasl_username": "svc"}, "SMARTFARM_KAFKA_SECURITY_PROTOCOL"),
        ({"security_protocol": "SASL_PLAINTEXT", "sasl_username": "", "sasl_password": SecretStr("x")}, "needs"),
        ({"security_protocol": "SSL"}, "security_protocol"),
        ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN"}, "sasl_mechanism"),
        ({"sasl_username": "a,b"}, "sasl_username"),
    ],
)
def test_incomplete_or_unknown_security_settings_are_refused(given: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        KafkaSettings(**given)  # type: ignore[arg-type]


def test_the_refusals_name_the_settings_and_never_the_password() -> None:
    refused = kafkaclient.login_hint(SASL, "invalid credentials")
    assert "'svc'" in refused and "SMARTFARM_KAFKA_SASL_PASSWORD" in refused and "s3cret" not in refused
    unanswered = kafkaclient.no_answer_hint(PLAIN, "Disconnected", 30)
    assert "SMARTFARM_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT" in unanswered
    assert "SECURITY_PROTOCOL" not in kafkaclient.no_answer_hint(SASL, "Disconnected", 30)
    assert "s3cret" not in repr(SASL) and "s3cret" not in str(SASL)


def test_a_child_process_gets_the_same_settings() -> None:
    env = environment(SASL)
    assert env["SMARTFARM_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert env["SMARTFARM_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-256"
    assert env["SMARTFARM_KAFKA_SASL_PASSWORD"] == "s3cret,with=odd]chars"
    assert "SMARTFARM_PROFILE" not in env
    assert KafkaSettings(**{k.removeprefix("SMARTFARM_KAFKA_").lower(): v for k, v in env.items()}) == SASL
