"""Recent alerts in memory: numbered, bounded, and pushed to SSE subscribers.

Detection may run in any thread (the detector calls its listeners in the
detecting thread, and large batches run in worker threads), so publishing only
takes a lock and wakes subscribers with ``loop.call_soon_threadsafe``; each
subscriber then reads what it has not seen from the buffer. A reconnecting
client gives the last id it saw and receives what followed, as long as it is
still in the buffer.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from anomaly_detection.redis.alerts import severity_of

__all__ = ["AlertHub", "severity_of"]


class AlertHub:
    """A bounded, thread-safe log of alerts with increasing integer ids.

    Parameters
    ----------
    capacity : int
        How many recent alerts are kept (older ones are dropped).
    """

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity: expected >= 1, got {capacity}")
        self.capacity = capacity
        self._alerts: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._next_id = 1
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.total = 0

    def publish(self, alert: Mapping[str, Any]) -> dict[str, Any]:
        """Number ``alert``, keep it and wake the subscribers; returns the stored dict."""
        with self._lock:
            stored = {"id": self._next_id, "received_at": time.time(), **alert}
            self._next_id += 1
            self._alerts.append(stored)
            self.total += 1
            waiters = list(self._waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # noqa: PERF203 - the subscriber's loop is closed
                self._waiters.discard((loop, event))
        return stored

    @property
    def last_id(self) -> int:
        with self._lock:
            return self._next_id - 1

    def since(self, last_id: int, limit: int | None = None) -> list[dict[str, Any]]:
        """Alerts with id > ``last_id``, oldest first."""
        with self._lock:
            if not self._alerts or self._alerts[-1]["id"] <= last_id:
                return []
            first = self._alerts[0]["id"]
            start = max(0, last_id + 1 - first)
            items = [self._alerts[i] for i in range(start, len(self._alerts))]
        return items if limit is None else items[:limit]

    def query(
        self,
        sensor: str | None = None,
        start: float | None = None,
        end: float | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Newest first, filtered by sensor and by the point's timestamp in [start, end]."""
        with self._lock:
            items = list(self._alerts)
        items.reverse()
        if sensor is not None:
            items = [a for a in items if a.get("sensor_name") == sensor]
        if start is not None:
            items = [a for a in items if a.get("timestamp", 0.0) >= start]
        if end is not None:
            items = [a for a in items if a.get("timestamp", 0.0) <= end]
        return len(items), items[offset : offset + limit]

    def subscribe(self) -> asyncio.Event:
        """An event set whenever an alert is published (call from the event loop)."""
        event = asyncio.Event()
        with self._lock:
            self._waiters.add((asyncio.get_running_loop(), event))
        return event

    def unsubscribe(self, event: asyncio.Event) -> None:
        with self._lock:
            self._waiters = {w for w in self._waiters if w[1] is not event}

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._waiters)
