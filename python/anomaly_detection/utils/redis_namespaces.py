"""The key layout and its managers, at the import path of the original prototype.

They live in :mod:`anomaly_detection.redis` (``keys`` and ``manager``); this module keeps
``from anomaly_detection.utils.redis_namespaces import AnomalyRedisKeys, AnomalyRedisTTL,
AnomalyRedisManager`` working.
"""

from anomaly_detection.redis.keys import METRIC_INTERVALS, AnomalyRedisKeys, AnomalyRedisTTL, check_key_part
from anomaly_detection.redis.manager import AnomalyRedisManager, AsyncAnomalyRedisManager, MigrationPlan

__all__ = [
    "METRIC_INTERVALS",
    "AnomalyRedisKeys",
    "AnomalyRedisManager",
    "AnomalyRedisTTL",
    "AsyncAnomalyRedisManager",
    "MigrationPlan",
    "check_key_part",
]
