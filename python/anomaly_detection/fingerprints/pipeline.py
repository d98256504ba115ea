"""The aggregator and the detector wired together, as the HTTP service uses them."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from anomaly_detection.fingerprints.aggregator import Fingerprint, FingerprintAggregator
from anomaly_detection.fingerprints.detector import FingerprintDetector, FingerprintScore

__all__ = ["FingerprintPipeline"]


class FingerprintPipeline:
    """Records in (``add(kind, body)``, a collector sink), scored fingerprints out.

    Parameters
    ----------
    aggregator : FingerprintAggregator, optional
        Default: 5-s intervals (with ``redis_client`` and ``settings``, streamed to Redis).
    detector : FingerprintDetector, optional
        Default: warm-up 60 fingerprints, refit every 60.
    history : int
        How many scored fingerprints :meth:`recent` keeps.
    on_alert : callable, optional
        Set as the detector's ``on_alert`` when the detector is created here.
    redis_client, settings
        Passed to the default aggregator and detector.
    auto_flush : bool
        Whether a service should also close intervals on its own clock (``flush()`` every
        second); False leaves it to the events' timestamps and explicit :meth:`flush` calls.
    """

    def __init__(
        self,
        aggregator: FingerprintAggregator | None = None,
        detector: FingerprintDetector | None = None,
        *,
        history: int = 1_000,
        on_alert: Callable[[dict[str, Any]], Any] | None = None,
        redis_client: Any = None,
        settings: Any = None,
        auto_flush: bool = True,
    ) -> None:
        self.auto_flush = auto_flush
        self.rejected = 0
        self.aggregator = aggregator or FingerprintAggregator(redis_client=redis_client, settings=settings)
        self.detector = detector or FingerprintDetector(
            on_alert=on_alert, redis_client=redis_client, settings=settings
        )
        self._scored: deque[FingerprintScore] = deque(maxlen=history)
        self._lock = threading.Lock()
        self.aggregator.add_listener(self._on_fingerprint)

    def _on_fingerprint(self, fingerprint: Fingerprint) -> None:
        result = self.detector.update(fingerprint)
        with self._lock:
            self._scored.append(result)

    def add(self, kind: str, body: Any) -> list[Fingerprint]:
        """Fold one collector record (the ``Collector.add_sink`` signature). A record the
        aggregator refuses (say a status code outside 100-599, which the collector accepts)
        is skipped and counted in ``rejected``, so the collector's answer does not change."""
        try:
            return self.aggregator.add(kind, body)
        except ValueError:
            self.rejected += 1
            return []

    def flush(self, now: float | None = None) -> list[Fingerprint]:
        """Close the intervals ended by ``now`` (and score them)."""
        return self.aggregator.flush(now)

    def recent(self, limit: int = 100) -> list[FingerprintScore]:
        """The last ``limit`` scored fingerprints, oldest first."""
        with self._lock:
            items = list(self._scored)
        return items[-limit:] if limit > 0 else []

    def status(self) -> dict[str, Any]:
        agg = self.aggregator
        return {
            "interval": agg.interval,
            "open_interval": agg.open_interval,
            "emitted": agg.emitted,
            "late_events": agg.late,
            "rejected_records": self.rejected,
            "stream": agg.stream_key,
            "stream_errors": agg.stream_errors,
            "detector": self.detector.status(),
        }
