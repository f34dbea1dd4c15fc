"""Kafka with SASL/SCRAM: the session Kafka's SASL_PLAINTEXT listener takes the pipeline's clients with the right
password and refuses, at once and by name, a wrong one or a client that does not log in."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from cli.services import Kafka
from smartfarm.errors import ConfigError, ServiceError
from smartfarm.settings import KafkaSecurity, ScramMechanism, environment
from stream.admin import check_login
from tests.helpers import unique
from tests.integration.pipeline import (
    SASL_PASSWORD,
    kafka_client,
)

DEVICE = "soil-tomato-north-1"


@pytest.mark.parametrize(
    ("change", "refusal", "within_s"),
    [
        ({"sasl_password": SecretStr("not-the-password")}, ConfigError, 5),
        ({"sasl_username": "nobody"}, ConfigError, 5),
        ({"sasl_mechanism": ScramMechanism.SCRAM_SHA_256}, None, 5),  # the user holds both mechanisms
        ({"security_protocol": KafkaSecurity.PLAINTEXT}, ServiceError, 8),  # no login: the listener hangs up
    ],
    ids=["wrong password", "unknown user", "SCRAM-SHA-256", "plaintext client"],
)
def test_the_sasl_listener_lets_in_only_a_client_that_logs_in_right(
    kafka: Kafka, change: dict[str, object], refusal: type[Exception] | None, within_s: float
) -> None:
    settings = kafka_client(kafka, unique("t"), sasl=True).model_copy(update=change)
    began = time.monotonic()
    if refusal is None:
        check_login(settings, timeout_s=within_s)
        return
    with pytest.raises(refusal) as refused:
        check_login(settings, timeout_s=3)
    took = time.monotonic() - began
    message = str(refused.value)
    assert took < within_s, f"refused after {took:.1f} s: {message}"
    assert kafka.sasl_bootstrap_servers in message and SASL_PASSWORD.get_secret_value() not in message
    if refusal is ConfigError:
        assert "SMARTFARM_KAFKA_SASL_PASSWORD" in message and "Authentication failed" in message, message
    else:
        assert "SMARTFARM_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT" in message, message


def test_a_worker_with_a_wrong_password_exits_at_once_naming_the_setting(kafka: Kafka, tmp_path: Path) -> None:
    """The command, not only the check: ``smartfarm worker`` stops with the settings to fix instead of retrying."""
    wrong = kafka_client(kafka, unique("t"), sasl=True).model_copy(update={"sasl_password": SecretStr("wrong-one")})
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTFARM_")} | environment(wrong)
    env |= {"SMARTFARM_INFLUX_URL": "http://127.0.0.1:9", "SMARTFARM_WORKER_DATA_DIR": str(tmp_path)}
    began = time.monotonic()
    ran = subprocess.run(
        [sys.executable, "-m", "cli", "worker"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    took = time.monotonic() - began
    assert ran.returncode != 0
    assert "refused the login of 'smartfarm-tests'" in ran.stderr and "SMARTFARM_KAFKA_SASL_PASSWORD" in ran.stderr
    assert "wrong-one" not in ran.stdout + ran.stderr
    assert took < 20, f"exited after {took:.1f} s"


def test_up_pointed_at_a_running_kafka_with_a_wrong_password_says_which_setting(kafka: Kafka, tmp_path: Path) -> None:
    from cli.services.settings import ServicesSettings
    from cli.stack.assemble import _kafka

    wrong = kafka_client(kafka, unique("t"), sasl=True).model_copy(update={"sasl_password": SecretStr("wrong-one")})
    with pytest.raises(ConfigError) as refused:
        _kafka(tmp_path, wrong, ServicesSettings())
    assert "refused the login" in str(refused.value) and "does not answer as Kafka" not in str(refused.value)
    _kafka(tmp_path, kafka_client(kafka, unique("t"), sasl=True), ServicesSettings())  # the right one is used
