"""The default store: the C++ registry of ring buffers, in this process."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from anomaly_detection import _core
from anomaly_detection._fork import hold_across_fork, on_fork_in_child
from anomaly_detection.errors import SensorLimitError
from anomaly_detection.stores.base import SensorWindow

__all__ = ["EmbeddedStore", "config_from_settings"]

_EMPTY = np.empty(0, dtype=np.float64)


def config_from_settings(settings: Any) -> _core.DetectorConfig:
    """The core's DetectorConfig for a Settings object (``Settings.to_detector_config``)."""
    return settings.to_detector_config()


class EmbeddedStore:
    """Thread-safe, in-process sensor windows and scoring (no server needed).

    With ``ttl`` (seconds), a sensor that takes no point for ``ttl`` is forgotten, as
    its Redis keys would expire. The check is lazy, so that the per-point path costs
    nothing more: at most every ``ttl / 4``, on any operation but ``detect`` (batches,
    reads, ``sensors()``, ``health()``), the store notes each sensor's point count and
    forgets those whose count has not moved for ``ttl`` or more (gone after between
    ``ttl`` and ``1.5 * ttl`` of idleness); and when a new sensor meets ``max_sensors``,
    it looks at once (:meth:`make_room`). No thread.
    """

    kind = "embedded"
    #: ``detect_batch`` refuses non-finite values and timestamps itself (the C++ kernels
    #: check each block as they reach it, and a bad batch changes nothing): the facade
    #: need not check them first.
    checks_finite = True
    #: So does ``detect_many``, every sensor's before any sensor changes (the registry checks
    #: them on its worker threads first): the facade need not make a serial pass of its own.
    checks_finite_many = True

    def __init__(
        self,
        config: _core.DetectorConfig | None = None,
        registry: _core.SensorRegistry | None = None,
        ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if registry is None:
            if config is None:
                raise ValueError("EmbeddedStore needs a config or a registry")
            registry = _core.SensorRegistry(config)
        if ttl is not None and not ttl > 0:
            raise ValueError(f"ttl: expected a positive number of seconds or None, got {ttl!r}")
        self.registry = registry
        hold_across_fork(registry)  # a fork waits for calls in progress, and the child's start free
        on_fork_in_child(self)
        self.ttl = ttl
        self._clock = clock
        # sensor -> (points seen, when that count was first observed)
        self._seen: dict[str, tuple[int, float]] = {}
        self._next_sweep = clock() + ttl / 4 if ttl is not None else math.inf
        self._sweep_lock = threading.Lock()
        # The registry's own method: one Python frame less on the per-point path.
        self.detect = registry.detect

    def _after_fork_in_child(self) -> None:
        # Another thread of the parent may have been sweeping at the fork.
        self._sweep_lock = threading.Lock()

    def make_room(self) -> bool:
        """Forget the sensors idle for ``ttl`` now (at ``max_sensors``); whether any went."""
        return self.expire_idle(force=True) > 0

    def expire_idle(self, force: bool = False) -> int:
        """Forget the sensors idle for ``ttl`` or more, when a look is due (or ``force``);
        returns how many went."""
        now = self._clock()
        if self.ttl is None or (now < self._next_sweep and not force):
            return 0
        with self._sweep_lock:
            if now < self._next_sweep and not force:
                return 0
            self._next_sweep = now + self.ttl / 4
            seen: dict[str, tuple[int, float]] = {}
            expired = 0
            for sensor in self.registry.sensors():
                summary = self.registry.summary(sensor)
                if summary is None:
                    continue
                count = summary["points_seen"]
                before = self._seen.get(sensor)
                if before is None or before[0] != count:
                    seen[sensor] = (count, now)
                elif now - before[1] >= self.ttl:
                    expired += self.registry.reset(sensor)
                else:
                    seen[sensor] = before
            self._seen = seen
            return expired

    def detect_batch(self, sensor: str, values: np.ndarray, timestamps: np.ndarray):
        self.expire_idle()
        try:
            return self.registry.detect_batch(sensor, values, timestamps)
        except SensorLimitError:
            if not self.make_room():
                raise
            return self.registry.detect_batch(sensor, values, timestamps)

    def detect_many(
        self, sensors: list[str], values: list[np.ndarray], timestamps: list[np.ndarray], threads: int = 0
    ) -> list[tuple]:
        return self.registry.detect_many(sensors, values, timestamps, threads)

    def window(self, sensor: str) -> SensorWindow:
        self.expire_idle()
        found = self.registry.window(sensor)
        return SensorWindow(*found) if found is not None else SensorWindow(_EMPTY.copy(), _EMPTY.copy())

    def summary(self, sensor: str) -> dict[str, Any] | None:
        self.expire_idle()
        return self.registry.summary(sensor)

    def progress(self, sensor: str, fresh: bool = False) -> tuple[int, int | None]:
        """(points seen, the point count from which the sensor's points are past the warm-up:
        ``min_samples``, for the ensemble no earlier than its likelihoods went live, None while
        they are not); (0, None) for an unknown sensor. No window is read (``fresh``: always so)."""
        found = self.registry.progress(sensor)
        return found if found is not None else (0, None)

    def reset(self, sensor: str) -> bool:
        return self.registry.reset(sensor)

    def sensors(self) -> list[str]:
        self.expire_idle()
        return sorted(self.registry.sensors())

    def health(self) -> dict[str, Any]:
        self.expire_idle()
        return {"store": self.kind, "degraded": False, "sensors": len(self.registry)}

    def to_bytes(self) -> bytes:
        return self.registry.to_bytes()
