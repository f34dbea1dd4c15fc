"""The edge: field devices (real or simulated) and what they publish over MQTT."""
