"""Utilities: the Redis key layout and its manager."""

from anomaly_detection.utils.redis_namespaces import (
    METRIC_INTERVALS,
    AnomalyRedisKeys,
    AnomalyRedisManager,
    AnomalyRedisTTL,
    MigrationPlan,
)

__all__ = ["METRIC_INTERVALS", "AnomalyRedisKeys", "AnomalyRedisManager", "AnomalyRedisTTL", "MigrationPlan"]
