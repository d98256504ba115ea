"""Where the shared store detects while Redis is down: an embedded store and the buffer
of accepted points, written back in order when Redis answers again."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from typing import Any

import numpy as np

from anomaly_detection.errors import StoreUnavailableError
from anomaly_detection.stores.checkpoints import EnsembleCheckpoints
from anomaly_detection.stores.embedded import EmbeddedStore

__all__ = ["Fallback"]

# The store's logger: these warnings are part of what its users watch.
_log = logging.getLogger("anomaly_detection.stores.redis")


class Fallback:
    """The degraded mode of a :class:`~anomaly_detection.stores.redis.RedisStore`.

    Parameters
    ----------
    settings : Settings
        ``fallback_policy`` and ``fallback_buffer_size``.
    config : _core.DetectorConfig
    checkpoints : EnsembleCheckpoints, optional
        The ensemble's state cache: the embedded store goes on from this process's last
        state of each sensor, not from scratch. The other methods go on from the last
        window this process read and wrote (:meth:`remember`): a warm fallback.
    """

    #: Sensors whose last window is kept for a warm fallback when ``max_sensors`` is 0.
    DEFAULT_WINDOWS_KEPT = 10_000

    def __init__(self, settings: Any, config: Any, checkpoints: EnsembleCheckpoints | None) -> None:
        self.settings = settings
        self.store = EmbeddedStore(config)
        self.checkpoints = checkpoints
        self._pending: deque[tuple[str, np.ndarray, np.ndarray, int]] = deque()
        self.buffered_points = 0
        self.degraded = False
        self._carried_over: set[str] = set()  # sensors restored into the embedded store
        # sensor -> (window values, window timestamps, points seen), least recently used first
        self._windows: OrderedDict[str, tuple[np.ndarray, np.ndarray, int]] = OrderedDict()
        self._windows_kept = settings.max_sensors or self.DEFAULT_WINDOWS_KEPT
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one writer of the buffered points at a time

    def remember(self, sensor: str, values: np.ndarray, timestamps: np.ndarray, seen: int) -> None:
        """The sensor's window and point count after a call that Redis stored: where the
        embedded store starts from for this sensor if Redis fails (the non-ensemble methods;
        about 16 bytes a window point, for the last ``max_sensors`` or 10,000 sensors used)."""
        with self._lock:
            self._windows[sensor] = (values, timestamps, seen)
            self._windows.move_to_end(sensor)
            while len(self._windows) > self._windows_kept:
                self._windows.popitem(last=False)

    def degrade(self, exc: BaseException) -> None:
        """Enter the degraded mode after ``exc`` (raise with the strict policy)."""
        if self.settings.fallback_policy == "strict":
            raise StoreUnavailableError(f"Redis is unavailable: {exc}") from exc
        with self._lock:
            if not self.degraded:
                _log.warning("Redis unavailable (%s): detecting on the embedded store, buffering points", exc)
            self.degraded = True

    def detect_batch(self, sensor: str, values: np.ndarray, timestamps: np.ndarray, seq: int) -> Any:
        """Score on the embedded store and buffer the points with the sequence number of their
        append (raise when the buffer is full)."""
        with self._lock:
            if self.buffered_points + len(values) > self.settings.fallback_buffer_size:
                raise StoreUnavailableError(
                    f"Redis is unavailable and the fallback buffer is full "
                    f"({self.buffered_points} of {self.settings.fallback_buffer_size} points)"
                )
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
                    self.store.registry.restore(sensor, last[0], last[1], last[2])
                self._carried_over.add(sensor)
            result = self.store.detect_batch(sensor, values, timestamps)
            self._pending.append((sensor, values.copy(), timestamps.copy(), seq))
            self.buffered_points += len(values)
        return result

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
            if not complete or self._pending:
                return False
            self.degraded = False
            self.store.registry.clear()
            self._carried_over.clear()
        _log.warning("Redis is back: buffered points written back")
        return True

    def next_buffered(self) -> tuple[str, np.ndarray, np.ndarray, int] | None:
        """The oldest buffered call (sensor, values, timestamps, sequence number), or None."""
        return self._pending[0] if self._pending else None

    def written_back(self) -> None:
        """The oldest buffered call is stored in Redis: drop it."""
        with self._lock:
            _, values, _, _ = self._pending.popleft()
            self.buffered_points -= len(values)
