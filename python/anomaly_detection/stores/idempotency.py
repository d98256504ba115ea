"""Idempotency keys of writes: who claimed a key, and the first response to give back.

A write that carries an ``Idempotency-Key`` first *claims* the key (with a digest of the
request); the claim either wins (the request is processed, then its response is stored
under the key with :meth:`complete`, or the claim is dropped with :meth:`release` when the
request failed and stored nothing), or finds the key taken: ``done`` (the stored response
to give back), ``pending`` (the first request is still in flight) or ``mismatch`` (the key
was used for a different request). Two stores, one interface (coroutines):

- :class:`MemoryIdempotencyStore`: one process (the embedded store), a bounded mapping
  whose entries expire (``cachetools.TTLCache``);
- :class:`RedisIdempotencyStore`: every worker and machine that shares the Redis: one
  ``SET NX PX`` claims the key ``anomaly:idempotency:{key}`` (built by ``redis/keys.py``),
  so two workers never both win it. A record there that is not one the store writes
  (another client's bytes: not UTF-8, not JSON, other fields) is corrupt: it is logged, taken
  as absent and replaced by the claim, atomically and only while it holds the same bytes.

They only store: the HTTP side (``api/idempotency.py``) decides what to do with a claim.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import threading
import time
from typing import Any, NamedTuple

from anomaly_detection.redis import scripts
from anomaly_detection.redis.codec import text
from anomaly_detection.redis.driver import Driver, Script, Steps, command
from anomaly_detection.redis.keys import AnomalyRedisKeys, AnomalyRedisTTL, check_key_part

__all__ = ["Claim", "MemoryIdempotencyStore", "RedisIdempotencyStore", "StoredResponse"]

_log = logging.getLogger(__name__)


class StoredResponse(NamedTuple):
    """The first response to a request: status, content type, body."""

    status: int
    content_type: str
    body: bytes


class Claim(NamedTuple):
    """The outcome of :meth:`claim`: ``claimed``, ``pending``, ``done`` (with ``response``) or
    ``mismatch`` (the key belongs to a different request)."""

    state: str
    response: StoredResponse | None = None


def _record(digest: str, response: StoredResponse | None) -> dict[str, Any]:
    if response is None:
        return {"digest": digest, "state": "pending"}
    return {
        "digest": digest,
        "state": "done",
        "status": response.status,
        "content_type": response.content_type,
        "body": base64.b64encode(response.body).decode(),
    }


def _parsed(raw: bytes | str) -> dict[str, Any] | None:
    """The record stored as ``raw``, or None when it is not one :func:`_record` writes."""
    try:
        record = json.loads(raw)
        if not (isinstance(record, dict) and isinstance(record.get("digest"), str)):
            return None
        if record.get("state") == "pending":
            return record
        if record.get("state") != "done" or type(record.get("status")) is not int:
            return None
        if not isinstance(record.get("content_type"), str) or not isinstance(record.get("body"), str):
            return None
        base64.b64decode(record["body"], validate=True)
    except (ValueError, binascii.Error, RecursionError):  # UnicodeDecodeError, JSONDecodeError: ValueErrors
        return None
    return record


def _claim_of(record: dict[str, Any] | None, digest: str) -> Claim:
    if record is None:  # expired or released between the two looks: the caller claims again
        return Claim("pending")
    if record["digest"] != digest:
        return Claim("mismatch")
    if record["state"] != "done":
        return Claim("pending")
    body = base64.b64decode(record["body"])
    return Claim("done", StoredResponse(int(record["status"]), str(record["content_type"]), body))


class MemoryIdempotencyStore:
    """Keys of this process: at most ``maxsize`` (the least recently used go first when full),
    each kept ``ttl`` seconds."""

    def __init__(self, ttl: float = AnomalyRedisTTL.IDEMPOTENCY, maxsize: int = 10_000) -> None:
        from cachetools import TTLCache

        if ttl <= 0 or maxsize < 1:
            raise ValueError("ttl must be > 0 and maxsize >= 1")
        self.ttl = ttl
        self._cache: TTLCache[str, dict[str, Any]] = TTLCache(maxsize=maxsize, ttl=ttl, timer=time.monotonic)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)

    async def claim(self, key: str, digest: str) -> Claim:
        check_key_part(key, "Idempotency-Key")
        with self._lock:
            record = self._cache.get(key)
            if record is None:
                self._cache[key] = _record(digest, None)
                return Claim("claimed")
            return _claim_of(record, digest)

    async def complete(self, key: str, digest: str, response: StoredResponse) -> None:
        with self._lock:
            self._cache[key] = _record(digest, response)

    async def release(self, key: str, digest: str) -> None:
        with self._lock:
            record = self._cache.get(key)
            if record is not None and record["digest"] == digest and record["state"] == "pending":
                del self._cache[key]


class RedisIdempotencyStore:
    """Keys shared by every process on one Redis.

    Parameters
    ----------
    client : redis client, or a callable that returns one
        A ``redis.asyncio`` client is awaited on the event loop; a sync one runs on a worker
        thread (never on the event loop). A callable is called on first use, on the loop that
        uses the store (how the service makes its ``redis.asyncio`` client); :meth:`aclose`
        closes the client it returned.
    keys : AnomalyRedisKeys, optional
    ttl : float
        Seconds a key and its response are kept.
    """

    def __init__(
        self, client: Any, keys: AnomalyRedisKeys | None = None, ttl: float = AnomalyRedisTTL.IDEMPOTENCY
    ) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be > 0")
        self.keys = keys if keys is not None else AnomalyRedisKeys()
        self.ttl_ms = int(ttl * 1000)
        self._factory = client if callable(client) and not hasattr(client, "execute_command") else None
        self._driver: Driver | None = None if self._factory is not None else Driver(client)
        # With a factory: a client per event loop (a redis.asyncio client belongs to the loop
        # that made it, and its sockets to the process: a pre-forking server's worker forked
        # after a first use runs a loop of its own and must not use the parent's).
        self._drivers: dict[asyncio.AbstractEventLoop, Driver] = {}
        # scripts.IDEMPOTENCY_REPLACE and IDEMPOTENCY_SHA1, registered on the first client
        self._replace: Any = None
        self._sha1: Any = None

    def _current(self) -> Driver:
        if self._driver is not None:
            return self._driver
        assert self._factory is not None
        loop = asyncio.get_running_loop()
        driver = self._drivers.get(loop)
        if driver is None:
            for closed in [other for other in self._drivers if other.is_closed()]:
                del self._drivers[closed]
            driver = self._drivers[loop] = Driver(self._factory())
        return driver

    async def _run(self, steps: Steps[Any]) -> Any:
        driver = self._current()
        if self._replace is None:  # run by their digests on whichever client runs the steps
            self._replace = driver.client.register_script(scripts.IDEMPOTENCY_REPLACE)
            self._sha1 = driver.client.register_script(scripts.IDEMPOTENCY_SHA1)
        if driver.is_async:
            return await driver.run(steps)
        return await asyncio.to_thread(driver.run, steps)

    async def aclose(self) -> None:
        """Close the client the factory made for the running loop, if any."""
        if self._factory is not None:
            driver = self._drivers.pop(asyncio.get_running_loop(), None)
            if driver is not None:
                await driver.client.aclose()

    def _claim_steps(self, key: str, digest: str) -> Steps[Claim]:
        redis_key = self.keys.idempotency(key)
        pending = json.dumps(_record(digest, None))
        for _ in range(3):  # a corrupt record replaced meanwhile by another one: look again
            won = yield command("set", redis_key, pending, nx=True, px=self.ttl_ms)
            if won:
                return Claim("claimed")
            try:
                raw = yield command("get", redis_key)
            except UnicodeDecodeError:  # a client that decodes replies, on bytes that are not UTF-8
                seen = yield Script(self._sha1, [redis_key], [])
                what = "bytes that are not UTF-8"
            else:
                if raw is None:
                    break
                record = _parsed(raw)
                if record is not None:
                    return _claim_of(record, digest)
                raw = raw.encode() if isinstance(raw, str) else raw
                seen, what = hashlib.sha1(raw).hexdigest(), f"{len(raw)} bytes this store does not write"
            if seen is None:
                break
            _log.warning(
                "idempotency keys: corrupt record at %s (%s); taken as absent and replaced by this "
                "request's claim", redis_key, what,
            )  # fmt: skip
            if (yield from self._replace_steps(redis_key, text(seen), digest)):
                return Claim("claimed")
        return Claim("pending")  # expired or released between the looks: the caller claims again

    def _replace_steps(self, redis_key: str, seen: str, digest: str) -> Steps[bool]:
        """Claim ``redis_key`` in place of a corrupt record, if it still holds the bytes whose
        SHA-1 (hex) is ``seen``."""
        pending = json.dumps(_record(digest, None))
        replaced = yield Script(self._replace, [redis_key], [seen, pending, self.ttl_ms])
        return bool(replaced)

    def _complete_steps(self, key: str, digest: str, response: StoredResponse) -> Steps[None]:
        yield command(
            "set", self.keys.idempotency(key), json.dumps(_record(digest, response)), px=self.ttl_ms
        )

    def _release_steps(self, key: str, digest: str) -> Steps[None]:
        redis_key = self.keys.idempotency(key)
        raw = yield command("get", redis_key)
        if raw is not None and _parsed(raw) == _record(digest, None):
            yield command("delete", redis_key)

    async def claim(self, key: str, digest: str) -> Claim:
        return await self._run(self._claim_steps(key, digest))

    async def complete(self, key: str, digest: str, response: StoredResponse) -> None:
        await self._run(self._complete_steps(key, digest, response))

    async def release(self, key: str, digest: str) -> None:
        await self._run(self._release_steps(key, digest))
