"""Peers: other tools doing our pipeline's job (MQTT into InfluxDB), run on the same services to compare with."""
