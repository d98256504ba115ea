"""Alerts in Redis: each anomaly is stored under ``anomaly:alerts:<id>`` (7-day
TTL, indexed for :meth:`AnomalyRedisManager.list_alerts`), published on the
channel ``anomaly:channel:alerts`` for live listeners, and appended to the capped
stream ``anomaly:stream:alerts`` (``XADD MAXLEN ~``) that consumer groups read,
including what arrived while they were offline."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from anomaly_detection.core.results import AnomalyResult
from anomaly_detection.utils.redis_namespaces import AnomalyRedisKeys, AnomalyRedisManager

__all__ = ["RedisAlertSink", "alert_from_result"]

_log = logging.getLogger(__name__)


def alert_from_result(result: AnomalyResult, alert_id: str | None = None) -> dict[str, Any]:
    """The JSON document of an alert for an anomalous result."""
    return {
        "id": alert_id or uuid.uuid4().hex,
        "type": "anomaly",
        "severity": "critical" if result.score >= 0.9999 else "warning",
        **result.to_dict(),
    }


class RedisAlertSink:
    """An alert listener (``detector.add_alert_listener(sink)``) that writes alerts to Redis.

    Parameters
    ----------
    redis_client : redis.Redis or redis.cluster.RedisCluster
    settings : Settings
        Key prefix, hash tags and ``alerts_stream_maxlen``.
    """

    def __init__(self, redis_client: Any, settings: Any) -> None:
        self.redis = redis_client
        self.manager = AnomalyRedisManager(redis_client, settings)
        self.keys: AnomalyRedisKeys = self.manager.keys
        self.maxlen = settings.alerts_stream_maxlen

    def __call__(self, result: AnomalyResult) -> dict[str, Any]:
        alert = alert_from_result(result)
        self.manager.store_alert(alert["id"], alert, timestamp=result.timestamp)
        payload = json.dumps(alert, separators=(",", ":"), allow_nan=False)
        pipe = self.redis.pipeline(transaction=False)
        pipe.publish(self.keys.alerts_channel(), payload)
        pipe.xadd(self.keys.alerts_stream(), {"alert": payload}, maxlen=self.maxlen, approximate=True)
        pipe.execute()
        return alert
