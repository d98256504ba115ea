"""Utilities: the Redis key layout and its managers (sync and asyncio)."""

from anomaly_detection.utils.redis_namespaces import (
    METRIC_INTERVALS,
    AnomalyRedisKeys,
    AnomalyRedisManager,
    AnomalyRedisTTL,
    AsyncAnomalyRedisManager,
    MigrationPlan,
)

__all__ = [
    "METRIC_INTERVALS",
    "AnomalyRedisKeys",
    "AnomalyRedisManager",
    "AnomalyRedisTTL",
    "AsyncAnomalyRedisManager",
    "MigrationPlan",
]
