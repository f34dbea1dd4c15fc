"""The bridge's Prometheus metrics, on a registry of its own so several bridges can share a process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class BridgeMetrics:
    """Counters, gauges and the delivery-latency histogram of one bridge."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "smartfarm_bridge_received", "MQTT messages received, by topic kind", ["kind"], registry=r
        )
        self.forwarded = Counter(
            "smartfarm_bridge_forwarded", "MQTT messages confirmed by Kafka and acknowledged", ["kind"], registry=r
        )
        self.dead_lettered = Counter(
            "smartfarm_bridge_dead_lettered", "messages refused at the door, by reason", ["reason"], registry=r
        )
        self.redelivered = Counter(
            "smartfarm_bridge_redelivered", "MQTT messages the broker delivered again (DUP flag)", registry=r
        )
        self.in_flight = Gauge(
            "smartfarm_bridge_in_flight", "MQTT messages received and not yet acknowledged", registry=r
        )
        self.kafka_latency = Histogram(
            "smartfarm_bridge_kafka_delivery_seconds",
            "from MQTT receipt to Kafka's acks=all confirmation",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.kafka_resends = Counter(
            "smartfarm_bridge_kafka_resends", "records sent to Kafka again after a delivery failure", registry=r
        )
        self.reconnects = Counter("smartfarm_bridge_reconnects", "MQTT reconnections", ["link"], registry=r)
        self.egress_published = Counter(
            "smartfarm_bridge_egress_published", "recommendations published to MQTT and acknowledged", registry=r
        )

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics`` over HTTP; return the port (a free one when ``port`` is 0)."""
        self._server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(self._server.server_port)

    def close(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            server.shutdown()
            server.server_close()
