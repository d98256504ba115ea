"""Alerts in Redis, written in one place, and the one severity rule.

An alert is written once (:class:`AlertWriter`) in this layout:

- appended to the capped stream ``anomaly:stream:alerts`` (``XADD MAXLEN ~``, field
  ``alert``, JSON) that consumer groups read, including what arrived while they were
  offline; the stream id (``<ms>-<seq>``) is the alert's ``id``;
- stored under ``anomaly:alerts:<id>`` (7-day TTL) and indexed by the point's timestamp
  (:meth:`AnomalyRedisManager.list_alerts`, ``GET /api/anomalies``);
- published on the channel ``anomaly:channel:alerts`` for live listeners.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from anomaly_detection.redis.codec import dumps, text
from anomaly_detection.redis.manager import AnomalyRedisManager

__all__ = ["AlertWriter", "RedisAlertSink", "alert_from_result", "alert_record", "severity_of"]


def severity_of(deviation: float, threshold: float) -> str:
    """``critical`` when the deviation is at least twice the threshold that flags it, else ``warning``.

    The one severity rule of every alert: a detector's (its deviation and threshold), a
    business metric's (how far outside its expected range), a fingerprint's (its largest
    robust deviation).
    """
    return "critical" if abs(deviation) >= 2.0 * threshold else "warning"


def alert_record(kind: str, deviation: float, threshold: float, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The document of every alert: ``type`` (``anomaly``, ``fingerprint``, ``expected_range``),
    ``severity`` by the one rule from ``deviation`` and ``threshold``, then ``fields`` (with at
    least ``sensor_name``, ``method`` and the point's ``timestamp``)."""
    return {"type": kind, "severity": severity_of(deviation, threshold), **fields}


def alert_from_result(result: Any, alert_id: str | None = None, **extra: Any) -> dict[str, Any]:
    """The document of an alert for an anomalous ``AnomalyResult``, with the ``extra`` fields
    (such as ``source``); the writer gives the id unless ``alert_id`` is passed."""
    alert = alert_record("anomaly", result.deviation, result.threshold, {**result.to_dict(), **extra})
    return alert if alert_id is None else {"id": alert_id, **alert}


class AlertWriter:
    """Writes alerts (any JSON mapping with a ``timestamp``) in the layout above.

    Parameters
    ----------
    client : redis.Redis or redis.cluster.RedisCluster
        A synchronous client (alerts are written in the detecting thread).
    settings : Settings
        Key prefix, hash tags and ``alerts_stream_maxlen``.
    index_size : int
        How many alert ids the time index keeps.
    """

    def __init__(self, client: Any, settings: Any, index_size: int = 10_000) -> None:
        self.client = client
        self.manager = AnomalyRedisManager(client, settings, alerts_index_size=index_size)
        self.keys = self.manager.keys
        self.stream = self.keys.alerts_stream()
        self.maxlen = settings.alerts_stream_maxlen

    def write(self, alert: Mapping[str, Any]) -> dict[str, Any]:
        """Append, store, index and publish ``alert``; returns it with its ``id`` and ``received_at``."""
        doc = {"received_at": time.time(), **alert}
        doc.pop("id", None)
        payload = dumps(doc)
        stream_id = text(
            self.client.xadd(self.stream, {"alert": payload}, maxlen=self.maxlen, approximate=True)
        )
        stored = {"id": stream_id, **doc}
        self.manager.store_alert(stream_id, stored, timestamp=doc.get("timestamp"))
        self.client.publish(self.keys.alerts_channel(), dumps(stored))
        return stored


class RedisAlertSink:
    """An alert listener (``detector.add_alert_listener(sink)``) that writes alerts to Redis.

    Parameters
    ----------
    redis_client : redis.Redis or redis.cluster.RedisCluster
    settings : Settings
        Key prefix, hash tags and ``alerts_stream_maxlen``.
    """

    def __init__(self, redis_client: Any, settings: Any) -> None:
        self.writer = AlertWriter(redis_client, settings)
        self.keys = self.writer.keys

    def __call__(self, result: Any) -> dict[str, Any]:
        return self.writer.write(alert_from_result(result))
