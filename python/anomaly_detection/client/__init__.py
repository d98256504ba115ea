"""Client SDK of the HTTP service: ``AnomalyClient`` (sync) and ``AsyncAnomalyClient``.

With the service running (tested in ``tests/python/test_client.py``)::

    from anomaly_detection.client import AnomalyClient
    client = AnomalyClient("http://127.0.0.1:8000", api_key=None)
    client.send_business_metric("daily_revenue", 45000, [40000, 60000])
"""

try:
    from anomaly_detection.client.client import (
        AnomalyClient,
        AnomalyClientError,
        AsyncAnomalyClient,
        new_idempotency_key,
    )
except ModuleNotFoundError as exc:
    if exc.name not in ("httpx", "tenacity", "typing_extensions"):
        raise
    raise ModuleNotFoundError(
        f"{exc}: the client SDK needs the client extra: pip install 'anomaly-detection-core[client]'",
        name=exc.name,
    ) from exc

__all__ = ["AnomalyClient", "AnomalyClientError", "AsyncAnomalyClient", "new_idempotency_key"]
