"""Domain errors, defined once and exported from the package root."""

from __future__ import annotations

# FilterFullError (a RuntimeError: a Bloom or cuckoo filter has no room and may not grow)
# is raised by the C++ core, so it is defined there and re-exported here.
from anomaly_detection._core import FilterFullError, SensorLimitError

__all__ = [
    "AnomalyDetectionError",
    "FilterFullError",
    "NotFittedError",
    "SensorLimitError",
    "StoreUnavailableError",
]


class AnomalyDetectionError(Exception):
    """Base class of the errors this package defines in Python."""


class StoreUnavailableError(AnomalyDetectionError, RuntimeError):
    """The shared store (Redis) cannot be reached and the fallback policy is strict."""


class NotFittedError(AnomalyDetectionError, ValueError, AttributeError):
    """A model was used before ``fit`` (same bases as scikit-learn's)."""
