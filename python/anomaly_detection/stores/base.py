"""What a store of sensor state offers the detector facade."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import numpy as np

__all__ = ["DetectionTuple", "SensorStore", "SensorWindow"]

#: (value, timestamp, is_anomaly, score, deviation, expected, window_count)
DetectionTuple = tuple[float, float, bool, float, float, float, int]


class SensorWindow(NamedTuple):
    """A sensor's window, oldest first."""

    values: np.ndarray
    timestamps: np.ndarray


class SensorStore(Protocol):
    """Keeps per-sensor windows; appends points and has them scored by the core."""

    #: ``"embedded"`` or ``"redis"``.
    kind: str

    def detect(self, sensor: str, value: float, timestamp: float) -> DetectionTuple: ...

    def detect_batch(
        self, sensor: str, values: np.ndarray, timestamps: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per point: is_anomaly, score, deviation, expected, window_count, alert_score."""
        ...

    def window(self, sensor: str) -> SensorWindow: ...

    def summary(self, sensor: str) -> dict[str, Any] | None: ...

    def progress(self, sensor: str, fresh: bool = False) -> tuple[int, int | None] | None:
        """(points seen, the point count from which the sensor's points are past the warm-up, or
        None while not known to be reached); None where the store cannot tell without awaiting.
        ``fresh``: not from a state this process cached (others may have written since)."""
        ...

    def reset(self, sensor: str) -> bool: ...

    def sensors(self) -> list[str]: ...

    def health(self) -> dict[str, Any]: ...
