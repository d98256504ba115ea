"""Client SDK of the HTTP service: ``AnomalyClient`` (sync) and ``AsyncAnomalyClient``.

With the service running (tested in ``tests/python/test_client.py``)::

    from anomaly_detection.client import AnomalyClient
    client = AnomalyClient("http://127.0.0.1:8000", api_key=None)
    client.send_business_metric("daily_revenue", 45000, [40000, 60000])
"""

from anomaly_detection.client.client import AnomalyClient, AnomalyClientError, AsyncAnomalyClient

__all__ = ["AnomalyClient", "AnomalyClientError", "AsyncAnomalyClient"]
