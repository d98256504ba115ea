"""What every shared sketch has: its keys, the parameters every process must agree on, the
TTL renewed by each write, and the runner of its steps (:class:`~anomaly_detection.redis.driver.Driver`).

A sketch's operations are written once, as steps that yield Redis operations
(:mod:`anomaly_detection.redis.driver`); the driver runs them on a sync client, or returns a
coroutine on an asyncio one.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from anomaly_detection.redis.codec import text
from anomaly_detection.redis.driver import Batch, Driver, Script, Steps, command, redis_errors
from anomaly_detection.redis.keys import AnomalyRedisKeys, AnomalyRedisTTL

__all__ = [
    "CHUNK", "ShardedSketch", "SharedSketch", "bitfield", "check_u32_counters", "is_scalar", "one",
    "script_reply", "sketch_key",
]  # fmt: skip

# Sub-commands per BITFIELD / PFADD call: bounds the size of one request.
CHUNK = 20_000

_T = TypeVar("_T")


def sketch_key(name: str, *, prefix: str = "anomaly") -> str:
    """``<prefix>:sketch:<name>``, the key of a shared sketch (:meth:`AnomalyRedisKeys.sketch`).

    The name follows the sensor-name rules (no ``:``, ``*``, ``?``, brackets, braces or
    whitespace, at most 200 bytes), so it cannot break out of the key layout.

    >>> sketch_key("endpoints")
    'anomaly:sketch:endpoints'
    """
    return AnomalyRedisKeys(prefix).sketch(name)


def is_scalar(items: Any) -> bool:
    """Whether ``items`` is one item (the answer is then one value, not an array)."""
    if isinstance(items, np.ndarray):
        return items.ndim == 0
    return isinstance(items, (str, bytes, bytearray, int, np.integer))


def bitfield(
    key: str,
    subcommands: list[list[Any]],
    *,
    read_only: bool = False,
    head: Sequence[Any] = (),
    u32_counters: int | None = None,
) -> Steps[np.ndarray]:
    """BITFIELD sub-commands in chunks (each chunk one atomic command, ``head`` such as
    ``OVERFLOW SAT`` repeated in front of each); returns every reply as one array.

    With ``u32_counters``, the string's length is read in the first chunk's round trip and
    must be that of at most so many u32 counters (else ``ValueError``: not this sketch)."""
    name = "BITFIELD_RO" if read_only else "BITFIELD"
    replies = np.empty(len(subcommands), dtype=np.uint64)
    for start in range(0, len(subcommands), CHUNK):
        args = [word for sub in subcommands[start : start + CHUNK] for word in sub]
        op = command("execute_command", name, key, *head, *args)
        if start == 0 and u32_counters is not None:
            size, replies[:CHUNK] = yield Batch((command("strlen", key), op), False)
            check_u32_counters(key, size, u32_counters)
        else:
            replies[start : start + CHUNK] = yield op
    return replies


def check_u32_counters(key: str, size: int, counters: int) -> None:
    """A string written only by ``BITFIELD ... u32 #i`` holds a whole number of counters, at
    most ``counters`` of them; anything else (garbage, another sketch) is refused."""
    if size % 4 or size > 4 * counters:
        raise ValueError(
            f"possible corruption: {key} holds {size} bytes, not the u32 counters of a "
            f"count-min sketch of {counters} counters"
        )


def script_reply(op: Script) -> Steps[Any]:
    """The reply of a sketch script; its 'possible corruption' error (a key that holds no
    such sketch) raised as ``ValueError``, as corrupt bytes are everywhere else."""
    try:
        return (yield op)
    except redis_errors() as exc:
        if "possible corruption" in str(exc):
            raise ValueError(str(exc)) from exc
        raise


def one(op: Any) -> Steps[Any]:
    """Steps of one operation, returning its reply."""
    return (yield op)


def _nothing() -> Steps[None]:
    return
    yield  # steps without Redis operations (the parameter check still runs in front of them)


class SharedSketch:
    """Key, client, the parameters every process must agree on, and the runner."""

    _family: str

    def __init__(
        self,
        client: Any,
        name: str,
        params: dict[str, Any],
        prefix: str,
        ttl: int | None = AnomalyRedisTTL.SKETCH,
    ) -> None:
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1):
            raise ValueError(f"ttl: expected None or a positive number of seconds, got {ttl!r}")
        self._driver = Driver(client)
        if self._driver.decodes:
            # Shards and filter replies are raw bytes; a decoding client would corrupt them.
            raise ValueError("client: expected a redis client with decode_responses=False")
        keys = AnomalyRedisKeys(prefix)
        self.client = client
        self.name = name
        self.prefix = prefix
        self.key = keys.sketch(name)
        self.meta_key = keys.sketch_meta(name)
        self.params = params
        self.ttl = ttl
        self._ready = False

    def _start(self) -> None:
        """With a sync client, check the parameters now; an asyncio client does it on first use."""
        if not self._driver.is_async:
            self._run(_nothing())

    def _setup(self) -> Steps[None]:
        # The first process to arrive records the parameters; the others must match them,
        # or their positions would land on different counters.
        meta = json.dumps({"family": self._family, **self.params}, sort_keys=True)
        yield command("set", self.meta_key, meta, nx=True)
        stored = yield command("get", self.meta_key)
        if stored is not None and text(stored) != meta:
            raise ValueError(
                f"{self.key} already holds a sketch with other parameters: {stored!r}, wanted {meta}"
            )

    def _when_ready(self, steps: Steps[_T]) -> Steps[_T]:
        if not self._ready:
            yield from self._setup()
            self._ready = True
        return (yield from steps)

    def _touched(self, steps: Steps[_T]) -> Steps[_T]:
        # Every write renews the TTL (AnomalyRedisTTL.SKETCH: 24 h after the last update).
        result = yield from steps
        if self.ttl is not None:
            yield Batch(tuple(command("expire", key, self.ttl) for key in (self.key, self.meta_key)), False)
        return result

    def _run(self, steps: Steps[_T]) -> Any:
        """Run steps: their result on a sync client, a coroutine of it on an asyncio one."""
        return self._driver.run(self._when_ready(steps))

    def _write(self, steps: Steps[_T]) -> Any:
        """Run steps that change the sketch, then renew its TTL."""
        return self._run(self._touched(steps))

    def drop(self) -> Any:
        """Remove the shared state and its parameters from Redis."""
        return self._run(one(command("delete", self.key, self.meta_key)))

    def info(self) -> dict[str, Any]:
        return {"key": self.key, "family": self._family, **self.params}


class ShardedSketch(SharedSketch):
    """A local sketch written as this worker's shard (a field of one Redis hash) after
    every update; reads merge every worker's shard. Each worker writes only its own field,
    so no update is lost; a worker restarted with the same ``worker_id`` resumes its shard."""

    _local: Any

    def __init__(
        self,
        client: Any,
        name: str,
        params: dict[str, Any],
        prefix: str,
        worker_id: str | None,
        ttl: int | None,
    ) -> None:
        super().__init__(client, name, params, prefix, ttl)
        if worker_id is None:
            worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        if not isinstance(worker_id, str) or not worker_id:
            raise ValueError(f"worker_id: expected a non-empty str, got {worker_id!r}")
        self.worker_id = worker_id
        self._start()

    def _setup(self) -> Steps[None]:
        yield from super()._setup()
        previous = yield command("hget", self.key, self.worker_id)
        if previous is not None:
            self._local = type(self._local).from_bytes(previous)

    def _flush(self) -> Steps[None]:
        yield command("hset", self.key, self.worker_id, self._local.to_bytes())

    def flush(self) -> Any:
        """Write this worker's shard."""
        return self._write(self._flush())

    def _shards(self) -> Steps[dict[str, Any]]:
        raw = yield command("hgetall", self.key)
        return {text(k): type(self._local).from_bytes(v) for k, v in raw.items()}

    def shards(self) -> Any:
        """Every worker's shard, loaded (``ValueError`` if one is corrupt)."""
        return self._run(self._shards())

    def _merged(self, **merge_options: Any) -> Steps[Any]:
        shards = yield from self._shards()
        result = self._local.copy()
        others = [s for k, s in shards.items() if k != self.worker_id]
        if others:
            result.merge(others, **merge_options)
        return result

    def merged(self) -> Any:
        """One local sketch holding every shard (this worker's current state included)."""
        return self._run(self._merged())

    def _read(self, answer: Callable[[Any], _T], **merge_options: Any) -> Any:
        def steps() -> Steps[_T]:
            return answer((yield from self._merged(**merge_options)))

        return self._run(steps())

    def _update(self, change: Callable[[], _T]) -> Any:
        def steps() -> Steps[_T]:
            result = change()
            yield from self._flush()
            return result

        return self._write(steps())
