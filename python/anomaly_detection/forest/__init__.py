"""Multivariate detection with random trees: IsolationForest (batch) and HalfSpaceTrees (streaming)."""

from __future__ import annotations

from anomaly_detection.forest.half_space_trees import HalfSpaceTrees
from anomaly_detection.forest.isolation_forest import IsolationForest

__all__ = ["HalfSpaceTrees", "IsolationForest"]
