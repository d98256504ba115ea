"""Detection facade."""

from anomaly_detection.core.detector import StatisticalAnomalyDetector
from anomaly_detection.core.results import AnomalyResult, BatchResult

__all__ = ["AnomalyResult", "BatchResult", "StatisticalAnomalyDetector"]
