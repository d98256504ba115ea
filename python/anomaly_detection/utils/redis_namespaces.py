"""The ``anomaly:`` key layout on a shared Redis, its TTLs, and a manager for every key kind.

Everything this package writes lives under one prefix (``redis_key_prefix``, default
``anomaly``), so other applications on the same server (``nextauth:``, ``fabric:``,
``fastapi:`` ...) are never touched. Keys are found with ``SCAN``, never ``KEYS``:
``KEYS`` blocks the server for the whole keyspace.
"""

from __future__ import annotations

import inspect
import json
import math
import re
import time
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, TypeVar

from anomaly_detection._core import check_sensor_name

if TYPE_CHECKING:
    from anomaly_detection.config import Settings

__all__ = [
    "METRIC_INTERVALS",
    "AnomalyRedisKeys",
    "AnomalyRedisManager",
    "AnomalyRedisTTL",
    "AsyncAnomalyRedisManager",
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
    TEMP_STATE = TEMP_DATA  #: ensemble checkpoints beside the windows, refreshed with them
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
        "temp_state": "temp:data:{0}:state",
        "temp_state_parked": "temp:data:{0}:state:parked",
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

    def temp_state(self, sensor: str) -> str:
        """``anomaly:temp:data:{sensor}:state``: the ensemble's checkpoint (hash: seen, blob)."""
        return self._key("temp_state", self.sensor_part(sensor))

    def temp_state_parked(self, sensor: str) -> str:
        """``anomaly:temp:data:{sensor}:state:parked``: a checkpoint that lost to a newer one, kept 2 s."""
        return self._key("temp_state_parked", self.sensor_part(sensor))

    def sensor_keys(self, sensor: str) -> tuple[str, ...]:
        """Every key of one sensor: window, counters, checkpoint, parked checkpoint."""
        return (self.temp_data(sensor), self.temp_stats(sensor), self.temp_state(sensor),
                self.temp_state_parked(sensor))  # fmt: skip

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


# --- the manager: every method is written once, as a generator of Redis operations ---------
#
# A method body (``_steps_*``) validates, builds keys and encodes, then yields the operations
# it needs (a command, a pipeline, a SCAN) and gets each reply back; it decodes and returns.
# It does no I/O itself: AnomalyRedisManager runs the operations on a redis.Redis client,
# AsyncAnomalyRedisManager awaits them on a redis.asyncio one. Bad input raises ValueError
# before the first operation is yielded, so nothing is written.

_SCAN_COUNT = 1000
_T = TypeVar("_T")


class _Call(NamedTuple):
    """``client.<name>(*args, **kwargs)``; with ``script``, the registered Lua script ``name``."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] | None = None
    script: bool = False


def _cmd(name: str, *args: Any, **kwargs: Any) -> _Call:
    return _Call(name, args, kwargs)


class _Batch(NamedTuple):
    """Commands sent in one pipeline; the reply is the list of their replies."""

    calls: tuple[_Call, ...]
    transaction: bool


class _Scan(NamedTuple):
    """SCAN MATCH ``pattern`` (``scan_iter``); the reply is the list of keys as str."""

    pattern: str


class _Purge(NamedTuple):
    """SCAN MATCH ``pattern`` and UNLINK the keys ``batch`` at a time; the reply is how many were deleted."""

    pattern: str
    batch: int


_Steps = Generator[_Call | _Batch | _Scan | _Purge, Any, _T]


def _check_positive(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what}: expected a positive int, got {value!r}")
    return value


class _AnomalyRedisManagerBase:
    """What the sync and asyncio managers share: settings, keys, validation, encoding, the steps."""

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
        # register_script sends nothing: the script is loaded on first use (EVALSHA, then SCRIPT LOAD).
        self._scripts = {"record_metric": redis_client.register_script(_RECORD_METRIC)}
        # A Redis Cluster pipeline refuses EVALSHA: there, a batch with a script is sent call by call.
        self._is_cluster = callable(getattr(redis_client, "get_default_node", None))

    def _unpipelined(self, batch: _Batch) -> bool:
        return self._is_cluster and any(call.script for call in batch.calls)

    def _issue(self, target: Any, call: _Call) -> Any:
        """Send (or queue on a pipeline) one call; the reply, or an awaitable on an asyncio client."""
        if call.script:
            return self._scripts[call.name](*call.args, client=target)  # (keys, args)
        return getattr(target, call.name)(*call.args, **(call.kwargs or {}))

    # --- shared steps ------------------------------------------------------------

    def _steps_get_json(self, key: str, default: Any = None) -> _Steps[Any]:
        value = _loads((yield _cmd("get", key)), key)
        return default if value is None else value

    def _steps_set_json(self, key: str, value: Any, ttl: int | None, default_ttl: int) -> _Steps[None]:
        yield _cmd("set", key, _dumps(value), ex=_check_ttl(ttl, default_ttl))

    def _steps_store_temp_data(
        self, sensor: str, data: Mapping[str, Any] | Iterable[Mapping[str, Any]], window_size: int | None
    ) -> _Steps[int]:
        key = self.keys.temp_data(sensor)
        points = [data] if isinstance(data, Mapping) else list(data)
        if not points or not all(isinstance(p, Mapping) for p in points):
            raise ValueError("data: expected a mapping or a non-empty iterable of mappings")
        size = _check_positive(
            self.settings.window_size if window_size is None else window_size, "window_size"
        )
        encoded = [_dumps(dict(p)) for p in points]
        ttl = _check_ttl(self.settings.temp_data_ttl, AnomalyRedisTTL.TEMP_DATA)
        replies = yield _Batch(
            (
                _cmd("rpush", key, *encoded),
                _cmd("ltrim", key, -size, -1),
                _cmd("expire", key, ttl),
                _cmd("llen", key),
            ),
            transaction=True,
        )
        return int(replies[-1])

    def _steps_get_temp_data(self, sensor: str, start: int, end: int) -> _Steps[list[Any]]:
        key = self.keys.temp_data(sensor)
        return [_loads(raw, key) for raw in (yield _cmd("lrange", key, start, end))]

    def _steps_clear_temp_data(self, sensor: str) -> _Steps[bool]:
        # One UNLINK per key: without hash tags they may live in different Cluster slots.
        calls = tuple(_cmd("unlink", key) for key in self.keys.sensor_keys(sensor))
        return bool((yield _Batch(calls, transaction=False))[0])

    def _steps_push_processing(self, batch_id: str, item: Any, ttl: int | None) -> _Steps[int]:
        key = self.keys.processing_queue(batch_id)
        calls = (
            _cmd("rpush", key, _dumps(item)),
            _cmd("expire", key, _check_ttl(ttl, AnomalyRedisTTL.PROCESSING_QUEUE)),
        )
        return int((yield _Batch(calls, transaction=True))[0])

    def _steps_pop_processing(self, batch_id: str) -> _Steps[Any]:
        key = self.keys.processing_queue(batch_id)
        return _loads((yield _cmd("lpop", key)), key)

    def _steps_store_alert(
        self, alert_id: str, alert: Mapping[str, Any], timestamp: float | None
    ) -> _Steps[None]:
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
        calls = (
            _cmd("set", key, encoded, ex=AnomalyRedisTTL.ALERTS),
            _cmd("zadd", index, {alert_id: score}),
            _cmd("zremrangebyrank", index, 0, -self.alerts_index_size - 1),
            _cmd("expire", index, AnomalyRedisTTL.ALERTS),
        )
        yield _Batch(calls, transaction=False)

    def _steps_list_alerts(self, limit: int) -> _Steps[list[dict[str, Any]]]:
        _check_positive(limit, "limit")
        index = self.keys.alerts_index()
        alerts: list[dict[str, Any]] = []
        offset = 0
        # Alerts expire on their own (7 days) while their index entry stays: drop such
        # entries as they are met and read on, so that `limit` live alerts come back.
        while len(alerts) < limit:
            want = limit - len(alerts)
            ids = [_text(i) for i in (yield _cmd("zrevrange", index, offset, offset + want - 1))]
            if not ids:
                break
            raws = yield _Batch(tuple(_cmd("get", self.keys.alert(i)) for i in ids), transaction=False)
            expired = []
            for alert_id, raw in zip(ids, raws):
                if raw is None:
                    expired.append(alert_id)
                    continue
                value = _loads(raw, self.keys.alert(alert_id))
                alerts.append(
                    {"id": alert_id, **value} if isinstance(value, dict) else {"id": alert_id, "alert": value}
                )
            if expired:
                yield _cmd("zrem", index, *expired)
            offset += len(ids) - len(expired)
        return alerts

    def _steps_store_model(self, name: str, data: bytes, ttl: int | None) -> _Steps[None]:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValueError(f"model data: expected bytes, got {type(data).__name__}")  # noqa: TRY004 (the package's contract: bad input is a ValueError)
        yield _cmd("set", self.keys.model(name), bytes(data), ex=_check_ttl(ttl, AnomalyRedisTTL.MODEL))

    def _steps_load_model(self, name: str) -> _Steps[bytes | None]:
        raw = yield _cmd("get", self.keys.model(name))
        if raw is None or isinstance(raw, bytes):
            return raw
        # A decode_responses client hands back str; models are written as bytes.
        return raw.encode("utf-8", "surrogateescape")

    def _steps_record_metric(self, name: str, value: float, timestamp: float | None) -> _Steps[None]:
        keys = [(interval, self.keys.metrics(name, interval)) for interval in METRIC_INTERVALS]
        number = _check_number(value, "value")
        stamp = _check_number(time.time() if timestamp is None else timestamp, "timestamp")
        calls = []
        for interval, key in keys:
            seconds = METRIC_INTERVALS[interval]
            bucket = int(stamp // seconds) * seconds
            ttl = max(AnomalyRedisTTL.METRICS, seconds)
            args = [bucket, repr(number), ttl, self.metric_buckets]
            calls.append(_Call("record_metric", ([key], args), script=True))
        yield _Batch(tuple(calls), transaction=False)

    def _steps_get_metrics(self, name: str, interval: str) -> _Steps[list[dict[str, float]]]:
        if interval not in METRIC_INTERVALS:
            raise ValueError(f"interval: expected one of {list(METRIC_INTERVALS)}, got {interval!r}")
        key = self.keys.metrics(name, interval)
        buckets: dict[int, dict[str, float]] = {}
        for raw_field, raw_value in (yield _cmd("hgetall", key)).items():
            start, _, stat = _text(raw_field).partition(":")
            buckets.setdefault(int(start), {"start": float(start)})[stat] = float(_text(raw_value))
        out = []
        for start in sorted(buckets):
            bucket = buckets[start]
            bucket["mean"] = bucket["sum"] / bucket["count"]
            out.append(bucket)
        return out

    def _steps_heartbeat(self, component: str, info: Mapping[str, Any] | None) -> _Steps[None]:
        payload = {**dict(info or {}), "timestamp": time.time()}
        yield from self._steps_set_json(self.keys.health(component), payload, None, AnomalyRedisTTL.HEALTH)

    def _steps_get_system_health(self) -> _Steps[dict[str, Any]]:
        sensor_keys = yield _Scan(self.keys.pattern("temp_data"))
        health_keys = yield _Scan(self.keys.pattern("health"))
        calls = tuple(_cmd("llen", k) for k in sensor_keys) + tuple(_cmd("get", k) for k in health_keys)
        replies = (yield _Batch(calls, transaction=False)) if calls else []
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

    def _steps_purge_namespace(self, batch: int) -> _Steps[int]:
        return int((yield _Purge(self.keys.namespace_pattern(), _check_positive(batch, "batch"))))

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

    def _steps_plan_legacy_migration(self, pattern: str) -> _Steps[MigrationPlan]:
        legacy, sep, _ = pattern.partition(":") if isinstance(pattern, str) else ("", "", "")
        if not sep or not _PREFIX_RE.match(legacy):
            raise ValueError(
                f"pattern: expected '<legacy prefix>:...' such as 'anomaly_detector:*', got {pattern!r}"
            )
        if legacy == self.keys.prefix:
            raise ValueError(f"pattern: {pattern!r} matches this package's own prefix {legacy!r}")
        plan = MigrationPlan()
        for key in (yield _Scan(pattern)):
            target, reason = self._legacy_target(key.split(":")[1:])
            if target is None:
                plan.skipped[key] = reason
            else:
                plan.mapping[key] = target
        return plan

    def _steps_migrate_legacy_keys(self, pattern: str, dry_run: bool) -> _Steps[dict[str, str]]:
        plan = yield from self._steps_plan_legacy_migration(pattern)
        if dry_run:
            return plan.mapping
        # RENAME keeps the TTL; RENAMENX never overwrites a key already in the layout.
        renamed = {}
        for old, new in plan.mapping.items():
            if (yield _cmd("renamenx", old, new)):
                renamed[old] = new  # noqa: PERF403 (a comprehension cannot yield)
        return renamed


class AnomalyRedisManager(_AnomalyRedisManagerBase):
    """Read, write, monitor and clean up every key kind of the layout.

    Values are JSON (models are raw bytes). Works with ``redis.Redis`` and
    ``redis.cluster.RedisCluster``, with or without ``decode_responses``.
    :class:`AsyncAnomalyRedisManager` is the same for ``redis.asyncio`` clients.

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

    def _run(self, steps: _Steps[_T]) -> _T:
        reply: Any = None
        while True:
            try:
                op = steps.send(reply)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            reply = self._execute(op)

    def _execute(self, op: _Call | _Batch | _Scan | _Purge) -> Any:
        if isinstance(op, _Scan):
            return [_text(k) for k in self.redis.scan_iter(match=op.pattern, count=_SCAN_COUNT)]
        if isinstance(op, _Purge):
            deleted, chunk = 0, []
            for key in self.redis.scan_iter(match=op.pattern, count=_SCAN_COUNT):
                chunk.append(key)
                if len(chunk) >= op.batch:
                    deleted, chunk = deleted + int(self.redis.unlink(*chunk)), []
            return deleted + (int(self.redis.unlink(*chunk)) if chunk else 0)
        if isinstance(op, _Batch) and self._unpipelined(op):
            return [self._issue(self.redis, call) for call in op.calls]
        if isinstance(op, _Batch):
            pipe = self.redis.pipeline(transaction=op.transaction)
            for call in op.calls:
                self._issue(pipe, call)
            return pipe.execute()
        return self._issue(self.redis, op)

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
        return self._run(self._steps_store_temp_data(sensor, data, window_size))

    def get_temp_data(self, sensor: str, start: int = 0, end: int = -1) -> list[Any]:
        """The points of the sensor window, oldest first."""
        return self._run(self._steps_get_temp_data(sensor, start, end))

    def clear_temp_data(self, sensor: str) -> bool:
        """Delete the sensor window, its counters and its ensemble checkpoint; True if the window existed."""
        return self._run(self._steps_clear_temp_data(sensor))

    # --- processing queues -----------------------------------------------------

    def push_processing(self, batch_id: str, item: Any, ttl: int | None = None) -> int:
        """Append an item to a processing queue; return its length."""
        return self._run(self._steps_push_processing(batch_id, item, ttl))

    def pop_processing(self, batch_id: str) -> Any:
        """Take the oldest item of a processing queue (None if empty)."""
        return self._run(self._steps_pop_processing(batch_id))

    # --- results, alerts -------------------------------------------------------

    def store_analysis_result(self, analysis_id: str, result: Any, ttl: int | None = None) -> None:
        """Store an analysis result (TTL 24 h)."""
        key = self.keys.analysis_result(analysis_id)
        self._run(self._steps_set_json(key, result, ttl, AnomalyRedisTTL.ANALYSIS_RESULT))

    def get_analysis_result(self, analysis_id: str) -> Any:
        """The stored result, or None."""
        return self._run(self._steps_get_json(self.keys.analysis_result(analysis_id)))

    def store_alert(self, alert_id: str, alert: Mapping[str, Any], timestamp: float | None = None) -> None:
        """Store an alert (TTL 7 days) and index it by time for :meth:`list_alerts`.

        The time is ``timestamp``, else ``alert["timestamp"]`` if it is a number, else now.
        """
        self._run(self._steps_store_alert(alert_id, alert, timestamp))

    def get_alert(self, alert_id: str) -> Any:
        """The stored alert, or None."""
        return self._run(self._steps_get_json(self.keys.alert(alert_id)))

    def list_alerts(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` alerts still stored, newest first, each with its ``id``."""
        return self._run(self._steps_list_alerts(limit))

    # --- models, config, cache -------------------------------------------------

    def store_model(self, name: str, data: bytes, ttl: int | None = None) -> None:
        """Store serialised model bytes (TTL 24 h)."""
        self._run(self._steps_store_model(name, data, ttl))

    def load_model(self, name: str) -> bytes | None:
        """The stored model bytes, or None."""
        return self._run(self._steps_load_model(name))

    def set_config(self, name: str, value: Any, ttl: int | None = None) -> None:
        """Store a configuration value (TTL 24 h)."""
        self._run(self._steps_set_json(self.keys.config(name), value, ttl, AnomalyRedisTTL.CONFIG))

    def get_config(self, name: str, default: Any = None) -> Any:
        """The configuration value, or ``default``."""
        return self._run(self._steps_get_json(self.keys.config(name), default))

    def cache_set(self, category: str, key: str, value: Any, ttl: int | None = None) -> None:
        """Cache a value (TTL 1 h)."""
        full_key = self.keys.cache(category, key)
        self._run(self._steps_set_json(full_key, value, ttl, AnomalyRedisTTL.CACHE))

    def cache_get(self, category: str, key: str, default: Any = None) -> Any:
        """The cached value, or ``default``."""
        return self._run(self._steps_get_json(self.keys.cache(category, key), default))

    # --- metrics ---------------------------------------------------------------

    def record_metric(self, name: str, value: float, timestamp: float | None = None) -> None:
        """Add one observation to the count/sum/min/max of its bucket in every interval of
        :data:`METRIC_INTERVALS` (one hash per interval, one field group per bucket)."""
        self._run(self._steps_record_metric(name, value, timestamp))

    def get_metrics(self, name: str, interval: str) -> list[dict[str, float]]:
        """The buckets of one interval, oldest first: ``start``, ``count``, ``sum``, ``min``, ``max``, ``mean``."""
        return self._run(self._steps_get_metrics(name, interval))

    # --- health ----------------------------------------------------------------

    def heartbeat(self, component: str, info: Mapping[str, Any] | None = None) -> None:
        """Record that ``component`` is alive (TTL 5 min), with optional details."""
        self._run(self._steps_heartbeat(component, info))

    def get_system_health(self) -> dict[str, Any]:
        """Queue length per sensor and the live heartbeats, found with SCAN.

        Returns ``{"sensors": {sensor: length}, "components": {component: info}}``.
        """
        return self._run(self._steps_get_system_health())

    # --- clean-up and migration ------------------------------------------------

    def purge_namespace(self, batch: int = 500) -> int:
        """Delete every key under the prefix (SCAN + UNLINK); return how many were deleted."""
        return self._run(self._steps_purge_namespace(batch))

    def plan_legacy_migration(self, pattern: str = "anomaly_detector:*") -> MigrationPlan:
        """Find the legacy keys matching ``pattern`` and the new key of each, without changing anything.

        ``pattern`` must start with a literal legacy prefix and ``:`` (``anomaly_detector:*``),
        different from ours, so that no other application's key can be matched.
        """
        return self._run(self._steps_plan_legacy_migration(pattern))

    def migrate_legacy_keys(
        self, pattern: str = "anomaly_detector:*", dry_run: bool = False
    ) -> dict[str, str]:
        """Rename legacy keys into the layout, keeping their TTLs; return legacy key -> new key.

        ``anomaly_detector:temp:data:sensor1`` becomes ``anomaly:temp:data:sensor1:queue``. A key whose
        target already exists is left alone (``RENAMENX``) and not in the result. With ``dry_run`` nothing
        changes and the result is what would be renamed.
        """
        return self._run(self._steps_migrate_legacy_keys(pattern, dry_run))


class AsyncAnomalyRedisManager(_AnomalyRedisManagerBase):
    """:class:`AnomalyRedisManager` for ``redis.asyncio`` clients: the same methods, as coroutines.

    Same keys, TTLs, JSON, validation (``ValueError`` before anything is sent) and SCAN (``scan_iter``
    as an async iterator, never ``KEYS``); both classes run the same method bodies. Works with
    ``redis.asyncio.Redis`` and ``redis.asyncio.cluster.RedisCluster``.

    Examples
    --------
    Inside a coroutine (tested in ``tests/python/test_redis_namespaces_async.py``)::

        manager = AsyncAnomalyRedisManager(redis.asyncio.Redis(), Settings())
        await manager.store_temp_data("s1", {"value": 1.0})     # 1
    """

    async def _run(self, steps: _Steps[_T]) -> _T:
        reply: Any = None
        while True:
            try:
                op = steps.send(reply)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            reply = await self._execute(op)

    async def _execute(self, op: _Call | _Batch | _Scan | _Purge) -> Any:
        if isinstance(op, _Scan):
            return [_text(k) async for k in self.redis.scan_iter(match=op.pattern, count=_SCAN_COUNT)]
        if isinstance(op, _Purge):
            deleted, chunk = 0, []
            async for key in self.redis.scan_iter(match=op.pattern, count=_SCAN_COUNT):
                chunk.append(key)
                if len(chunk) >= op.batch:
                    deleted, chunk = deleted + int(await self.redis.unlink(*chunk)), []
            return deleted + (int(await self.redis.unlink(*chunk)) if chunk else 0)
        if isinstance(op, _Batch) and self._unpipelined(op):
            return [await self._issue(self.redis, call) for call in op.calls]
        if isinstance(op, _Batch):
            pipe = self.redis.pipeline(transaction=op.transaction)
            for call in op.calls:
                queued = self._issue(pipe, call)
                if inspect.iscoroutine(queued):  # a Lua script queues its EVALSHA inside a coroutine
                    await queued
            return await pipe.execute()
        return await self._issue(self.redis, op)

    async def store_temp_data(
        self,
        sensor: str,
        data: Mapping[str, Any] | Iterable[Mapping[str, Any]],
        window_size: int | None = None,
    ) -> int:
        """See :meth:`AnomalyRedisManager.store_temp_data`."""
        return await self._run(self._steps_store_temp_data(sensor, data, window_size))

    async def get_temp_data(self, sensor: str, start: int = 0, end: int = -1) -> list[Any]:
        """See :meth:`AnomalyRedisManager.get_temp_data`."""
        return await self._run(self._steps_get_temp_data(sensor, start, end))

    async def clear_temp_data(self, sensor: str) -> bool:
        """See :meth:`AnomalyRedisManager.clear_temp_data`."""
        return await self._run(self._steps_clear_temp_data(sensor))

    async def push_processing(self, batch_id: str, item: Any, ttl: int | None = None) -> int:
        """See :meth:`AnomalyRedisManager.push_processing`."""
        return await self._run(self._steps_push_processing(batch_id, item, ttl))

    async def pop_processing(self, batch_id: str) -> Any:
        """See :meth:`AnomalyRedisManager.pop_processing`."""
        return await self._run(self._steps_pop_processing(batch_id))

    async def store_analysis_result(self, analysis_id: str, result: Any, ttl: int | None = None) -> None:
        """See :meth:`AnomalyRedisManager.store_analysis_result`."""
        key = self.keys.analysis_result(analysis_id)
        await self._run(self._steps_set_json(key, result, ttl, AnomalyRedisTTL.ANALYSIS_RESULT))

    async def get_analysis_result(self, analysis_id: str) -> Any:
        """See :meth:`AnomalyRedisManager.get_analysis_result`."""
        return await self._run(self._steps_get_json(self.keys.analysis_result(analysis_id)))

    async def store_alert(
        self, alert_id: str, alert: Mapping[str, Any], timestamp: float | None = None
    ) -> None:
        """See :meth:`AnomalyRedisManager.store_alert`."""
        await self._run(self._steps_store_alert(alert_id, alert, timestamp))

    async def get_alert(self, alert_id: str) -> Any:
        """See :meth:`AnomalyRedisManager.get_alert`."""
        return await self._run(self._steps_get_json(self.keys.alert(alert_id)))

    async def list_alerts(self, limit: int = 100) -> list[dict[str, Any]]:
        """See :meth:`AnomalyRedisManager.list_alerts`."""
        return await self._run(self._steps_list_alerts(limit))

    async def store_model(self, name: str, data: bytes, ttl: int | None = None) -> None:
        """See :meth:`AnomalyRedisManager.store_model`."""
        await self._run(self._steps_store_model(name, data, ttl))

    async def load_model(self, name: str) -> bytes | None:
        """See :meth:`AnomalyRedisManager.load_model`."""
        return await self._run(self._steps_load_model(name))

    async def set_config(self, name: str, value: Any, ttl: int | None = None) -> None:
        """See :meth:`AnomalyRedisManager.set_config`."""
        await self._run(self._steps_set_json(self.keys.config(name), value, ttl, AnomalyRedisTTL.CONFIG))

    async def get_config(self, name: str, default: Any = None) -> Any:
        """See :meth:`AnomalyRedisManager.get_config`."""
        return await self._run(self._steps_get_json(self.keys.config(name), default))

    async def cache_set(self, category: str, key: str, value: Any, ttl: int | None = None) -> None:
        """See :meth:`AnomalyRedisManager.cache_set`."""
        full_key = self.keys.cache(category, key)
        await self._run(self._steps_set_json(full_key, value, ttl, AnomalyRedisTTL.CACHE))

    async def cache_get(self, category: str, key: str, default: Any = None) -> Any:
        """See :meth:`AnomalyRedisManager.cache_get`."""
        return await self._run(self._steps_get_json(self.keys.cache(category, key), default))

    async def record_metric(self, name: str, value: float, timestamp: float | None = None) -> None:
        """See :meth:`AnomalyRedisManager.record_metric`."""
        await self._run(self._steps_record_metric(name, value, timestamp))

    async def get_metrics(self, name: str, interval: str) -> list[dict[str, float]]:
        """See :meth:`AnomalyRedisManager.get_metrics`."""
        return await self._run(self._steps_get_metrics(name, interval))

    async def heartbeat(self, component: str, info: Mapping[str, Any] | None = None) -> None:
        """See :meth:`AnomalyRedisManager.heartbeat`."""
        await self._run(self._steps_heartbeat(component, info))

    async def get_system_health(self) -> dict[str, Any]:
        """See :meth:`AnomalyRedisManager.get_system_health`."""
        return await self._run(self._steps_get_system_health())

    async def purge_namespace(self, batch: int = 500) -> int:
        """See :meth:`AnomalyRedisManager.purge_namespace`."""
        return await self._run(self._steps_purge_namespace(batch))

    async def plan_legacy_migration(self, pattern: str = "anomaly_detector:*") -> MigrationPlan:
        """See :meth:`AnomalyRedisManager.plan_legacy_migration`."""
        return await self._run(self._steps_plan_legacy_migration(pattern))

    async def migrate_legacy_keys(
        self, pattern: str = "anomaly_detector:*", dry_run: bool = False
    ) -> dict[str, str]:
        """See :meth:`AnomalyRedisManager.migrate_legacy_keys`."""
        return await self._run(self._steps_migrate_legacy_keys(pattern, dry_run))
