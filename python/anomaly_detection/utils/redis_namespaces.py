"""The ``anomaly:`` key layout on a shared Redis, its TTLs, and a manager for every key kind.

Everything this package writes lives under one prefix (``redis_key_prefix``, default
``anomaly``), so other applications on the same server (``nextauth:``, ``fabric:``,
``fastapi:`` ...) are never touched. Keys are found with ``SCAN``, never ``KEYS``:
``KEYS`` blocks the server for the whole keyspace.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from anomaly_detection._core import check_sensor_name

if TYPE_CHECKING:
    from anomaly_detection.config import Settings

__all__ = [
    "METRIC_INTERVALS",
    "AnomalyRedisKeys",
    "AnomalyRedisManager",
    "AnomalyRedisTTL",
    "MigrationPlan",
]

_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

#: Roll-up intervals of :meth:`AnomalyRedisManager.record_metric`, in seconds.
METRIC_INTERVALS: dict[str, int] = {
    "1h": 3600,
    "6h": 6 * 3600,
    "24h": 24 * 3600,
    "3d": 3 * 86400,
    "7d": 7 * 86400,
    "30d": 30 * 86400,
}


def check_key_part(value: str, what: str = "key part") -> str:
    """Return ``value`` if it is a valid variable key part, else raise ValueError.

    The rules are the sensor-name rules of the core (no ``:``, glob characters,
    braces or whitespace; at most 200 bytes): a part can then neither forge
    another key kind nor match more than itself in a SCAN pattern.
    """
    if not isinstance(value, str):
        raise ValueError(f"{what}: expected a str, got {type(value).__name__}")  # noqa: TRY004 (the package's contract: bad input is a ValueError)
    try:
        check_sensor_name(value)
    except ValueError as exc:
        raise ValueError(f"{what} {value!r}: {exc}") from None
    return value


def _check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not _PREFIX_RE.match(prefix):
        raise ValueError(f"key prefix: expected 1-64 characters of [A-Za-z0-9_.-], got {prefix!r}")
    return prefix


class AnomalyRedisTTL:
    """Time to live of each key kind, in seconds (the values of DESIGN.md)."""

    TEMP_DATA = 3600  #: sensor windows, 1 h
    PROCESSING_QUEUE = 1800  #: processing queues, 30 min
    ANALYSIS_RESULT = 86400  #: analysis results, 24 h
    RESULTS = ANALYSIS_RESULT  #: the seed's name for ANALYSIS_RESULT
    CACHE = 3600  #: cache entries, 1 h
    MODEL = 86400  #: serialised models, 24 h
    HEALTH = 300  #: component heartbeats, 5 min
    METRICS = 3600  #: metric roll-ups, 1 h after the last update (at least one interval)
    ALERTS = 604800  #: alerts and their index, 7 days
    CONFIG = 86400  #: configuration, 24 h
    SKETCH = 86400  #: shared sketches, 24 h after the last update

    @classmethod
    def as_dict(cls) -> dict[str, int]:
        """Every TTL by name."""
        return {k: v for k, v in vars(cls).items() if k.isupper() and isinstance(v, int)}


class AnomalyRedisKeys:
    """Builds every key of the layout; validates each variable part.

    Parameters
    ----------
    prefix : str
        The namespace, ``anomaly`` by default.
    hash_tag : bool
        Wrap the sensor part in ``{...}`` so that all keys of one sensor hash to one
        Redis Cluster slot (``anomaly:temp:data:{s1}:queue``).

    Examples
    --------
    >>> keys = AnomalyRedisKeys()
    >>> keys.temp_data("temperature_sensor")
    'anomaly:temp:data:temperature_sensor:queue'
    >>> AnomalyRedisKeys(hash_tag=True).temp_data("s1")
    'anomaly:temp:data:{s1}:queue'
    >>> keys.pattern("alert")
    'anomaly:alerts:*'
    """

    #: Key kind -> template; ``{0}``, ``{1}`` are the variable parts.
    LAYOUT: ClassVar[dict[str, str]] = {
        "temp_data": "temp:data:{0}:queue",
        "temp_stats": "temp:data:{0}:stats",
        "processing_queue": "queue:processing:{0}",
        "analysis_result": "results:analysis:{0}",
        "cache": "cache:{0}:{1}",
        "model": "model:{0}",
        "health": "health:{0}",
        "metrics": "metrics:{0}:{1}",
        "alert": "alerts:{0}",
        "config": "config:{0}",
        "sketch": "sketch:{0}",
        "stream": "stream:{0}",
        "index": "index:{0}",
        "channel": "channel:{0}",
    }

    def __init__(self, prefix: str = "anomaly", hash_tag: bool = False) -> None:
        self.prefix = _check_prefix(prefix)
        self.hash_tag = bool(hash_tag)

    @classmethod
    def from_settings(cls, settings: Settings) -> AnomalyRedisKeys:
        """Keys with ``redis_key_prefix`` and ``redis_hash_tag`` of ``settings``."""
        return cls(settings.redis_key_prefix, settings.redis_hash_tag)

    def __repr__(self) -> str:
        return f"AnomalyRedisKeys(prefix={self.prefix!r}, hash_tag={self.hash_tag})"

    def _key(self, kind: str, *parts: str) -> str:
        return f"{self.prefix}:" + self.LAYOUT[kind].format(*parts)

    def sensor_part(self, sensor: str) -> str:
        """The sensor as it appears in keys: ``{sensor}`` with hash tags, else ``sensor``."""
        check_key_part(sensor, "sensor name")
        return "{" + sensor + "}" if self.hash_tag else sensor

    def temp_data(self, sensor: str) -> str:
        """``anomaly:temp:data:{sensor}:queue``: the sensor window (list of JSON points)."""
        return self._key("temp_data", self.sensor_part(sensor))

    def temp_stats(self, sensor: str) -> str:
        """``anomaly:temp:data:{sensor}:stats``: the sensor's counters (hash: seen, anomalies)."""
        return self._key("temp_stats", self.sensor_part(sensor))

    def processing_queue(self, batch_id: str) -> str:
        """``anomaly:queue:processing:{batch_id}``."""
        return self._key("processing_queue", check_key_part(batch_id, "batch id"))

    def analysis_result(self, analysis_id: str) -> str:
        """``anomaly:results:analysis:{analysis_id}``."""
        return self._key("analysis_result", check_key_part(analysis_id, "analysis id"))

    def cache(self, category: str, key: str) -> str:
        """``anomaly:cache:{category}:{key}``."""
        return self._key(
            "cache", check_key_part(category, "cache category"), check_key_part(key, "cache key")
        )

    def model(self, name: str) -> str:
        """``anomaly:model:{name}``: serialised model bytes."""
        return self._key("model", check_key_part(name, "model name"))

    def health(self, component: str) -> str:
        """``anomaly:health:{component}``: heartbeat."""
        return self._key("health", check_key_part(component, "component"))

    def metrics(self, name: str, interval: str) -> str:
        """``anomaly:metrics:{name}:{interval}``: roll-up buckets of one interval."""
        return self._key("metrics", check_key_part(name, "metric name"), check_key_part(interval, "interval"))

    def alert(self, alert_id: str) -> str:
        """``anomaly:alerts:{alert_id}``."""
        return self._key("alert", check_key_part(alert_id, "alert id"))

    def config(self, name: str) -> str:
        """``anomaly:config:{name}``."""
        return self._key("config", check_key_part(name, "config name"))

    def sketch(self, name: str) -> str:
        """``anomaly:sketch:{name}``: a shared sketch."""
        return self._key("sketch", check_key_part(name, "sketch name"))

    def stream(self, name: str) -> str:
        """``anomaly:stream:{name}``: a Redis Stream."""
        return self._key("stream", check_key_part(name, "stream name"))

    def alerts_stream(self) -> str:
        """``anomaly:stream:alerts``: the capped stream of alerts for consumer groups."""
        return self.stream("alerts")

    def alerts_channel(self) -> str:
        """``anomaly:channel:alerts``: the pub/sub channel of alerts."""
        return self._key("channel", "alerts")

    def alerts_index(self) -> str:
        """``anomaly:index:alerts``: sorted set of alert ids by time (capped)."""
        return self._key("index", "alerts")

    def namespace_pattern(self) -> str:
        """``anomaly:*``: every key of this package."""
        return f"{self.prefix}:*"

    def pattern(self, kind: str) -> str:
        """A ``SCAN MATCH`` pattern for every key of one kind (a name of :attr:`LAYOUT`)."""
        if kind not in self.LAYOUT:
            raise ValueError(f"key kind: expected one of {sorted(self.LAYOUT)}, got {kind!r}")
        template = self.LAYOUT[kind]
        return f"{self.prefix}:" + template.format(*["*"] * template.count("{"))

    def parse_sensor(self, key: str | bytes) -> str | None:
        """The sensor name of a ``temp_data`` key, or None if ``key`` is not one."""
        text = key.decode() if isinstance(key, bytes) else key
        head, tail = f"{self.prefix}:temp:data:", ":queue"
        if not (text.startswith(head) and text.endswith(tail)):
            return None
        sensor = text[len(head) : -len(tail)]
        if sensor.startswith("{") and sensor.endswith("}"):
            sensor = sensor[1:-1]
        return sensor or None


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"value is not JSON-serialisable: {exc}") from None


def _loads(raw: bytes | str | None, key: str) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{key}: stored value is not valid JSON (possible corruption): {exc}") from None


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _check_ttl(ttl: int | None, default: int) -> int:
    ttl = default if ttl is None else ttl
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1:
        raise ValueError(f"ttl: expected a positive int of seconds, got {ttl!r}")
    return ttl


def _check_number(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what}: expected a finite number, got {value!r}")
    return float(value)


# One interval of one metric: count/sum/min/max fields per bucket start, in one hash.
# Buckets older than the newest ARGV[4] are dropped so that the hash stays bounded.
_RECORD_METRIC = """
local key, bucket, value = KEYS[1], ARGV[1], ARGV[2]
local ttl, keep_buckets = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('HINCRBY', key, bucket .. ':count', 1)
redis.call('HINCRBYFLOAT', key, bucket .. ':sum', value)
local lo = redis.call('HGET', key, bucket .. ':min')
if not lo or tonumber(value) < tonumber(lo) then redis.call('HSET', key, bucket .. ':min', value) end
local hi = redis.call('HGET', key, bucket .. ':max')
if not hi or tonumber(value) > tonumber(hi) then redis.call('HSET', key, bucket .. ':max', value) end
if redis.call('HLEN', key) > 4 * keep_buckets then
  local starts, seen = {}, {}
  for _, f in ipairs(redis.call('HKEYS', key)) do
    local s = tonumber(string.match(f, '^(%d+):'))
    if s and not seen[s] then seen[s] = true; table.insert(starts, s) end
  end
  table.sort(starts)
  for i = 1, #starts - keep_buckets do
    local s = tostring(starts[i])
    redis.call('HDEL', key, s .. ':count', s .. ':sum', s .. ':min', s .. ':max')
  end
end
redis.call('EXPIRE', key, ttl)
return 1
"""


@dataclass
class MigrationPlan:
    """What :meth:`AnomalyRedisManager.plan_legacy_migration` found.

    ``mapping`` is legacy key -> new key; ``skipped`` is legacy key -> reason.
    """

    mapping: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


class AnomalyRedisManager:
    """Read, write, monitor and clean up every key kind of the layout.

    Values are JSON (models are raw bytes). Works with ``redis.Redis`` and
    ``redis.cluster.RedisCluster``, with or without ``decode_responses``.

    Parameters
    ----------
    redis_client : redis.Redis
        The client.
    settings : Settings, optional
        Source of ``redis_key_prefix`` and ``redis_hash_tag`` (default: :func:`get_settings`).
    alerts_index_size : int
        How many alert ids :meth:`list_alerts` can reach (the index is trimmed to this).
    metric_buckets : int
        How many buckets of each roll-up interval are kept.
    """

    def __init__(
        self,
        redis_client: Any,
        settings: Settings | None = None,
        *,
        alerts_index_size: int = 10_000,
        metric_buckets: int = 48,
    ) -> None:
        if settings is None:
            from anomaly_detection.config import get_settings

            settings = get_settings()
        if alerts_index_size < 1 or metric_buckets < 1:
            raise ValueError(
                f"alerts_index_size and metric_buckets: expected >= 1, got {alerts_index_size}, {metric_buckets}"
            )
        self.redis = redis_client
        self.settings = settings
        self.keys = AnomalyRedisKeys.from_settings(settings)
        self.alerts_index_size = alerts_index_size
        self.metric_buckets = metric_buckets
        self._record_metric = redis_client.register_script(_RECORD_METRIC)

    # --- helpers ---------------------------------------------------------------

    def _scan(self, pattern: str, count: int = 1000) -> Iterator[str]:
        for key in self.redis.scan_iter(match=pattern, count=count):
            yield _text(key)

    def _set_json(self, key: str, value: Any, ttl: int) -> None:
        self.redis.set(key, _dumps(value), ex=ttl)

    def _get_json(self, key: str, default: Any = None) -> Any:
        value = _loads(self.redis.get(key), key)
        return default if value is None else value

    # --- sensor windows --------------------------------------------------------

    def store_temp_data(
        self,
        sensor: str,
        data: Mapping[str, Any] | Iterable[Mapping[str, Any]],
        window_size: int | None = None,
    ) -> int:
        """Append one point (a mapping) or several to the sensor window; return its length.

        The window is trimmed to ``window_size`` (default: ``settings.window_size``) and its TTL refreshed.
        """
        key = self.keys.temp_data(sensor)
        points = [data] if isinstance(data, Mapping) else list(data)
        if not points or not all(isinstance(p, Mapping) for p in points):
            raise ValueError("data: expected a mapping or a non-empty iterable of mappings")
        size = self.settings.window_size if window_size is None else window_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"window_size: expected a positive int, got {size!r}")
        encoded = [_dumps(dict(p)) for p in points]
        pipe = self.redis.pipeline(transaction=True)
        pipe.rpush(key, *encoded)
        pipe.ltrim(key, -size, -1)
        pipe.expire(key, _check_ttl(self.settings.temp_data_ttl, AnomalyRedisTTL.TEMP_DATA))
        pipe.llen(key)
        return int(pipe.execute()[-1])

    def get_temp_data(self, sensor: str, start: int = 0, end: int = -1) -> list[Any]:
        """The points of the sensor window, oldest first."""
        key = self.keys.temp_data(sensor)
        return [_loads(raw, key) for raw in self.redis.lrange(key, start, end)]

    def clear_temp_data(self, sensor: str) -> bool:
        """Delete the sensor window; True if it existed."""
        return bool(self.redis.unlink(self.keys.temp_data(sensor)))

    # --- processing queues -----------------------------------------------------

    def push_processing(self, batch_id: str, item: Any, ttl: int | None = None) -> int:
        """Append an item to a processing queue; return its length."""
        key = self.keys.processing_queue(batch_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.rpush(key, _dumps(item))
        pipe.expire(key, _check_ttl(ttl, AnomalyRedisTTL.PROCESSING_QUEUE))
        return int(pipe.execute()[0])

    def pop_processing(self, batch_id: str) -> Any:
        """Take the oldest item of a processing queue (None if empty)."""
        key = self.keys.processing_queue(batch_id)
        return _loads(self.redis.lpop(key), key)

    # --- results, alerts -------------------------------------------------------

    def store_analysis_result(self, analysis_id: str, result: Any, ttl: int | None = None) -> None:
        """Store an analysis result (TTL 24 h)."""
        self._set_json(
            self.keys.analysis_result(analysis_id), result, _check_ttl(ttl, AnomalyRedisTTL.ANALYSIS_RESULT)
        )

    def get_analysis_result(self, analysis_id: str) -> Any:
        """The stored result, or None."""
        return self._get_json(self.keys.analysis_result(analysis_id))

    def store_alert(self, alert_id: str, alert: Mapping[str, Any], timestamp: float | None = None) -> None:
        """Store an alert (TTL 7 days) and index it by time for :meth:`list_alerts`.

        The time is ``timestamp``, else ``alert["timestamp"]`` if it is a number, else now.
        """
        key = self.keys.alert(alert_id)
        if not isinstance(alert, Mapping):
            raise ValueError(f"alert: expected a mapping, got {type(alert).__name__}")  # noqa: TRY004 (the package's contract: bad input is a ValueError)
        if timestamp is None:
            stamp = alert.get("timestamp")
            timestamp = (
                stamp if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) else time.time()
            )
        score = _check_number(timestamp, "timestamp")
        encoded = _dumps(dict(alert))
        index = self.keys.alerts_index()
        # Not one transaction: on a Cluster the alert and the index live in different slots.
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(key, encoded, ex=AnomalyRedisTTL.ALERTS)
        pipe.zadd(index, {alert_id: score})
        pipe.zremrangebyrank(index, 0, -self.alerts_index_size - 1)
        pipe.expire(index, AnomalyRedisTTL.ALERTS)
        pipe.execute()

    def get_alert(self, alert_id: str) -> Any:
        """The stored alert, or None."""
        return self._get_json(self.keys.alert(alert_id))

    def list_alerts(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` alerts still stored, newest first, each with its ``id``."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit: expected a positive int, got {limit!r}")
        index = self.keys.alerts_index()
        alerts: list[dict[str, Any]] = []
        offset = 0
        # Alerts expire on their own (7 days) while their index entry stays: drop such
        # entries as they are met and read on, so that `limit` live alerts come back.
        while len(alerts) < limit:
            want = limit - len(alerts)
            ids = [_text(i) for i in self.redis.zrevrange(index, offset, offset + want - 1)]
            if not ids:
                break
            pipe = self.redis.pipeline(transaction=False)
            for alert_id in ids:
                pipe.get(self.keys.alert(alert_id))
            expired = []
            for alert_id, raw in zip(ids, pipe.execute()):
                if raw is None:
                    expired.append(alert_id)
                    continue
                value = _loads(raw, self.keys.alert(alert_id))
                alerts.append(
                    {"id": alert_id, **value} if isinstance(value, dict) else {"id": alert_id, "alert": value}
                )
            if expired:
                self.redis.zrem(index, *expired)
            offset += len(ids) - len(expired)
        return alerts

    # --- models, config, cache -------------------------------------------------

    def store_model(self, name: str, data: bytes, ttl: int | None = None) -> None:
        """Store serialised model bytes (TTL 24 h)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValueError(f"model data: expected bytes, got {type(data).__name__}")  # noqa: TRY004 (the package's contract: bad input is a ValueError)
        self.redis.set(self.keys.model(name), bytes(data), ex=_check_ttl(ttl, AnomalyRedisTTL.MODEL))

    def load_model(self, name: str) -> bytes | None:
        """The stored model bytes, or None."""
        raw = self.redis.get(self.keys.model(name))
        if raw is None or isinstance(raw, bytes):
            return raw
        # A decode_responses client hands back str; models are written as bytes.
        return raw.encode("utf-8", "surrogateescape")

    def set_config(self, name: str, value: Any, ttl: int | None = None) -> None:
        """Store a configuration value (TTL 24 h)."""
        self._set_json(self.keys.config(name), value, _check_ttl(ttl, AnomalyRedisTTL.CONFIG))

    def get_config(self, name: str, default: Any = None) -> Any:
        """The configuration value, or ``default``."""
        return self._get_json(self.keys.config(name), default)

    def cache_set(self, category: str, key: str, value: Any, ttl: int | None = None) -> None:
        """Cache a value (TTL 1 h)."""
        self._set_json(self.keys.cache(category, key), value, _check_ttl(ttl, AnomalyRedisTTL.CACHE))

    def cache_get(self, category: str, key: str, default: Any = None) -> Any:
        """The cached value, or ``default``."""
        return self._get_json(self.keys.cache(category, key), default)

    # --- metrics ---------------------------------------------------------------

    def record_metric(self, name: str, value: float, timestamp: float | None = None) -> None:
        """Add one observation to the count/sum/min/max of its bucket in every interval of
        :data:`METRIC_INTERVALS` (one hash per interval, one field group per bucket)."""
        keys = [(interval, self.keys.metrics(name, interval)) for interval in METRIC_INTERVALS]
        number = _check_number(value, "value")
        stamp = _check_number(time.time() if timestamp is None else timestamp, "timestamp")
        pipe = self.redis.pipeline(transaction=False)
        for interval, key in keys:
            seconds = METRIC_INTERVALS[interval]
            bucket = int(stamp // seconds) * seconds
            ttl = max(AnomalyRedisTTL.METRICS, seconds)
            self._record_metric(
                keys=[key], args=[bucket, repr(number), ttl, self.metric_buckets], client=pipe
            )
        pipe.execute()

    def get_metrics(self, name: str, interval: str) -> list[dict[str, float]]:
        """The buckets of one interval, oldest first: ``start``, ``count``, ``sum``, ``min``, ``max``, ``mean``."""
        if interval not in METRIC_INTERVALS:
            raise ValueError(f"interval: expected one of {list(METRIC_INTERVALS)}, got {interval!r}")
        key = self.keys.metrics(name, interval)
        buckets: dict[int, dict[str, float]] = {}
        for raw_field, raw_value in self.redis.hgetall(key).items():
            start, _, stat = _text(raw_field).partition(":")
            buckets.setdefault(int(start), {"start": float(start)})[stat] = float(_text(raw_value))
        out = []
        for start in sorted(buckets):
            bucket = buckets[start]
            bucket["mean"] = bucket["sum"] / bucket["count"]
            out.append(bucket)
        return out

    # --- health ----------------------------------------------------------------

    def heartbeat(self, component: str, info: Mapping[str, Any] | None = None) -> None:
        """Record that ``component`` is alive (TTL 5 min), with optional details."""
        payload = {**dict(info or {}), "timestamp": time.time()}
        self._set_json(self.keys.health(component), payload, AnomalyRedisTTL.HEALTH)

    def get_system_health(self) -> dict[str, Any]:
        """Queue length per sensor and the live heartbeats, found with SCAN.

        Returns ``{"sensors": {sensor: length}, "components": {component: info}}``.
        """
        sensor_keys = list(self._scan(self.keys.pattern("temp_data")))
        health_keys = list(self._scan(self.keys.pattern("health")))
        pipe = self.redis.pipeline(transaction=False)
        for key in sensor_keys:
            pipe.llen(key)
        for key in health_keys:
            pipe.get(key)
        replies = pipe.execute() if sensor_keys or health_keys else []
        sensors: dict[str, int] = {}
        for key, length in zip(sensor_keys, replies):
            sensor = self.keys.parse_sensor(key)
            if sensor is not None:
                sensors[sensor] = int(length)
        components: dict[str, Any] = {}
        head = f"{self.keys.prefix}:health:"
        for key, raw in zip(health_keys, replies[len(sensor_keys) :]):
            if raw is not None:  # expired between SCAN and GET
                components[key[len(head) :]] = _loads(raw, key)
        return {"sensors": dict(sorted(sensors.items())), "components": dict(sorted(components.items()))}

    # --- clean-up and migration ------------------------------------------------

    def purge_namespace(self, batch: int = 500) -> int:
        """Delete every key under the prefix (SCAN + UNLINK); return how many were deleted."""
        deleted, chunk = 0, []
        for key in self._scan(self.keys.namespace_pattern()):
            chunk.append(key)
            if len(chunk) >= batch:
                deleted += int(self.redis.unlink(*chunk))
                chunk = []
        if chunk:
            deleted += int(self.redis.unlink(*chunk))
        return deleted

    def _legacy_target(self, rest: list[str]) -> tuple[str | None, str]:
        """(new key, "") for a legacy key without its prefix (``rest`` = its ``:`` parts), or (None, why)."""
        try:
            return self._legacy_rule(rest), ""
        except ValueError as exc:
            return None, str(exc)

    def _legacy_rule(self, rest: list[str]) -> str:
        k = self.keys
        match rest:
            case ["temp", "data", sensor] | ["temp", "data", sensor, "queue"]:
                return k.temp_data(sensor)
            case ["results", "analysis", rid] | ["results", rid]:
                return k.analysis_result(rid)
            case ["queue", "processing", bid] | ["queue", bid]:
                return k.processing_queue(bid)
            case ["cache", category, key]:
                return k.cache(category, key)
            case ["model", name] | ["models", name]:
                return k.model(name)
            case ["health", name]:
                return k.health(name)
            case ["metrics", name, interval]:
                return k.metrics(name, interval)
            case ["alerts", aid] | ["alert", aid]:
                return k.alert(aid)
            case ["config", name]:
                return k.config(name)
        raise ValueError(f"no rule for a legacy key of the form {':'.join(rest)!r}")

    def plan_legacy_migration(self, pattern: str = "anomaly_detector:*") -> MigrationPlan:
        """Find the legacy keys matching ``pattern`` and the new key of each, without changing anything.

        ``pattern`` must start with a literal legacy prefix and ``:`` (``anomaly_detector:*``),
        different from ours, so that no other application's key can be matched.
        """
        legacy, sep, _ = pattern.partition(":") if isinstance(pattern, str) else ("", "", "")
        if not sep or not _PREFIX_RE.match(legacy):
            raise ValueError(
                f"pattern: expected '<legacy prefix>:...' such as 'anomaly_detector:*', got {pattern!r}"
            )
        if legacy == self.keys.prefix:
            raise ValueError(f"pattern: {pattern!r} matches this package's own prefix {legacy!r}")
        plan = MigrationPlan()
        for key in self._scan(pattern):
            target, reason = self._legacy_target(key.split(":")[1:])
            if target is None:
                plan.skipped[key] = reason
            else:
                plan.mapping[key] = target
        return plan

    def migrate_legacy_keys(
        self, pattern: str = "anomaly_detector:*", dry_run: bool = False
    ) -> dict[str, str]:
        """Rename legacy keys into the layout, keeping their TTLs; return legacy key -> new key.

        ``anomaly_detector:temp:data:sensor1`` becomes ``anomaly:temp:data:sensor1:queue``. A key whose
        target already exists is left alone (``RENAMENX``) and not in the result. With ``dry_run`` nothing
        changes and the result is what would be renamed.
        """
        plan = self.plan_legacy_migration(pattern)
        if dry_run:
            return plan.mapping
        # RENAME keeps the TTL; RENAMENX never overwrites a key already in the layout.
        return {old: new for old, new in plan.mapping.items() if self.redis.renamenx(old, new)}
