"""Alerts in Redis: see :mod:`anomaly_detection.redis.alerts` (this module is the older import path)."""

from anomaly_detection.redis.alerts import RedisAlertSink, alert_from_result

__all__ = ["RedisAlertSink", "alert_from_result"]
