"""The shared store: sensor windows in Redis, appended by one atomic script per
call, scored by the C++ core in the calling process.

A ``detect`` or ``detect_batch`` takes one round trip for the append: the script
returns the window as it was before the new points and the sensor's point count,
appends the points (only the last ``window_size`` of a batch need to be sent), trims
the list, refreshes the TTLs and counts. A call that finds anomalies takes a second
one (``HINCRBY`` of the sensor's anomaly counter, once the core has scored), and the
ensemble now and then more, to save its checkpoint or fetch a newer one. Because the append is atomic,
processes sharing a sensor each score their points against the exact window that
preceded them, and no update is lost. Appends are exactly once: each carries this
store's writer id and a sequence number, and the script stores a repeat of the
writer's last append (a retry, or the write-back of an append whose reply was lost)
nothing the second time.

Window entries are JSON objects ``{"value": ..., "timestamp": ...}`` (as the
original prototype writes them), so ``redis-cli LRANGE anomaly:temp:data:<sensor>:queue 0 -1``
shows the window. z-score, MAD and IQR results equal the embedded store's; EWMA and
CUSUM statistics are replayed over the window, so they equal a stream that
started at the window's oldest point. The ensemble keeps checkpoints beside the
window (:mod:`anomaly_detection.stores.checkpoints`). When Redis fails, a circuit
breaker opens: calls detect on :mod:`anomaly_detection.stores.fallback` with no
Redis I/O until a background probe finds Redis answering again and writes the
buffered points back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import os
import struct
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from anomaly_detection import _core
from anomaly_detection.redis import scripts
from anomaly_detection.redis.codec import decode_points, decode_window, encode_append, encode_append_point
from anomaly_detection.redis.driver import (
    Driver,
    Script,
    Steps,
    command,
    decodes_responses,
    down_errors,
    on_fork_in_child,
)
from anomaly_detection.redis.keys import AnomalyRedisKeys
from anomaly_detection.stores.base import SensorWindow
from anomaly_detection.stores.checkpoints import EnsembleCheckpoints
from anomaly_detection.stores.embedded import config_from_settings
from anomaly_detection.stores.fallback import Fallback

__all__ = ["RedisStore"]

_log = logging.getLogger(__name__)


class _SensorLocks:
    """A lock per stripe of sensor names (threading, or asyncio per event loop)."""

    STRIPES = 64

    def __init__(self) -> None:
        self._threading = [threading.Lock() for _ in range(self.STRIPES)]
        self._asyncio: dict[asyncio.AbstractEventLoop, list[asyncio.Lock]] = {}

    def stripes(self, sensors: list[str]) -> list[int]:
        """The stripes of ``sensors``, each once, in the order to take them (no deadlock)."""
        return sorted({hash(s) % self.STRIPES for s in sensors})

    def threading_stripe(self, stripe: int) -> threading.Lock:
        return self._threading[stripe]

    def asyncio_stripe(self, stripe: int) -> asyncio.Lock:
        return self.asyncio_lock_list()[stripe]

    def asyncio_lock_list(self) -> list[asyncio.Lock]:
        loop = asyncio.get_running_loop()
        stripes = self._asyncio.get(loop)
        if stripes is None:
            for closed in [other for other in self._asyncio if other.is_closed()]:
                del self._asyncio[closed]
            stripes = self._asyncio[loop] = [asyncio.Lock() for _ in range(self.STRIPES)]
        return stripes

    def threading_lock(self, sensor: str) -> threading.Lock:
        return self._threading[hash(sensor) % self.STRIPES]

    def asyncio_lock(self, sensor: str) -> asyncio.Lock:
        return self.asyncio_lock_list()[hash(sensor) % self.STRIPES]


def _moments(values: np.ndarray) -> dict[str, float]:
    """The window's mean and sample standard deviation (ddof 1), as the embedded store gives them:
    finite for finite values up to the largest double. Computed on the values scaled by the power
    of two of their largest magnitude (exactly: the same bits as unscaled where that does not
    overflow): near the largest double, sums and squares would overflow (numpy warns, gives inf)."""
    if not len(values):
        return {"mean": 0.0, "stddev": 0.0}
    largest = float(np.abs(values).max())
    if largest == 0.0:
        return {"mean": 0.0, "stddev": 0.0}
    scale = math.ldexp(1.0, math.frexp(largest)[1] - 1)  # largest / scale in [1, 2)
    unit = values / scale
    std = float(unit.std(ddof=1)) * scale if len(values) > 1 else 0.0
    return {"mean": float(unit.mean()) * scale, "stddev": std}


class RedisStore:
    """Sensor windows shared through Redis (single node or Cluster, sync or asyncio).

    With ``fallback_policy="fallback"`` (the default) a Redis failure opens a circuit
    breaker: calls detect on an embedded store, without touching Redis, and buffer the
    accepted points; a background probe (a thread, or a task on the client's event loop)
    pings Redis every ``probe_interval`` seconds and, once it answers, writes the points
    back in order, exactly once, and closes the breaker. With ``"strict"`` the failure
    raises :class:`~anomaly_detection.errors.StoreUnavailableError`. :meth:`close` stops
    the probe.
    """

    kind = "redis"
    #: Default :attr:`write_back_chunk`.
    WRITE_BACK_CHUNK = 1000
    #: Sensors whose ensemble state this process keeps (about 100 KB each).
    state_cache_size = 1024
    #: ``detect_many`` refuses non-finite values and timestamps itself (``_check_input``, the
    #: facade's messages), every sensor's before any I/O: the facade need not check them first.
    checks_finite_many = True
    #: Sensors whose keys this process keeps made (a few hundred bytes each).
    KEYS_CACHED = 4096

    def __init__(self, client: Any, settings: Any) -> None:
        if not settings.include_anomalies_in_window:
            raise ValueError(
                "include_anomalies_in_window=False is not supported with Redis: points are appended "
                "atomically before they are scored"
            )
        if settings.detection_method == "ensemble" and decodes_responses(client):
            # The checkpoint is binary: a decoding client would fail on it after the points
            # were appended.
            raise ValueError(
                "client: the ensemble on Redis needs a redis client with decode_responses=False "
                "(or choose another detection_method)"
            )
        self.client = client
        self.settings = settings
        self._driver = Driver(client)
        self.is_async = self._driver.is_async
        self.is_cluster = self._driver.is_cluster
        # On a Cluster a sensor's window and counters must share a slot: hash tags are forced.
        self.keys = AnomalyRedisKeys.from_settings(settings, cluster=self.is_cluster)
        self.config = config_from_settings(settings)
        self.ensemble = settings.detection_method == "ensemble"
        self._script = client.register_script(scripts.APPEND_ENSEMBLE if self.ensemble else scripts.APPEND)
        # A client that decodes replies as text cannot take the mirror's packed window.
        self._want_packed = not self._driver.decodes
        self._down = down_errors()
        self.checkpoints = (
            EnsembleCheckpoints(client, self.keys, settings, self.config, self.state_cache_size, self._down)
            if self.ensemble
            else None
        )
        self.fallback = Fallback(settings, self.config, self.checkpoints)
        #: This store's id in the exactly-once marks of the sensors it appends to.
        self.writer_id = uuid.uuid4().hex[:16]
        # A forked child is a writer of its own (see _after_fork_in_child).
        on_fork_in_child(self)
        self._sequence = itertools.count(1)  # next() is atomic under the GIL
        self._locks = _SensorLocks()
        #: Seconds between two probes of Redis while the breaker is open.
        self.probe_interval = float(settings.redis_probe_interval or settings.redis_retry_interval)
        self._probe_lock = threading.Lock()
        self._probe_thread: threading.Thread | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self._closed = threading.Event()
        #: Points of one append of the write-back at most (a larger call is one append; the
        #: script is sent only the last ``window_size`` of them).
        self.write_back_chunk = self.WRITE_BACK_CHUNK
        self._count_once = client.register_script(scripts.COUNT_ONCE)
        self._keys_of: dict[str, list[str]] = {}
        #: The general path's claims (not the ensemble's): per sensor, this store's last append
        #: to it (sequence number, the sensor's point count after it) and the window after it.
        #: The next append of the sensor is scored on that window before it is sent, and claims
        #: it with its anomaly count: when nobody appended since, the script adds the count with
        #: the points (no COUNT_ONCE round trip); otherwise the points are scored on the window
        #: the script answers, as without a claim. Popped while an append is in flight; kept
        #: for the last ``POINT_KEPT_BYTES / (16 * window_size)`` sensors (10,000 at most).
        self._kept: dict[str, tuple[int, int, np.ndarray, np.ndarray]] = {}
        self._kept_sensors = max(
            1, min(self.POINT_PREFIXES, self.POINT_KEPT_BYTES // (16 * settings.window_size))
        )
        self._point = _PointPath.of(self)
        self._recovery_tasks: list[tuple[Callable[[], bool], Callable[[], dict[str, int]] | None]] = []
        #: With a sync client: makes the ``redis.asyncio`` client of the a* methods (use_async_client).
        self._async_factory: Callable[[], Any] | None = None
        self._async_drivers: dict[asyncio.AbstractEventLoop, Driver] = {}

    def _after_fork_in_child(self) -> None:
        """A forked child (a pre-forking server's worker made after the store) is a store of
        its own: a writer id of its own (with the parent's id and sequence numbers its appends
        and the parent's would be taken for repeats of each other, and dropped); the breaker
        closed and nothing buffered (points the parent buffered are the parent's to write
        back: written back by both they would be stored twice); new locks (another thread of
        the parent may have held one at the fork, and no thread of the child would release
        it); no probe (the parent's thread does not run in the child)."""
        self.writer_id = uuid.uuid4().hex[:16]
        self._kept = {}  # the parent's claims: never this writer's
        self._locks = _SensorLocks()
        self._probe_lock = threading.Lock()
        self._probe_thread = None
        self._probe_task = None
        self._async_drivers = {}
        closed, self._closed = self._closed.is_set(), threading.Event()
        if closed:
            self._closed.set()
        self.fallback.after_fork_in_child()
        if self.checkpoints is not None:
            self.checkpoints.after_fork_in_child()
        if self._point is not None:
            self._point.after_fork_in_child(self.writer_id)

    # --- the per-call path -------------------------------------------------------
    #
    # Exactly once: each append carries this store's writer id and a sequence number; the
    # script stores a repeat of the writer's last append (a client's retry, or the
    # write-back of points whose timed-out append ran after all) nothing the second time.
    # For that the server must see one writer's appends to a sensor in sequence order, so
    # they are sent one at a time (a lock per stripe of sensor names), and points buffered
    # after a failure keep the sequence number of the append that failed.

    def _append(
        self, sensor: str, values: np.ndarray, timestamps: np.ndarray, seq: int, claim: bool = False
    ) -> Steps[tuple[tuple | None, bool, bool]]:
        """Steps of one append (and, for the ensemble, the checkpoint's upkeep); returns
        (the scores, whether the server had stored these points already, whether the script
        counted their anomalies), with no scores for an older append sent again. ``claim``
        (not the ensemble's): where this store kept the sensor's window after its last append,
        score the points on it first and claim it, so that the script counts the anomalies
        with the points when nobody appended since (see :attr:`_kept`)."""
        w = self.settings.window_size
        tail = slice(max(0, len(values) - w), None)
        if self.checkpoints is None:
            keys = self._append_keys(sensor)
            # until this append's reply says what the window is
            kept = self._kept.pop(sensor, None) if claim else None
            guess: tuple | None = None
            if kept is not None:
                prev, known, kept_values, kept_stamps = kept
                try:
                    guess = _core.detect_after_window(
                        self.config, kept_values, kept_stamps, known, values, timestamps
                    )
                except ValueError:  # never for a window kept (finite): scored after the reply
                    kept = None
            if guess is not None:
                counted = int(np.count_nonzero(guess[0]))
                arg = encode_append(w, self.settings.temp_data_ttl, len(values), self.writer_id, seq,
                                    True, values[tail], timestamps[tail], prev, known, counted)  # fmt: skip
            else:
                arg = encode_append(w, self.settings.temp_data_ttl, len(values), self.writer_id, seq,
                                    self._want_packed, values[tail], timestamps[tail])  # fmt: skip
            reply = yield Script(self._script, keys, [arg])
            if int(reply[0]) < 0:
                return None, True, False
            if guess is not None and len(reply) == 4:  # the claim held: the anomalies are counted
                seen = known + len(values)
                self.fallback.remember(sensor, kept_values, kept_stamps, values, timestamps, seen)
                self._keep(sensor, seq, seen, kept_values, kept_stamps, values, timestamps)
                return guess, False, True
            result, window_values, window_stamps, corrupt = self._score_window(
                sensor,
                reply,
                lambda wv, ws, seen: _core.detect_after_window(self.config, wv, ws, seen, values, timestamps),
            )
            seen = int(reply[0]) + len(values)
            # what the sensor holds now: the embedded store's start if Redis fails later
            self.fallback.remember(sensor, window_values, window_stamps, values, timestamps, seen)
            if corrupt:
                yield command("hdel", keys[1], *_MIRROR_FIELDS)
            elif claim and self._want_packed and not reply[2]:
                self._keep(sensor, seq, seen, window_values, window_stamps, values, timestamps)
            return result, bool(reply[2]), False
        arg = encode_append(w, self.settings.temp_data_ttl, len(values), self.writer_id, seq,
                            self._want_packed, values[tail], timestamps[tail])  # fmt: skip
        checkpoints = self.checkpoints
        cached = checkpoints.take(sensor)
        args = [arg, *checkpoints.append_args(cached)]
        try:
            reply = yield Script(self._script, list(self.keys.sensor_keys(sensor)), args)
        except BaseException:
            checkpoints.keep(sensor, cached)
            raise
        if int(reply[0]) < 0:
            checkpoints.keep(sensor, cached)
            return None, True, False
        result, done = yield from checkpoints.score(sensor, reply, values, timestamps, cached)
        yield from checkpoints.save(sensor, done)
        checkpoints.keep(sensor, done.cached)
        return result, bool(reply[5]), False

    def _keep(
        self, sensor: str, seq: int, seen: int, before_values: np.ndarray, before_stamps: np.ndarray,
        values: np.ndarray, timestamps: np.ndarray,
    ) -> None:  # fmt: skip
        """Keep the sensor's window after append ``seq`` (the window before it and its points;
        ``seen`` points after it) for the claim of the next (:attr:`_kept`)."""
        w = self.settings.window_size
        if len(values) >= w:
            window_values, window_stamps = values[-w:].copy(), timestamps[-w:].copy()
        else:
            cut = max(0, len(before_values) + len(values) - w)
            window_values = np.concatenate((before_values[cut:], values))
            window_stamps = np.concatenate((before_stamps[cut:], timestamps))
        if len(self._kept) >= self._kept_sensors:
            self._kept.clear()
        self._kept[sensor] = (seq, seen, window_values, window_stamps)

    def _append_keys(self, sensor: str) -> list[str]:
        """The window, counters and mirror keys of ``sensor`` (a name already checked), made
        once per sensor (up to :attr:`KEYS_CACHED` sensors, then made afresh)."""
        keys = self._keys_of.get(sensor)
        if keys is None:
            if len(self._keys_of) >= self.KEYS_CACHED:
                self._keys_of.clear()
            keys = self._keys_of[sensor] = [self.keys.window(sensor), self.keys.counters(sensor),
                                            self.keys.mirror(sensor)]  # fmt: skip
        return keys

    def _score_window(self, sensor: str, reply: list[Any], score: Any) -> tuple:
        """``score(window_values, window_stamps, seen)`` on the window an append's ``reply``
        answered with; if the compact mirror it came from holds non-finite numbers, once more
        on what can be read of it. The result, the window scored on, and whether the mirror
        was corrupt (to be dropped: the next append rebuilds it)."""
        seen = int(reply[0])
        window_values, window_stamps = decode_window(reply[1], reply[3:5] if len(reply) > 3 else None, seen)
        try:
            return score(window_values, window_stamps, seen), window_values, window_stamps, False
        except ValueError:
            if len(reply) <= 3:
                raise
            window_values, window_stamps = _finite_window(sensor, window_values, window_stamps)
            return score(window_values, window_stamps, seen), window_values, window_stamps, True

    def _detect_steps(
        self, sensor: str, values: np.ndarray, timestamps: np.ndarray, seq: int
    ) -> Steps[tuple]:
        result, _repeated, counted = yield from self._append(sensor, values, timestamps, seq, claim=True)
        if result is None:  # only an older append is ever refused: never this call's
            raise RuntimeError(f"append {seq} of {sensor} was refused as a repeat")
        if counted:  # the script counted them with the points (the claim held)
            return result
        # Counted on a repeat too: the first try's reply was lost, so its count may not have
        # run (COUNT_ONCE adds a count of this seq once whichever reply or script sends it).
        count = int(np.count_nonzero(result[0]))
        if count:
            yield from self._count(sensor, seq, count)
        return result

    def _count(self, sensor: str, seq: int, count: int) -> Steps[None]:
        """Count the anomalies a call found in points Redis stored; if Redis fails now, the
        write-back sends the count."""
        try:
            yield self._count_script(sensor, seq, count)
        except self._down as exc:
            self._count_later(exc, sensor, seq, count)

    def _count_script(self, sensor: str, seq: int, count: int) -> Script:
        """Add ``count`` anomalies of call ``seq`` to the sensor's counter, once: the writer's
        mark in the hash makes a repeat (a count whose reply was lost, sent again by the
        write-back) or an older count add nothing."""
        args = [self.writer_id, seq, count, self.settings.temp_data_ttl]
        return Script(self._count_once, [self._append_keys(sensor)[1]], args)

    def _count_later(self, exc: BaseException, sensor: str, seq: int, count: int) -> None:
        """The count of a call whose points Redis stored failed with ``exc``: open the breaker
        and have the write-back send it (with the strict policy, log it: there is no write-back)."""
        if self.settings.fallback_policy == "strict":
            _log.warning("could not count %d anomalies of %s: %s", count, sensor, exc)
            return
        self._trip(exc)
        self.fallback.count_later(sensor, seq, count)
        self._start_probe()  # the probe may have closed the breaker in between

    def _write_back_steps(self) -> Steps[bool]:
        """The buffered calls into Redis, at most :attr:`write_back_chunk` points at a time,
        each sensor's in order: a sensor's calls of a chunk as one append, through the scoring
        path (its results dropped: the ensemble's checkpoint follows), then the anomalies the
        fallback found in them into the sensor's counter, once (``COUNT_ONCE``: a count sent
        again after its reply was lost adds nothing). Whether the buffer was emptied (not when
        the store was closed first).

        No sensor lock: while the breaker is open this is the only writer of the store's
        appends, and a caller must never wait on a stalled append of it."""
        while not self._closed.is_set():
            plan = self.fallback.next_chunks(self.write_back_chunk)
            # read after the plan: each count is older than its sensor's calls in the plan
            counts = self.fallback.next_counts()
            for sensor, seq, count in counts:
                yield self._count_script(sensor, seq, count)
            self.fallback.counted(len(counts))
            if plan is None:
                break
            n, chunks = plan
            for chunk in chunks:
                yield from self._append(chunk.sensor, chunk.values, chunk.timestamps, chunk.seq)
                if chunk.anomalies:
                    yield self._count_script(chunk.sensor, chunk.seq, chunk.anomalies)
            self.fallback.written_back(n)
        return not self._closed.is_set()

    def detect_batch(self, sensor: str, values: np.ndarray, timestamps: np.ndarray):
        self._require_sync()
        _check_input(self.keys, sensor, values, timestamps)
        with self._locks.threading_lock(sensor):
            seq = next(self._sequence)
            # The breaker is open: no Redis I/O until the write-back has emptied the buffer, so
            # a sensor's new points never reach Redis before its buffered ones.
            if self.fallback.degraded:
                out = self.fallback.detect_batch(sensor, values, timestamps, seq)
                if out is not None:
                    return out
            try:
                return self._driver.run(self._detect_steps(sensor, values, timestamps, seq))
            except self._down as exc:
                return self._fall_back(exc, sensor, values, timestamps, seq)

    def detect(self, sensor: str, value: float, timestamp: float):
        if self._point is not None:
            out = self._detect_point(sensor, value, timestamp)
            if out is not None:
                return out
        out = self.detect_batch(sensor, np.array([value]), np.array([timestamp]))
        return _single(value, timestamp, out)

    # --- one point, one EVALSHA -------------------------------------------------------
    #
    # The single detect on a sync single-node client (not the ensemble, not a decoding
    # client): the same append script and the same exactly-once and breaker rules as
    # detect_batch, without the step machinery. The command is packed once per sensor
    # (EVALSHA, the script, the three keys) plus the one packed argument, sent on a connection
    # of the client's pool with the client's retry policy (redis-py's Connection API), and
    # the reply read raw. Anything unusual (a new sensor name that fails the check, a
    # non-finite number, the breaker open, the server without the script) takes the
    # general path, which raises, falls back or loads the script as before.
    #
    # Per sensor the path keeps the window after its last append (packed, as the mirror) and
    # claims it in the next: when nobody appended since, the script answers "your window"
    # instead of sending it, and the point, scored on the kept window while the script runs
    # (between sending and reading), is answered at once. Any other reply is scored as before.

    #: Sensors whose packed command prefix and kept window are kept (cleared beyond this).
    POINT_PREFIXES = 10_000
    #: ... and fewer where their kept windows (16 bytes a window point) would hold more than this
    #: many bytes: a window of 100 keeps all 10,000 (16 MB), one of 100,000 the last 167.
    POINT_KEPT_BYTES = 256 * 2**20
    #: The single detect refreshes a sensor's TTLs on its first append in this process, then
    #: at most every ``temp_data_ttl * TTL_REFRESH`` seconds (the general path: every call).
    TTL_REFRESH = 1 / 60

    def _point_sensor(self, sensor: Any) -> _PointSensor | None:
        """The point path's state of ``sensor``: the packed ``EVALSHA sha 3 window counters mirror``,
        no kept window (None for a name the general path must refuse)."""
        if type(sensor) is not str:
            return None
        try:
            self.keys.sensor_part(sensor)
        except ValueError:
            return None
        encode = self._point.encoder.encode
        parts = [b"EVALSHA", self._script.sha.encode(), b"3", encode(self.keys.window(sensor)),
                 encode(self.keys.counters(sensor)), encode(self.keys.mirror(sensor))]  # fmt: skip
        state = _PointSensor(b"*7\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
        if len(self._point.sensors) >= self._point.kept_sensors:
            self._point.sensors.clear()
        self._point.sensors[sensor] = state
        return state

    def _detect_point(self, sensor: str, value: float, timestamp: float) -> tuple | None:
        """:meth:`detect` in one EVALSHA; None: take the general path."""
        point = self._point
        state = point.sensors.get(sensor) or self._point_sensor(sensor)
        if state is None or not (math.isfinite(value) and math.isfinite(timestamp)):
            return None
        value, timestamp = float(value), float(timestamp)
        with self._locks.threading_lock(sensor):
            if self.fallback.degraded:
                return None
            seq = next(self._sequence)
            now = time.monotonic()
            refresh = now - state.refreshed >= point.refresh_every
            kept_values, kept_stamps, known = state.values, state.stamps, state.known
            state.values = None  # until this append's reply says what the window is
            # the claim: this writer's last append and the points it left (none kept: no claim)
            claim = (0, 0) if kept_values is None else (state.prev, known)
            arg = encode_append_point(
                point.window, point.ttl, point.writer, seq, value, timestamp, *claim, refresh
            )
            between = None
            if kept_values is not None:
                kept = (np.frombuffer(kept_values, dtype="<f8"), np.frombuffer(kept_stamps, dtype="<f8"))
                guess: list[Any] = []

                def between() -> None:  # scored on the kept window while the script runs
                    if not guess:
                        try:
                            guess.append(_core.detect_point_after_window(
                                self.config, kept[0], kept[1], known, value, timestamp))  # fmt: skip
                        except ValueError:  # never for a window kept (finite): scored after the reply
                            guess.append(None)

            try:
                reply = point.send(state.prefix + b"$%d\r\n%s\r\n" % (len(arg), arg), between)
            except self._down as exc:
                out = self._fall_back(exc, sensor, np.array([value]), np.array([timestamp]), seq)
                return _single(value, timestamp, out)
            except point.no_script:  # the server lost the script: the general path loads it (same seq)
                values, stamps = np.array([value]), np.array([timestamp])
                try:
                    out = self._driver.run(self._detect_steps(sensor, values, stamps, seq))
                except self._down as exc:
                    out = self._fall_back(exc, sensor, values, stamps, seq)
                return _single(value, timestamp, out)
            if reply[0] < 0:  # only an older append is ever refused: never this call's
                raise RuntimeError(f"append {seq} of {sensor} was refused as a repeat")
            if refresh:
                state.refreshed = now
            corrupt = False
            if len(reply) == 4 and kept_values is not None:  # the window kept is the window before
                out = guess[0] if guess and guess[0] is not None else _core.detect_point_after_window(
                    self.config, kept[0], kept[1], known, value, timestamp)  # fmt: skip
                self.fallback.remember(sensor, kept[0], kept[1], (value,), (timestamp,), known + 1)
                before = (kept_values, kept_stamps)
            else:
                out, window_values, window_stamps, corrupt = self._score_window(
                    sensor,
                    reply,
                    lambda wv, ws, seen: _core.detect_point_after_window(
                        self.config, wv, ws, seen, value, timestamp
                    ),
                )
                self.fallback.remember(
                    sensor, window_values, window_stamps, (value,), (timestamp,), int(reply[0]) + 1
                )
                before = None
                if not corrupt and not reply[2]:
                    before = (window_values.tobytes(), window_stamps.tobytes())
            if before is not None:  # the window after this point, kept for the next call
                size = 8 * point.window
                state.values = (before[0] + _PACK_F8(value))[-size:]
                state.stamps = (before[1] + _PACK_F8(timestamp))[-size:]
                state.prev, state.known = seq, int(reply[0]) + 1
            if corrupt:
                with contextlib.suppress(*self._down):  # if not now, the next append rebuilds it
                    self.client.hdel(self.keys.counters(sensor), *_MIRROR_FIELDS)
            if out[2]:  # a repeat too (see _detect_steps): COUNT_ONCE counts seq once
                self._driver.run(self._count(sensor, seq, 1))
        return out

    # --- many sensors in one round trip ---------------------------------------------------
    #
    # The sensors' steps run in lockstep (Driver.run_many): their appends go in one pipeline,
    # then the anomaly counters of those that found some in a second. Each sensor keeps its
    # own lock, sequence number and exactly-once mark, so a sensor's outcome is the same as
    # detect_batch's; a sensor whose append met a Redis failure is scored on the fallback
    # with its sequence number (its append may have run: the write-back stores it once).

    def detect_many(
        self, sensors: list[str], values: list[np.ndarray], timestamps: list[np.ndarray], threads: int = 0
    ) -> list[tuple]:
        """:meth:`detect_batch` of each sensor (distinct names), in one round trip for all."""
        self._require_sync()
        for sensor, v, t in zip(sensors, values, timestamps):
            _check_input(self.keys, sensor, v, t, self._keys_of)
        locks = [self._locks.threading_stripe(i) for i in self._locks.stripes(sensors)]
        for lock in locks:
            lock.acquire()
        try:
            seqs = [next(self._sequence) for _ in sensors]
            if self.fallback.degraded:
                return [self.fallback.detect_batch(*job) for job in zip(sensors, values, timestamps, seqs)]
            outcomes = self._driver.run_many(
                [self._detect_steps(*job) for job in zip(sensors, values, timestamps, seqs)]
            )
            return self._settle(sensors, values, timestamps, seqs, outcomes)
        finally:
            for lock in reversed(locks):
                lock.release()

    async def adetect_many(
        self, sensors: list[str], values: list[np.ndarray], timestamps: list[np.ndarray]
    ) -> list[tuple]:
        """:meth:`detect_many` on an asyncio client (one pipeline for all the sensors)."""
        driver = self._adriver()
        if driver is None:
            return self.detect_many(sensors, values, timestamps)
        for sensor, v, t in zip(sensors, values, timestamps):
            _check_input(self.keys, sensor, v, t, self._keys_of)
        stripes = self._locks.stripes(sensors)
        locks = [self._locks.asyncio_stripe(i) for i in stripes]
        taken = []
        try:
            for lock in locks:
                await lock.acquire()
                taken.append(lock)
            async with self._thread_stripes(stripes):
                seqs = [next(self._sequence) for _ in sensors]
                if self.fallback.degraded:
                    return [
                        self.fallback.detect_batch(*job) for job in zip(sensors, values, timestamps, seqs)
                    ]
                outcomes = await driver.run_many(
                    [self._detect_steps(*job) for job in zip(sensors, values, timestamps, seqs)]
                )
                return self._settle(sensors, values, timestamps, seqs, outcomes)
        finally:
            for lock in reversed(taken):
                lock.release()

    def _settle(
        self,
        sensors: list[str],
        values: list[np.ndarray],
        timestamps: list[np.ndarray],
        seqs: list[int],
        outcomes: list[Any],
    ) -> list[tuple]:
        """The results of :meth:`detect_many`: a Redis failure trips the breaker and scores that
        sensor on the fallback; any other error is raised (after every sensor was settled)."""
        results: list[tuple] = []
        error: BaseException | None = None
        for job, out in zip(zip(sensors, values, timestamps, seqs), outcomes):
            if isinstance(out, self._down):
                self._trip(out)
                # sent: the append may have run, so the write-back sends it alone, with its
                # sequence number (merged with later calls it would be stored twice)
                out = self.fallback.detect_batch(*job, sent=True)
            elif isinstance(out, BaseException):
                error = error or out
            results.append(out)
        if error is not None:
            raise error
        return results

    def _recover(self) -> bool:
        """Write the buffered points back (in the background thread), in appends of at most
        :attr:`write_back_chunk` points, each sensor's in order, exactly once; then run the
        recovery tasks (the alerts raised meanwhile). True when everything is written and
        the breaker closed."""
        if not self.fallback.begin_write_back():
            return False
        complete = False
        try:
            complete = self._driver.run(self._write_back_steps()) and self._run_recovery_tasks()
        except self._down:
            pass
        finally:
            complete = self.fallback.end_write_back(complete)
        return complete

    def _run_recovery_tasks(self) -> bool:
        """Run each recovery task (:meth:`add_recovery_task`); whether all are done."""
        done = True
        for task, _report in list(self._recovery_tasks):
            try:
                done = bool(task()) and done
            except self._down:  # noqa: PERF203 - Redis failed again: the caller opens the breaker
                raise
            except Exception:  # noqa: BLE001 - a task's bug must not keep the store degraded
                _log.exception("recovery task %r failed", task)
        return done

    def add_recovery_task(
        self, task: Callable[[], bool], report: Callable[[], dict[str, int]] | None = None
    ) -> None:
        """Have the background write-back call ``task()`` once the buffered points are back
        in Redis, before the breaker closes; ``task`` returns whether its work is done (if
        not, the breaker stays open and it is called again after the next probe). Used by
        :class:`~anomaly_detection.redis.alerts.RedisAlertSink` to deliver the alerts raised
        during an outage. ``report()``, if given, adds its counts to ``health()["write_back"]``.
        Sync clients only."""
        if self.is_async:
            raise TypeError("recovery tasks are for sync clients: the asyncio write-back runs none")
        self._recovery_tasks.append((task, report))

    @property
    def degraded(self) -> bool:
        """Whether the breaker is open (calls detect on the fallback, without Redis I/O)."""
        return self.fallback.degraded

    def trip(self, exc: BaseException) -> None:
        """Open the breaker after ``exc`` seen by someone else (an alert writer): the probe
        watches Redis from now on (with the strict policy, raise)."""
        self._trip(exc)

    # --- asyncio clients -----------------------------------------------------------

    async def adetect_batch(self, sensor: str, values: np.ndarray, timestamps: np.ndarray):
        driver = self._adriver()
        if driver is None:
            return self.detect_batch(sensor, values, timestamps)
        _check_input(self.keys, sensor, values, timestamps)
        async with self._locks.asyncio_lock(sensor), self._thread_stripes(self._locks.stripes([sensor])):
            seq = next(self._sequence)
            if self.fallback.degraded:  # the breaker is open: see detect_batch
                out = self.fallback.detect_batch(sensor, values, timestamps, seq)
                if out is not None:
                    return out
            try:
                return await driver.run(self._detect_steps(sensor, values, timestamps, seq))
            except self._down as exc:
                return self._fall_back(exc, sensor, values, timestamps, seq)

    # --- a sync client with an asyncio twin (the HTTP service) --------------------------
    #
    # The a* methods send their appends through a redis.asyncio client to the same server,
    # awaited on the caller's event loop (no thread), while everything else stays on the sync
    # client: the breaker's probe thread, the write-back and its recovery tasks (the alerts held
    # during an outage), health and the reads. One writer id and one sequence: a loop's call
    # also takes the sync path's lock of its sensors (polled, never blocking the loop), so a
    # sensor's appends reach the server in sequence order whichever path sends them.

    def use_async_client(self, factory: Callable[[], Any]) -> None:
        """Send the appends of :meth:`adetect`, :meth:`adetect_batch` and :meth:`adetect_many`
        through ``factory()``, a ``redis.asyncio`` client to this store's server, made on first
        use on each event loop (the caller closes it). Sync clients only."""
        if self.is_async:
            raise TypeError("use_async_client: this store's client is a redis.asyncio client already")
        self._async_factory = factory

    def _adriver(self) -> Driver | None:
        """The driver of the a* methods on the running loop, or None: they run the sync path."""
        if self.is_async:
            return self._driver
        if self._async_factory is None:
            return None
        loop = asyncio.get_running_loop()
        driver = self._async_drivers.get(loop)
        if driver is None:
            for closed in [other for other in self._async_drivers if other.is_closed()]:
                del self._async_drivers[closed]
            driver = self._async_drivers[loop] = Driver(self._async_factory())
        return driver

    @contextlib.asynccontextmanager
    async def _thread_stripes(self, stripes: list[int]) -> AsyncIterator[None]:
        """With an asyncio twin: hold the sync path's locks of ``stripes`` too (see above)."""
        if self.is_async:
            yield
            return
        taken: list[threading.Lock] = []
        try:
            for i in stripes:
                lock = self._locks.threading_stripe(i)
                while not lock.acquire(blocking=False):
                    await asyncio.sleep(0.0005)  # a thread's detect of these sensors is in flight
                taken.append(lock)
            yield
        finally:
            for lock in reversed(taken):
                lock.release()

    async def adetect(self, sensor: str, value: float, timestamp: float):
        out = await self.adetect_batch(sensor, np.array([value]), np.array([timestamp]))
        return _single(value, timestamp, out)

    async def _arecover(self) -> bool:
        """:meth:`_recover` on an asyncio client, in the probe task (it awaits each append:
        the event loop serves callers in between)."""
        if not self.fallback.begin_write_back():
            return False
        complete = False
        try:
            complete = await self._driver.run(self._write_back_steps())
        except self._down:
            pass
        finally:
            complete = self.fallback.end_write_back(complete)
        return complete

    # --- the circuit breaker ----------------------------------------------------------
    #
    # After a failure the store is degraded: calls go straight to the fallback, with no
    # Redis I/O, while a background probe (a thread, or a task on the client's event loop)
    # pings Redis at most every probe interval and, once it answers, writes the buffered
    # points back; the breaker closes when the buffer is empty.

    def _fall_back(self, exc: BaseException, sensor: str, values: np.ndarray, timestamps: np.ndarray,
                   seq: int) -> Any:  # fmt: skip
        """A call whose append failed with ``exc``: open the breaker and detect on the fallback
        (the points are buffered as sent: the append may have run)."""
        self._trip(exc)
        try:
            return self.fallback.detect_batch(sensor, values, timestamps, seq, sent=True)
        finally:  # the probe may have closed the breaker in between: this call opened it again
            self._start_probe()

    def _trip(self, exc: BaseException) -> None:
        """Open the breaker after ``exc`` (with the strict policy, raise instead)."""
        self.fallback.degrade(exc)
        self._start_probe()

    def _start_probe(self) -> None:
        """Start the background probe (and write-back) unless it runs or the store is closed."""
        if self._closed.is_set():
            return
        if self.is_async:
            task = self._probe_task
            if task is None or task.done():
                self._probe_task = asyncio.get_running_loop().create_task(self._aprobe())
            return
        with self._probe_lock:
            if self._probe_thread is None:
                self._probe_thread = threading.Thread(
                    target=self._probe, name="anomaly-redis-probe", daemon=True
                )
                self._probe_thread.start()

    def _probe(self) -> None:
        while not self._closed.wait(self.probe_interval):
            if self.fallback.degraded:
                try:
                    self.client.ping()
                except self._down:
                    continue
                except Exception:  # noqa: BLE001 - the probe must outlive any error; the next one retries
                    _log.exception("Redis probe failed")
                    continue
                try:
                    if self._recover():
                        self._run_recovery_tasks()  # alerts held while the breaker was closing
                except self._down as exc:
                    self._trip(exc)
                except Exception:  # noqa: BLE001 - the same: the buffer stays, the next probe retries
                    _log.exception("Redis write-back failed")
            with self._probe_lock:
                if not self.fallback.degraded:
                    self._probe_thread = None
                    return

    async def _aprobe(self) -> None:
        while not self._closed.is_set():
            await asyncio.sleep(self.probe_interval)
            if self.fallback.degraded:
                try:
                    await self.client.ping()
                except self._down:
                    continue
                except Exception:  # noqa: BLE001 - the probe must outlive any error; the next one retries
                    _log.exception("Redis probe failed")
                    continue
                try:
                    await self._arecover()
                except Exception:  # noqa: BLE001 - the same: the buffer stays, the next probe retries
                    _log.exception("Redis write-back failed")
            if not self.fallback.degraded:
                self._probe_task = None
                return

    def close(self) -> None:
        """Stop the background probe and write-back (buffered points stay buffered): a
        write-back stops after the append in flight; the thread is joined."""
        self._closed.set()
        if self._point is not None:
            self._point.close()
        task = self._probe_task
        if task is not None:
            task.cancel()
        with self._probe_lock:
            thread = self._probe_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(10.0, 2 * float(self.settings.redis_socket_timeout or 0)))

    async def aclose(self) -> None:
        """:meth:`close` for an asyncio client: also waits for the probe task to end."""
        self.close()
        task = self._probe_task
        if task is not None and task is not asyncio.current_task():
            await asyncio.gather(task, return_exceptions=True)

    def _require_sync(self) -> None:
        if self.is_async:
            raise TypeError("this detector has a redis.asyncio client: use adetect / adetect_batch")

    # --- reading and cleaning up -------------------------------------------------------

    def window(self, sensor: str) -> SensorWindow:
        self._require_sync()
        entries = self.client.lrange(self.keys.window(sensor), 0, -1)
        return SensorWindow(*decode_points(entries))

    def summary(self, sensor: str) -> dict[str, Any] | None:
        self._require_sync()
        values, stamps = decode_points(self.client.lrange(self.keys.window(sensor), 0, -1))
        seen, anomalies = self.client.hmget(self.keys.counters(sensor), "seen", "anomalies")
        counters = {k: int(v) for k, v in (("seen", seen), ("anomalies", anomalies)) if v is not None}
        if not len(values) and not counters:
            return None
        return {
            "points_seen": counters.get("seen", len(values)),
            "anomalies": counters.get("anomalies", 0),
            "window_count": len(values),
            **_moments(values),
            "min": float(values.min()) if len(values) else 0.0,
            "max": float(values.max()) if len(values) else 0.0,
            "last_timestamp": float(stamps[-1]) if len(stamps) else 0.0,
        }

    def progress(self, sensor: str, fresh: bool = False) -> tuple[int, int | None] | None:
        """(points seen, the point count from which the sensor's points are past the warm-up:
        ``min_samples``, for the ensemble no earlier than its likelihoods went live, None while
        they are not), for the facade's ``warming_up``. From this process's own state where it
        has one, with no I/O: while the breaker is open the fallback's, else the ensemble's
        cached state after this process's last call. Otherwise (a sync client, Redis up) read
        what is needed: the counters' ``seen`` and, for the ensemble, its checkpoint (replayed
        over the window's points after it while its likelihoods are not live there). None where
        it cannot tell without awaiting (a ``redis.asyncio`` client) or Redis fails. ``fresh``
        (``stats()``, which reads the counters anyway): a sync client reads Redis even where this
        process has a cached state (stale once another process reset the sensor or went on)."""
        min_samples = self.settings.min_samples
        if self.fallback.degraded:
            found = self.fallback.store.registry.progress(sensor)
            if found is not None:
                return found
        if self.checkpoints is not None and not (fresh and not self.is_async):
            cached = self.checkpoints.peek(sensor)
            if cached is not None:
                return cached.position, _live_from(cached.state, cached.position, min_samples)
        if self.is_async or self.fallback.degraded:
            return None
        try:
            if self.checkpoints is None:
                seen = self.client.hget(self.keys.counters(sensor), "seen")
                return (int(seen) if seen is not None else 0), min_samples
            return self._read_ensemble_progress(sensor)
        except self._down:
            return None

    def _read_ensemble_progress(self, sensor: str) -> tuple[int, int | None]:
        """:meth:`progress` of the ensemble read from Redis (one round trip for the counters and
        the checkpoint): its checkpoint, brought to the sensor's count by replaying the window's
        points after it (a checkpoint trails the count by up to half a window; only those points
        are read) where its likelihoods are not live there yet; without a usable checkpoint, the
        ensemble rebuilt from the window, as the next call would."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(self.keys.counters(sensor), "seen", "epoch")
        pipe.hmget(self.keys.checkpoint(sensor), "seen", "blob", "epoch")
        (seen, epoch), (ckpt_seen, blob, ckpt_epoch) = pipe.execute()
        if seen is None:
            return 0, None
        seen = int(seen)
        cached = self.checkpoints.peek(sensor)  # this process's state, if nobody wrote since
        if (
            cached is not None
            and cached.position == seen
            and epoch is not None
            and cached.epoch == _text(epoch)
        ):
            return seen, _live_from(cached.state, seen, self.settings.min_samples)
        state, position = None, 0
        if blob is not None and ckpt_seen is not None and ckpt_epoch == epoch and int(ckpt_seen) <= seen:
            state = self.checkpoints.restored(sensor, blob, int(ckpt_seen))
            position = int(ckpt_seen)
        if state is not None and (position == seen or state.live_from is not None):
            return seen, _live_from(state, position, self.settings.min_samples)
        window = self.keys.window(sensor)
        values, stamps = decode_points(
            self.client.lrange(window, position - seen, -1) if state is not None else []
        )
        if state is None or len(values) != seen - position:  # rebuilt from the window
            state, position = None, None
            values, stamps = decode_points(self.client.lrange(window, 0, -1))
        empty = np.empty(0)
        try:
            *_, state, _exact = _core.detect_after_checkpoint(
                self.config, values, stamps, seen, empty, empty, state, position
            )
        except ValueError:  # a window that cannot be read: the next call's scoring says so
            return seen, None
        return seen, _live_from(state, seen, self.settings.min_samples)

    def reset(self, sensor: str) -> bool:
        self._require_sync()
        if self.checkpoints is not None:
            self.checkpoints.take(sensor)
        # One DEL, so that no concurrent append sees half a sensor: on a Cluster the keys share
        # the sensor's hash tag (forced in __init__), so they are in one slot.
        return bool(self.client.delete(*self.keys.sensor_keys(sensor)))

    def sensors(self) -> list[str]:
        self._require_sync()
        names = {self.keys.parse_sensor(k) for k in self.client.scan_iter(match=self.keys.pattern("window"))}
        return sorted(n for n in names if n)

    def health(self) -> dict[str, Any]:
        reachable = False
        if not self.is_async and not self.fallback.degraded:  # degraded: the probe watches Redis
            try:
                reachable = bool(self.client.ping())
            except self._down as exc:
                if self.settings.fallback_policy != "strict":
                    self._trip(exc)
        return {
            "store": self.kind,
            "degraded": self.fallback.degraded,
            "redis_reachable": reachable,
            "fallback_policy": self.settings.fallback_policy,
            "buffered_points": self.fallback.buffered_points,
            "probe_interval": self.probe_interval,
            "cluster": self.is_cluster,
            "write_back": self.write_back_progress(),
        }

    def write_back_progress(self) -> dict[str, Any]:
        """Where the background write-back stands: ``state`` (``idle``: nothing to write;
        ``waiting``: for Redis to answer a probe; ``writing``; ``stopped``: closed with points
        still buffered), the points ``buffered`` and ``written`` since the outage began, the
        alerts held for delivery and those dropped beyond the alert buffer (recovery tasks
        that report them)."""
        fallback = self.fallback
        buffered = fallback.buffered_points
        if fallback.writing_back:
            state = "writing"
        elif self._closed.is_set() and (buffered or fallback.degraded):
            state = "stopped"
        elif fallback.degraded:
            state = "waiting"
        else:
            state = "idle"
        progress = {"state": state, "buffered": buffered, "written": fallback.written_back_points}
        for _task, report in self._recovery_tasks:
            if report is not None:
                for name, value in report().items():
                    progress[name] = progress.get(name, 0) + value
        return progress


class _PointPath:
    """What :meth:`RedisStore._detect_point` needs: the client's pool, encoder and retry policy,
    the packed command prefix per sensor, and one connection kept out of the pool.

    A connection taken from and given back to redis-py's pool costs ~12 us a call (its
    bookkeeping and a poll of the socket), as much as the rest of the client's work: the
    point path keeps one connection checked out of the pool (while the store is open, in
    the process that took it) and uses it whenever no other thread does; a concurrent call
    takes one from the pool as usual. Only with redis-py's ``ConnectionPool`` (the default)
    of at least :attr:`KEEP_FROM` connections (redis-py's default, 100): with a smaller or a
    blocking pool every call takes one from the pool, so the store never holds one a caller
    waits for."""

    #: The smallest ``max_connections`` of a pool the point path keeps a connection of.
    KEEP_FROM = 100

    def __init__(self, client: Any, store: RedisStore) -> None:
        from redis import ConnectionPool
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import NoScriptError

        self.pool = client.connection_pool
        self.encoder = self.pool.get_encoder()
        self.window = store.settings.window_size
        self.ttl = store.settings.temp_data_ttl
        self.writer = store.writer_id.encode()
        self.sensors: dict[str, _PointSensor] = {}
        #: How many sensors' prefixes and kept windows are kept (RedisStore.POINT_KEPT_BYTES).
        self.kept_sensors = max(1, min(store.POINT_PREFIXES, store.POINT_KEPT_BYTES // (16 * self.window)))
        self.refresh_every = store.settings.temp_data_ttl * store.TTL_REFRESH
        self.no_script = NoScriptError
        # A connection the server closed (not a timeout: a stalled server is not asked twice).
        self.dropped = RedisConnectionError
        self.keep = type(self.pool) is ConnectionPool and self.pool.max_connections >= self.KEEP_FROM
        self._kept: Any = None
        self._kept_pid = 0
        self._kept_lock = threading.Lock()
        self._closed = False

    @classmethod
    def of(cls, store: RedisStore) -> _PointPath | None:
        """The point path of ``store``, or None when its client needs the general one (asyncio,
        Cluster, the ensemble, a client that decodes replies, a single-connection client)."""
        client = store.client
        if (store.is_async or store.is_cluster or store.ensemble or store._driver.decodes
                or getattr(client, "connection", None) is not None
                or getattr(client, "connection_pool", None) is None):  # fmt: skip
            return None
        return cls(client, store)

    def send(self, command: bytes, between: Callable[[], None] | None = None) -> Any:
        """Send the packed ``command`` (retried as the client's own commands are: redis-py's
        retry policy of the connection); its reply, raw. ``between`` (if any) runs after the
        command is sent and before its reply is read (again on a retry)."""
        if self.keep and self._kept_lock.acquire(blocking=False):
            try:
                conn = self._kept
                if conn is None or self._kept_pid != os.getpid():  # first use, or a forked child
                    conn = None
                    if not self._closed:
                        conn = self.pool.get_connection()
                        self._kept, self._kept_pid = conn, os.getpid()
                if conn is not None:
                    try:
                        return conn.retry.call_with_retry(
                            lambda: _round_trip(conn, command, between), lambda _e: conn.disconnect()
                        )
                    except self.dropped:
                        # The server closed the kept connection while it was idle (a restart, a
                        # timeout, CLIENT KILL), which the pool would have noticed before lending
                        # it: sent once more on one from the pool. The append may have run: the
                        # same sequence number makes the second a repeat, answered as the first.
                        conn.disconnect()
            finally:
                self._kept_lock.release()
        pool = self.pool
        conn = pool.get_connection()
        try:
            return conn.retry.call_with_retry(
                lambda: _round_trip(conn, command, between), lambda _error: conn.disconnect()
            )
        finally:
            pool.release(conn)

    def after_fork_in_child(self, writer_id: str) -> None:
        """In a forked child: the child's writer id, and a lock of its own (the parent's
        connection is never used: it is kept per process)."""
        self.writer = writer_id.encode()
        self._kept_lock = threading.Lock()

    def close(self) -> None:
        """Give the kept connection back to the pool (the point path takes no other)."""
        with self._kept_lock:
            self._closed = True
            conn, self._kept = self._kept, None
            if conn is not None and self._kept_pid == os.getpid():
                self.pool.release(conn)


def _round_trip(conn: Any, command: bytes, between: Callable[[], None] | None) -> Any:
    conn.send_packed_command((command,))
    if between is not None:
        between()
    return conn.read_response(disable_decoding=True)


class _PointSensor:
    """The point path's state of one sensor: its packed command prefix, when this process last
    refreshed its TTLs (``time.monotonic``), and the window after this process's last append
    to it (``values``, ``stamps``: packed little-endian float64, None when unknown) with that
    append's sequence number (``prev``) and the sensor's point count after it (``known``)."""

    __slots__ = ("known", "prefix", "prev", "refreshed", "stamps", "values")

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self.refreshed = -math.inf
        self.values: bytes | None = None
        self.stamps: bytes | None = None
        self.prev = 0
        self.known = 0


_PACK_F8 = struct.Struct("<d").pack


# The compact mirror's fields in the counters hash (scripts._APPEND_ONCE).
_MIRROR_FIELDS = ("ring", "tail", "values", "stamps", "last")


def _finite_window(sensor: str, values: np.ndarray, stamps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The window without its non-finite points: a corrupt compact mirror (bytes of the
    right length that are not the window's numbers) is read as far as it can be, like JSON
    entries that are not points; the caller drops it and the next append rebuilds it."""
    keep = np.isfinite(values) & np.isfinite(stamps)
    _log.warning(
        "the compact mirror of %s held %d unreadable numbers: dropped, rebuilt from the window list",
        sensor, int(len(values) - keep.sum()),
    )  # fmt: skip
    return values[keep], stamps[keep]


def _check_input(
    keys: AnomalyRedisKeys, sensor: str, values: np.ndarray, timestamps: np.ndarray, known: Any = ()
) -> None:
    """Bad input raises before anything is appended: Redis keeps only what was scored. A
    sensor in ``known`` (whose keys were made: its name was checked then) is not checked again."""
    if type(sensor) is not str or sensor not in known:
        keys.sensor_part(sensor)
    # the ufuncs themselves (ndarray.all() goes through a Python wrapper): half the time
    if _ALL(_FINITE(values)) and _ALL(_FINITE(timestamps)):
        return
    finite = np.isfinite(values)
    if not finite.all():
        i = int(np.argmin(finite))
        raise ValueError(f"values[{i}]: expected a finite number, got {values[i]}")
    if not np.isfinite(timestamps).all():
        raise ValueError("timestamps: expected finite numbers")


def _live_from(state: Any, position: int, min_samples: int) -> int | None:
    """The sensor's point count from which its points are past the warm-up, for an ensemble
    ``state`` at the sensor's count ``position`` (one rebuilt from a window learned fewer
    points than that: its own count is shifted); None while its likelihoods are not live."""
    own = state.live_from
    if own is None:
        return None
    return max(min_samples, own + position - min(position, state.seen))


_ALL, _FINITE = np.logical_and.reduce, np.isfinite


def _text(raw: Any) -> str:
    """A reply's field as text (a client with or without decode_responses)."""
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _single(value: float, timestamp: float, out: tuple) -> tuple:
    is_anomaly, scores, deviations, expected, counts, _alert_scores = out
    return (value, timestamp, bool(is_anomaly[0]), float(scores[0]), float(deviations[0]),
            float(expected[0]), int(counts[0]))  # fmt: skip
