"""The statistical detector with River's streaming API (``learn_one``/``score_one``)."""

from __future__ import annotations

import copy
import math
from time import time as _now
from typing import TYPE_CHECKING, Any

import numpy as np

from anomaly_detection import _core

if TYPE_CHECKING:
    from anomaly_detection.core.detector import StatisticalAnomalyDetector

try:
    from river.base import AnomalyDetector as _RiverAnomalyDetector
except ImportError:  # River is optional: without it the same API stands alone
    _RiverAnomalyDetector = object

__all__ = ["RiverAdapter"]


class RiverAdapter(_RiverAnomalyDetector):
    """A :class:`StatisticalAnomalyDetector` as a River anomaly detector.

    Every key of an observation ``x = {sensor: value}`` is a sensor of the wrapped
    detector: ``learn_one(x)`` adds each value to its sensor's window (no alerts
    are raised: River learns, it does not alarm) and ``score_one(x)`` returns the
    highest score among the sensors of ``x`` without learning anything (a sensor
    with no window yet scores 0). Higher means more anomalous, as in River.

    ``score_one`` equals the score ``detect`` would give the point, for every
    method: z-score, MAD and IQR score against the window; EWMA, CUSUM and the
    ensemble carry state beyond the window, so on the embedded store they score
    on a copy of the registry (its size in bytes per call: fine for a few
    sensors, costly for thousands). On Redis every method scores against the
    window, as the Redis store rebuilds EWMA and CUSUM; only the ensemble then
    differs from ``detect``, which continues from its checkpoint.

    Examples
    --------
    >>> from anomaly_detection import StatisticalAnomalyDetector
    >>> model = StatisticalAnomalyDetector(detection_method="zscore", window_size=20, min_samples=5).as_river()
    >>> for t in range(30):
    ...     model.learn_one({"cpu": 50.0 + t % 3}, t=float(t))
    >>> model.score_one({"cpu": 51.0}) < model.score_one({"cpu": 90.0})
    True
    """

    def __init__(self, detector: StatisticalAnomalyDetector | None = None) -> None:
        if detector is None:
            from anomaly_detection.core.detector import StatisticalAnomalyDetector

            detector = StatisticalAnomalyDetector()
        self.detector = detector
        self._config = detector.settings.to_detector_config()

    @property
    def _supervised(self) -> bool:
        return False

    def clone(
        self, new_params: dict[str, Any] | None = None, include_attributes: bool = False
    ) -> RiverAdapter:
        """A fresh adapter over a fresh detector with the same settings (River's ``clone``:
        nothing learned is shared); ``include_attributes=True`` copies what was learned."""
        if new_params and set(new_params) != {"detector"}:
            raise ValueError(f"clone: unknown parameters {sorted(set(new_params) - {'detector'})}")
        if new_params:
            return type(self)(new_params["detector"])
        detector = self.detector
        if include_attributes:
            return type(self)(copy.deepcopy(detector))
        return type(self)(type(detector)(detector.settings, detector.redis_client))

    def __getstate__(self) -> dict[str, Any]:
        return {"detector": self.detector}  # the core's config is rebuilt from its settings

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["detector"])

    def learn_one(self, x: dict[str, float], t: float | None = None) -> None:
        """Add each value of ``x`` to the window of the sensor named by its key, at
        time ``t`` (epoch seconds; default now)."""
        timestamp = _now() if t is None else float(t)
        for sensor, value in x.items():
            self.detector.prime(sensor, [value], [timestamp])

    def score_one(self, x: dict[str, float], t: float | None = None) -> float:
        """The highest score among the sensors of ``x``; nothing is learned."""
        timestamp = _now() if t is None else float(t)
        best = 0.0
        for sensor, value in x.items():
            window = self.detector.get_window(sensor)
            if len(window.values) == 0:
                continue
            point = float(value)
            if not math.isfinite(point):
                raise ValueError(f"x[{sensor!r}]: expected a finite number, got {value!r}")
            registry = getattr(self.detector.store, "registry", None)
            if registry is not None and self._config.method in _STATEFUL:
                scratch = _core.SensorRegistry.from_bytes(registry.to_bytes())
                score = scratch.detect(sensor, point, timestamp)[3]
            else:
                seen = self.detector.stats(sensor)["points_seen"]
                scores = _core.detect_after_window(
                    self._config,
                    window.values,
                    window.timestamps,
                    seen,
                    np.array([point]),
                    np.array([timestamp]),
                )[1]
                score = float(scores[0])
            best = max(best, score)
        return best


#: Methods whose state reaches beyond the window (the embedded registry holds it).
_STATEFUL = frozenset({"ewma", "cusum", "ensemble"})
