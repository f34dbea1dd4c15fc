"""Console helpers: a SIGTERM must always stop a command, whatever its main thread is doing."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time

import pytest

from cli.console import settings_from
from smartfarm.errors import ConfigError
from smartfarm.settings import KafkaSettings

CHILD = """
import sys, time
from cli.console import stop_on_signals
stop = stop_on_signals()
print("ready", flush=True)
turns = 0
while not stop.wait(0):  # the main thread spends its time inside wait, as Bridge.wait and the stack do
    turns += 1
print("stopped", flush=True)
"""


def test_sigterm_stops_a_main_thread_that_is_waiting_on_the_stop_signal() -> None:
    # threading.Event hung here: the handler runs on the main thread, which may hold the event's lock inside wait()
    children = [subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True) for _ in range(12)]
    for child in children:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
    time.sleep(0.2)
    for child in children:
        child.send_signal(signal.SIGTERM)
    outcomes = []
    for child in children:
        try:
            out, _ = child.communicate(timeout=10)
            outcomes.append(out.strip())
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            outcomes.append("hung")
    assert outcomes == ["stopped"] * len(children)


def test_a_settings_error_names_the_variables_behind_it() -> None:
    given = argparse.Namespace(**{"KafkaSettings.security_protocol": "SASL_PLAINTEXT", "KafkaSettings.partitions": "0"})
    with pytest.raises(ConfigError) as refused:
        settings_from(KafkaSettings, given)
    assert (
        str(refused.value) == "invalid settings: SMARTFARM_KAFKA_PARTITIONS: Input should be greater than or equal to 1"
    )
    given = argparse.Namespace(**{"KafkaSettings.security_protocol": "SASL_PLAINTEXT"})
    with pytest.raises(ConfigError) as refused:
        settings_from(KafkaSettings, given)
    assert str(refused.value) == (
        "invalid settings: SMARTFARM_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT needs SMARTFARM_KAFKA_SASL_USERNAME and "
        "SMARTFARM_KAFKA_SASL_PASSWORD"
    )
