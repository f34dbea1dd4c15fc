"""The stream: the MQTT <-> Kafka bridge, the Faust agents, and the Kafka records they exchange."""
