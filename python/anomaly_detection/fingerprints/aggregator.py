"""Per-interval system fingerprints: application metrics, business metrics and logs
folded into sketches, one named feature vector per interval."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anomaly_detection.redis.codec import text
from anomaly_detection.redis.driver import redis_errors
from anomaly_detection.sketches import BloomFilter, HyperLogLog, TDigest, TopK

__all__ = ["FEATURE_NAMES", "Fingerprint", "FingerprintAggregator", "read_stream"]

#: The features of a fingerprint, in vector order.
FEATURE_NAMES: tuple[str, ...] = (
    "request_rate",  # requests per second
    "error_4xx_rate",  # share of requests with a 4xx status
    "error_5xx_rate",  # share of requests with a 5xx status
    "latency_p50",  # response-time quantiles (the caller's unit, ms in the original prototype)
    "latency_p95",
    "latency_p99",
    "distinct_endpoints",  # HyperLogLog estimate
    "distinct_services",
    "new_edges",  # service->endpoint edges never seen before (Bloom filter)
    "top_endpoint_share",  # share of requests to the heaviest endpoint (top-k)
    "log_rate",  # log records per second
    "log_error_rate",  # share of log records at ERROR, CRITICAL or FATAL
    "business_metrics",  # business records per second
    "business_out_of_range",  # share of business records outside their expected_range
)

_ERROR_LEVELS = frozenset({"ERROR", "CRITICAL", "FATAL"})
_LEVELS = frozenset({"DEBUG", "INFO", "NOTICE", "WARNING", "WARN", "ERR", *_ERROR_LEVELS})
_log = logging.getLogger(__name__)

#: The shortest interval (seconds).
MIN_INTERVAL = 1e-3
#: Values buffered before they go to the sketches in one native call.
_CHUNK = 1024


@dataclass(frozen=True)
class Fingerprint:
    """One interval ``[start, end)`` of the system as a vector of named features."""

    start: float
    end: float
    values: np.ndarray
    names: tuple[str, ...] = FEATURE_NAMES
    counts: Mapping[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        """Feature name -> value."""
        return dict(zip(self.names, self.values.tolist()))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready document (``from_dict`` reads it back)."""
        return {
            "start": self.start,
            "end": self.end,
            "features": self.as_dict(),
            "vector": self.values.tolist(),
            "counts": dict(self.counts),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Fingerprint:
        """The fingerprint of a :meth:`to_dict` document; ValueError if it is not one."""
        try:
            features = doc["features"]
            if not isinstance(features, Mapping):
                raise TypeError(f"features: expected an object, got {type(features).__name__}")
            names = tuple(features)
            raw = [features[n] for n in names]
            if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in raw):
                raise TypeError("features: expected numbers")
            values = np.array(raw, dtype=np.float64)
            start, end = float(doc["start"]), float(doc["end"])
            counts = doc.get("counts", {})
            if not isinstance(counts, Mapping):
                raise TypeError(f"counts: expected an object, got {type(counts).__name__}")
            counts = {str(k): int(v) for k, v in counts.items()}
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as e:
            raise ValueError(f"not a fingerprint document: {e!r}") from None
        if not np.isfinite(values).all() or not (math.isfinite(start) and math.isfinite(end)):
            raise ValueError("not a fingerprint document: non-finite values")
        values.setflags(write=False)
        return cls(start, end, values, names, counts)


class _Interval:
    """The sketches of the interval being filled."""

    def __init__(self, seed: int) -> None:
        self.requests = self.n4xx = self.n5xx = 0
        self.logs = self.log_errors = 0
        self.business = self.out_of_range = 0
        self.new_edges = 0
        self.latency = TDigest(compression=100)
        self.endpoints = HyperLogLog(precision=12)
        self.services = HyperLogLog(precision=10)
        self.top = TopK(k=1, width=64, depth=4, seed=seed)
        self._latencies: list[float] = []
        self._endpoints: list[str] = []

    def add_request(self, service: str, endpoint: str, latency: float | None, status: int | None) -> None:
        self.requests += 1
        if status is not None:
            self.n4xx += 400 <= status < 500
            self.n5xx += status >= 500
        if latency is not None:
            self._latencies.append(latency)
        self._endpoints.append(endpoint)
        self.services.add(service)
        if len(self._latencies) >= _CHUNK or len(self._endpoints) >= _CHUNK:
            self._drain()

    def _drain(self) -> None:
        if self._latencies:
            self.latency.add(np.asarray(self._latencies, dtype=np.float64))
            self._latencies.clear()
        if self._endpoints:
            batch = np.asarray(self._endpoints, dtype=object)
            self.endpoints.add(batch)
            self.top.add(batch)
            self._endpoints.clear()

    def features(self, seconds: float) -> np.ndarray:
        self._drain()
        if self.latency.total_weight > 0:
            p50, p95, p99 = (float(q) for q in self.latency.quantile([0.5, 0.95, 0.99]))
        else:
            p50 = p95 = p99 = 0.0
        top = self.top.list(with_count=True)
        top_share = min(top[0][1] / self.requests, 1.0) if top and self.requests else 0.0
        req = max(self.requests, 1)
        return np.array(
            [
                self.requests / seconds,
                self.n4xx / req,
                self.n5xx / req,
                p50,
                p95,
                p99,
                float(self.endpoints.count()) if self.requests else 0.0,
                float(self.services.count()) if self.requests else 0.0,
                float(self.new_edges),
                top_share,
                self.logs / seconds,
                self.log_errors / max(self.logs, 1),
                self.business / seconds,
                self.out_of_range / max(self.business, 1),
            ],
            dtype=np.float64,
        )


def _check_time(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what}: expected a finite number of epoch seconds, got {value!r}")
    return float(value)


def _check_text(value: Any, what: str, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not empty):
        raise ValueError(f"{what}: expected a non-empty str, got {value!r}")
    return value


class FingerprintAggregator:
    """Folds collector records into per-interval sketches and emits one :class:`Fingerprint`
    per interval.

    An interval ``[k * interval, (k + 1) * interval)`` closes when an event at or after its
    end arrives, or when :meth:`flush` is called with such a ``now``. Quiet intervals in
    between are emitted too (all-zero traffic), at most ``max_gap`` of them; after a longer
    silence the aggregator jumps to the current interval. An event older than the open
    interval is folded into the open interval (counted in ``late``).

    Parameters
    ----------
    interval : float
        Seconds per fingerprint (5 s as in the original prototype), at least ``MIN_INTERVAL`` (1 ms).
    redis_client : redis client, optional
        Each fingerprint is appended to the capped stream ``<prefix>:stream:fingerprints``
        (``XADD MAXLEN ~ stream_maxlen``) with fields ``data`` (the vector as JSON, as in the
        seed) and ``fingerprint`` (:meth:`Fingerprint.to_dict` as JSON).
    settings : Settings, optional
        Key prefix and hash tags (default :func:`get_settings`); used with ``redis_client``.
    stream_maxlen : int
        Approximate cap of the stream.
    history : int
        How many recent fingerprints :meth:`recent` keeps.
    max_gap : int
        Most quiet intervals emitted after a silence.
    clock : callable
        Time of events without a timestamp; an event timestamped more than one interval
        ahead of it is taken at its time (counted in ``early``), so that one far-future
        timestamp cannot move every later event into the past.
    seed : int
        Seed of the top-k sketch (the rest is deterministic).

    Examples
    --------
    >>> agg = FingerprintAggregator(interval=5.0)
    >>> agg.add_metric("web", "GET:/", response_time=12.0, status_code=200, timestamp=100.0)
    []
    >>> agg.add_metric("web", "GET:/", response_time=30.0, status_code=503, timestamp=101.0)
    []
    >>> [fp] = agg.flush(now=105.0)
    >>> fp.start, fp.end, fp.as_dict()["error_5xx_rate"]
    (100.0, 105.0, 0.5)
    """

    def __init__(
        self,
        interval: float = 5.0,
        *,
        redis_client: Any = None,
        settings: Any = None,
        stream_maxlen: int = 10_000,
        history: int = 1_000,
        max_gap: int = 60,
        clock: Callable[[], float] = time.time,
        seed: int = 0,
    ) -> None:
        interval = _check_time(interval, "interval")
        if interval < MIN_INTERVAL:  # shorter ones lose epoch seconds' resolution (start + interval == start)
            raise ValueError(f"interval: expected >= {MIN_INTERVAL} seconds, got {interval!r}")
        for name, value in (("stream_maxlen", stream_maxlen), ("history", history), ("max_gap", max_gap)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        self.interval = interval
        self.redis = redis_client
        self.stream_maxlen = stream_maxlen
        self.max_gap = max_gap
        self.clock = clock
        self.seed = seed
        self.late = 0
        self.early = 0
        self.emitted = 0
        #: Fingerprints that Redis refused or could not take (scored and kept all the same).
        self.stream_errors = 0
        self._streaming = True
        self.stream_key: str | None = None
        if redis_client is not None:
            self.stream_key = stream_key(settings)
        self._recent: deque[Fingerprint] = deque(maxlen=history)
        self._listeners: list[Callable[[Fingerprint], Any]] = []
        # Seen edges outlive intervals: "new" means new since this aggregator started.
        self._edges = BloomFilter(capacity=100_000, error_rate=0.001)
        self._start: float | None = None
        self._open = _Interval(seed)
        self._lock = threading.RLock()

    # --- listeners and reading ------------------------------------------------------------

    def add_listener(self, listener: Callable[[Fingerprint], Any]) -> None:
        """Call ``listener(fingerprint)`` for every fingerprint emitted, in order; an exception it
        raises is logged (the record that closed the interval is folded already)."""
        self._listeners.append(listener)

    def recent(self, limit: int | None = None) -> list[Fingerprint]:
        """The last ``limit`` fingerprints (all kept when None), oldest first."""
        with self._lock:
            items = list(self._recent)
        return items if limit is None else items[-limit:] if limit > 0 else []

    @property
    def open_interval(self) -> tuple[float, float] | None:
        """``(start, end)`` of the interval being filled, or None before the first event."""
        start = self._start
        return None if start is None else (start, start + self.interval)

    # --- events ------------------------------------------------------------------------------

    def add_metric(
        self,
        service: str,
        endpoint: str | None,
        response_time: float | None = None,
        status_code: float | None = None,
        timestamp: float | None = None,
    ) -> list[Fingerprint]:
        """Fold one request; returns the fingerprints its timestamp closed."""
        _check_text(service, "service")
        endpoint = "" if endpoint is None else _check_text(endpoint, "endpoint", empty=True)
        if response_time is not None:
            response_time = _check_time(response_time, "response_time")
            if response_time < 0:
                raise ValueError(f"response_time: expected >= 0, got {response_time!r}")
        if status_code is not None:
            if (
                isinstance(status_code, bool)
                or not isinstance(status_code, (int, float))
                or not (100 <= status_code <= 599 and float(status_code).is_integer())
            ):
                raise ValueError(f"status_code: expected an int in [100, 599], got {status_code!r}")
            status_code = int(status_code)
        ts = self._time(timestamp)
        with self._lock:
            out = self._advance(ts)
            self._open.add_request(service, endpoint, response_time, status_code)
            if self._edges.add(f"{service}->{endpoint}"):
                self._open.new_edges += 1
            return self._publish(out)

    def add_business(
        self,
        metric_name: str,
        value: float,
        expected_range: Sequence[float] | None = None,
        timestamp: float | None = None,
    ) -> list[Fingerprint]:
        """Fold one business KPI; out of range when ``value`` is outside ``expected_range``."""
        _check_text(metric_name, "metric_name")
        value = _check_time(value, "value")
        outside = False
        if expected_range is not None:
            try:
                low, high = (_check_time(v, "expected_range") for v in expected_range)
            except (TypeError, ValueError):
                raise ValueError(f"expected_range: expected [low, high], got {expected_range!r}") from None
            if low > high:
                raise ValueError(f"expected_range: expected low <= high, got {expected_range!r}")
            outside = not (low <= value <= high)
        ts = self._time(timestamp)
        with self._lock:
            out = self._advance(ts)
            self._open.business += 1
            self._open.out_of_range += outside
            return self._publish(out)

    def add_log(
        self, level: str, service: str = "unknown", message: str = "", timestamp: float | None = None
    ) -> list[Fingerprint]:
        """Fold one log record (ERROR, CRITICAL and FATAL count as errors)."""
        level = _check_text(level, "level").strip().upper()
        if level not in _LEVELS:
            raise ValueError(f"level: expected one of {sorted(_LEVELS)}, got {level!r}")
        _check_text(service, "service")
        ts = self._time(timestamp)
        with self._lock:
            out = self._advance(ts)
            self._open.logs += 1
            self._open.log_errors += level in _ERROR_LEVELS
            return self._publish(out)

    def add(self, kind: str, body: Any) -> list[Fingerprint]:
        """A collector sink: ``kind`` ``metric``, ``business`` or ``log`` and the validated body
        (the API's request models, or dicts with their fields); other kinds are ignored."""
        get = body.get if isinstance(body, Mapping) else lambda k, d=None: getattr(body, k, d)
        if kind == "metric":
            if isinstance(body, Mapping):
                found = {**body, **(body.get("metrics") or {})}
            else:
                found = body.measurements
            return self.add_metric(
                get("service"), get("endpoint"), found.get("response_time"), found.get("status_code"),
                get("timestamp"),
            )  # fmt: skip
        if kind == "business":
            name = get("name") or get("metric_name") or get("metric_type")
            return self.add_business(name, get("value"), get("expected_range"), get("timestamp"))
        if kind == "log":
            return self.add_log(get("level") or get("log_level"), get("service", "unknown") or "unknown",
                                get("message", "") or "", get("timestamp"))  # fmt: skip
        return []

    def flush(self, now: float | None = None) -> list[Fingerprint]:
        """Emit every interval that has ended by ``now`` (default: the clock)."""
        now = self._time(now)
        with self._lock:
            if self._start is None or now < self._start:
                return []
            return self._publish(self._advance(now))

    # --- internals ---------------------------------------------------------------------------

    def _time(self, timestamp: float | None) -> float:
        if timestamp is None:
            return self.clock()
        ts = _check_time(timestamp, "timestamp")
        if not math.isfinite(ts / self.interval):  # the interval number: floor() would overflow
            raise ValueError(
                f"timestamp: expected epoch seconds within {self.interval:g} * 1.8e308, got {ts!r}"
            )
        if ts > (now := self.clock()) + self.interval:  # from the future: taken now
            with self._lock:
                self.early += 1
            return now
        return ts

    def _advance(self, ts: float) -> list[Fingerprint]:
        """Close the intervals that end at or before ``ts`` (caller holds the lock)."""
        if self._start is None:
            self._start = math.floor(ts / self.interval) * self.interval
            return []
        if ts < self._start:
            self.late += 1
            return []
        out: list[Fingerprint] = []
        while ts >= self._start + self.interval:
            out.append(self._close())
            if len(out) > self.max_gap:  # a long silence: jump to the current interval
                self._start = math.floor(ts / self.interval) * self.interval
                break
        return out

    def _close(self) -> Fingerprint:
        start = self._start
        assert start is not None
        state = self._open
        values = state.features(self.interval)
        values.setflags(write=False)
        counts = {"requests": state.requests, "logs": state.logs, "business": state.business}
        self._start = start + self.interval
        self._open = _Interval(self.seed)
        return Fingerprint(start, start + self.interval, values, FEATURE_NAMES, counts)

    def _publish(self, fingerprints: list[Fingerprint]) -> list[Fingerprint]:
        """Keep, stream and hand on new fingerprints, in order (caller holds the lock)."""
        if not fingerprints:
            return fingerprints
        self._recent.extend(fingerprints)
        self.emitted += len(fingerprints)
        if self.redis is not None:
            pipe = self.redis.pipeline(transaction=False)
            for fp in fingerprints:
                doc = fp.to_dict()
                pipe.xadd(
                    self.stream_key,
                    {
                        "data": json.dumps(doc["vector"]),
                        "fingerprint": json.dumps(doc, separators=(",", ":")),
                    },
                    maxlen=self.stream_maxlen,
                    approximate=True,
                )
            try:
                pipe.execute()
                self._streaming = True
            except redis_errors() as exc:  # Redis down (or not a stream there): scored all the same
                self.stream_errors += len(fingerprints)
                if self._streaming:  # once an outage, not every interval
                    _log.warning("fingerprints not streamed to Redis (%s); scored all the same", exc)
                self._streaming = False
        for fp in fingerprints:
            for listener in self._listeners:
                try:
                    listener(fp)
                except Exception:  # noqa: BLE001, PERF203 - the record is folded: the others hear every fingerprint
                    _log.exception("fingerprint listener %r failed", listener)
        return fingerprints


def settings_or_default(settings: Any) -> Any:
    """``settings``, or :func:`get_settings` when None."""
    if settings is not None:
        return settings
    from anomaly_detection.config import get_settings

    return get_settings()


def stream_key(settings: Any = None) -> str:
    """``<prefix>:stream:fingerprints``: where fingerprints are streamed."""
    from anomaly_detection.redis.keys import AnomalyRedisKeys

    return AnomalyRedisKeys.from_settings(settings_or_default(settings)).stream("fingerprints")


def read_stream(redis_client: Any, settings: Any = None, count: int = 100) -> list[Fingerprint]:
    """The last ``count`` fingerprints of the Redis stream, oldest first; ValueError naming the
    entry for one that is not a fingerprint (possible corruption)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count: expected a positive int, got {count!r}")
    entries = redis_client.xrevrange(stream_key(settings), count=count)
    out = []
    for entry_id, fields in reversed(entries):
        raw = fields.get(b"fingerprint", fields.get("fingerprint"))
        try:
            if raw is None:
                raise ValueError("no 'fingerprint' field")
            out.append(Fingerprint.from_dict(json.loads(raw)))
        except (ValueError, RecursionError) as e:  # UnicodeDecodeError, JSONDecodeError; nested 100,000 deep
            raise ValueError(f"fingerprint stream entry {text(entry_id)}: possible corruption: {e}") from None
    return out
