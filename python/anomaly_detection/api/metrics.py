"""Prometheus metrics of one app, in a registry of its own (apps never share counters)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "ServiceMetrics"]


class ServiceMetrics:
    """Requests, points ingested, anomalies by method, detection latency, store errors."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "anomaly_http_requests_total", "HTTP requests by method, route and status.",
            ["method", "route", "status"], registry=self.registry,
        )  # fmt: skip
        self.points = Counter(
            "anomaly_points_ingested_total", "Points scored by the detector, by source.",
            ["source"], registry=self.registry,
        )  # fmt: skip
        self.anomalies = Counter(
            "anomaly_anomalies_total", "Anomalies found, by method.", ["method"], registry=self.registry
        )
        self.latency = Histogram(
            "anomaly_detection_latency_seconds", "Time spent scoring one request's points.",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )  # fmt: skip
        self.store_errors = Counter(
            "anomaly_store_errors_total", "Errors of the sensor store (e.g. Redis unreachable).",
            registry=self.registry,
        )  # fmt: skip
        self.sse_clients = Gauge(
            "anomaly_sse_clients", "Open Server-Sent-Events connections.", registry=self.registry
        )
        self.sensors = Gauge("anomaly_sensors", "Sensors with state.", registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
