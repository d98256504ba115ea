"""The state behind the HTTP service: one detector, its alerts, the collector, metrics."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from anomaly_detection.api.alerts import AlertHub
from anomaly_detection.api.collector import Collector, Point
from anomaly_detection.api.metrics import ServiceMetrics
from anomaly_detection.api.shared import RedisAlertLog
from anomaly_detection.config.settings import Settings
from anomaly_detection.core.results import AnomalyResult
from anomaly_detection.core.validation import check_sensor_name
from anomaly_detection.redis.alerts import alert_from_result, alert_record
from anomaly_detection.redis.driver import Driver, down_errors, is_async_client, is_cluster_client

__all__ = ["AnomalyService", "TooManySensorsError"]

_log = logging.getLogger(__name__)

# Which kind of record is being scored, and where this request's alerts are collected.
# Context variables follow the work into asyncio.to_thread, where large batches run.
_source: contextvars.ContextVar[str] = contextvars.ContextVar("anomaly_source", default="api")
_collected: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "anomaly_collected", default=None
)
# The alerts raised by a request's scoring (awaited on the event loop, or on a worker thread
# with the sync client): the listener only records them; the request then holds them all in
# the outbox and delivers them together (on the loop: awaited, no blocking Redis write).
_deferred: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "anomaly_deferred", default=None
)


class TooManySensorsError(ValueError):
    """A request writes to more distinct sensors than ``max_sensors_per_request`` (HTTP 413)."""


class AnomalyService:
    """Creates the detector (embedded store, or Redis when ``settings.store_backend == "redis"``)
    and connects its alerts to the in-memory alert log, SSE and Prometheus.

    Parameters
    ----------
    settings : Settings
    detector : object, optional
        A detector to use instead of creating one (anything with the detector's methods).
    redis_client : redis client, optional
        Used with ``store_backend="redis"``; created from the settings when omitted.
    fingerprints : FingerprintPipeline, optional
        The system-fingerprint pipeline fed by the collector (default: 5-s intervals, warm-up
        of 60, on Redis when the store is); its alerts join the service's alerts.
    """

    def __init__(
        self, settings: Settings, detector: Any = None, redis_client: Any = None, fingerprints: Any = None
    ) -> None:
        self.settings = settings
        self.redis_client = redis_client
        if detector is None:
            from anomaly_detection.core.detector import StatisticalAnomalyDetector

            if settings.store_backend == "redis" and redis_client is None:
                from anomaly_detection.redis.client import redis_client_from_settings

                self.redis_client = redis_client_from_settings(settings)
            # With Redis the service writes the alerts itself (RedisAlertLog), with their id,
            # severity and source, so the detector's own alert sink is left out.
            detector_settings = settings.model_copy(update={"redis_alerts": False})
            detector = StatisticalAnomalyDetector(detector_settings, redis_client=self.redis_client)
        self.detector = detector
        #: redis.asyncio clients of this service (one per event loop), to the server of its sync client.
        self._async_clients: dict[asyncio.AbstractEventLoop, Any] = {}
        self._async_drivers: dict[asyncio.AbstractEventLoop, Driver] = {}
        #: Whether the request path awaits Redis through a redis.asyncio twin of the sync client
        #: (the store's appends in one pipeline a request, the alerts delivered by the outbox on
        #: the loop), while the store's breaker, write-back and alert outbox stay on the sync one.
        self._native = self._use_async_twin()
        #: Whether detection talks to Redis through a sync client: it then runs on worker threads.
        self._redis_blocks = (
            self.redis_client is not None and not is_async_client(self.redis_client) and not self._native
        )
        #: Whether the detector's store sends many sensors' appends in one round trip (Redis);
        #: with missing="skip" each sensor goes through detect_batch, which skips the gaps.
        self._redis_many = (
            getattr(getattr(detector, "store", None), "kind", "") == "redis"
            and getattr(getattr(detector, "settings", None), "missing", settings.missing) != "skip"
        )
        self.hub = AlertHub(settings.alert_buffer_size)
        #: Alerts shared by every worker (Redis), or None: alerts live in ``hub`` (this process).
        self.alert_log: RedisAlertLog | None = None
        #: The store whose breaker holds the Redis alert log's alerts during an outage, or None.
        self._breaker: Any = None
        if self.redis_client is not None and settings.redis_alerts:
            # With a sync client the store's breaker holds the alerts raised while Redis is
            # down and its write-back delivers them once (redis/alerts.RedisAlertSink).
            store = getattr(detector, "store", None)
            if (self._redis_blocks or self._native) and callable(getattr(store, "add_recovery_task", None)):
                self._breaker = store
            self.alert_log = RedisAlertLog(self.redis_client, settings, breaker=self._breaker)
        #: Idempotency keys of writes (api/idempotency.py): in Redis when the service has it, so
        #: that every worker sees them; else in this process.
        self.idempotency: Any = self._idempotency_store()
        self.collector = Collector(log_rate_interval=settings.log_rate_interval)
        self.metrics = ServiceMetrics()
        self.started = time.time()
        detector.add_alert_listener(self._on_anomaly)
        if fingerprints is None:
            from anomaly_detection.fingerprints import FingerprintPipeline

            on_redis = settings.store_backend == "redis" and self.redis_client is not None
            # The service writes the fingerprint alerts itself (_on_fingerprint_alert), once.
            fingerprints = FingerprintPipeline(
                redis_client=self.redis_client if on_redis else None,
                settings=settings.model_copy(update={"redis_alerts": False}),
            )
        if fingerprints.detector.on_alert is None:
            fingerprints.detector.on_alert = self._on_fingerprint_alert
        self.fingerprints = fingerprints
        self.collector.add_sink(fingerprints.add)

    def _use_async_twin(self) -> bool:
        """With ``settings.redis_async_requests``, give the detector's Redis store an asyncio twin
        of the service's sync client (single node; a Cluster keeps the worker threads: its
        failover settings are the sync client's)."""
        client = self.redis_client
        store = getattr(self.detector, "store", None)
        if (
            not self.settings.redis_async_requests
            or client is None
            or is_async_client(client)
            or is_cluster_client(client)
            or not callable(getattr(store, "use_async_client", None))
            or not hasattr(client, "connection_pool")
        ):
            return False
        store.use_async_client(self._aclient)
        return True

    def _aclient(self) -> Any:
        """This service's redis.asyncio client on the running loop (made on first use)."""
        from anomaly_detection.redis.client import async_client_like

        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            for closed in [other for other in self._async_clients if other.is_closed()]:
                del self._async_clients[closed]
                self._async_drivers.pop(closed, None)
            client = self._async_clients[loop] = async_client_like(
                self.redis_client, self.settings, self.settings.redis_socket_timeout
            )
        return client

    def _adriver(self) -> Driver:
        loop = asyncio.get_running_loop()
        driver = self._async_drivers.get(loop)
        if driver is None:
            driver = self._async_drivers[loop] = Driver(self._aclient())
        return driver

    def _idempotency_store(self) -> Any:
        from anomaly_detection.stores.idempotency import MemoryIdempotencyStore, RedisIdempotencyStore

        if self.redis_client is None:
            return MemoryIdempotencyStore()
        from anomaly_detection.redis.keys import AnomalyRedisKeys

        keys = AnomalyRedisKeys.from_settings(self.settings)
        if is_async_client(self.redis_client):
            return RedisIdempotencyStore(self.redis_client, keys)
        from anomaly_detection.redis.client import async_client_like

        # a redis.asyncio twin of the sync client, made on the event loop at first use: the
        # claim and the answer of a write cost two round trips and no thread hop
        settings = self.settings
        return RedisIdempotencyStore(
            lambda: async_client_like(self.redis_client, settings, settings.redis_socket_timeout), keys
        )

    def store_degraded(self) -> bool:
        """Whether the detector's Redis store has its circuit breaker open (no Redis I/O: the
        idempotency keys then stay in this process too). No I/O."""
        fallback = getattr(getattr(self.detector, "store", None), "fallback", None)
        return bool(getattr(fallback, "degraded", False))

    def close(self) -> None:
        self.detector.remove_alert_listener(self._on_anomaly)
        if self.redis_client is not None and hasattr(self.redis_client, "close"):
            self.redis_client.close()

    async def aclose(self) -> None:
        """Close the asyncio Redis client of the alert stream, then :meth:`close`."""
        if self.alert_log is not None:
            await self.alert_log.aclose()
        if hasattr(self.idempotency, "aclose"):
            await self.idempotency.aclose()
        try:
            loop = asyncio.get_running_loop()
            client = self._async_clients.pop(loop, None)
            self._async_drivers.pop(loop, None)
            if client is not None:
                await client.aclose()
        finally:
            self.close()

    # --- alerts ---------------------------------------------------------------------------

    def _on_anomaly(self, result: AnomalyResult) -> None:
        alert = alert_from_result(result, source=_source.get())
        deferred = _deferred.get()
        if deferred is not None:
            deferred.append(alert)
            return
        self._publish(alert)

    async def _awaited(self, work: Any) -> Any:
        """Await ``work`` (a detector call on the loop); its alerts are published after it, with
        :meth:`_apublish` (no blocking Redis write on the loop)."""
        if not self._native:
            return await work
        alerts: list[dict[str, Any]] = []
        token = _deferred.set(alerts)
        try:
            return await work
        finally:
            _deferred.reset(token)
            if alerts:
                await self._apublish(alerts)

    def _publish_many(self, alerts: list[dict[str, Any]]) -> None:
        """:meth:`_publish` of a request's ``alerts`` (raised on a worker thread, the sync client):
        all held in the Redis alert log's outbox, then delivered together (one round trip on a
        single node for up to 100 of them instead of two each), each once, in order; while the store's breaker is
        open (or the delivery fails and opens it) they stay held for its write-back to deliver,
        and this worker shows them now (as :meth:`_publish` does)."""
        sink = self.alert_log.sink if self.alert_log is not None else None
        if sink is None:
            for alert in alerts:
                self._publish(alert)
            return
        held = [sink.hold(alert) for alert in alerts]
        if any(h is not None for h in held) and not self._breaker.degraded:
            try:
                sink.deliver()
            except Exception as e:  # noqa: BLE001 - not a Redis outage (that is held): log, keep here
                _log.warning("could not deliver alerts to Redis (%s); kept in this worker", type(e).__name__)
                self.metrics.store_errors.inc()
        self._show(alerts, held)

    async def _apublish(self, alerts: list[dict[str, Any]]) -> None:
        """:meth:`_publish` of ``alerts`` on the event loop: held in the Redis alert log's outbox
        (no I/O), then delivered through the service's redis.asyncio client, each once, in order;
        while the store's breaker is open (or a delivery fails and opens it) they stay held for
        its write-back to deliver, and this worker shows them now (as the sync path does)."""
        sink = self.alert_log.sink if self.alert_log is not None else None
        held = [sink.hold(alert) if sink is not None else None for alert in alerts]
        if sink is not None and any(h is not None for h in held) and not self._breaker.degraded:
            try:
                await sink.adeliver(self._adriver())
            except Exception as e:  # noqa: BLE001 - not a Redis outage (that is held): log, keep here
                _log.warning("could not deliver alerts to Redis (%s); kept in this worker", type(e).__name__)
                self.metrics.store_errors.inc()
        self._show(alerts, held)

    def _show(self, alerts: list[dict[str, Any]], held: list[dict[str, Any] | None]) -> None:
        """After a delivery of held ``alerts`` (their outbox documents ``held``): each delivered
        one as stored in Redis (with its id), the others shown by this worker's hub now; counted,
        and collected for the request's answer."""
        collected = _collected.get()
        for alert, doc in zip(alerts, held):
            stored = doc if doc is not None and "id" in doc else self.hub.publish(alert)
            self.metrics.anomalies.labels(alert["method"]).inc()
            if collected is not None:
                collected.append(stored)

    def _publish(self, alert: dict[str, Any]) -> dict[str, Any]:
        stored = None
        if self.alert_log is not None:
            try:
                stored = self.alert_log.publish(alert)
            except Exception as e:  # noqa: BLE001 - Redis down: keep the alert in this process
                _log.warning(
                    "could not write an alert to Redis (%s); kept in this worker only", type(e).__name__
                )
                self.metrics.store_errors.inc()
        if stored is None:  # Redis down: this worker shows it now (and the outbox delivers it later)
            stored = self.hub.publish(alert)
        self.metrics.anomalies.labels(alert["method"]).inc()
        collected = _collected.get()
        if collected is not None:
            collected.append(stored)
        return stored

    def query_alerts(
        self, sensor: str | None, start: float | None, end: float | None, limit: int, offset: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """``GET /api/anomalies``: every worker's alerts from Redis, or this worker's own
        (``hub``) without Redis, and while the store's breaker is open (those raised during
        the outage are delivered to Redis when it is back). Blocking: call it on a thread."""
        log = self.alert_log
        if log is None or (self._breaker is not None and self._breaker.degraded):
            return self.hub.query(sensor, start, end, limit, offset)
        if self._breaker is None:
            return log.query(sensor, start, end, limit, offset)
        try:
            return log.query(sensor, start, end, limit, offset)
        except down_errors() as exc:  # Redis just went down: open the breaker, answer from here
            self._breaker.trip(exc)
            self.metrics.store_errors.inc()
            return self.hub.query(sensor, start, end, limit, offset)

    def _on_fingerprint_alert(self, alert: dict[str, Any]) -> None:
        # The hub numbers alerts itself: the pipeline's id is kept as ``alert_id``.
        self._publish({**{k: v for k, v in alert.items() if k != "id"}, "alert_id": alert["id"]})

    def range_alert(
        self, sensor: str, value: float, timestamp: float | None, low: float, high: float
    ) -> dict[str, Any]:
        """An alert for a business metric outside its ``expected_range``."""
        width = max(high - low, 1e-12)
        beyond = (low - value) if value < low else (value - high)
        # Severity: a point a whole range width outside the range is critical.
        return self._publish(alert_record("expected_range", beyond / width, 0.5, {
            "sensor_name": sensor, "value": value, "timestamp": timestamp if timestamp is not None else time.time(),
            "is_anomaly": True, "score": 1.0, "deviation": beyond / width, "expected": (low + high) / 2,
            "window_count": 0, "threshold": 0.0, "method": "expected_range", "source": "business",
            "expected_range": [low, high],
        }))  # fmt: skip

    # --- scoring --------------------------------------------------------------------------

    async def _detect(self, method: str, *args: Any) -> Any:
        """``detector.<method>(*args)``: on a worker thread when it talks to Redis through a
        sync client (never blocking the event loop, whatever Redis does), else ``a<method>``
        here. The thread sees this task's context variables (asyncio.to_thread copies them)."""
        if self._redis_blocks:
            return await asyncio.to_thread(getattr(self.detector, method), *args)
        return await self._awaited(getattr(self.detector, "a" + method)(*args))

    async def _timed(self, method: str, points: int, *args: Any) -> Any:
        """:meth:`_detect` for the detect endpoints: alerts marked ``source="detect"``, the
        latency observed, ``points`` counted."""
        token = _source.set("detect")
        try:
            start = time.perf_counter()
            out = await self._detect(method, *args)
            self.metrics.latency.observe(time.perf_counter() - start)
        finally:
            _source.reset(token)
        self.metrics.points.labels("detect").inc(points)
        return out

    async def detect(self, sensor: str, value: float, timestamp: float | None) -> AnomalyResult:
        return await self._timed("detect", 1, sensor, value, timestamp)

    async def detect_batch(self, sensor: str, values: list[float], timestamps: list[float] | None) -> Any:
        return await self._timed("detect_batch", len(values), sensor, values, timestamps)

    async def ingest(self, points: Iterable[Point]) -> tuple[list[str], list[dict[str, Any]]]:
        """Score collector points, grouped by sensor (one batch call per sensor, in order).

        Every sensor name is checked before anything is scored. Returns the sensors and
        the alerts raised.
        """
        groups: dict[str, list[Point]] = {}
        for p in points:
            groups.setdefault(p.sensor, []).append(p)
        now = time.time()
        arrays = {
            sensor: (
                np.fromiter((p.value for p in pts), dtype=np.float64, count=len(pts)),
                np.fromiter((now if p.timestamp is None else p.timestamp for p in pts),
                            dtype=np.float64, count=len(pts)),
                pts[0].source,
            )
            for sensor, pts in groups.items()
        }  # fmt: skip
        collected = await self._score(arrays)
        by_source: dict[str, int] = {}
        for p in (p for pts in groups.values() for p in pts):
            by_source[p.source] = by_source.get(p.source, 0) + 1
        for source, n in by_source.items():
            self.metrics.points.labels(source).inc(n)
        return list(groups), collected

    async def ingest_arrays(
        self, groups: dict[str, tuple[np.ndarray, np.ndarray]], source: str = "point"
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """Like :meth:`ingest` for points already grouped into ``{sensor: (values, timestamps)}``
        (float64 arrays, finite)."""
        collected = await self._score({s: (v, t, source) for s, (v, t) in groups.items()})
        self.metrics.points.labels(source).inc(sum(len(v) for v, _ in groups.values()))
        return list(groups), collected

    async def _score(self, groups: dict[str, tuple[np.ndarray, np.ndarray, str]]) -> list[dict[str, Any]]:
        """One detector call per sensor; names are all checked first. Returns the alerts."""
        limit = self.settings.max_sensors_per_request
        if len(groups) > limit:
            raise TooManySensorsError(
                f"too many distinct sensors: limit is {limit} per request (max_sensors_per_request), "
                f"got {len(groups)}; nothing was stored"
            )
        for name in groups:
            check_sensor_name(name)
        collected: list[dict[str, Any]] = []
        token = _collected.set(collected)
        start = time.perf_counter()
        try:
            if self._redis_blocks:  # one worker thread for the whole request
                await asyncio.to_thread(self._score_here, groups)
            else:
                await self._awaited(self._ascore(groups))
        finally:
            _collected.reset(token)
            self.metrics.latency.observe(time.perf_counter() - start)
        return collected

    async def _ascore(self, groups: dict[str, tuple[np.ndarray, np.ndarray, str]]) -> None:
        """The scoring of :meth:`_score` awaited on the loop (an asyncio client or twin)."""
        # on the Redis store, one pipeline per source
        for source, method, args in _calls(groups, many=self._redis_many):
            src = _source.set(source)
            try:
                await getattr(self.detector, "a" + method)(*args)
            finally:
                _source.reset(src)

    def _score_here(self, groups: dict[str, tuple[np.ndarray, np.ndarray, str]]) -> None:
        """The scoring of :meth:`_score` on a worker thread (a sync Redis client): with many
        sensors, their appends in one round trip per source; the alerts of the whole request
        delivered together after it (:meth:`_publish_many`), even when a call raised."""
        alerts: list[dict[str, Any]] = []
        token = _deferred.set(alerts)
        try:
            for source, method, args in _calls(groups, many=self._redis_many and len(groups) > 1):
                src = _source.set(source)
                try:
                    getattr(self.detector, method)(*args)
                finally:
                    _source.reset(src)
        finally:
            _deferred.reset(token)
            if alerts:
                self._publish_many(alerts)

    # --- health ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        from anomaly_detection import __version__

        store = self.detector.health()
        redis_state: dict[str, Any] = {"configured": self.redis_client is not None, "reachable": None}
        if self.redis_client is not None and store.get("degraded"):
            # The store's breaker is open and its background probe watches Redis: answer now.
            redis_state["reachable"] = False
        elif self.redis_client is not None:
            try:
                redis_state["reachable"] = bool(self.redis_client.ping())
            except Exception as e:  # noqa: BLE001 - any client error means unreachable
                redis_state["reachable"] = False
                redis_state["error"] = type(e).__name__
                self.metrics.store_errors.inc()
        degraded = bool(store.get("degraded")) or redis_state["reachable"] is False
        sensors = store.get("sensors")
        if isinstance(sensors, int):
            self.metrics.sensors.set(sensors)
        return {
            "status": "degraded" if degraded else "ok",
            "degraded": degraded,
            "store": store,
            "redis": redis_state,
            "uptime_seconds": round(time.time() - self.started, 3),
            "version": __version__,
            "anomalies_count": self._anomalies_count(),
            "worker_pid": os.getpid(),
            "sse_clients": self.hub.subscribers,
            "collector": self.collector.stats(),
        }

    def _anomalies_count(self) -> int:
        if self.alert_log is not None and not self.store_degraded():
            try:
                return self.alert_log.count()
            except Exception:  # noqa: BLE001 - reported as unreachable above
                return self.hub.total
        return self.hub.total

    def public_config(self) -> dict[str, Any]:
        """The effective settings with secrets redacted."""
        config = self.settings.model_dump(mode="json")
        config["api_keys"] = f"<{len(self.settings.api_keys)} configured>"
        for secret in ("redis_password", "redis_url"):
            if config.get(secret):
                config[secret] = "<redacted>"
        return config


def _calls(
    groups: dict[str, tuple[np.ndarray, np.ndarray, str]], many: bool
) -> list[tuple[str, str, tuple[Any, ...]]]:
    """The detector calls that score ``groups``, as ``(source, method, args)``, for the sync
    method or its ``a``-prefixed asyncio twin: with ``many``, one ``detect_many`` per source
    (its sensors in their order); else per sensor, ``detect`` for one point and
    ``detect_batch`` for more."""
    if not many:
        return [
            (source, "detect", (sensor, float(values[0]), float(ts[0])))
            if len(values) == 1
            else (source, "detect_batch", (sensor, values, ts))
            for sensor, (values, ts, source) in groups.items()
        ]
    by_source: dict[str, list[str]] = {}
    for sensor, (_, _, source) in groups.items():
        by_source.setdefault(source, []).append(sensor)
    return [
        (source, "detect_many", ({s: groups[s][0] for s in sensors}, {s: groups[s][1] for s in sensors}))
        for source, sensors in by_source.items()
    ]
