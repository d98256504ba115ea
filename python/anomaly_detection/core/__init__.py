"""Detection facade."""

from anomaly_detection.core.results import AnomalyResult, BatchResult
from anomaly_detection.core.StatisticalAnomalyDetector import StatisticalAnomalyDetector

__all__ = ["AnomalyResult", "BatchResult", "StatisticalAnomalyDetector"]
