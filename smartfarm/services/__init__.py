"""Real Mosquitto, Kafka and InfluxDB processes on loopback, for the local stack and the integration tests."""

from smartfarm.services.base import LocalService, free_port
from smartfarm.services.influxdb import InfluxDB
from smartfarm.services.kafka import Kafka, fetch_kafka_jars
from smartfarm.services.mosquitto import Mosquitto

__all__ = ["InfluxDB", "Kafka", "LocalService", "Mosquitto", "fetch_kafka_jars", "free_port"]
