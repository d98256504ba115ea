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

The ensemble needs far more history than a window (a 300-point warm-up, 2,000
points of score history, a daily lag): beside the window, ``...:state`` keeps a
*checkpoint* of its state (versioned, checksummed bytes) at a known point count.
Since the ensemble's update is deterministic, restoring a checkpoint and
replaying the window's points after it gives exactly the state of one process
that saw every point. Each process caches its last state per sensor, so the
append script returns the checkpoint only when the stored one is newer than the
cached one; a process writes a checkpoint (compare-and-set: only if newer) only
when the window would otherwise stop covering the points after the stored one,
every ``window_size // 2`` points, so most calls stay one round trip.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections import OrderedDict, deque
from typing import Any, NamedTuple

import numpy as np

from anomaly_detection import _core
from anomaly_detection.errors import StoreUnavailableError
from anomaly_detection.stores.base import SensorWindow
from anomaly_detection.stores.embedded import EmbeddedStore, config_from_settings
from anomaly_detection.utils.redis_namespaces import AnomalyRedisKeys

__all__ = ["RedisStore"]

_log = logging.getLogger(__name__)

# The append itself, shared by both scripts; {first} is the ARGV index of the first point.
_PUSH_POINTS = """
for i = {first}, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('LTRIM', KEYS[1], -w, -1)
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], 'seen', ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[2])
"""

# KEYS[1] window list, KEYS[2] counters hash.
# ARGV[1] window size, ARGV[2] TTL (s), ARGV[3] number of points, ARGV[4..] the last
# min(n, window size) points as JSON. Returns {seen before, window before}.
_APPEND = (
    """
local w = tonumber(ARGV[1])
local before = redis.call('LRANGE', KEYS[1], -w, -1)
local seen = tonumber(redis.call('HGET', KEYS[2], 'seen') or '0')
"""
    + _PUSH_POINTS.replace("{first}", "4")
    + "return {seen, before}\n"
)

# The ensemble's append: the same, plus the checkpoint hash. KEYS[3] checkpoint
# (hash: seen, blob). ARGV[4] the epoch and ARGV[5] the point count of the state the
# caller has cached ('' and -1 for none), ARGV[6..] the points. The counters' epoch
# (the server time when they were created) tells a sensor from a reset one of the
# same name: a new epoch drops the old checkpoint and makes caches stale.
# Returns {seen before, window before, epoch, checkpoint's seen or -1, its bytes
# when newer than the caller's state, else nil}.
_APPEND_ENSEMBLE = (
    """
local w = tonumber(ARGV[1])
local before = redis.call('LRANGE', KEYS[1], -w, -1)
local meta = redis.call('HMGET', KEYS[2], 'seen', 'epoch')
local seen = tonumber(meta[1] or '0')
local epoch = meta[2]
if not epoch then
  local now = redis.call('TIME')
  epoch = now[1] .. '.' .. now[2]
  redis.call('HSET', KEYS[2], 'epoch', epoch)
  redis.call('DEL', KEYS[3])
end
"""
    + _PUSH_POINTS.replace("{first}", "6")
    + """
local ckpt = tonumber(redis.call('HGET', KEYS[3], 'seen') or '-1') or -1
local blob = false
if ckpt >= 0 then
  redis.call('EXPIRE', KEYS[3], ARGV[2])
  if epoch ~= ARGV[4] or ckpt > tonumber(ARGV[5]) then
    blob = redis.call('HGET', KEYS[3], 'blob')
  end
end
return {seen, before, epoch, ckpt, blob}
"""
)

# Compare-and-set of a checkpoint. KEYS[1] checkpoint, KEYS[2] counters, KEYS[3] the
# parking place; ARGV[1] epoch, ARGV[2] seen, ARGV[3] bytes, ARGV[4] TTL, ARGV[5] '1' to
# replace a corrupt one whatever its seen. Writes only for the same epoch and a newer
# state: any two processes writing at one count write the same bytes. Returns 1 if
# written. One that lost to a newer checkpoint is parked for 2 s: a process whose
# window starts right after it may be waiting for exactly that one.
_SAVE_CHECKPOINT = """
if redis.call('HGET', KEYS[2], 'epoch') ~= ARGV[1] then return 0 end
local current = tonumber(redis.call('HGET', KEYS[1], 'seen') or '-1') or -1
if ARGV[5] ~= '1' and current >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[3], 'seen', ARGV[2], 'blob', ARGV[3], 'epoch', ARGV[1])
  redis.call('PEXPIRE', KEYS[3], 2000)
  return 0
end
redis.call('HSET', KEYS[1], 'seen', ARGV[2], 'blob', ARGV[3], 'epoch', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""

# A checkpoint in [ARGV[2], ARGV[3]] of epoch ARGV[1], from KEYS[1] (the checkpoint) or
# KEYS[2] (the parked one); returns {seen, blob} or {-1}.
_FIND_CHECKPOINT = """
for _, key in ipairs(KEYS) do
  local c = redis.call('HMGET', key, 'seen', 'blob', 'epoch')
  local at = tonumber(c[1] or '-1') or -1
  if c[3] == ARGV[1] and c[2] and at >= tonumber(ARGV[2]) and at <= tonumber(ARGV[3]) then
    return {at, c[2]}
  end
end
return {-1}
"""

_EMPTY = np.empty(0, dtype=np.float64)
# Pauses (s) while waiting for a checkpoint another process is saving: about 0.5 s in
# all, the longest a busy machine was seen to keep that process from it. Only paid in
# full when that process died between its append and its save.
_CHECKPOINT_WAITS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256)
_SLEEP = object()  # a step that asks the driver to sleep


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class _Cached(NamedTuple):
    """A process's last ensemble state of a sensor and the window after it."""

    epoch: str
    #: The stream position the state is at: the sensor's point count after it. A
    #: state rebuilt from a window learned fewer points (state.seen <= position).
    position: int
    state: Any  # _core.EnsembleState
    values: np.ndarray
    timestamps: np.ndarray


class _Checkpointed(NamedTuple):
    """What an ensemble call learned: to keep in the cache, and whether to save."""

    cached: _Cached
    save: bool
    force: bool


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
    #: Sensors whose ensemble state this process keeps (about 100 KB each).
    state_cache_size = 1024

    def __init__(self, client: Any, settings: Any) -> None:
        if not settings.include_anomalies_in_window:
            raise ValueError(
                "include_anomalies_in_window=False is not supported with Redis: points are appended "
                "atomically before they are scored"
            )
        if settings.detection_method == "ensemble":
            kwargs = getattr(client, "get_connection_kwargs", dict)()
            if kwargs.get("decode_responses"):
                # The checkpoint is binary: a decoding client would fail on it after the points
                # were appended.
                raise ValueError(
                    "client: the ensemble on Redis needs a redis client with decode_responses=False "
                    "(or choose another detection_method)"
                )
        self.client = client
        self.settings = settings
        self.is_async = _is_async(client)
        self.is_cluster = _is_cluster(client)
        # On a Cluster a sensor's window and counters must share a slot: hash tags are forced.
        self.keys = AnomalyRedisKeys(settings.redis_key_prefix, settings.redis_hash_tag or self.is_cluster)
        self.config = config_from_settings(settings)
        self.ensemble = settings.detection_method == "ensemble"
        self._script = client.register_script(_APPEND_ENSEMBLE if self.ensemble else _APPEND)
        self._save_script = client.register_script(_SAVE_CHECKPOINT)
        self._find_script = client.register_script(_FIND_CHECKPOINT)
        # Per-process ensemble states (LRU): a call only needs the checkpoint's bytes
        # when another process got further; a miss costs one transfer, never a result.
        self._states: OrderedDict[str, _Cached] = OrderedDict()
        self._states_lock = threading.Lock()
        self._window_args = (settings.window_size, settings.temp_data_ttl)
        self._down = _redis_down_errors()
        self.fallback = EmbeddedStore(self.config)
        self._pending: deque[tuple[str, np.ndarray, np.ndarray]] = deque()
        self._pending_points = 0
        self._degraded = False
        self._next_probe = 0.0
        self._carried_over: set[str] = set()  # sensors restored into the fallback
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one writer of the buffered points at a time

    # --- the per-call path -------------------------------------------------------

    def _call_args(
        self, sensor: str, values: np.ndarray, timestamps: np.ndarray, cached: _Cached | None = None
    ) -> tuple[list, list]:
        """(script keys, script arguments) of an append."""
        tail = slice(max(0, len(values) - self.settings.window_size), None)
        points = encode_points(values[tail], timestamps[tail])
        if not self.ensemble:
            return (
                [self.keys.temp_data(sensor), self.keys.temp_stats(sensor)],
                [*self._window_args, len(values), *points],
            )
        epoch, seen = (cached.epoch, cached.position) if cached is not None else ("", -1)
        return list(self.keys.sensor_keys(sensor)), [*self._window_args, len(values), epoch, seen, *points]

    def _score(self, reply: Any, values: np.ndarray, timestamps: np.ndarray):
        seen, entries = reply[0], reply[1]
        window_values, window_stamps = decode_points(entries)
        return _core.detect_after_window(
            self.config, window_values, window_stamps, int(seen), values, timestamps
        )

    # --- the ensemble's checkpoints ----------------------------------------------------

    def _take_state(self, sensor: str) -> _Cached | None:
        # Taken out while in use: the core advances the state in place, and another
        # thread on the same sensor must not share it (it fetches the checkpoint instead).
        if not self.ensemble:
            return None
        with self._states_lock:
            return self._states.pop(sensor, None)

    def _keep_state(self, sensor: str, cached: _Cached | None) -> None:
        if cached is None:
            return
        with self._states_lock:
            current = self._states.get(sensor)
            if current is not None and current.epoch == cached.epoch and current.position >= cached.position:
                return
            self._states[sensor] = cached
            self._states.move_to_end(sensor)
            while len(self._states) > self.state_cache_size:
                self._states.popitem(last=False)

    def _restored(self, sensor: str, blob: bytes, ckpt_seen: int) -> Any:
        """The stored checkpoint, or None (with a warning) when its bytes are corrupt."""
        try:
            state = _core.EnsembleState.from_bytes(blob, self.settings.threshold)
            if state.seen > ckpt_seen:
                raise ValueError(f"possible corruption: learned {state.seen} points, stored at {ckpt_seen}")
        except ValueError as exc:
            _log.warning(
                "ensemble checkpoint of %s is unreadable (%s): rebuilding from the window", sensor, exc
            )
            return None
        return state

    def _awaited_checkpoint(self, sensor: str, epoch: str, seen: int, count: int):
        """Steps: poll briefly for a checkpoint in [seen - count, seen]; (state, position) or None.

        When the window does not reach back to any checkpoint, the process whose append
        ended where ours began is saving one at exactly ``seen`` (its gap was larger than
        half a window too); it lands within milliseconds, as the checkpoint or, when a
        newer one overtook it, parked beside it. Waiting keeps concurrent batches exact;
        if that process died, the ensemble is rebuilt after the last pause."""
        keys = [self.keys.temp_state(sensor), self.keys.temp_state_parked(sensor)]
        for delay in _CHECKPOINT_WAITS:
            try:
                yield _SLEEP, (delay,)
                found = yield self._find_script, (keys, [epoch, seen - count, seen])
            except self._down:  # our points are stored: never fail the call now
                return None
            if int(found[0]) >= 0:
                restored = self._restored(sensor, found[1], int(found[0]))
                return None if restored is None else (restored, int(found[0]))
        return None

    def _score_ensemble(
        self, sensor: str, reply: Any, values: np.ndarray, timestamps: np.ndarray, cached: _Cached | None
    ):
        """Steps (see _append_steps); returns (the scores, what to cache and save)."""
        seen, entries, epoch, ckpt_seen, blob = reply
        seen, ckpt_seen = int(seen), int(ckpt_seen)
        epoch = _text(epoch)
        state, position = None, 0
        if cached is not None and cached.epoch == epoch and cached.position <= seen:
            state, position = cached.state, cached.position
        corrupt = False
        if blob is not None:
            # A checkpoint beyond the counter cannot come from this epoch's appends: corrupt,
            # and replaced (else no save could ever pass the compare-and-set again).
            if ckpt_seen > seen:
                _log.warning(
                    "ensemble checkpoint of %s claims %d points, its counter %d: rebuilding from the window",
                    sensor, ckpt_seen, seen,
                )  # fmt: skip
                restored = None
            else:
                restored = self._restored(sensor, blob, ckpt_seen)
            corrupt = restored is None
            if restored is not None and ckpt_seen <= seen and (state is None or ckpt_seen > position):
                state, position = restored, ckpt_seen
        window_values, window_stamps = decode_points(entries)
        count = min(len(window_values), self.settings.window_size)
        if seen > count and (state is None or seen - position > count):
            found = yield from self._awaited_checkpoint(sensor, epoch, seen, count)
            if found is not None:
                state, position = found
        *result, state, exact = _core.detect_after_checkpoint(
            self.config, window_values, window_stamps, seen, values, timestamps, state, position
        )
        if not exact:
            _log.warning(
                "ensemble of %s rebuilt from the window: no checkpoint within its last %d points",
                sensor, len(window_values),
            )  # fmt: skip
        w = self.settings.window_size
        after = seen + len(values)
        if len(values) >= w:
            kept = (values[-w:].copy(), timestamps[-w:].copy())
        else:
            keep = w - len(values)
            kept = (
                np.concatenate((window_values[-keep:], values)),
                np.concatenate((window_stamps[-keep:], timestamps)),
            )
        # Saved when the window would soon stop covering the points after the stored
        # checkpoint (half a window of margin for other processes' appends in flight).
        stored = max(ckpt_seen, 0) if not corrupt else -1
        save = corrupt or after - stored > w // 2
        return tuple(result), _Checkpointed(_Cached(epoch, after, state, *kept), save, corrupt)

    def _save_args(self, sensor: str, done: _Checkpointed) -> tuple[list, list]:
        c = done.cached
        return (
            [self.keys.temp_state(sensor), self.keys.temp_stats(sensor), self.keys.temp_state_parked(sensor)],
            [
                c.epoch,
                c.position,
                c.state.to_bytes(),
                self.settings.temp_data_ttl,
                "1" if done.force else "0",
            ],
        )

    def _append_steps(self, sensor: str, values: np.ndarray, timestamps: np.ndarray):
        """One append (and, for the ensemble, the checkpoint's upkeep), as the script calls
        it yields to a sync or async driver; returns the scores."""
        cached = self._take_state(sensor)
        try:
            reply = yield self._script, self._call_args(sensor, values, timestamps, cached)
        except BaseException:
            self._keep_state(sensor, cached)
            raise
        if not self.ensemble:
            return self._score(reply, values, timestamps)
        result, done = yield from self._score_ensemble(sensor, reply, values, timestamps, cached)
        if done.save:
            try:
                yield self._save_script, self._save_args(sensor, done)
            except self._down as exc:  # the next call saves it; the points themselves are stored
                _log.warning("could not save the ensemble checkpoint of %s: %s", sensor, exc)
        self._keep_state(sensor, done.cached)
        return result

    def _append_sync(self, sensor: str, values: np.ndarray, timestamps: np.ndarray):
        steps = self._append_steps(sensor, values, timestamps)
        try:
            script, args = next(steps)
            while True:
                try:
                    reply = time.sleep(*args) if script is _SLEEP else script(*args)
                except BaseException as exc:  # noqa: BLE001, PERF203 - the steps re-raise what they do not handle
                    script, args = steps.throw(exc)
                else:
                    script, args = steps.send(reply)
        except StopIteration as stop:
            return stop.value

    async def _append_async(self, sensor: str, values: np.ndarray, timestamps: np.ndarray):
        steps = self._append_steps(sensor, values, timestamps)
        try:
            script, args = next(steps)
            while True:
                try:
                    reply = await (asyncio.sleep(*args) if script is _SLEEP else script(*args))
                except BaseException as exc:  # noqa: BLE001, PERF203 - the steps re-raise what they do not handle
                    script, args = steps.throw(exc)
                else:
                    script, args = steps.send(reply)
        except StopIteration as stop:
            return stop.value

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
            if self.ensemble and sensor not in self._carried_over:
                # The ensemble goes on from this process's last state, not from scratch. The
                # state is taken out of the cache while it is copied (another thread's call
                # could otherwise advance it at the same time).
                cached = self._take_state(sensor)
                try:
                    if cached is not None:
                        self.fallback.registry.restore(
                            sensor,
                            cached.values,
                            cached.timestamps,
                            cached.position,
                            cached.state,
                            cached.position,
                        )
                finally:
                    self._keep_state(sensor, cached)
                self._carried_over.add(sensor)
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
            self._carried_over.clear()
        _log.warning("Redis is back: buffered points written back")

    def detect_batch(self, sensor: str, values: np.ndarray, timestamps: np.ndarray):
        self._require_sync()
        _check_input(self.keys, sensor, values, timestamps)
        if self._degraded and not self._try_recover():
            return self._detect_in_fallback(sensor, values, timestamps)
        try:
            result = self._append_sync(sensor, values, timestamps)
        except self._down as exc:
            self._degrade(exc)
            return self._detect_in_fallback(sensor, values, timestamps)
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
                # Through the scoring path (results dropped): the ensemble's checkpoint follows.
                self._append_sync(*buffered)
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
        _check_input(self.keys, sensor, values, timestamps)
        if self._degraded and not await self._atry_recover():
            return self._detect_in_fallback(sensor, values, timestamps)
        try:
            result = await self._append_async(sensor, values, timestamps)
        except self._down as exc:
            self._degrade(exc)
            return self._detect_in_fallback(sensor, values, timestamps)
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
                await self._append_async(*buffered)
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
        seen, anomalies = self.client.hmget(self.keys.temp_stats(sensor), "seen", "anomalies")
        counters = {k: int(v) for k, v in (("seen", seen), ("anomalies", anomalies)) if v is not None}
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
        self._take_state(sensor)
        # One DEL, so that no concurrent append sees half a sensor: on a Cluster the keys share
        # the sensor's hash tag (forced in __init__), so they are in one slot.
        return bool(self.client.delete(*self.keys.sensor_keys(sensor)))

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


def _check_input(keys: AnomalyRedisKeys, sensor: str, values: np.ndarray, timestamps: np.ndarray) -> None:
    """Bad input raises before anything is appended: Redis keeps only what was scored."""
    keys.sensor_part(sensor)
    finite = np.isfinite(values)
    if not finite.all():
        i = int(np.argmin(finite))
        raise ValueError(f"values[{i}]: expected a finite number, got {values[i]}")
    if not np.isfinite(timestamps).all():
        raise ValueError("timestamps: expected finite numbers")


def _single(value: float, timestamp: float, out: tuple) -> tuple:
    is_anomaly, scores, deviations, expected, counts, _alert_scores = out
    return (value, timestamp, bool(is_anomaly[0]), float(scores[0]), float(deviations[0]),
            float(expected[0]), int(counts[0]))  # fmt: skip
