"""The ``smartfarm`` command: help texts, errors that name the fix, and ``smartfarm up`` for real."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from paho.mqtt.enums import CallbackAPIVersion

from edge.contract import Telemetry
from smartfarm.cli import build_parser, main
from smartfarm.services import free_port
from smartfarm.services.base import port_open
from smartfarm.services.settings import ServicesSettings
from storage.influx import InfluxClient
from storage.settings import InfluxSettings


def subcommands() -> dict[str, object]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return dict(action.choices)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["up", "layout", "edge"])
def test_every_settings_option_names_its_env_variable(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([name, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    options = [a for a in subcommands()[name]._actions if "." in a.dest]  # type: ignore[attr-defined]
    assert options
    for action in options:
        assert action.option_strings[0] in text
    assert text.count("[env: SMARTFARM_") == len(options)


def test_a_bad_layout_is_a_clear_message_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "farm.yaml"
    bad.write_text("farms: []\n")
    assert main(["layout", "--layout", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad} is not a valid farm layout" in err and "Traceback" not in err


def test_layout_summarises_the_default_farm(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["layout"]) == 0
    out = capsys.readouterr().out
    assert "farm valley-farm" in out and "zone tomato-north" in out


def test_up_refuses_a_port_in_use_naming_the_variable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert main(["up", "--workdir", str(tmp_path), "--port", str(port)]) == 2
    assert f"port {port} for Mosquitto is in use" in capsys.readouterr().err


@pytest.mark.integration
def test_up_runs_the_local_stack_until_sigterm(tmp_path: Path) -> None:
    mqtt_port, kafka_port, influx_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "SMARTFARM_SERVICES_CACHE_DIR": str(ServicesSettings().cache_dir),
        "SMARTFARM_MQTT_USERNAME": "ops",
        "SMARTFARM_MQTT_PASSWORD": "ops-password",
        "SMARTFARM_EDGE_SPEED": "3600",
        "SMARTFARM_BRIDGE_METRICS_PORT": "0",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smartfarm.cli",
            "up",
            "--workdir",
            str(tmp_path / "stack"),
            "--port",
            str(mqtt_port),
            "--bootstrap-servers",
            f"127.0.0.1:{kafka_port}",
            "--url",
            f"http://127.0.0.1:{influx_port}",
            "--database",
            "farmdb",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "smartfarm up exited early:\n" + "".join(lines)
            lines.append(line)
            if "data and logs in" in line:
                break
        output = "".join(lines)
        assert "6 topics created under smartfarm." in output

        telemetry: list[bytes] = []
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="probe")
        client.username_pw_set("ops", "ops-password")
        client.on_message = lambda _c, _u, msg: telemetry.append(msg.payload)
        client.connect("127.0.0.1", mqtt_port)
        client.subscribe("smartfarm/v1/+/devices/+/telemetry", qos=1)
        client.loop_start()
        deadline = time.monotonic() + 20
        while len(telemetry) < 24 and time.monotonic() < deadline:
            time.sleep(0.1)
        client.loop_stop()
        client.disconnect()
        assert (
            len({Telemetry.decode(p).device for p in telemetry if p.startswith(b'{"schema_version":1,"device"')}) >= 10
        )

        answers: list[object] = []
        anonymous = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="anonymous", protocol=mqtt.MQTTv5)
        anonymous.on_connect = lambda _c, _u, _f, reason, _p: answers.append(reason)
        anonymous.connect("127.0.0.1", mqtt_port)
        while not answers:
            anonymous.loop(timeout=0.2)
        anonymous.disconnect()
        assert str(answers[0]) == "Not authorized", "the broker refuses clients without credentials"
        admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{kafka_port}")
        assert {t for t in admin.list_topics() if t.startswith("smartfarm.")} == {
            "smartfarm.telemetry.raw",
            "smartfarm.readings.clean",
            "smartfarm.deadletter",
            "smartfarm.zone.aggregates",
            "smartfarm.recommendations",
            "smartfarm.device.status",
        }
        admin.close()
        consumer = KafkaConsumer(bootstrap_servers=f"127.0.0.1:{kafka_port}")
        raw = [TopicPartition("smartfarm.telemetry.raw", p) for p in range(6)]
        deadline = time.monotonic() + 20
        while sum(consumer.end_offsets(raw).values()) < 24 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sum(consumer.end_offsets(raw).values()) >= 24, "the bridge forwards the farm's telemetry into Kafka"
        consumer.close()
        with InfluxClient(InfluxSettings(url=f"http://127.0.0.1:{influx_port}", database="farmdb")) as influx:
            assert {"name": "farmdb"} in influx.query("SHOW DATABASES")

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    for port in (mqtt_port, kafka_port, influx_port):
        assert not port_open(port), f"port {port} still open after smartfarm up stopped"
