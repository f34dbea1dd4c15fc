"""Session-wide real services for the integration tests.

Each service starts once per session, on free loopback ports, the first time a test asks for it. A missing
binary, Java, Maven or jar fails the run with the command that installs it; nothing is skipped. Every test here is
marked ``integration``; the unit lane (``tests/unit``) cannot reach these fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.services import InfluxDB, Kafka, LocalService, Mosquitto, fetch_kafka_jars
from cli.services.postgres import PostgreSQL
from cli.services.settings import ServicesSettings
from cli.stack.components import Models
from ml.settings import ModelSettings
from smartfarm.settings import InfluxSettings, KafkaSettings, MqttSettings
from storage.accounts import ensure_admin
from storage.influx import InfluxClient
from tests.helpers import once_per_run, run_folder, unique
from tests.integration.pipeline import (
    INFLUX_USERS,
    SASL_PASSWORD,
    SASL_USER,
    SecuredBroker,
    influx_database,
    securing,
)

_started: list[LocalService] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.integration)


def _run(service: LocalService) -> Iterator[LocalService]:
    service.start()
    _started.append(service)
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    yield from _run(Mosquitto(tmp_path_factory.mktemp("mosquitto")))  # type: ignore[misc]


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kafka]:
    settings = ServicesSettings()
    fetch_kafka_jars(settings.kafka_home, settings.kafka_version)
    # Both client listeners on one broker: plaintext for every test, SASL_PLAINTEXT (SCRAM) for the SASL tests.
    users = {SASL_USER: SASL_PASSWORD}
    kafka = Kafka(tmp_path_factory.mktemp("kafka"), settings.kafka_home, heap="768m", scram_users=users)
    yield from _run(kafka)  # type: ignore[misc]


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    """InfluxDB with authentication on and its admin made (``INFLUX_USERS``); the other users come with the first
    database a test declares (``influx_database``)."""
    influxd = InfluxDB(tmp_path_factory.mktemp("influxdb"))
    for _ in _run(influxd):
        ensure_admin(InfluxSettings(url=influxd.url), INFLUX_USERS.admin)  # its first start: no admin yet
        yield influxd


@pytest.fixture(scope="session")
def postgresql(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgreSQL]:
    yield from _run(PostgreSQL(tmp_path_factory.mktemp("postgresql")))  # type: ignore[misc]


@pytest.fixture
def mqtt_settings(mosquitto: Mosquitto) -> MqttSettings:
    """MQTT settings for the session broker with a topic root of this test's own."""
    return MqttSettings(host=mosquitto.host, port=mosquitto.port, topic_root=unique("t"))


@pytest.fixture
def kafka_settings(kafka: Kafka) -> KafkaSettings:
    """Kafka settings for the session broker with a topic prefix of this test's own."""
    return KafkaSettings(bootstrap_servers=kafka.bootstrap_servers, topic_prefix=unique("t"))


@pytest.fixture
def influx(influxdb: InfluxDB) -> Iterator[InfluxClient]:
    """A client logged in as the pipeline's writer on a database of this test's own, declared before (the writer
    ALL on it, the reader READ) and dropped after."""
    with influx_database(influxdb.url) as client:
        yield client


@pytest.fixture
def secured_broker(tmp_path: Path) -> Iterator[SecuredBroker]:
    """A broker of this test's own that only lets the layout's devices, the valves and a tester in."""
    with securing(tmp_path) as broker:
        yield broker


TRAIN_DAYS = 10
"""Days per season of the run's one training (``smartfarm train``'s shortest: the 24 h forecast's targets)."""
TRAIN_SEASONS = 2
"""Its training seasons (one more is held out): the smallest recipe that trains, registers and judges both models."""


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> tuple[ModelSettings, str]:
    """A model store trained once per test run, the way ``smartfarm up`` trains an empty registry (its ``Models``
    component), and what it reported: shared by every xdist worker (the first to ask trains under a file lock; the
    others wait, then read it). Read only: a test that registers models makes a store of its own."""
    shared = run_folder(tmp_path_factory, worker_id)
    settings = ModelSettings(store=shared / "trained" / "mlflow")

    def train() -> str:
        models = Models(settings, train=True, days=TRAIN_DAYS, seasons=TRAIN_SEASONS, holdout=1)
        models.start()
        return models.summary

    return settings, once_per_run(shared, "trained-models", train)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _started:
        terminalreporter.section("services")
        for service in _started:
            terminalreporter.write_line(f"{service.name}: ready in {service.ready_seconds:.2f}s")
