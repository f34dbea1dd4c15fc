"""The whole system end to end: ``smartfarm up`` runs a simulated farm for a simulated week on the real services.

Kafka and InfluxDB are the session's, configured as running services (the stack uses them and leaves them up), and
so are the models, trained once for the run as ``smartfarm up`` trains an empty registry;
Mosquitto, the bridge, two workers and Prometheus are the stack's own. The week is six days caught up as fast as
the pipeline takes them, then a day at 3600x. Every reading the fleet sent is counted into InfluxDB, the
recommendations reach an MQTT subscriber and the valves, which water the soil, and every dashboard query returns
data from that InfluxDB and that Prometheus.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from dotenv import dotenv_values
from pydantic import SecretStr

from cli.services import InfluxDB, Kafka, free_port
from cli.services.base import port_open
from cli.services.settings import ServicesSettings
from edge.faults import FaultRecord
from ml.settings import ModelSettings
from smartfarm.credentials import device_password
from smartfarm.layout import load_layout
from smartfarm.mqtt import connect, mqtt_client
from smartfarm.records import Recommendation
from smartfarm.settings import InfluxSettings, MqttSettings, environment
from storage.influx import InfluxClient
from tests.helpers import unique
from tests.integration.grafana import QueryResult, check_dashboards, reader_env
from tests.integration.pipeline import INFLUX_USERS

START = datetime(2026, 6, 20, tzinfo=UTC)
WEEK = timedelta(days=7)


@dataclass
class Output:
    """The lines of a running ``smartfarm up``, read on a thread so its pipe never fills."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, marker: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while marker not in self.text:
            assert self.proc.poll() is None, f"smartfarm up exited ({self.proc.returncode}):\n{self.text[-6000:]}"
            assert time.monotonic() < deadline, f"no {marker!r} within {timeout_s:.0f} s:\n{self.text[-6000:]}"
            time.sleep(0.2)


@pytest.fixture
def stack(
    tmp_path: Path, kafka: Kafka, influxdb: InfluxDB, trained_models: tuple[ModelSettings, str]
) -> Iterator[tuple[Output, dict[str, str]]]:
    where = {
        "models": trained_models[1],
        "api": f"http://127.0.0.1:{free_port()}",
        "tokens": str(tmp_path / "stack" / "api-tokens.txt"),
        "mqtt_port": str(free_port()),
        "ca": str(tmp_path / "stack" / "tls" / "ca.crt"),  # up's broker speaks TLS; its CA is made there
        "prometheus": f"http://127.0.0.1:{free_port()}",
        "influx": influxdb.url,
        "database": unique("farm"),
        "record": str(tmp_path / "farm.csv"),
        "truth": str(tmp_path / "faults.jsonl"),
        "workdir": str(tmp_path / "stack"),
    }
    env = {
        **os.environ,
        # The session InfluxDB's users (its admin was made at its first start), not passwords drawn for the stack.
        **environment(INFLUX_USERS),
        **environment(InfluxSettings(url=influxdb.url, database=where["database"])),
        "SMARTFARM_SERVICES_CACHE_DIR": str(ServicesSettings().cache_dir),
        "SMARTFARM_MQTT_USERNAME": "ops",
        "SMARTFARM_MQTT_PASSWORD": "ops-password",
        "SMARTFARM_EDGE_SPEED": "3600",
        "SMARTFARM_EDGE_START": START.isoformat(),
        "SMARTFARM_EDGE_CATCH_UP": "P6D",
        "SMARTFARM_EDGE_DURATION": "P7D",
        "SMARTFARM_EDGE_RECORD": where["record"],
        "SMARTFARM_EDGE_GROUND_TRUTH": where["truth"],
        # A dead battery loses what the device had not sent yet, by design; this count wants every reading sent.
        "SMARTFARM_EDGE_FAULT_BATTERY_DEATH": "0",
        # Six clock resets in this week of seed 42 (none at the default rate): device health shows them.
        "SMARTFARM_EDGE_FAULT_CLOCK_RESET": "0.0005",
        "SMARTFARM_BRIDGE_METRICS_PORT": "0",
        "SMARTFARM_WORKER_METRICS_PORT": "0",
        "SMARTFARM_API_PORT": where["api"].rsplit(":", 1)[1],
    }
    command = [
        sys.executable, "-m", "cli", "up",
        "--workdir", where["workdir"],
        "--port", where["mqtt_port"],
        "--bootstrap-servers", kafka.bootstrap_servers,
        "--topic-prefix", unique("stack"),
        "--url", influxdb.url,
        "--database", where["database"],
        "--prometheus-port", where["prometheus"].rsplit(":", 1)[1],
        "--store", str(trained_models[0].store),
        "--workers", "2",
        "--status-s", "5",
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
    output = Output(proc)
    try:
        yield output, where
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def expected_readings(record: Path, truth: Path) -> int:
    """Readings the fleet sent in messages the stream takes: the recording, less the messages it sent malformed or
    stamped by a reset clock."""
    refused = {
        key for line in truth.read_text().splitlines() for key in FaultRecord.model_validate_json(line).refused()
    }
    with record.open(newline="") as f:
        return sum(1 for row in csv.DictReader(f) if (row["device"], int(row["seq"])) not in refused)


def broker(where: dict[str, str], username: str, password: str) -> MqttSettings:
    """The stack's broker as ``username`` sees it: over TLS, trusting the CA ``smartfarm up`` made."""
    return MqttSettings(
        port=int(where["mqtt_port"]),
        tls=True,
        ca_file=Path(where["ca"]),
        username=username,
        password=SecretStr(password),
    )


def _a_probe_shorts(where: dict[str, str], fleet_secret: SecretStr) -> None:
    """A soil node reports 75 % moisture, past any soil's saturation (a shorted probe): stored, flagged
    ``out_of_range``. Stamped between the farm's five-minute ticks: a point at a tick's time would overwrite the
    reading stored there (same series, same time)."""
    device = "soil-tomato-north-1"
    reading = {"sensor": "sm-15", "kind": "soil_moisture", "value": 75.0}
    payload = {"schema_version": 1, "device": device, "seq": 10**6, "ts": "2026-06-26T12:02:30Z", "readings": [reading]}
    settings = broker(where, device, device_password(fleet_secret, device))
    client = mqtt_client(settings, unique("shorted"))
    connect(client, settings, background=False)
    client.loop_start()
    client.publish(f"smartfarm/v1/valley-farm/devices/{device}/telemetry", json.dumps(payload), qos=1).wait_for_publish(
        10
    )
    client.loop_stop()
    client.disconnect()


def password_of(user: str, secrets: dict[str, str]) -> str:
    """A broker user's password, as an operator gets it: ``smartfarm broker-auth --password-of`` with the
    installation's secrets."""
    command = [sys.executable, "-m", "cli", "broker-auth", "--password-of", user]
    ran = subprocess.run(command, env=os.environ | secrets, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout.strip()


def subscribe(where: dict[str, str], received: list[Recommendation], secrets: dict[str, str]) -> mqtt.Client:
    """The farm's recommendation subscriber (its ``.advice`` user), on every zone's topic of every farm: the broker
    delivers its own farm's."""
    settings = broker(where, "valley-farm.advice", password_of("valley-farm.advice", secrets))
    client = mqtt_client(settings, unique("farmer"))
    client.on_message = lambda _c, _u, msg: received.append(Recommendation.model_validate_json(msg.payload))
    connect(client, settings, background=False)
    client.subscribe("smartfarm/v1/+/zones/+/recommendations", qos=1)
    client.loop_start()
    return client


@pytest.mark.long(140)
def test_a_simulated_week_runs_end_to_end(stack: tuple[Output, dict[str, str]], kafka: Kafka) -> None:
    output, where = stack
    output.wait_for("Mosquitto  mqtts://", 60)
    secrets_file = Path(where["workdir"]) / "secrets.env"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600, "the secrets drawn at the first start are private"
    secrets = {k: v for k, v in dotenv_values(secrets_file).items() if v}
    assert "SMARTFARM_EDGE_DEVICE_SECRET" in secrets
    received: list[Recommendation] = []
    farmer = subscribe(where, received, secrets)  # before the farm starts, last
    output.wait_for("data and logs in", 240)
    started = datetime.now(UTC)
    text = output.text
    assert "Kafka      " + kafka.bootstrap_servers in text and "already running (configured)" in text
    assert "InfluxDB   " + where["influx"] in text
    assert "Mosquitto  mqtts://127.0.0.1:" in text and "ready in" in text, "the stack's own broker"
    assert "training them first" not in text, "a trained registry is served as it is"
    assert "Models     " + where["models"] in text
    assert text.count("Worker     ") == 2
    assert "Prometheus " + where["prometheus"] in text

    output.wait_for("the simulated farm finished its run", 400)
    # A week's faults need not include a value out of the sensor's range.
    _a_probe_shorts(where, SecretStr(secrets["SMARTFARM_EDGE_DEVICE_SECRET"]))
    expected = expected_readings(Path(where["record"]), Path(where["truth"])) + 1
    assert expected > 12 * 288 * 6, "a week of a 12-device farm, less its dropouts"
    settings = InfluxSettings(url=where["influx"], database=where["database"])
    with InfluxClient(settings) as influx:
        stored, deadline = 0, time.monotonic() + 120
        while stored != expected and time.monotonic() < deadline:
            rows = influx.query("SELECT count(value) AS n FROM reading")
            stored = int(rows[0]["n"]) if rows else 0
            time.sleep(1)
        assert stored == expected, "every reading the fleet sent is stored, once"

        output.wait_for("irrigations applied by the valves", 30)
        farmer.loop_stop()
        farmer.disconnect()
        kinds = {r.kind.value for r in received}
        assert {"irrigation", "sensor_fault"} <= kinds, f"the subscriber got {sorted(kinds)}"
        applied = [line for line in output.lines if "irrigations applied by the valves" in line][-1]
        assert " 0 irrigations applied" not in applied, applied
        watered = _watered(influx, [r for r in received if r.kind.value == "irrigation" and r.start_at])
        assert watered, "an irrigation the valves applied shows in the zone's soil moisture"

        _the_web_app_shows_the_farm(where)
        _a_farmer_answers_advice(where, received)
        _every_dashboard_query_returns_data(where, started)
        _the_advice_had_the_forecasts(where)
        _the_api_tells_a_zones_state(where)

        status = output.text.rsplit("status at ", 1)[1]
        assert "bridge 1/1 up  worker 2/2 up" in status
        assert "dead letters  worker/" in status, "the malformed messages are dead-lettered with their reason"

    output.proc.send_signal(signal.SIGTERM)
    assert output.proc.wait(90) == 0, output.text[-4000:]
    assert "stopped" in output.text
    for port in (int(where["mqtt_port"]), int(where["prometheus"].rsplit(":", 1)[1])):
        assert not port_open(port), f"port {port} still open after smartfarm up stopped"
    assert port_open(int(kafka.bootstrap_servers.rsplit(":", 1)[1])), "a configured service is left running"


def _watered(influx: InfluxClient, irrigations: list[Recommendation]) -> list[str]:
    """The irrigations whose zone's shallow soil moisture rose by 1 % vol or more within 6 h of their start."""
    found = []

    def at(when: datetime) -> str:
        return f"'{when.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}'"

    for rec in irrigations:
        assert rec.start_at is not None
        t0 = rec.start_at
        where = f"zone = '{rec.zone}' AND kind = 'soil_moisture' AND width = '15m'"
        before = influx.query(
            f"SELECT last(mean) FROM zone_aggregate WHERE {where} AND time <= {at(t0)} "
            f"AND time > {at(t0 - timedelta(hours=2))}"
        )
        after = influx.query(
            f"SELECT max(mean) FROM zone_aggregate WHERE {where} AND time > {at(t0)} "
            f"AND time <= {at(t0 + timedelta(hours=6))}"
        )
        if before and after and after[0]["max"] >= before[0]["last"] + 1.0:
            found.append(f"{rec.zone} at {t0:%Y-%m-%d %H:%M}: {before[0]['last']:.1f} -> {after[0]['max']:.1f}")
    return found


def _the_advice_had_the_forecasts(where: dict[str, str]) -> None:
    """The simulated provider beside the farm publishes forecasts on the farm's clock from its start, and the
    workers score the hours with them (their ``scored_hours`` counters, through the stack's Prometheus; one run:
    693 with, none without)."""
    query = urllib.parse.urlencode({"query": "sum by (forecast) (smartfarm_worker_scored_hours_total)"})
    with urllib.request.urlopen(f"{where['prometheus']}/api/v1/query?{query}", timeout=10) as response:
        result = json.loads(response.read())["data"]["result"]
    hours = {r["metric"].get("forecast"): float(r["value"][1]) for r in result}
    print(f"hours scored with the farm's forecast and without: {hours}")
    assert hours.get("yes", 0) > 0 and hours.get("no", 0) <= 0.05 * hours["yes"], hours


def _the_api_tells_a_zones_state(where: dict[str, str]) -> None:
    """The farm API of the stack answers, with the token ``up`` wrote, what the workers stored of a zone."""
    farm, token = Path(where["tokens"]).read_text().split()
    request = urllib.request.Request(
        f"{where['api']}/farms/{farm}/zones/tomato-north/now", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        now = json.loads(response.read())
    print(f"the API's tomato-north now: {now}")
    assert now["state"] is not None and 0 < now["state"]["moisture_pct"] < 60, now
    assert {f["horizon"] for f in now["forecast"]} == {"6h", "24h"}, now


def _the_web_app_shows_the_farm(where: dict[str, str]) -> None:
    """The farmer's web app of the stack, signed in with the token ``up`` wrote, shows each zone's soil moisture as
    the farm API's zone now tells it."""
    farm, token = Path(where["tokens"]).read_text().split()
    request = urllib.request.Request(f"{where['api']}/app/farms/{farm}", headers={"Cookie": f"smartfarm_token={token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        page = response.read().decode()
    for zone in load_layout().farm(farm).zones:
        request = urllib.request.Request(
            f"{where['api']}/farms/{farm}/zones/{zone.id}/now", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            moisture = json.loads(response.read())["state"]["moisture_pct"]
        card = page.split(f'id="zone-{zone.id}"', 1)[1].split("</section>", 1)[0]
        assert f'<span class="value">{moisture:.1f}</span>' in card, card


def _a_farmer_answers_advice(where: dict[str, str], received: list[Recommendation]) -> None:
    """Through the stack's API, a farmer declines a recommendation the farm got (the newest one still standing)
    and logs a rain gauge reading: both are stored where the inbox and the dashboards read them."""
    farm, token = Path(where["tokens"]).read_text().split()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def post(path: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
        request = urllib.request.Request(f"{where['api']}/farms/{farm}{path}", json.dumps(body).encode(), headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    answers = []
    for rec in reversed(received):
        answers.append(post(f"/recommendations/{rec.id}/decline", {"note": "not today"}))
        if answers[-1][0] != 409:  # 409: replaced by a later one, which comes first in this order anyway
            break
    status, declined = answers[-1]
    assert status == 200 and declined["recommendation"]["status"] == "declined", answers[-3:]
    status, logged = post("/zones/tomato-north/water", {"kind": "rain", "amount_mm": 3.5, "note": "gauge by the gate"})
    assert status == 201, logged


def _every_dashboard_query_returns_data(where: dict[str, str], started: datetime) -> None:
    """Every panel, annotation and variable query of every dashboard, as Grafana runs it with its saved
    variables (All), over two time ranges a farmer would pick: the simulated week (the readings, the zones'
    figures and the advice are stamped in simulated time) and the real minutes the stack ran (Prometheus, and the
    devices' connection status, stamped by the wall clock). Each query must return rows in one of them; the rows
    go to the test's output."""

    def run(time_from: datetime, time_to: datetime) -> dict[tuple[str, str, str], QueryResult]:
        env = reader_env(INFLUX_USERS)
        found = check_dashboards(where["influx"], where["database"], where["prometheus"], time_from, time_to, env)
        return {(r.query.dashboard, r.query.panel, r.query.ref): r for r in found}

    simulated, wall = run(START, START + WEEK), run(started, datetime.now(UTC))
    empty = []
    for key, in_sim in simulated.items():
        best = max((in_sim, wall[key]), key=lambda r: r.rows)
        print(f"{' / '.join(key)}: {best.rows} rows; first: {best.first[:2]}")
        if not best.rows:
            empty.append(f"{' / '.join(key)}: {best.expanded}")
    assert not empty, "queries that returned nothing:\n" + "\n".join(empty)
    boards = {key[0] for key in simulated}
    assert boards >= {f"smartfarm-{name}" for name in ("farm-overview", "zone-detail", "device-health", "pipeline")}
