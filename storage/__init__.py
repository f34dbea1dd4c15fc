"""Storage: the InfluxDB measurement schema and the client that writes and queries it."""
