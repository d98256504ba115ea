"""The default store: the C++ registry of ring buffers, in this process."""

from __future__ import annotations

from typing import Any

import numpy as np

from anomaly_detection import _core
from anomaly_detection.stores.base import SensorWindow

__all__ = ["EmbeddedStore", "config_from_settings"]

_EMPTY = np.empty(0, dtype=np.float64)


def config_from_settings(settings: Any) -> _core.DetectorConfig:
    """The core's DetectorConfig for a Settings object (``Settings.to_detector_config``)."""
    return settings.to_detector_config()


class EmbeddedStore:
    """Thread-safe, in-process sensor windows and scoring (no server needed)."""

    kind = "embedded"

    def __init__(
        self, config: _core.DetectorConfig | None = None, registry: _core.SensorRegistry | None = None
    ):
        if registry is None:
            if config is None:
                raise ValueError("EmbeddedStore needs a config or a registry")
            registry = _core.SensorRegistry(config)
        self.registry = registry
        # The registry's own method: one Python frame less on the per-point path.
        self.detect = registry.detect

    def detect_batch(self, sensor: str, values: np.ndarray, timestamps: np.ndarray):
        return self.registry.detect_batch(sensor, values, timestamps)

    def detect_many(
        self, sensors: list[str], values: list[np.ndarray], timestamps: list[np.ndarray], threads: int = 0
    ) -> list[tuple]:
        return self.registry.detect_many(sensors, values, timestamps, threads)

    def window(self, sensor: str) -> SensorWindow:
        found = self.registry.window(sensor)
        return SensorWindow(*found) if found is not None else SensorWindow(_EMPTY.copy(), _EMPTY.copy())

    def summary(self, sensor: str) -> dict[str, Any] | None:
        return self.registry.summary(sensor)

    def reset(self, sensor: str) -> bool:
        return self.registry.reset(sensor)

    def sensors(self) -> list[str]:
        return sorted(self.registry.sensors())

    def health(self) -> dict[str, Any]:
        return {"store": self.kind, "degraded": False, "sensors": len(self.registry)}

    def to_bytes(self) -> bytes:
        return self.registry.to_bytes()
