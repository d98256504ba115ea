"""System fingerprints: per-interval feature vectors of a distributed system (request
rate, error rates, latency quantiles, endpoints, new service->endpoint edges, log error
rate, business metrics out of range), built from sketches, and an IsolationForest that
learns the normal ones and alerts on the rest, naming the features that changed."""

from anomaly_detection.fingerprints.aggregator import (
    FEATURE_NAMES,
    Fingerprint,
    FingerprintAggregator,
    read_stream,
)
from anomaly_detection.fingerprints.detector import FingerprintDetector, FingerprintScore
from anomaly_detection.fingerprints.pipeline import FingerprintPipeline

__all__ = [
    "FEATURE_NAMES",
    "Fingerprint",
    "FingerprintAggregator",
    "FingerprintDetector",
    "FingerprintPipeline",
    "FingerprintScore",
    "read_stream",
]
