"""The original prototype's module path, kept importable: the detector lives in ``core.detector``."""

from anomaly_detection.core.detector import StatisticalAnomalyDetector  # noqa: F401
