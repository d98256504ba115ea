"""Client SDK of the HTTP service: ``AnomalyClient`` (sync) and ``AsyncAnomalyClient``.

>>> from anomaly_detection.client import AnomalyClient
>>> client = AnomalyClient("http://127.0.0.1:8000", api_key=None)   # doctest: +SKIP
>>> client.send_business_metric("daily_revenue", 45000, [40000, 60000])   # doctest: +SKIP
"""

from anomaly_detection.client.client import AnomalyClient, AnomalyClientError, AsyncAnomalyClient

__all__ = ["AnomalyClient", "AnomalyClientError", "AsyncAnomalyClient"]
