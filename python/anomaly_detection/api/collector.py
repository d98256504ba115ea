"""The collector: turns the original prototype's records (application metrics, business metrics,
logs) into detector points on derived sensor names.

Sensor names are built from the record's fields and sanitised so that they are
valid sensor names (and Redis key parts):

- application metric ``m`` of ``service`` / ``endpoint`` -> ``<service>.<endpoint>.<m>``
  (``status_code`` becomes ``<service>.<endpoint>.error``: 1 for 5xx, else 0);
- business metric -> ``business.<metric_name>``; a value outside ``expected_range``
  also raises an alert of method ``expected_range``;
- logs -> ``logs.<service>.error_rate``: the number of ERROR/CRITICAL/FATAL records per
  ``log_rate_interval`` seconds (server clock), emitted when the interval closes.

A later fingerprint pipeline plugs in with :meth:`Collector.add_sink`: every accepted
record is passed to each sink as ``(kind, body)``.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pydantic import BaseModel

from anomaly_detection.api.models import (
    BusinessMetricRequest,
    DetectRequest,
    LogRequest,
    MetricRequest,
)

__all__ = ["Collector", "Point", "sensor_name_for"]

# What the core's sensor-name rule refuses (cpp/src/detectors/method.cpp): the key layout's
# characters, whitespace, controls and invisible characters; and path separators.
_UNSAFE = re.compile(
    r"[:*?\[\]{}\s/\\\x00-\x20\x7f-\xa0\xad\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\ufeff\ufff9-\ufffb]+"
)
_MAX_NAME_BYTES = 200
#: At most this many empty intervals are emitted for a quiet service (a long silence
#: is not a stream of zeros worth scoring point by point).
_MAX_GAP_BUCKETS = 60


class Point(NamedTuple):
    sensor: str
    value: float
    timestamp: float | None
    source: str


def _part(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("_.") or "_"


def sensor_name_for(*parts: str) -> str:
    """A valid sensor name joining sanitised ``parts`` with dots (hashed if over 200 bytes)."""
    name = ".".join(_part(p) for p in parts if p)
    raw = name.encode()
    if len(raw) > _MAX_NAME_BYTES:
        digest = hashlib.sha1(raw).hexdigest()[:12]
        name = raw[: _MAX_NAME_BYTES - 13].decode(errors="ignore") + "~" + digest
    return name


@dataclass
class _LogBucket:
    start: float
    errors: int = 0
    total: int = 0


@dataclass
class Collector:
    """Turns validated collector records into detector points; thread-safe."""

    log_rate_interval: float = 10.0
    clock: Callable[[], float] = time.time
    records: dict[str, int] = field(
        default_factory=lambda: {"metric": 0, "business": 0, "log": 0, "point": 0}
    )
    _sinks: list[Callable[[str, BaseModel], None]] = field(default_factory=list)
    _buckets: dict[str, _LogBucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_sink(self, sink: Callable[[str, BaseModel], None]) -> None:
        """Call ``sink(kind, body)`` for each accepted record (kind: metric, business, log, point)."""
        self._sinks.append(sink)

    def points(self, kind: str, body: BaseModel) -> list[Point]:
        """The detector points of one validated record (:meth:`accept` counts it once its
        points are stored: a refused request leaves the counts and the sinks as they were)."""
        if isinstance(body, MetricRequest):
            out = self._metric(body)
        elif isinstance(body, BusinessMetricRequest):
            out = [Point(sensor_name_for("business", body.name), body.value, body.timestamp, "business")]
        elif isinstance(body, LogRequest):
            out = self._log(body)
        elif isinstance(body, DetectRequest):
            out = [Point(body.sensor_name, body.value, body.timestamp, "point")]
        else:
            raise TypeError(f"unknown record type {type(body).__name__}")
        return out

    def accept(self, records: Iterable[tuple[str, BaseModel]]) -> None:
        """Count the records whose points were stored and pass each to the sinks."""
        for kind, body in records:
            if isinstance(body, LogRequest):
                self._count_log(body)
            with self._lock:
                self.records[kind] = self.records.get(kind, 0) + 1
            for sink in self._sinks:
                sink(kind, body)

    def count(self, kind: str, n: int = 1) -> None:
        """Count ``n`` records of ``kind`` that were turned into points elsewhere."""
        with self._lock:
            self.records[kind] = self.records.get(kind, 0) + n

    def points_of_many(self, records: Iterable[tuple[str, BaseModel]]) -> list[Point]:
        out: list[Point] = []
        for kind, body in records:
            out.extend(self.points(kind, body))
        return out

    def _metric(self, body: MetricRequest) -> list[Point]:
        base = (body.service, body.endpoint or "")
        out = []
        for name, value in body.measurements.items():
            if name == "status_code":
                out.append(
                    Point(sensor_name_for(*base, "error"), float(value >= 500), body.timestamp, "metric")
                )
            else:
                out.append(Point(sensor_name_for(*base, name), value, body.timestamp, "metric"))
        return out

    # --- logs: error counts per interval -----------------------------------------------

    def _log(self, body: LogRequest) -> list[Point]:
        """The points of the service's interval if it has closed; :meth:`accept` counts the record."""
        with self._lock:
            return self._close_bucket(sensor_name_for(body.service), self.clock())

    def _count_log(self, body: LogRequest) -> None:
        now = self.clock()
        service = sensor_name_for(body.service)
        with self._lock:  # an interval that ended since _log is closed by the next flush, with it
            bucket = self._buckets.get(service)
            if bucket is None:
                bucket = self._buckets[service] = _LogBucket(self._bucket_start(now))
            bucket.total += 1
            bucket.errors += body.is_error

    def _bucket_start(self, now: float) -> float:
        return now - (now % self.log_rate_interval)

    def _close_bucket(self, service: str, now: float) -> list[Point]:
        """Points for the closed intervals of ``service`` (caller holds the lock)."""
        bucket = self._buckets.get(service)
        if bucket is None or now < bucket.start + self.log_rate_interval:
            return []
        sensor = sensor_name_for("logs", service, "error_rate")
        step = self.log_rate_interval
        out = [Point(sensor, float(bucket.errors), bucket.start + step, "log")]
        current = self._bucket_start(now)
        gaps = min(round((current - bucket.start) / step) - 1, _MAX_GAP_BUCKETS)
        out.extend(Point(sensor, 0.0, bucket.start + (i + 2) * step, "log") for i in range(max(gaps, 0)))
        del self._buckets[service]
        return out

    def flush_logs(self, now: float | None = None) -> list[Point]:
        """Points of every interval that has closed by ``now`` (the service calls this periodically)."""
        now = self.clock() if now is None else now
        with self._lock:
            out: list[Point] = []
            for service in list(self._buckets):
                out.extend(self._close_bucket(service, now))
        return out

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"records": dict(self.records), "open_log_buckets": len(self._buckets)}
