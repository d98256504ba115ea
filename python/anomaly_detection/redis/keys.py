"""The ``anomaly:`` key layout: every key kind, its TTL, and the rules of a key's variable parts.

This is the only module that builds or parses a key string. Everything this package
writes lives under one prefix (``redis_key_prefix``, default ``anomaly``), so other
applications on the same server (``nextauth:``, ``fabric:``, ``fastapi:`` ...) are
never touched.

Hash fields inside the per-sensor keys (written by the Lua scripts of
:mod:`anomaly_detection.redis.scripts`): ``...:stats`` holds ``seen``, ``anomalies``,
``epoch``, per writer, ``w:<writer id>`` (its last append, for exactly-once appends) and
``a:<writer id>`` (its last counted anomalies), ``marks`` (the generation that bounds those), and
``ring`` and ``tail`` (what the compact mirror ``...:mirror`` holds); ``...:state`` and ``...:state:parked`` hold ``seen``, ``blob`` and ``epoch``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from anomaly_detection._core import check_sensor_name

if TYPE_CHECKING:
    from anomaly_detection.config import Settings

__all__ = [
    "LEGACY_PREFIXES",
    "METRIC_INTERVALS",
    "NEIGHBOUR_PREFIXES",
    "AnomalyRedisKeys",
    "AnomalyRedisTTL",
    "check_key_part",
    "check_prefix",
]

_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

#: Roll-up intervals of the ``metrics`` key kind, in seconds.
METRIC_INTERVALS: dict[str, int] = {
    "1h": 3600,
    "6h": 6 * 3600,
    "24h": 24 * 3600,
    "3d": 3 * 86400,
    "7d": 7 * 86400,
    "30d": 30 * 86400,
}

#: Namespaces of the applications that share a Redis with this package: never ours to touch.
NEIGHBOUR_PREFIXES: tuple[str, ...] = ("nextauth", "fabric", "fastapi")

#: Prefixes older versions of this package wrote under: the only keys ``migrate-keys`` may rename.
LEGACY_PREFIXES: tuple[str, ...] = ("anomaly_detector",)


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


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is a valid namespace (1-64 of ``[A-Za-z0-9_.-]``), else raise ValueError."""
    if not isinstance(prefix, str) or not _PREFIX_RE.match(prefix):
        raise ValueError(f"key prefix: expected 1-64 characters of [A-Za-z0-9_.-], got {prefix!r}")
    return prefix


class AnomalyRedisTTL:
    """Time to live of each key kind, in seconds (the table of ``docs/redis.md``)."""

    TEMP_DATA = 3600  #: sensor windows, 1 h
    TEMP_STATE = TEMP_DATA  #: ensemble checkpoints beside the windows, refreshed with them
    PROCESSING_QUEUE = 1800  #: processing queues, 30 min
    ANALYSIS_RESULT = 86400  #: analysis results, 24 h
    RESULTS = ANALYSIS_RESULT  #: the original prototype's name for ANALYSIS_RESULT
    CACHE = 3600  #: cache entries, 1 h
    MODEL = 86400  #: serialised models, 24 h
    HEALTH = 300  #: component heartbeats, 5 min
    METRICS = 3600  #: metric roll-ups, 1 h after the last update (at least one interval)
    ALERTS = 604800  #: alerts and their index, 7 days
    CONFIG = 86400  #: configuration, 24 h
    SKETCH = 86400  #: shared sketches, 24 h after the last update
    IDEMPOTENCY = 3600  #: a write's ``Idempotency-Key`` and its first response, 1 h

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
    >>> keys.window("temperature_sensor")
    'anomaly:temp:data:temperature_sensor:queue'
    >>> AnomalyRedisKeys(hash_tag=True).window("s1")
    'anomaly:temp:data:{s1}:queue'
    >>> keys.pattern("alert")
    'anomaly:alerts:*'
    """

    #: Key kind -> template; ``{0}``, ``{1}`` are the variable parts.
    LAYOUT: ClassVar[dict[str, str]] = {
        "window": "temp:data:{0}:queue",
        "counters": "temp:data:{0}:stats",
        "checkpoint": "temp:data:{0}:state",
        "parked_checkpoint": "temp:data:{0}:state:parked",
        "mirror": "temp:data:{0}:mirror",
        "processing_queue": "queue:processing:{0}",
        "analysis_result": "results:analysis:{0}",
        "cache": "cache:{0}:{1}",
        "model": "model:{0}",
        "health": "health:{0}",
        "metrics": "metrics:{0}:{1}",
        "alert": "alerts:{0}",
        "config": "config:{0}",
        "sketch": "sketch:{0}",
        "sketch_meta": "sketch:{0}:meta",
        "stream": "stream:{0}",
        "index": "index:{0}",
        "channel": "channel:{0}",
        "idempotency": "idempotency:{0}",
        "alert_delivery": "delivered:{0}",
    }

    def __init__(self, prefix: str = "anomaly", hash_tag: bool = False) -> None:
        self.prefix = check_prefix(prefix)
        self.hash_tag = bool(hash_tag)

    @classmethod
    def from_settings(cls, settings: Settings, *, cluster: bool = False) -> AnomalyRedisKeys:
        """Keys with ``redis_key_prefix`` and ``redis_hash_tag`` of ``settings`` (hash tags forced
        with ``cluster``: on a Redis Cluster one sensor's keys must share a slot)."""
        return cls(settings.redis_key_prefix, settings.redis_hash_tag or cluster)

    def __repr__(self) -> str:
        return f"AnomalyRedisKeys(prefix={self.prefix!r}, hash_tag={self.hash_tag})"

    def _key(self, kind: str, *parts: str) -> str:
        return f"{self.prefix}:" + self.LAYOUT[kind].format(*parts)

    def sensor_part(self, sensor: str) -> str:
        """The sensor as it appears in keys: ``{sensor}`` with hash tags, else ``sensor``."""
        check_key_part(sensor, "sensor name")
        return "{" + sensor + "}" if self.hash_tag else sensor

    def window(self, sensor: str) -> str:
        """``anomaly:temp:data:{sensor}:queue``: the sensor window (list of JSON points)."""
        return self._key("window", self.sensor_part(sensor))

    def counters(self, sensor: str) -> str:
        """``anomaly:temp:data:{sensor}:stats``: the sensor's counters (hash: seen, anomalies,
        epoch, the exactly-once marks ``w:<writer id>`` and ``a:<writer id>`` of each writer and
        ``marks``, their generation (``scripts.MARK_HORIZON``), and what the compact
        mirror holds: ``ring`` = ``<window size>:<count>``, ``tail`` the list's last entry
        when it was written)."""
        return self._key("counters", self.sensor_part(sensor))

    def mirror(self, sensor: str) -> str:
        """``anomaly:temp:data:{sensor}:mirror``: the window's compact mirror (string: a ring of
        ``window_size`` slots of value and timestamp as little-endian float64, then 8 bytes
        ``ad-ring1``; point number k of the sensor in slot k mod ``window_size``)."""
        return self._key("mirror", self.sensor_part(sensor))

    def checkpoint(self, sensor: str) -> str:
        """``anomaly:temp:data:{sensor}:state``: the ensemble's checkpoint (hash: seen, blob, epoch)."""
        return self._key("checkpoint", self.sensor_part(sensor))

    def parked_checkpoint(self, sensor: str) -> str:
        """``anomaly:temp:data:{sensor}:state:parked``: a checkpoint that lost to a newer one, kept 2 s."""
        return self._key("parked_checkpoint", self.sensor_part(sensor))

    def sensor_keys(self, sensor: str) -> tuple[str, ...]:
        """Every key of one sensor: window, counters, checkpoint, parked checkpoint, mirror."""
        return (self.window(sensor), self.counters(sensor), self.checkpoint(sensor),
                self.parked_checkpoint(sensor), self.mirror(sensor))  # fmt: skip

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

    def sketch_meta(self, name: str) -> str:
        """``anomaly:sketch:{name}:meta``: the family and parameters every sharer must agree on."""
        return self._key("sketch_meta", check_key_part(name, "sketch name"))

    def sketch_scratch(self, name: str) -> str:
        """``{anomaly:sketch:{name}}:merge``: a key that lives only inside one script; its hash
        tag is the sketch's key, so the script also runs on Redis Cluster."""
        return "{" + self.sketch(name) + "}:merge"

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

    def idempotency(self, key: str) -> str:
        """``anomaly:idempotency:{key}``: a write's ``Idempotency-Key``, its request's digest and,
        once answered, its response."""
        return self._key("idempotency", check_key_part(key, "Idempotency-Key"))

    def alert_delivery(self, delivery_id: str) -> str:
        """``anomaly:delivered:{anomaly:stream:alerts}:{delivery_id}``: the mark of an alert
        delivered once (its stream id, 7-day TTL). Its hash tag is the stream's key, so the
        delivery script also runs on Redis Cluster."""
        part = check_key_part(delivery_id, "delivery id")
        return self._key("alert_delivery", "{" + self.alerts_stream() + "}:" + part)

    def namespace_pattern(self) -> str:
        """``anomaly:*``: every key of this package."""
        return f"{self.prefix}:*"

    def pattern(self, kind: str) -> str:
        """A ``SCAN MATCH`` pattern for every key of one kind (a name of :attr:`LAYOUT`)."""
        if kind not in self.LAYOUT:
            raise ValueError(f"key kind: expected one of {sorted(self.LAYOUT)}, got {kind!r}")
        template = self.LAYOUT[kind]
        return f"{self.prefix}:" + template.format(*["*"] * template.count("{"))

    def parse(self, kind: str, key: str | bytes) -> str | None:
        """The variable part of a key of a one-part ``kind`` (hash tag removed), or None if
        ``key`` is not one."""
        text = key.decode() if isinstance(key, bytes) else key
        head, _, tail = self.LAYOUT[kind].partition("{0}")
        head = f"{self.prefix}:{head}"
        if not (text.startswith(head) and text.endswith(tail)) or len(text) <= len(head) + len(tail):
            return None
        part = text[len(head) : len(text) - len(tail)]
        if part.startswith("{") and part.endswith("}"):
            part = part[1:-1]
        return part or None

    def parse_sensor(self, key: str | bytes) -> str | None:
        """The sensor name of a ``window`` key, or None if ``key`` is not one."""
        return self.parse("window", key)

    # --- keys of the original prototype's layout, renamed by ``migrate-keys`` ----------------

    def legacy_target(self, legacy_key: str) -> str:
        """The key in this layout of a legacy key (``anomaly_detector:temp:data:s1`` ->
        ``anomaly:temp:data:s1:queue``); ValueError when no rule applies."""
        match legacy_key.split(":")[1:]:
            case ["temp", "data", sensor] | ["temp", "data", sensor, "queue"]:
                return self.window(sensor)
            case ["results", "analysis", rid] | ["results", rid]:
                return self.analysis_result(rid)
            case ["queue", "processing", bid] | ["queue", bid]:
                return self.processing_queue(bid)
            case ["cache", category, key]:
                return self.cache(category, key)
            case ["model", name] | ["models", name]:
                return self.model(name)
            case ["health", name]:
                return self.health(name)
            case ["metrics", name, interval]:
                return self.metrics(name, interval)
            case ["alerts", aid] | ["alert", aid]:
                return self.alert(aid)
            case ["config", name]:
                return self.config(name)
            case rest:
                raise ValueError(f"no rule for a legacy key of the form {':'.join(rest)!r}")

    def check_legacy_pattern(self, pattern: str) -> str:
        """Return ``pattern`` if it selects only legacy keys of this package, else raise ValueError.

        It must start with a declared legacy prefix and ``:`` (:data:`LEGACY_PREFIXES`, e.g.
        ``anomaly_detector:*``): never this package's live prefix, a neighbour's namespace
        (:data:`NEIGHBOUR_PREFIXES`) or an undeclared one, whose keys may belong to anyone.
        """
        legacy, sep, _ = pattern.partition(":") if isinstance(pattern, str) else ("", "", "")
        if not sep or not _PREFIX_RE.match(legacy):
            raise ValueError(
                f"pattern: expected '<legacy prefix>:...' such as 'anomaly_detector:*', got {pattern!r}"
            )
        if legacy == self.prefix:
            raise ValueError(f"pattern: {pattern!r} matches this package's own live prefix {legacy!r}")
        if legacy in NEIGHBOUR_PREFIXES:
            raise ValueError(f"pattern: {pattern!r} matches the keys of another application ({legacy}:)")
        if legacy not in LEGACY_PREFIXES:
            raise ValueError(
                f"pattern: {legacy!r} is not a declared legacy prefix of this package "
                f"(expected one of {list(LEGACY_PREFIXES)}), got {pattern!r}"
            )
        return pattern
