"""SmartFarm: an event-driven IoT stream processor for farms."""

__version__ = "0.1.0"
