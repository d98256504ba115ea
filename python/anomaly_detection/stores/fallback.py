"""Where the shared store detects while Redis is down: an embedded store and the buffer
of accepted points, written back in order when Redis answers again."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from typing import Any, NamedTuple

import numpy as np

from anomaly_detection.errors import StoreUnavailableError
from anomaly_detection.stores.checkpoints import EnsembleCheckpoints
from anomaly_detection.stores.embedded import EmbeddedStore

__all__ = ["ANOMALY", "SENT", "Fallback", "PointBuffer", "WriteBack", "plan_write_back"]

# The store's logger: these warnings are part of what its users watch.
_log = logging.getLogger("anomaly_detection.stores.redis")


_POINT = np.dtype(
    [("sensor", "<u4"), ("seq", "<u8"), ("value", "<f8"), ("timestamp", "<f8"), ("flags", "u1")]
)

#: ``flags`` of a buffered point: the fallback flagged it as an anomaly.
ANOMALY = 1
#: ``flags`` of a buffered point: its call's append was sent to Redis (it failed, yet it may
#: have run): the call is written back alone, with its own sequence number.
SENT = 2


class PointBuffer:
    """The accepted points of calls not yet in Redis, in order: 29 bytes a point (sensor
    number, sequence number of its call, value, timestamp, flags) in chunks of 8,192 points,
    and one name per sensor. A call is the run of points with one sensor and sequence number."""

    CHUNK = 8192

    def __init__(self) -> None:
        self._chunks: deque[np.ndarray] = deque()
        self._head = 0  # read position in the first chunk
        self._tail = self.CHUNK  # write position in the last chunk (full: none yet)
        self._ids: dict[str, int] = {}
        self._names: list[str] = []
        self.points = 0

    def append(
        self,
        sensor: str,
        values: np.ndarray,
        timestamps: np.ndarray,
        seq: int,
        flags: np.ndarray | int = 0,
    ) -> None:
        sensor_id = self._ids.setdefault(sensor, len(self._ids))
        if sensor_id == len(self._names):
            self._names.append(sensor)
        done = 0
        while done < len(values):
            if self._tail == self.CHUNK:
                self._chunks.append(np.empty(self.CHUNK, _POINT))
                self._tail = 0
            take = min(self.CHUNK - self._tail, len(values) - done)
            rows = self._chunks[-1][self._tail : self._tail + take]
            rows["sensor"], rows["seq"] = sensor_id, seq
            rows["value"], rows["timestamp"] = values[done : done + take], timestamps[done : done + take]
            rows["flags"] = flags if np.ndim(flags) == 0 else flags[done : done + take]
            self._tail += take
            done += take
        self.points += len(values)

    def _rows(self):
        for i, chunk in enumerate(self._chunks):
            start = self._head if i == 0 else 0
            stop = self._tail if i == len(self._chunks) - 1 else self.CHUNK
            yield chunk[start:stop]

    def head(self) -> tuple[str, np.ndarray, np.ndarray, int] | None:
        """The oldest call (sensor, values, timestamps, sequence number), or None."""
        if not self.points:
            return None
        parts = []
        first = None
        for rows in self._rows():
            if first is None:
                first = rows[0]
            same = (rows["sensor"] == first["sensor"]) & (rows["seq"] == first["seq"])
            run = len(rows) if same.all() else int(np.argmin(same))
            parts.append(rows[:run])
            if run < len(rows):
                break
        call = np.concatenate(parts)
        return (
            self._names[int(first["sensor"])],
            call["value"].copy(),
            call["timestamp"].copy(),
            int(first["seq"]),
        )

    def take(self, n: int) -> np.ndarray:
        """A copy of the oldest ``n`` points (all if fewer), extended to the end of the last
        call they reach: a call is never cut."""
        parts, got = [], 0
        last = None
        for rows in self._rows():
            if got < n:
                part = rows[: n - got]
                parts.append(part)
                got += len(part)
                if len(part) < len(rows) or got == n:
                    last = part[-1]
                    rest = rows[len(part) :]
                    same = (rest["sensor"] == last["sensor"]) & (rest["seq"] == last["seq"])
                    run = len(rest) if same.all() else int(np.argmin(same))
                    parts.append(rest[:run])
                    if run < len(rest):
                        break
            else:  # the last call goes on in the next chunk
                same = (rows["sensor"] == last["sensor"]) & (rows["seq"] == last["seq"])
                run = len(rows) if same.all() else int(np.argmin(same))
                parts.append(rows[:run])
                if run < len(rows):
                    break
        return np.concatenate(parts) if parts else np.empty(0, _POINT)

    def name(self, sensor_id: int) -> str:
        """The sensor of a buffered point's ``sensor`` number."""
        return self._names[sensor_id]

    def pop(self, n: int) -> None:
        """Drop the oldest ``n`` points."""
        self.points -= n
        while n:
            stop = self._tail if len(self._chunks) == 1 else self.CHUNK
            take = min(n, stop - self._head)
            self._head += take
            n -= take
            if self._head == stop:
                self._chunks.popleft()
                self._head = 0
                if not self._chunks:
                    self._tail = self.CHUNK
        if not self.points:  # names of sensors no longer buffered are forgotten
            self._ids.clear()
            self._names.clear()

    def __len__(self) -> int:
        return self.points


class Fallback:
    """The degraded mode of a :class:`~anomaly_detection.stores.redis.RedisStore`.

    Parameters
    ----------
    settings : Settings
        ``fallback_policy``, ``fallback_buffer_size`` and ``max_sensors`` (how many sensors'
        last windows are kept for a warm fallback).
    config : _core.DetectorConfig
    checkpoints : EnsembleCheckpoints, optional
        The ensemble's state cache: the embedded store goes on from this process's last
        state of each sensor, not from scratch. The other methods go on from the last
        window this process read and wrote (:meth:`remember`): a warm fallback.
    """

    #: Sensors whose last window is kept for a warm fallback when ``max_sensors`` is 0.
    DEFAULT_WINDOWS_KEPT = 10_000
    #: ... and fewer where the windows remembered (8 bytes a point and a time, the window before a
    #: call and the call's points) would hold more than this many bytes (as the Redis point
    #: path's POINT_KEPT_BYTES): least recently used first.
    WINDOWS_KEPT_BYTES = 256 * 2**20

    def __init__(self, settings: Any, config: Any, checkpoints: EnsembleCheckpoints | None) -> None:
        self.settings = settings
        self._config = config
        self.store = EmbeddedStore(config)
        self.checkpoints = checkpoints
        self._pending = PointBuffer()
        # (sensor, sequence number, anomalies) of calls Redis stored whose count failed
        self._counts: list[tuple[str, int, int]] = []
        self.degraded = False
        self._carried_over: set[str] = set()  # sensors restored into the embedded store
        # sensor -> (window values, window timestamps, points seen), least recently used first
        self._windows: OrderedDict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]] = (
            OrderedDict()
        )
        self._windows_kept = settings.max_sensors or self.DEFAULT_WINDOWS_KEPT
        self._windows_bytes = 0  # what the windows remembered hold (_entry_bytes)
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one writer of the buffered points at a time
        self._plan: tuple[int, list[WriteBack]] | None = None  # the appends being written back
        #: Points written back since the degraded mode began (with ``buffered_points``: the progress).
        self.written_back_points = 0

    def after_fork_in_child(self) -> None:
        """In a forked child: the breaker closed, nothing buffered, new locks. The points and
        counts buffered before the fork are the parent's to write back (the child would store
        them a second time); the windows kept for a warm fallback stay (they are only a start)."""
        self.store = EmbeddedStore(self._config)
        self._pending = PointBuffer()
        self._counts = []
        self.degraded = False
        self._carried_over = set()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._plan = None
        self.written_back_points = 0

    def remember(
        self, sensor: str, before_values: np.ndarray, before_stamps: np.ndarray, values: np.ndarray,
        timestamps: np.ndarray, seen: int,
    ) -> None:  # fmt: skip
        """The sensor's window and point count after a call that Redis stored (the window
        before the call, the call's points, the count after them): where the embedded store
        starts from for this sensor if Redis fails (the non-ensemble methods; about 16 bytes a
        window point, for the last ``max_sensors`` or 10,000 sensors used, fewer where that would
        be more than WINDOWS_KEPT_BYTES). Joined only when
        used; what is kept is at most the window, and a copy: a call's points beyond it are
        dropped (a batch of a million points is not kept alive for the sake of its last hundred),
        and an array may be the caller's own, which it may fill again for its next call."""
        w = self.settings.window_size
        if isinstance(values, np.ndarray):
            if len(values) >= w:
                before_values, before_stamps = before_values[:0], before_stamps[:0]
            values, timestamps = values[-w:].copy(), np.array(timestamps[-w:], dtype=np.float64)
        entry = (before_values, before_stamps, values, timestamps, seen)
        with self._lock:
            old = self._windows.pop(sensor, None)
            if old is not None:
                self._windows_bytes -= _entry_bytes(old)
            self._windows[sensor] = entry
            self._windows_bytes += _entry_bytes(entry)
            while len(self._windows) > 1 and (
                len(self._windows) > self._windows_kept or self._windows_bytes > self.WINDOWS_KEPT_BYTES
            ):
                self._windows_bytes -= _entry_bytes(self._windows.popitem(last=False)[1])

    def degrade(self, exc: BaseException) -> None:
        """Enter the degraded mode after ``exc`` (raise with the strict policy)."""
        if self.settings.fallback_policy == "strict":
            raise StoreUnavailableError(f"Redis is unavailable: {exc}") from exc
        with self._lock:
            if not self.degraded:
                _log.warning("Redis unavailable (%s): detecting on the embedded store, buffering points", exc)
                self.written_back_points = 0
            self.degraded = True

    def detect_batch(
        self, sensor: str, values: np.ndarray, timestamps: np.ndarray, seq: int, sent: bool = False
    ) -> Any:
        """Score on the embedded store and buffer the points with the sequence number of their
        append (raise when the buffer is full). ``sent``: the append was sent to Redis and
        failed (it may have run all the same); this enters the degraded mode. Otherwise,
        when the breaker has closed since the caller looked (the write-back finished),
        returns None and changes nothing: the caller appends to Redis itself."""
        with self._lock:
            if not sent and not self.degraded:
                return None
            if self.buffered_points + len(values) > self.settings.fallback_buffer_size:
                raise StoreUnavailableError(
                    f"Redis is unavailable and the fallback buffer is full "
                    f"({self.buffered_points} of {self.settings.fallback_buffer_size} points)"
                )
            if not self.degraded:  # the write-back finished between the failure and now
                self.written_back_points = 0
            self.degraded = True
            if self.checkpoints is not None and sensor not in self._carried_over:
                # The state is taken out of the cache while it is copied (another thread's
                # call could otherwise advance it at the same time).
                cached = self.checkpoints.take(sensor)
                try:
                    if cached is not None:
                        self.store.registry.restore(
                            sensor,
                            cached.values,
                            cached.timestamps,
                            cached.position,
                            cached.state,
                            cached.position,
                        )
                finally:
                    self.checkpoints.keep(sensor, cached)
                self._carried_over.add(sensor)
            elif sensor not in self._carried_over:
                last = self._windows.get(sensor)
                if last is not None:
                    w = self.settings.window_size
                    before_values, before_stamps, points, stamps, seen = last
                    window_values = np.concatenate((before_values, points))[-w:]
                    self.store.registry.restore(
                        sensor, window_values, np.concatenate((before_stamps, stamps))[-w:], seen
                    )
                self._carried_over.add(sensor)
            result = self.store.detect_batch(sensor, values, timestamps)
            flags = np.where(result[0], np.uint8(ANOMALY), np.uint8(0))
            if sent:
                flags |= SENT
            self._pending.append(sensor, values, timestamps, seq, flags)
        return result

    def count_later(self, sensor: str, seq: int, anomalies: int) -> None:
        """A call Redis stored but whose count of ``anomalies`` failed (Redis went down in
        between): the count is written back before the buffered points, with the call's
        sequence number (``COUNT_ONCE``: once, even if the failed count ran after all). Enters
        the degraded mode, like a failed append."""
        with self._lock:
            if not self.degraded:
                self.written_back_points = 0
            self.degraded = True
            self._counts.append((sensor, seq, anomalies))

    def next_counts(self) -> list[tuple[str, int, int]]:
        """The counts of :meth:`count_later` not yet written back, oldest first (each older
        than any buffered call of its sensor)."""
        with self._lock:
            return list(self._counts)

    def counted(self, n: int) -> None:
        """The first ``n`` of :meth:`next_counts` are in Redis: drop them."""
        with self._lock:
            del self._counts[:n]

    @property
    def buffered_points(self) -> int:
        """Accepted points not yet in Redis."""
        return self._pending.points

    @property
    def writing_back(self) -> bool:
        """Whether a write-back is running now."""
        return self._flush_lock.locked()

    def begin_write_back(self) -> bool:
        """Whether this caller may write the buffered points back now (nobody else is); if
        True, it must call :meth:`end_write_back`."""
        return self.degraded and self._flush_lock.acquire(blocking=False)

    def end_write_back(self, complete: bool) -> bool:
        """Release the write-back; with ``complete`` (the writer found the buffer empty) leave
        the degraded mode, unless a call buffered points since: they wait for the next probe.
        Returns whether the degraded mode ended."""
        self._flush_lock.release()
        with self._lock:
            if not complete or self._pending or self._counts:
                return False
            self.degraded = False
            self.store.registry.clear()
            self._carried_over.clear()
        _log.warning("Redis is back: buffered points written back")
        return True

    def next_chunks(self, limit: int) -> tuple[int, list[WriteBack]] | None:
        """The oldest buffered points (about ``limit``, never cutting a call) as appends to
        send: (how many points, the appends), or None when nothing is buffered.

        The same points come back as the same appends until :meth:`written_back` drops them,
        so that an append retried after a failure is the same append (the script stores a
        repeat nothing, and an older one neither): see :func:`plan_write_back`."""
        with self._lock:
            if self._plan is None:
                if not self._pending:
                    return None
                rows = self._pending.take(limit)
                self._plan = (len(rows), plan_write_back(rows, self._pending.name, limit))
            return self._plan

    def written_back(self, n: int) -> None:
        """The points of the last :meth:`next_chunks` (``n``) are in Redis: drop them."""
        with self._lock:
            self._pending.pop(n)
            self._plan = None
            self.written_back_points += n


class WriteBack(NamedTuple):
    """One append of the write-back: buffered calls of one sensor, sent as one."""

    sensor: str
    values: np.ndarray
    timestamps: np.ndarray
    seq: int  #: the sequence number of its last call
    anomalies: int  #: how many of its points the fallback flagged


def plan_write_back(rows: np.ndarray, name: Any, limit: int) -> list[WriteBack]:
    """Buffered points (in order) as appends of at most ``limit`` points each (a call larger
    than that is one append: a call is never cut), grouped by sensor in each sensor's order.

    An append carries the sequence number of its last call, so calls that never reached
    Redis are stored once and in order by the exactly-once script. A call whose own append
    was sent (:data:`SENT`: it failed, but may have run) is an append of its own, with its
    own sequence number: if it ran, it is a repeat and stores nothing the second time.
    """
    if not len(rows):
        return []
    out: list[WriteBack] = []
    ids, first = np.unique(rows["sensor"], return_index=True)
    for sensor_id in ids[np.argsort(first)]:
        mine = rows[rows["sensor"] == sensor_id]
        seqs = mine["seq"]
        starts = np.flatnonzero(np.r_[True, seqs[1:] != seqs[:-1]])
        ends = np.r_[starts[1:], len(mine)]
        sent = (mine["flags"][starts] & SENT) != 0
        lo = hi = 0  # the append being built: mine[lo:hi]

        def emit(a: int, b: int, part: np.ndarray = mine, sid: int = int(sensor_id)) -> None:
            call = part[a:b]
            out.append(
                WriteBack(
                    name(sid),
                    call["value"].copy(),
                    call["timestamp"].copy(),
                    int(call["seq"][-1]),
                    int(np.count_nonzero(call["flags"] & ANOMALY)),
                )
            )

        for start, end, was_sent in zip(starts.tolist(), ends.tolist(), sent.tolist()):
            if hi > lo and (was_sent or end - lo > limit):
                emit(lo, hi)
                lo = start
            if was_sent:
                emit(start, end)
                lo = end
            hi = end
        if hi > lo:
            emit(lo, hi)
    return out


def _entry_bytes(entry: tuple) -> int:
    """Bytes of a remembered window's points (8 a value, 8 a time)."""
    return 8 * (len(entry[0]) + len(entry[1]) + len(entry[2]) + len(entry[3]))
