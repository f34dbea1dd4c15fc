"""Real Mosquitto, Kafka and InfluxDB processes on loopback, for the local stack and the integration tests."""

from cli.services.base import LocalService, free_port
from cli.services.influxdb import InfluxDB
from cli.services.kafka import Kafka, fetch_kafka_jars
from cli.services.mosquitto import Mosquitto

__all__ = ["InfluxDB", "Kafka", "LocalService", "Mosquitto", "fetch_kafka_jars", "free_port"]
