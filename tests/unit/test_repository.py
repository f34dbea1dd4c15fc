"""Files at the top of the repository that no module imports: compose and the Grafana provisioning."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import SecretStr

from cli.services.kafka import _COMPLETE, LOG4J_VERSION, Kafka
from cli.services.settings import ServicesSettings
from tests.helpers import repo_root


def test_compose_services_have_healthchecks_and_wait_for_healthy_dependencies() -> None:
    compose = yaml.safe_load((repo_root() / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"mosquitto", "kafka", "influxdb", "grafana"} <= set(services)
    for name in ("mosquitto", "kafka", "influxdb"):
        assert "healthcheck" in services[name], name
        for port in services[name]["ports"]:
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    for name, service in services.items():
        for needed, dependency in service.get("depends_on", {}).items():
            # A one-shot (restart "no") is waited for until it completes; every running service until healthy.
            one_shot = services[needed].get("restart") == "no"
            wanted = "service_completed_successfully" if one_shot else "service_healthy"
            assert dependency == {"condition": wanted}, name
    assert services["influxdb"]["environment"]["INFLUXDB_HTTP_AUTH_ENABLED"] == "true"
    assert "${GRAFANA_ADMIN_PASSWORD:?" in services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    assert services["kafka"]["image"].startswith("apache/kafka:4.")


SHARED_BROKER_SETTINGS = (
    "process.roles",
    "auto.create.topics.enable",
    "offsets.topic.replication.factor",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr",
    "group.initial.rebalance.delay.ms",
    "sasl.enabled.mechanisms",
)
"""What compose's Kafka and the local one (``cli/services/kafka.py``) decide alike: no topic made by a typo, one
replica, SCRAM's two mechanisms."""


def test_the_compose_kafka_config_agrees_with_the_local_one(tmp_path: Path) -> None:
    script = yaml.safe_load((repo_root() / "docker-compose.yml").read_text())["services"]["kafka"]["command"][2]
    compose = dict(line.strip().split("=", 1) for line in script.splitlines() if re.match(r"^\s*[a-z.]+=", line))
    (tmp_path / _COMPLETE).write_text("")
    local_kafka = Kafka(tmp_path / "work", tmp_path, port=19092, scram_users={"u": SecretStr("p")})
    local = dict(line.split("=", 1) for line in local_kafka.config().splitlines())
    assert local["auto.create.topics.enable"] == "false"
    assert {k: compose.get(k) for k in SHARED_BROKER_SETTINGS} == {k: local[k] for k in SHARED_BROKER_SETTINGS}


def test_grafana_datasource_points_at_the_pipeline_database() -> None:
    provisioning = repo_root() / "grafana" / "provisioning" / "datasources" / "influxdb.yaml"
    source = yaml.safe_load(provisioning.read_text())["datasources"][0]
    assert source["type"] == "influxdb"
    assert source["jsonData"]["dbName"] == "${SMARTFARM_INFLUX_DATABASE}"
    assert source["user"] == "${SMARTFARM_INFLUX_READER_USERNAME}", "the dashboards read as the reader"
    assert source["secureJsonData"]["password"] == "${SMARTFARM_INFLUX_READER_PASSWORD}"


def test_the_kafka_release_is_a_4x_with_a_pinned_log4j() -> None:
    assert ServicesSettings().kafka_version.startswith("4.")
    assert LOG4J_VERSION.startswith("2.")
