"""Real-time anomaly detection for metric and sensor streams, on a C++17 core.

>>> from anomaly_detection import StatisticalAnomalyDetector
>>> detector = StatisticalAnomalyDetector()          # embedded store, settings from the env
>>> result = detector.detect("sensor-1", 21.5)
"""

from importlib.metadata import PackageNotFoundError, version

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

try:
    __version__ = version("anomaly-detection-core")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+local"

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
]
