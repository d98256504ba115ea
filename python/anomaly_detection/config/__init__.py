"""Settings."""

from anomaly_detection.config.settings import METHODS, Settings, get_settings

__all__ = ["METHODS", "Settings", "get_settings"]
