"""Everything this package keeps in Redis: the key layout (``keys``), one vocabulary of
operations run on sync and asyncio clients (``driver``), the Lua scripts (``scripts``; the
shared sketches' in ``sketch_scripts``), the encoding of values (``codec``), the manager of
every key kind (``manager``), the alert document, writer and severity rule (``alerts``) and
the client factory (``client``).

Nothing here imports redis-py at import time, nor anything above the stores.
"""

from anomaly_detection.redis.keys import AnomalyRedisKeys, AnomalyRedisTTL
from anomaly_detection.redis.manager import AnomalyRedisManager, AsyncAnomalyRedisManager

__all__ = ["AnomalyRedisKeys", "AnomalyRedisManager", "AnomalyRedisTTL", "AsyncAnomalyRedisManager"]
