"""Stores of per-sensor state."""

from anomaly_detection.stores.base import SensorStore, SensorWindow
from anomaly_detection.stores.embedded import EmbeddedStore

__all__ = ["EmbeddedStore", "SensorStore", "SensorWindow"]
