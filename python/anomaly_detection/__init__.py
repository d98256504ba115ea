"""Real-time anomaly detection for metric and sensor streams, on a C++17 core.

>>> from anomaly_detection import StatisticalAnomalyDetector
>>> detector = StatisticalAnomalyDetector()          # embedded store, settings from the env
>>> result = detector.detect("sensor-1", 21.5)

The names below are imported on first use (PEP 562), so that ``import
anomaly_detection.sketches`` (or any submodule) loads neither pydantic nor the
stores and forests it does not need.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("anomaly-detection-core")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+local"

if TYPE_CHECKING:
    from anomaly_detection._core import release_memory
    from anomaly_detection.config.settings import METHODS, Settings, get_settings
    from anomaly_detection.core.detector import StatisticalAnomalyDetector
    from anomaly_detection.core.results import AnomalyResult, BatchResult
    from anomaly_detection.errors import (
        AnomalyDetectionError,
        NotFittedError,
        SensorLimitError,
        StoreUnavailableError,
    )
    from anomaly_detection.forest import HalfSpaceTrees, IsolationForest
    from anomaly_detection.stores.base import SensorWindow

#: Public name -> the module that defines it.
_LAZY = {
    "METHODS": "anomaly_detection.config.settings",
    "Settings": "anomaly_detection.config.settings",
    "get_settings": "anomaly_detection.config.settings",
    "AnomalyResult": "anomaly_detection.core.results",
    "BatchResult": "anomaly_detection.core.results",
    "StatisticalAnomalyDetector": "anomaly_detection.core.detector",
    "AnomalyDetectionError": "anomaly_detection.errors",
    "NotFittedError": "anomaly_detection.errors",
    "SensorLimitError": "anomaly_detection.errors",
    "StoreUnavailableError": "anomaly_detection.errors",
    "HalfSpaceTrees": "anomaly_detection.forest",
    "IsolationForest": "anomaly_detection.forest",
    "SensorWindow": "anomaly_detection.stores.base",
    "release_memory": "anomaly_detection._core",
}

__all__ = [
    "METHODS",
    "AnomalyDetectionError",
    "AnomalyResult",
    "BatchResult",
    "HalfSpaceTrees",
    "IsolationForest",
    "NotFittedError",
    "SensorLimitError",
    "SensorWindow",
    "Settings",
    "StatisticalAnomalyDetector",
    "StoreUnavailableError",
    "__version__",
    "get_settings",
    "release_memory",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'anomaly_detection' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access skips this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
