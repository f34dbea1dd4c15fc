"""The farm server's HTTP API (FastAPI): the farm registry and what the stream knows, for people and systems."""
