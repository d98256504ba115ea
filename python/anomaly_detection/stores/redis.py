"""The shared store: sensor windows in Redis, appended by one atomic script per
call, scored by the C++ core in the calling process.

One ``detect`` or ``detect_batch`` is one round trip: the script returns the
window as it was before the new points and the sensor's point count, appends
the points (only the last ``window_size`` of a batch need to be sent), trims the
list, refreshes the TTLs and counts. Because the append is atomic, processes
sharing a sensor each score their points against the exact window that preceded
them, and no update is lost.

Window entries are JSON objects ``{"value": ..., "timestamp": ...}`` (as the seed
writes them), so ``redis-cli LRANGE anomaly:temp:data:<sensor>:queue 0 -1`` shows
the window. z-score, MAD and IQR results equal the embedded store's; EWMA and
CUSUM statistics are replayed over the window, so they equal a stream that
started at the window's oldest point.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import deque
from typing import Any

import numpy as np

from anomaly_detection import _core
from anomaly_detection.errors import StoreUnavailableError
from anomaly_detection.stores.base import SensorWindow
from anomaly_detection.stores.embedded import EmbeddedStore, config_from_settings
from anomaly_detection.utils.redis_namespaces import AnomalyRedisKeys

__all__ = ["RedisStore"]

_log = logging.getLogger(__name__)

# KEYS[1] window list, KEYS[2] counters hash.
# ARGV[1] window size, ARGV[2] TTL (s), ARGV[3] number of points, ARGV[4..] the last
# min(n, window size) points as JSON. Returns {seen before, window before}.
_APPEND = """
local w = tonumber(ARGV[1])
local before = redis.call('LRANGE', KEYS[1], -w, -1)
local seen = tonumber(redis.call('HGET', KEYS[2], 'seen') or '0')
for i = 4, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('LTRIM', KEYS[1], -w, -1)
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], 'seen', ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return {seen, before}
"""

_EMPTY = np.empty(0, dtype=np.float64)
# Points of history the ensemble's statistics use (warm-up 300, likelihood window 2,000).
_ENSEMBLE_HISTORY = 2500


def _redis_down_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import ClusterDownError, ConnectionError, TimeoutError

    return (ConnectionError, TimeoutError, ClusterDownError, OSError)


def _is_async(client: Any) -> bool:
    module = type(client).__module__
    return module.startswith("redis.asyncio")


def _is_cluster(client: Any) -> bool:
    return type(client).__name__ == "RedisCluster"


def encode_points(values: np.ndarray, timestamps: np.ndarray) -> list[str]:
    """The JSON entries of a window list (``repr`` of a float round-trips exactly)."""
    return [f'{{"value":{v!r},"timestamp":{t!r}}}' for v, t in zip(values.tolist(), timestamps.tolist())]


# The entries this package writes; anything else takes the general JSON path.
_OWN_ENTRY = re.compile(rb'\{"value":(-?[0-9][0-9.eE+-]*),"timestamp":(-?[0-9][0-9.eE+-]*)\}')


def decode_points(entries: list[bytes | str]) -> tuple[np.ndarray, np.ndarray]:
    """Values and timestamps of window entries; entries that are not JSON objects
    with a finite numeric ``value`` are skipped with a warning (never a crash)."""
    if not entries:
        return _EMPTY, _EMPTY
    if isinstance(entries[0], bytes):
        # Fast path, vectorised: every entry is one of ours, parsed by NumPy.
        found = _OWN_ENTRY.findall(b"\n".join(entries))
        if len(found) == len(entries):
            try:
                pairs = np.array(found, dtype=np.bytes_).astype(np.float64)
            except ValueError:
                pairs = None
            if pairs is not None and np.isfinite(pairs).all():
                return np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1])
    raw = [e.decode() if isinstance(e, bytes) else e for e in entries]
    try:
        points = json.loads("[" + ",".join(raw) + "]")
    except ValueError:
        points = []
        for e in raw:
            try:
                points.append(json.loads(e))
            except ValueError:  # noqa: PERF203 - only when the window holds corrupt entries
                points.append(None)
    values, stamps, skipped = [], [], 0
    for p in points:
        try:
            v = float(p["value"])
            t = p.get("timestamp", 0.0)
            t = float(t) if isinstance(t, (int, float)) else _core_timestamp(t)
        except (TypeError, KeyError, ValueError, AttributeError):
            skipped += 1
            continue
        if np.isfinite(v) and np.isfinite(t):
            values.append(v)
            stamps.append(t)
        else:
            skipped += 1
    if skipped:
        _log.warning("skipped %d unreadable window entries", skipped)
    return np.array(values, dtype=np.float64), np.array(stamps, dtype=np.float64)


def _core_timestamp(t: Any) -> float:
    from anomaly_detection.core.validation import as_timestamp

    return as_timestamp(t)


class RedisStore:
    """Sensor windows shared through Redis (single node or Cluster, sync or asyncio).

    With ``fallback_policy="fallback"`` (the default) a Redis failure switches
    detection to an embedded store and buffers the accepted points; they are
    written back, in order, when Redis answers again. With ``"strict"`` the
    failure raises :class:`~anomaly_detection.errors.StoreUnavailableError`.
    """

    kind = "redis"

    def __init__(self, client: Any, settings: Any) -> None:
        if not settings.include_anomalies_in_window:
            raise ValueError(
                "include_anomalies_in_window=False is not supported with Redis: points are appended "
                "atomically before they are scored"
            )
        if settings.detection_method == "ensemble" and settings.window_size < _ENSEMBLE_HISTORY:
            _log.warning(
                "the ensemble on Redis is rebuilt from the window on every call: with window_size=%d "
                "it sees only that much history (it needs about %d points); raise window_size",
                settings.window_size, _ENSEMBLE_HISTORY,
            )  # fmt: skip
        self.client = client
        self.settings = settings
        self.is_async = _is_async(client)
        self.is_cluster = _is_cluster(client)
        # On a Cluster a sensor's window and counters must share a slot: hash tags are forced.
        self.keys = AnomalyRedisKeys(settings.redis_key_prefix, settings.redis_hash_tag or self.is_cluster)
        self.config = config_from_settings(settings)
        self._script = client.register_script(_APPEND)
        self._window_args = (settings.window_size, settings.temp_data_ttl)
        self._down = _redis_down_errors()
        self.fallback = EmbeddedStore(self.config)
        self._pending: deque[tuple[str, np.ndarray, np.ndarray]] = deque()
        self._pending_points = 0
        self._degraded = False
        self._next_probe = 0.0
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one writer of the buffered points at a time

    # --- the per-call path -------------------------------------------------------

    def _call_args(self, sensor: str, values: np.ndarray, timestamps: np.ndarray) -> tuple[list, list]:
        """(script keys, script arguments) of an append."""
        tail = slice(max(0, len(values) - self.settings.window_size), None)
        return (
            [self.keys.temp_data(sensor), self.keys.temp_stats(sensor)],
            [*self._window_args, len(values), *encode_points(values[tail], timestamps[tail])],
        )

    def _score(self, reply: Any, values: np.ndarray, timestamps: np.ndarray):
        seen, entries = reply
        window_values, window_stamps = decode_points(entries)
        return _core.detect_after_window(
            self.config, window_values, window_stamps, int(seen), values, timestamps
        )

    def _degrade(self, exc: BaseException) -> None:
        if self.settings.fallback_policy == "strict":
            raise StoreUnavailableError(f"Redis is unavailable: {exc}") from exc
        with self._lock:
            if not self._degraded:
                _log.warning("Redis unavailable (%s): detecting on the embedded store, buffering points", exc)
            self._degraded = True
            self._next_probe = time.monotonic() + self.settings.redis_retry_interval

    def _detect_in_fallback(self, sensor: str, values: np.ndarray, timestamps: np.ndarray):
        with self._lock:
            if self._pending_points + len(values) > self.settings.fallback_buffer_size:
                raise StoreUnavailableError(
                    f"Redis is unavailable and the fallback buffer is full "
                    f"({self._pending_points} of {self.settings.fallback_buffer_size} points)"
                )
            result = self.fallback.detect_batch(sensor, values, timestamps)
            self._pending.append((sensor, values.copy(), timestamps.copy()))
            self._pending_points += len(values)
        return result

    def _probe_due(self) -> bool:
        return self._degraded and time.monotonic() >= self._next_probe

    def _recovered(self) -> None:
        with self._lock:
            self._degraded = False
            self.fallback.registry.clear()
        _log.warning("Redis is back: buffered points written back")

    def detect_batch(self, sensor: str, values: np.ndarray, timestamps: np.ndarray):
        self._require_sync()
        call = self._call_args(sensor, values, timestamps)
        if self._degraded and not self._try_recover():
            return self._detect_in_fallback(sensor, values, timestamps)
        try:
            reply = self._script(*call)
        except self._down as exc:
            self._degrade(exc)
            return self._detect_in_fallback(sensor, values, timestamps)
        result = self._score(reply, values, timestamps)
        self._count_anomalies(sensor, result[0])
        return result

    def detect(self, sensor: str, value: float, timestamp: float):
        out = self.detect_batch(sensor, np.array([value]), np.array([timestamp]))
        return _single(value, timestamp, out)

    def _count_anomalies(self, sensor: str, flags: np.ndarray) -> None:
        count = int(np.count_nonzero(flags))
        if count:
            try:
                self.client.hincrby(self.keys.temp_stats(sensor), "anomalies", count)
            except self._down:
                _log.warning("could not count %d anomalies of %s", count, sensor)

    def _begin_write_back(self) -> bool:
        """Whether this caller should try to write the buffered points back now."""
        if not self._probe_due() or not self._flush_lock.acquire(blocking=False):
            return False
        self._next_probe = time.monotonic() + self.settings.redis_retry_interval
        return True

    def _next_buffered(self) -> tuple[str, np.ndarray, np.ndarray] | None:
        return self._pending[0] if self._pending else None

    def _written_back(self) -> None:
        with self._lock:
            _, values, _ = self._pending.popleft()
            self._pending_points -= len(values)

    def _try_recover(self) -> bool:
        if not self._begin_write_back():
            return False
        try:
            while (buffered := self._next_buffered()) is not None:
                self._script(*self._call_args(*buffered))
                self._written_back()
        except self._down:
            return False
        finally:
            self._flush_lock.release()
        self._recovered()
        return True

    # --- asyncio clients -----------------------------------------------------------

    async def adetect_batch(self, sensor: str, values: np.ndarray, timestamps: np.ndarray):
        if not self.is_async:
            return self.detect_batch(sensor, values, timestamps)
        call = self._call_args(sensor, values, timestamps)
        if self._degraded and not await self._atry_recover():
            return self._detect_in_fallback(sensor, values, timestamps)
        try:
            reply = await self._script(*call)
        except self._down as exc:
            self._degrade(exc)
            return self._detect_in_fallback(sensor, values, timestamps)
        result = self._score(reply, values, timestamps)
        if count := int(np.count_nonzero(result[0])):
            try:
                await self.client.hincrby(self.keys.temp_stats(sensor), "anomalies", count)
            except self._down:
                _log.warning("could not count %d anomalies of %s", count, sensor)
        return result

    async def adetect(self, sensor: str, value: float, timestamp: float):
        out = await self.adetect_batch(sensor, np.array([value]), np.array([timestamp]))
        return _single(value, timestamp, out)

    async def _atry_recover(self) -> bool:
        if not self._begin_write_back():
            return False
        try:
            while (buffered := self._next_buffered()) is not None:
                await self._script(*self._call_args(*buffered))
                self._written_back()
        except self._down:
            return False
        finally:
            self._flush_lock.release()
        self._recovered()
        return True

    def _require_sync(self) -> None:
        if self.is_async:
            raise TypeError("this detector has a redis.asyncio client: use adetect / adetect_batch")

    # --- reading and cleaning up -------------------------------------------------------

    def window(self, sensor: str) -> SensorWindow:
        self._require_sync()
        entries = self.client.lrange(self.keys.temp_data(sensor), 0, -1)
        return SensorWindow(*decode_points(entries))

    def summary(self, sensor: str) -> dict[str, Any] | None:
        self._require_sync()
        values, stamps = decode_points(self.client.lrange(self.keys.temp_data(sensor), 0, -1))
        counters = {
            (k.decode() if isinstance(k, bytes) else k): int(v)
            for k, v in self.client.hgetall(self.keys.temp_stats(sensor)).items()
        }
        if not len(values) and not counters:
            return None
        return {
            "points_seen": counters.get("seen", len(values)),
            "anomalies": counters.get("anomalies", 0),
            "window_count": len(values),
            "mean": float(values.mean()) if len(values) else 0.0,
            "stddev": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "min": float(values.min()) if len(values) else 0.0,
            "max": float(values.max()) if len(values) else 0.0,
            "last_timestamp": float(stamps[-1]) if len(stamps) else 0.0,
        }

    def reset(self, sensor: str) -> bool:
        self._require_sync()
        window, stats = self.keys.temp_data(sensor), self.keys.temp_stats(sensor)
        # Separate DELs: without hash tags the two keys may live in different Cluster slots.
        return bool(self.client.delete(window) + self.client.delete(stats))

    def sensors(self) -> list[str]:
        self._require_sync()
        names = {
            self.keys.parse_sensor(k) for k in self.client.scan_iter(match=self.keys.pattern("temp_data"))
        }
        return sorted(n for n in names if n)

    def health(self) -> dict[str, Any]:
        reachable = False
        if not self.is_async:
            try:
                reachable = bool(self.client.ping())
            except self._down:
                reachable = False
            if reachable and self._degraded:
                self._next_probe = 0.0
                self._try_recover()
        return {
            "store": self.kind,
            "degraded": self._degraded,
            "redis_reachable": reachable,
            "fallback_policy": self.settings.fallback_policy,
            "buffered_points": self._pending_points,
            "cluster": self.is_cluster,
        }


def _single(value: float, timestamp: float, out: tuple) -> tuple:
    is_anomaly, scores, deviations, expected, counts = out
    return (value, timestamp, bool(is_anomaly[0]), float(scores[0]), float(deviations[0]),
            float(expected[0]), int(counts[0]))  # fmt: skip
