"""Prometheus metrics of one app, in a registry of its own (apps never share counters).

Under ``anomaly-detection serve --workers N`` (N > 1) ``serve`` sets ``PROMETHEUS_MULTIPROC_DIR``
to a temporary folder before the workers start: prometheus-client's multiprocess mode then
keeps every worker's values in files there, and a scrape of ``/metrics`` on any worker
reports the sums over all of them (``prometheus_client.multiprocess``).
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "ServiceMetrics", "multiprocess_dir"]


def multiprocess_dir() -> str | None:
    """The folder of prometheus-client's multiprocess mode, when it is on."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class ServiceMetrics:
    """Requests, points ingested, anomalies by method, detection latency, store errors."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        #: Whether the values are shared by the workers (prometheus-client's multiprocess mode).
        self.multiprocess = multiprocess_dir() is not None
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
        # Across workers: open SSE connections add up (live workers only); the sensor count is
        # the largest a worker saw (with Redis every worker sees the same sensors).
        self.sse_clients = Gauge(
            "anomaly_sse_clients", "Open Server-Sent-Events connections.", registry=self.registry,
            multiprocess_mode="livesum",
        )  # fmt: skip
        self.sensors = Gauge(
            "anomaly_sensors", "Sensors with state.", registry=self.registry, multiprocess_mode="livemax"
        )

    def render(self) -> bytes:
        """The exposition: this app's registry, or in multiprocess mode every worker's values."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)

    def mark_process_dead(self) -> None:
        """In multiprocess mode, drop this worker's live gauges (called when the app stops)."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())
