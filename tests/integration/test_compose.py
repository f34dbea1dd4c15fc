"""docker-compose.yml, checked by the compose specification's own loader (compose-go v2) and against the package.

No Docker engine runs here, so ``tools/compose-check`` (a small Go program around compose-go's loader) loads the
file the way ``docker compose`` does: interpolation (a missing ``${VAR:?...}`` is refused), normalisation,
consistency. It is built once into ``~/.cache/smartfarm/compose-check``, named by the hash of its sources. The
normalised project is then held against the package: commands it has, variables its settings read, healthchecks
behind every ``service_healthy``, a scrape config promtool accepts.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from pydantic import AliasChoices, SecretStr
from pydantic_settings import BaseSettings

import api.settings
import cli.services.settings
import edge.settings
import ml.settings
import smartfarm.settings
import storage.registry.settings
import stream.settings
from cli.main import build_parser
from cli.main import main as run_smartfarm
from cli.services import InfluxDB, fetch_kafka_jars, free_port
from cli.services.base import find_binary
from cli.services.kafka import JAVA_INSTALL
from cli.services.mosquitto import tls_lines
from cli.services.settings import ServicesSettings
from smartfarm.certificates import TlsFiles
from smartfarm.errors import ConfigError, ServiceError, StorageDenied
from smartfarm.identifiers import BRIDGE_USER
from smartfarm.settings import InfluxLogin, InfluxSettings, KafkaSecurity, KafkaSettings, env_name
from storage.accounts import declare
from storage.influx import InfluxClient
from stream.admin import check_login, ensure_topics
from tests.helpers import repo_root, unique
from tests.integration.pipeline import INFLUX_USERS

ROOT = repo_root()
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
CHECKER = ROOT / "tools" / "compose-check"
CACHE = Path.home() / ".cache" / "smartfarm" / "compose-check"
GO_INSTALL = "install Go 1.23+ (https://go.dev/dl/) so that `go` is on PATH or at /usr/local/go/bin/go"
PROMTOOL_INSTALL = "sudo apt-get install -y prometheus (for /usr/bin/promtool)"
SETTINGS_MODULES = (
    smartfarm.settings,
    stream.settings,
    edge.settings,
    ml.settings,
    cli.services.settings,
    api.settings,
    storage.registry.settings,
)

REQUIRED = sorted(set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text())))


def _go() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        pytest.fail(f"Go is missing, and the compose file cannot be validated without it: {GO_INSTALL}")
    return go


@pytest.fixture(scope="module")
def compose_check() -> Path:
    """The validator binary, built on first use and whenever main.go or go.mod change."""
    digest = hashlib.sha256()
    for name in ("main.go", "go.mod"):
        digest.update((CHECKER / name).read_bytes())
    binary = CACHE / f"compose-check-{digest.hexdigest()[:16]}"
    if binary.exists():
        return binary
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = binary.with_suffix(f".{os.getpid()}.tmp")
    env = {**os.environ, "GOSUMDB": "off", "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    built = subprocess.run(
        [_go(), "build", "-o", str(partial), "."],
        cwd=CHECKER,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    if built.returncode != 0:
        pytest.fail(f"building {CHECKER} failed (it fetches compose-go from the Go module proxy):\n{built.stderr}")
    partial.replace(binary)  # atomic: a concurrent run never sees half a binary
    return binary


def load(compose_check: Path, env_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(compose_check), "-env", str(env_file), str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def project(compose_check: Path) -> dict[str, Any]:
    loaded = load(compose_check, ENV_EXAMPLE)
    assert loaded.returncode == 0, f"docker-compose.yml does not load with .env.example:\n{loaded.stderr}"
    result: dict[str, Any] = json.loads(loaded.stdout)
    return result


@pytest.fixture(scope="module")
def services(project: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = project["services"]
    return result


def ours(service: dict[str, Any]) -> bool:
    """Whether the service runs the image of this repository's Dockerfile."""
    build = service.get("build") or {}
    return Path(build.get("context", "/nonexistent")) == ROOT and build.get("dockerfile", "Dockerfile") == "Dockerfile"


def settings_env_names() -> set[str]:
    """Every variable some settings class reads: each field's name under its prefix, and its aliases."""
    names: set[str] = set()
    for module in SETTINGS_MODULES:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, BaseSettings) or cls is BaseSettings:
                continue
            for field, info in cls.model_fields.items():
                names.add(env_name(cls, field))
                if isinstance(info.validation_alias, AliasChoices):
                    names.update(c for c in info.validation_alias.choices if isinstance(c, str))
    return names


def test_the_compose_file_loads_with_the_documented_env_file(services: dict[str, dict[str, Any]]) -> None:
    expected = {"mosquitto", "mosquitto-auth", "kafka", "influxdb", "influx-users", "bridge", "worker", "edge"}
    expected |= {"grafana", "api", "forecast"}
    assert expected | {"prometheus"} <= set(services)


def test_the_simulated_forecasts_follow_the_simulated_farms_seed_and_clock(services: dict[str, dict[str, Any]]) -> None:
    forecast, edge = services["forecast"], services["edge"]
    assert forecast["command"][:1] == ["forecast"] and "--every" in forecast["command"]
    assert forecast["environment"]["SMARTFARM_FORECAST_PROVIDER"] == "simulated"
    for variable in ("SMARTFARM_EDGE_SEED", "SMARTFARM_EDGE_SPEED"):
        assert forecast["environment"][variable] == edge["environment"][variable], variable


@pytest.mark.parametrize("variable", REQUIRED)
def test_a_missing_required_secret_is_refused_by_name(compose_check: Path, tmp_path: Path, variable: str) -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    assert any(line.startswith(f"{variable}=") and line != f"{variable}=" for line in lines), (
        f"{variable} is required by docker-compose.yml but has no value in .env.example"
    )
    env_file = tmp_path / ".env"
    env_file.write_text("\n".join(line for line in lines if not line.startswith(f"{variable}=")) + "\n")
    loaded = load(compose_check, env_file)
    assert loaded.returncode != 0, f"docker-compose.yml loaded without {variable}"
    assert variable in loaded.stderr, loaded.stderr


def test_the_required_secrets_are_the_expected_ones() -> None:
    expected = {"GRAFANA_ADMIN_PASSWORD", "SMARTFARM_MQTT_PASSWORD", "SMARTFARM_EDGE_DEVICE_SECRET"}
    expected |= {"SMARTFARM_INFLUX_PASSWORD", "SMARTFARM_INFLUX_ADMIN_PASSWORD", "SMARTFARM_INFLUX_READER_PASSWORD"}
    assert expected | {"SMARTFARM_KAFKA_SASL_PASSWORD"} <= set(REQUIRED)


def test_our_image_runs_commands_the_package_has(services: dict[str, dict[str, Any]]) -> None:
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    built = {name: service for name, service in services.items() if ours(service)}
    assert {"bridge", "worker", "edge"} <= set(built)
    assert "mosquitto-auth" in built
    for name, service in built.items():
        assert not service.get("entrypoint"), f"{name} replaces the smartfarm entrypoint with {service['entrypoint']}"
        command = service.get("command") or []
        assert command and command[0] in commands, f"{name} runs `smartfarm {' '.join(command)}`: no such command"


def test_every_smartfarm_variable_set_is_one_the_settings_read(services: dict[str, dict[str, Any]]) -> None:
    known = settings_env_names()
    assert {"SMARTFARM_PROFILE", "SMARTFARM_LAYOUT", "SMARTFARM_MODELS_STORE"} <= known
    unknown = {
        f"{name}: {variable}"
        for name, service in services.items()
        for variable in service.get("environment") or {}
        if variable.startswith("SMARTFARM_") and variable not in known
    }
    assert not unknown, f"variables no settings class reads: {sorted(unknown)}"


def test_healthchecks_stand_behind_every_service_healthy(services: dict[str, dict[str, Any]]) -> None:
    def healthy(name: str) -> bool:
        check = services[name].get("healthcheck") or {}
        return bool(check.get("test")) and not check.get("disable")

    for name in ("mosquitto", "kafka", "influxdb"):
        assert healthy(name), f"{name} has no healthcheck"
    for name, service in services.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            if services[dependency].get("restart") == "no":  # a one-shot: waited for until it has run
                assert spec["condition"] == "service_completed_successfully", f"{name} waits for {dependency}"
                continue
            assert spec["condition"] == "service_healthy", f"{name} waits for {dependency} to be {spec['condition']}"
            assert healthy(dependency), f"{name} waits for {dependency} to be healthy, which has no healthcheck"


def test_the_broker_auth_one_shot_writes_a_password_file_and_acl(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """The service's own command, run by the package's ``smartfarm`` entrypoint with the service's environment
    (and nothing else of ours), into a scratch folder in place of the volume; without ``--follow``, which then
    keeps the files those of the layout topic (tests/integration/api/test_live_layout.py)."""
    auth = services["mosquitto-auth"]
    command, folder, *flags = auth["command"]
    assert command == "broker-auth" and flags == ["--tls", "--follow"]
    assert folder in {volume["target"] for volume in auth["volumes"]}
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTFARM_")} | auth["environment"]
    smartfarm = Path(sys.executable).with_name("smartfarm")
    assert smartfarm.exists(), f"{smartfarm} is missing: pip install -e . installs the entrypoint"
    out = tmp_path / "broker"
    ran = subprocess.run(
        [str(smartfarm), command, str(out), "--tls"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    tls = TlsFiles(out / "tls")  # what the broker copies to /mosquitto/certs, as the compose command says
    mosquitto_command = services["mosquitto"]["command"][-1]
    for name in (tls.ca_file.name, tls.cert_file.name, tls.key_file.name):
        assert f"/auth/tls/{name}" in mosquitto_command
    assert "ca.key" not in mosquitto_command, "the CA's key stays with mosquitto-auth"
    assert stat.S_IMODE(tls.key_file.stat().st_mode) == stat.S_IMODE(tls.ca_key.stat().st_mode) == 0o600
    names = x509.load_pem_x509_certificate(tls.cert_file.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert "mosquitto" in names.value.get_values_for_type(x509.DNSName), "valid for the compose service name"
    passwd = (out / "passwd").read_text().splitlines()
    users = {line.split(":", 1)[0] for line in passwd}
    service_user = auth["environment"]["SMARTFARM_MQTT_USERNAME"]
    assert {BRIDGE_USER, service_user, "soil-tomato-north-1"} <= users
    assert all(line.split(":", 1)[1].startswith("$7$") for line in passwd), "hashed as mosquitto_passwd does"
    acl = (out / "acl").read_text()
    assert f"user {service_user}" in acl and f"user {BRIDGE_USER}" in acl
    assert services["bridge"]["environment"]["SMARTFARM_MQTT_USERNAME"] == service_user


def test_the_influx_users_one_shot_declares_the_users_the_services_log_in_as(
    services: dict[str, dict[str, Any]],
    influxdb: InfluxDB,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The service's own command and environment against the session InfluxDB in place of the compose one (its URL
    and admin, whom the image makes at the first start there; a database and user names of this test's own): it
    declares the writer the workers and the API log in as and the reader Grafana logs in as."""
    declaring = services["influx-users"]
    assert declaring["restart"] == "no" and declaring["command"] == ["influx-users"]
    compose_env = declaring["environment"]
    admin = services["influxdb"]["environment"]
    assert admin["INFLUXDB_ADMIN_USER"] == compose_env["SMARTFARM_INFLUX_ADMIN_USERNAME"]
    assert admin["INFLUXDB_ADMIN_PASSWORD"] == compose_env["SMARTFARM_INFLUX_ADMIN_PASSWORD"]
    login = ("SMARTFARM_INFLUX_USERNAME", "SMARTFARM_INFLUX_PASSWORD", "SMARTFARM_INFLUX_DATABASE")
    for name in ("worker", "api"):
        assert {v: services[name]["environment"][v] for v in login} == {v: compose_env[v] for v in login}, name
    reader = ("SMARTFARM_INFLUX_READER_USERNAME", "SMARTFARM_INFLUX_READER_PASSWORD")
    assert {v: services["grafana"]["environment"][v] for v in reader} == {v: compose_env[v] for v in reader}

    here = {
        "SMARTFARM_INFLUX_URL": influxdb.url,
        "SMARTFARM_INFLUX_DATABASE": unique("compose"),
        "SMARTFARM_INFLUX_ADMIN_USERNAME": INFLUX_USERS.admin_username,
        "SMARTFARM_INFLUX_ADMIN_PASSWORD": INFLUX_USERS.admin_password.get_secret_value(),
        "SMARTFARM_INFLUX_USERNAME": unique("writer"),
        "SMARTFARM_INFLUX_READER_USERNAME": unique("reader"),
    }
    for variable in [v for v in os.environ if v.startswith("SMARTFARM_")]:
        monkeypatch.delenv(variable)
    for variable, value in (compose_env | here).items():
        monkeypatch.setenv(variable, value)
    monkeypatch.chdir(tmp_path)  # no .env of the repository's
    assert run_smartfarm(declaring["command"]) == 0  # in this process: the entrypoint is the broker-auth test's
    said = capsys.readouterr().out
    assert "declared (5 changes)" in said, said  # the database, two users, two grants
    settings = InfluxSettings(
        url=influxdb.url, database=here["SMARTFARM_INFLUX_DATABASE"], username=here["SMARTFARM_INFLUX_USERNAME"],
        password=SecretStr(compose_env["SMARTFARM_INFLUX_PASSWORD"]),
    )  # fmt: skip
    reading = InfluxLogin(
        here["SMARTFARM_INFLUX_READER_USERNAME"], SecretStr(compose_env["SMARTFARM_INFLUX_READER_PASSWORD"]), ""
    )
    users = INFLUX_USERS.model_copy(update={"reader_username": reading.username, "reader_password": reading.password})
    try:
        assert declare(settings, users) == [], "declared as the command declared"
        with InfluxClient(settings) as writer, InfluxClient(settings, reading) as grafana:
            writer.check_access(write=True)
            grafana.check_access()
            with pytest.raises(StorageDenied):
                grafana.check_access(write=True)
    finally:
        with InfluxClient(settings, INFLUX_USERS.admin) as operator:
            operator.drop_database()
            for user in (settings.username, reading.username):
                operator.query(f'DROP USER "{user}"', write=True)


def test_mqtt_is_tls_only_and_every_client_verifies_the_broker(services: dict[str, dict[str, Any]]) -> None:
    """The broker listens on 8883 with the installation's certificate and no plaintext listener (the same lines
    ``smartfarm up``'s broker gets); its healthcheck and every client speak TLS trusting the CA from mqtt-ca."""
    conf = (ROOT / "mosquitto.conf").read_text().splitlines()
    listeners = [line for line in conf if line.startswith("listener ")]
    assert listeners == ["listener 8883 0.0.0.0"], "one listener, over TLS"
    start = conf.index(listeners[0]) + 1
    certs = "/mosquitto/certs"
    assert conf[start : start + 4] == tls_lines(f"{certs}/ca.crt", f"{certs}/server.crt", f"{certs}/server.key")
    broker = services["mosquitto"]
    assert [(p["target"], p.get("published")) for p in broker["ports"]] == [(8883, "8883")]
    health = " ".join(broker["healthcheck"]["test"])
    assert "-p 8883" in health and f"--cafile {certs}/ca.crt" in health
    clients = {name: s for name, s in services.items() if "SMARTFARM_MQTT_HOST" in (s.get("environment") or {})}
    assert {"bridge", "edge", "api"} <= set(clients)
    for name, service in clients.items():
        env = service["environment"]
        assert (env["SMARTFARM_MQTT_TLS"], env["SMARTFARM_MQTT_PORT"]) == ("true", "8883"), name
        mounts = {v["source"]: v["target"] for v in service.get("volumes") or [] if v["type"] == "volume"}
        assert Path(env["SMARTFARM_MQTT_CA_FILE"]).parent == Path(mounts["mqtt-ca"]), f"{name} has the CA"
        assert "broker-auth" not in mounts, f"{name} sees only the CA, not the broker's credentials"


def test_prometheus_scrapes_the_compose_services_with_the_repository_rules(
    services: dict[str, dict[str, Any]],
) -> None:
    mounts = {volume["target"]: Path(volume["source"]) for volume in services["prometheus"]["volumes"]}
    config_file = mounts["/etc/prometheus/prometheus.yml"]
    assert config_file == ROOT / "prometheus" / "compose.yml"
    assert mounts["/etc/prometheus/alerts.yml"] == ROOT / "prometheus" / "alerts.yml"
    config = yaml.safe_load(config_file.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    bridge_port = services["bridge"]["environment"]["SMARTFARM_BRIDGE_METRICS_PORT"]
    assert jobs["bridge"]["static_configs"][0]["targets"] == [f"bridge:{bridge_port}"]
    worker_sd = jobs["worker"]["dns_sd_configs"][0]
    assert (worker_sd["names"], worker_sd["type"]) == (["worker"], "A")
    assert str(worker_sd["port"]) == services["worker"]["environment"]["SMARTFARM_WORKER_METRICS_PORT"]
    for name in ("bridge", "worker"):
        assert services[name]["environment"][f"SMARTFARM_{name.upper()}_METRICS_HOST"] == "0.0.0.0"

    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    if not Path(promtool).exists():
        pytest.fail(f"promtool is missing: {PROMTOOL_INSTALL}")
    checked = subprocess.run(
        [promtool, "check", "config", str(config_file)], capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_kafka_client_logs_in_as_the_user_kafka_creates(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]["environment"]
    login = {k: kafka[k] for k in ("SMARTFARM_KAFKA_SASL_USERNAME", "SMARTFARM_KAFKA_SASL_PASSWORD")}
    assert all(login.values())
    clients = {
        name
        for name, service in services.items()
        if "SMARTFARM_KAFKA_BOOTSTRAP_SERVERS" in (service.get("environment") or {})
    }
    assert {"mosquitto-auth", "bridge", "worker", "api"} <= clients
    for name in clients:
        env = services[name]["environment"]
        assert env["SMARTFARM_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT", name
        assert env["SMARTFARM_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:19092", name
        assert {k: env[k] for k in login} == login, f"{name} logs in as another user"
    assert "--command-config" in " ".join(services["kafka"]["healthcheck"]["test"]), "the healthcheck logs in"


def _fake_kafka_home(home: Path, libs: Path) -> None:
    """The distribution's layout as the apache/kafka image has it (``bin/``, ``config/``), each tool a one-line
    launcher of its class from the repository's Kafka jars, as the distribution's ``bin/*.sh`` are."""
    java = find_binary("java", JAVA_INSTALL)
    tools = {
        "kafka-storage.sh": "kafka.tools.StorageTool",
        "kafka-server-start.sh": "kafka.Kafka",
        "kafka-configs.sh": "kafka.admin.ConfigCommand",
        "kafka-broker-api-versions.sh": "org.apache.kafka.tools.BrokerApiVersionsCommand",
    }
    (home / "config").mkdir(parents=True)
    (home / "bin").mkdir()
    for name, main in tools.items():
        heap = "-Xmx384m" if main == "kafka.Kafka" else "-Xmx128m"
        script = home / "bin" / name
        script.write_text(f'#!/bin/sh\nexec {java} {heap} -cp "{libs}/*" {main} "$@"\n')
        script.chmod(0o755)


class ComposeKafka:
    """The kafka service's own command, run by ``sh`` with the service's environment on free loopback ports."""

    def __init__(self, service: dict[str, Any], home: Path, data: Path) -> None:
        self.service = service
        self.ports = {name: free_port() for name in ("BROKER_PORT", "SASL_PORT", "HOST_PORT", "CONTROLLER_PORT")}
        self.env = {
            "PATH": os.environ["PATH"],
            **service["environment"],
            **{name: str(port) for name, port in self.ports.items()},
            "KAFKA_HOME": str(home),
            "KAFKA_DATA": str(data),
            "SASL_HOST": "127.0.0.1",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, password: str, log: Path) -> None:
        self.env["SMARTFARM_KAFKA_SASL_PASSWORD"] = password
        shell, flag, script = self.service["command"]
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [shell, flag, script], env=self.env, stdout=out, stderr=out, start_new_session=True
            )
        deadline = time.monotonic() + 120
        while True:  # until the broker is up and (after a restart) the script has set the password
            assert self.proc.poll() is None, f"the kafka command exited:\n{log.read_text()[-3000:]}"
            try:
                check_login(self.login(password), timeout_s=5)
                break
            except (ConfigError, ServiceError) as exc:
                assert time.monotonic() < deadline, f"{exc}\n{log.read_text()[-3000:]}"
                time.sleep(0.5)
        healthcheck = self.service["healthcheck"]["test"]
        assert healthcheck[0] == "CMD-SHELL"
        checked = subprocess.run(
            ["sh", "-c", healthcheck[1]], env=self.env, capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, f"the healthcheck fails: {checked.stdout}{checked.stderr}"

    def login(self, password: str, port: str = "HOST_PORT") -> KafkaSettings:
        return KafkaSettings(
            bootstrap_servers=f"127.0.0.1:{self.ports[port]}",
            security_protocol=KafkaSecurity.SASL_PLAINTEXT,
            sasl_username=self.env["SMARTFARM_KAFKA_SASL_USERNAME"],
            sasl_password=SecretStr(password),
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the script's trap stops the broker
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@pytest.mark.long(30)
def test_the_kafka_service_creates_its_user_and_refuses_any_other_login(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """The kafka service's script and healthcheck for real, on the repository's Kafka jars in the image's layout:
    the first start formats the storage with the services' SCRAM user, the clients log in at both SASL listeners
    and a wrong password is refused. (Its restart, which sets the password again, is left out for CI's time: a
    second Kafka start here costs about 25 s; the local launcher's restart with a new user is tested in
    tests/integration/cli/test_services.py.)"""
    settings = ServicesSettings()
    fetch_kafka_jars(settings.kafka_home, settings.kafka_version)
    _fake_kafka_home(tmp_path / "opt-kafka", settings.kafka_home / "libs")
    kafka = ComposeKafka(services["kafka"], tmp_path / "opt-kafka", tmp_path / "data")
    first = services["kafka"]["environment"]["SMARTFARM_KAFKA_SASL_PASSWORD"]
    try:
        kafka.start(first, tmp_path / "kafka.log")
        check_login(kafka.login(first), timeout_s=10)
        check_login(kafka.login(first, "SASL_PORT"), timeout_s=10)
        with pytest.raises(ConfigError, match="SMARTFARM_KAFKA_SASL_PASSWORD"):
            check_login(kafka.login("not-" + first), timeout_s=10)
        assert ensure_topics(kafka.login(first).model_copy(update={"topic_prefix": "compose"}))
    finally:
        kafka.stop()
