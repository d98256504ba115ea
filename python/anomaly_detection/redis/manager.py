"""Read, write, monitor and clean up the key kinds of the layout: what the package and its CLI use.

Every method is written once, as steps of :mod:`anomaly_detection.redis.driver`;
:class:`AnomalyRedisManager` runs them on a sync client and
:class:`AsyncAnomalyRedisManager` awaits them on a ``redis.asyncio`` one. Keys are
found with ``SCAN``, never ``KEYS`` (which blocks the server for the whole keyspace).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from anomaly_detection.redis.codec import dumps, loads, text
from anomaly_detection.redis.driver import Batch, Driver, Purge, Scan, Steps, command
from anomaly_detection.redis.keys import AnomalyRedisKeys, AnomalyRedisTTL

if TYPE_CHECKING:
    from anomaly_detection.config import Settings

__all__ = ["AnomalyRedisManager", "AsyncAnomalyRedisManager", "MigrationPlan"]


@dataclass
class MigrationPlan:
    """What :meth:`AnomalyRedisManager.plan_legacy_migration` found.

    ``mapping`` is legacy key -> new key; ``skipped`` is legacy key -> reason.
    """

    mapping: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def _check_ttl(ttl: int | None, default: int) -> int:
    ttl = default if ttl is None else ttl
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1:
        raise ValueError(f"ttl: expected a positive int of seconds, got {ttl!r}")
    return ttl


def _check_positive(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what}: expected a positive int, got {value!r}")
    return value


def _check_number(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what}: expected a finite number, got {value!r}")
    return float(value)


def alert_score(alert: Mapping[str, Any], timestamp: float | None = None) -> float:
    """An alert's time in the alerts' index: ``timestamp``, else ``alert["timestamp"]`` if it is
    a number, else now; ValueError for a mapping that is not one or a time that is not finite."""
    if not isinstance(alert, Mapping):
        raise ValueError(f"alert: expected a mapping, got {type(alert).__name__}")  # noqa: TRY004 (the package's contract: bad input is a ValueError)
    if timestamp is None:
        stamp = alert.get("timestamp")
        timestamp = stamp if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) else time.time()
    return _check_number(timestamp, "timestamp")


def _operation(steps: Callable[..., Steps[Any]]) -> Callable[..., Any]:
    """A public method from its steps: run by the manager's driver."""

    @functools.wraps(steps)
    def method(self: AnomalyRedisManager, *args: Any, **kwargs: Any) -> Any:
        return self._driver.run(steps(self, *args, **kwargs))

    method.steps = steps  # type: ignore[attr-defined]
    return method


class AnomalyRedisManager:
    """Read, write, monitor and clean up the key kinds of the layout.

    Values are JSON (models are raw bytes). Works with ``redis.Redis`` and
    ``redis.cluster.RedisCluster``, with or without ``decode_responses``.
    :class:`AsyncAnomalyRedisManager` is the same for ``redis.asyncio`` clients.

    Parameters
    ----------
    redis_client : redis.Redis
        The client.
    settings : Settings, optional
        Source of ``redis_key_prefix``, ``redis_hash_tag``, ``window_size`` and
        ``temp_data_ttl`` (default: :func:`get_settings`).
    alerts_index_size : int
        How many alert ids :meth:`list_alerts` can reach (the index is trimmed to this).
    """

    def __init__(
        self, redis_client: Any, settings: Settings | None = None, *, alerts_index_size: int = 10_000
    ) -> None:
        if settings is None:
            from anomaly_detection.config import get_settings

            settings = get_settings()
        if alerts_index_size < 1:
            raise ValueError(f"alerts_index_size: expected >= 1, got {alerts_index_size}")
        self.redis = redis_client
        self.settings = settings
        self._driver = Driver(redis_client)
        # On a Cluster the detector forces hash tags: the manager names the same keys.
        self.keys = AnomalyRedisKeys.from_settings(settings, cluster=self._driver.is_cluster)
        self.alerts_index_size = alerts_index_size

    def _get_json(self, key: str, default: Any = None) -> Steps[Any]:
        value = loads((yield command("get", key)), key)
        return default if value is None else value

    def _set_json(self, key: str, value: Any, ttl: int | None, default_ttl: int) -> Steps[None]:
        yield command("set", key, dumps(value), ex=_check_ttl(ttl, default_ttl))

    # --- sensor windows --------------------------------------------------------

    @_operation
    def store_temp_data(
        self,
        sensor: str,
        data: Mapping[str, Any] | Iterable[Mapping[str, Any]],
        window_size: int | None = None,
    ) -> Steps[int]:
        """Append one point (a mapping) or several to the sensor window; return its length.

        The window is trimmed to ``window_size`` (default: ``settings.window_size``) and its TTL refreshed.
        """
        key = self.keys.window(sensor)
        points = [data] if isinstance(data, Mapping) else list(data)
        if not points or not all(isinstance(p, Mapping) for p in points):
            raise ValueError("data: expected a mapping or a non-empty iterable of mappings")
        size = _check_positive(
            self.settings.window_size if window_size is None else window_size, "window_size"
        )
        encoded = [dumps(dict(p)) for p in points]
        ttl = _check_ttl(self.settings.temp_data_ttl, AnomalyRedisTTL.TEMP_DATA)
        ops = (
            command("rpush", key, *encoded),
            command("ltrim", key, -size, -1),
            command("expire", key, ttl),
            # the detector's compact mirror no longer matches the list: rebuilt on its next append
            command("hdel", self.keys.counters(sensor), "ring", "tail", "values", "stamps", "last"),
            command("llen", key),
        )
        return int((yield Batch(ops, transaction=True))[-1])

    @_operation
    def get_temp_data(self, sensor: str, start: int = 0, end: int = -1) -> Steps[list[Any]]:
        """The points of the sensor window, oldest first."""
        key = self.keys.window(sensor)
        return [loads(raw, key) for raw in (yield command("lrange", key, start, end))]

    @_operation
    def clear_temp_data(self, sensor: str) -> Steps[bool]:
        """Delete the sensor window, its counters, its compact mirror and its ensemble checkpoints
        (the parked one too); True if the window existed."""
        # One UNLINK per key: without hash tags they may live in different Cluster slots.
        ops = tuple(command("unlink", key) for key in self.keys.sensor_keys(sensor))
        return bool((yield Batch(ops, transaction=False))[0])

    # --- results, alerts -------------------------------------------------------

    @_operation
    def store_analysis_result(self, analysis_id: str, result: Any, ttl: int | None = None) -> Steps[None]:
        """Store an analysis result (TTL 24 h)."""
        key = self.keys.analysis_result(analysis_id)
        yield from self._set_json(key, result, ttl, AnomalyRedisTTL.ANALYSIS_RESULT)

    @_operation
    def get_analysis_result(self, analysis_id: str) -> Steps[Any]:
        """The stored result, or None."""
        return (yield from self._get_json(self.keys.analysis_result(analysis_id)))

    @_operation
    def store_alert(
        self, alert_id: str, alert: Mapping[str, Any], timestamp: float | None = None
    ) -> Steps[None]:
        """Store an alert (TTL 7 days) and index it by time for :meth:`list_alerts`.

        The time is ``timestamp``, else ``alert["timestamp"]`` if it is a number, else now.
        """
        key = self.keys.alert(alert_id)
        score = alert_score(alert, timestamp)
        encoded = dumps(dict(alert))
        index = self.keys.alerts_index()
        # Not one transaction: on a Cluster the alert and the index live in different slots.
        ops = (
            command("set", key, encoded, ex=AnomalyRedisTTL.ALERTS),
            command("zadd", index, {alert_id: score}),
            command("zremrangebyrank", index, 0, -self.alerts_index_size - 1),
            command("expire", index, AnomalyRedisTTL.ALERTS),
        )
        yield Batch(ops, transaction=False)

    @_operation
    def list_alerts(self, limit: int = 100) -> Steps[list[dict[str, Any]]]:
        """The newest ``limit`` alerts still stored, newest first, each with its ``id``."""
        _check_positive(limit, "limit")
        index = self.keys.alerts_index()
        alerts: list[dict[str, Any]] = []
        offset = 0
        # Alerts expire on their own (7 days) while their index entry stays: drop such
        # entries as they are met and read on, so that `limit` live alerts come back.
        while len(alerts) < limit:
            want = limit - len(alerts)
            ids = [text(i) for i in (yield command("zrevrange", index, offset, offset + want - 1))]
            if not ids:
                break
            raws = yield Batch(tuple(command("get", self.keys.alert(i)) for i in ids), transaction=False)
            expired = []
            for alert_id, raw in zip(ids, raws):
                if raw is None:
                    expired.append(alert_id)
                    continue
                value = loads(raw, self.keys.alert(alert_id))
                alerts.append(
                    {"id": alert_id, **value} if isinstance(value, dict) else {"id": alert_id, "alert": value}
                )
            if expired:
                yield command("zrem", index, *expired)
            offset += len(ids) - len(expired)
        return alerts

    # --- models, config --------------------------------------------------------

    @_operation
    def store_model(self, name: str, data: bytes, ttl: int | None = None) -> Steps[None]:
        """Store serialised model bytes (TTL 24 h)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValueError(f"model data: expected bytes, got {type(data).__name__}")  # noqa: TRY004 (the package's contract: bad input is a ValueError)
        yield command("set", self.keys.model(name), bytes(data), ex=_check_ttl(ttl, AnomalyRedisTTL.MODEL))

    @_operation
    def load_model(self, name: str) -> Steps[bytes | None]:
        """The stored model bytes, or None."""
        raw = yield command("get", self.keys.model(name))
        if raw is None or isinstance(raw, bytes):
            return raw
        # A decode_responses client hands back str; models are written as bytes.
        return raw.encode("utf-8", "surrogateescape")

    @_operation
    def set_config(self, name: str, value: Any, ttl: int | None = None) -> Steps[None]:
        """Store a configuration value (TTL 24 h)."""
        yield from self._set_json(self.keys.config(name), value, ttl, AnomalyRedisTTL.CONFIG)

    @_operation
    def get_config(self, name: str, default: Any = None) -> Steps[Any]:
        """The configuration value, or ``default``."""
        return (yield from self._get_json(self.keys.config(name), default))

    # --- health ----------------------------------------------------------------

    @_operation
    def heartbeat(self, component: str, info: Mapping[str, Any] | None = None) -> Steps[None]:
        """Record that ``component`` is alive (TTL 5 min), with optional details."""
        payload = {**dict(info or {}), "timestamp": time.time()}
        yield from self._set_json(self.keys.health(component), payload, None, AnomalyRedisTTL.HEALTH)

    @_operation
    def get_system_health(self) -> Steps[dict[str, Any]]:
        """Queue length per sensor and the live heartbeats, found with SCAN.

        Returns ``{"sensors": {sensor: length}, "components": {component: info},
        "problems": {key: what is wrong}}``: a key another client wrote with another type
        (a string where a window list goes) or a heartbeat that is not JSON is listed under
        ``problems``; the rest of the report stands.
        """
        from redis.exceptions import ResponseError

        sensor_keys = yield Scan(self.keys.pattern("window"))
        health_keys = yield Scan(self.keys.pattern("health"))
        ops = tuple(command("llen", k) for k in sensor_keys) + tuple(command("get", k) for k in health_keys)
        try:
            replies = (yield Batch(ops, transaction=False)) if ops else []
        except ResponseError:
            # A key of another type failed the pipeline: ask key by key to know which.
            replies = []
            for op in ops:
                try:
                    replies.append((yield op))
                except ResponseError as exc:  # noqa: PERF203 - rare: a foreign key
                    replies.append(exc)
        problems: dict[str, str] = {}
        sensors: dict[str, int] = {}
        for key, length in zip(sensor_keys, replies):
            sensor = self.keys.parse_sensor(key)
            if isinstance(length, Exception):
                problems[key] = str(length)
            elif sensor is not None:
                sensors[sensor] = int(length)
        components: dict[str, Any] = {}
        for key, raw in zip(health_keys, replies[len(sensor_keys) :]):
            component = self.keys.parse("health", key)
            if isinstance(raw, Exception):
                problems[key] = str(raw)
            elif raw is not None and component is not None:  # None: expired between SCAN and GET
                try:
                    info = loads(raw, key)
                except ValueError as exc:
                    problems[key] = str(exc)
                    continue
                if isinstance(info, dict):
                    components[component] = info
                else:
                    problems[key] = f"expected a JSON object, got {type(info).__name__}"
        return {
            "sensors": dict(sorted(sensors.items())),
            "components": dict(sorted(components.items())),
            "problems": dict(sorted(problems.items())),
        }

    # --- clean-up and migration ------------------------------------------------

    @_operation
    def purge_namespace(self, batch: int = 500) -> Steps[int]:
        """Delete every key under the prefix (SCAN + UNLINK); return how many were deleted."""
        return int((yield Purge(self.keys.namespace_pattern(), _check_positive(batch, "batch"))))

    @_operation
    def plan_legacy_migration(self, pattern: str = "anomaly_detector:*") -> Steps[MigrationPlan]:
        """Find the legacy keys matching ``pattern`` and the new key of each, without changing anything.

        ``pattern`` must start with a declared legacy prefix and ``:`` (``anomaly_detector:*``;
        :data:`~anomaly_detection.redis.keys.LEGACY_PREFIXES`): patterns of this package's live
        prefix, of a neighbour's namespace (``nextauth:``, ``fabric:``, ``fastapi:``) or of any
        undeclared prefix raise ValueError before anything is read.
        """
        plan = MigrationPlan()
        for key in (yield Scan(self.keys.check_legacy_pattern(pattern))):
            try:
                plan.mapping[key] = self.keys.legacy_target(key)
            except ValueError as exc:  # noqa: PERF203 - the reason is reported per key
                plan.skipped[key] = str(exc)
        return plan

    @_operation
    def migrate_legacy_keys(
        self, pattern: str = "anomaly_detector:*", dry_run: bool = False
    ) -> Steps[dict[str, str]]:
        """Rename legacy keys into the layout, keeping their TTLs; return legacy key -> new key.

        ``anomaly_detector:temp:data:sensor1`` becomes ``anomaly:temp:data:sensor1:queue``. A key whose
        target already exists is left alone (``RENAMENX``) and not in the result. With ``dry_run`` nothing
        changes and the result is what would be renamed.
        """
        plan = yield from AnomalyRedisManager.plan_legacy_migration.steps(self, pattern)  # type: ignore[attr-defined]
        if dry_run:
            return plan.mapping
        # RENAME keeps the TTL; RENAMENX never overwrites a key already in the layout.
        renamed = {}
        for old, new in plan.mapping.items():
            if (yield command("renamenx", old, new)):
                renamed[old] = new  # noqa: PERF403 (a comprehension cannot yield)
        return renamed


class AsyncAnomalyRedisManager(AnomalyRedisManager):
    """:class:`AnomalyRedisManager` for ``redis.asyncio`` clients: the same methods, as coroutines.

    Same keys, TTLs, JSON, validation (``ValueError`` before anything is sent) and SCAN (``scan_iter``
    as an async iterator, never ``KEYS``): both classes run the same steps. Works with
    ``redis.asyncio.Redis`` and ``redis.asyncio.cluster.RedisCluster``.

    Examples
    --------
    Inside a coroutine (tested in ``tests/python/test_redis_namespaces_async.py``)::

        manager = AsyncAnomalyRedisManager(redis.asyncio.Redis(), Settings())
        await manager.store_temp_data("s1", {"value": 1.0})     # 1
    """


def _coroutine_twin(method: Callable[..., Any]) -> Callable[..., Any]:
    steps = method.steps  # type: ignore[attr-defined]

    @functools.wraps(steps)
    async def twin(self: AnomalyRedisManager, *args: Any, **kwargs: Any) -> Any:
        return await self._driver.run(steps(self, *args, **kwargs))

    twin.__doc__ = f"See :meth:`AnomalyRedisManager.{method.__name__}`."
    return twin


for _name, _method in list(vars(AnomalyRedisManager).items()):
    if hasattr(_method, "steps"):
        setattr(AsyncAnomalyRedisManager, _name, _coroutine_twin(_method))
del _name, _method
