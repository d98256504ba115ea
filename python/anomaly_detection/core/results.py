"""Results of detection: one point (AnomalyResult) and a batch (BatchResult)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from anomaly_detection import _core

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["AnomalyResult", "BatchResult"]


@dataclass(slots=True)
class AnomalyResult:
    """The verdict on one point.

    Attributes
    ----------
    score : float
        In [0, 1], grows with how unusual the point is; for the z-type methods it is
        one minus the two-sided tail probability of the deviation.
    deviation : float
        The method's raw statistic (z-score, modified z, IQR distance, EWMA chart
        statistic in sigmas, signed CUSUM sum).
    expected : float
        What the method expected (window mean or median).
    window_count : int
        Number of past points the point was scored against.
    warming_up : bool
        The detector had learned fewer points of this sensor than it needs before it
        flags anything (``min_samples``) or, for the ensemble, before its likelihoods
        score (300 points): the point was scored, but on little history.
    """

    sensor_name: str
    value: float
    timestamp: float
    is_anomaly: bool
    score: float
    deviation: float
    expected: float
    window_count: int
    threshold: float
    method: str
    warming_up: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field: a NaN (from a skipped missing value) or an infinity
        (a deviation whose distance from the mean overflows) is None, as JSON has neither."""
        # _json_number inline (x - x is NaN for NaN and +-inf only), one call less a field: the alerts' path
        return {name: None if isinstance(x := getattr(self, name), float) and x - x != 0.0 else x
                for name in self.__slots__}  # fmt: skip


_new = object.__new__
# The embedded store's ``detect_result`` builds AnomalyResult in C++ (its slots filled
# directly, no ``__init__``), the hot path of ``detect``.
_core._set_point_result_type(AnomalyResult)


def _json_number(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else x


def _json_list(a: np.ndarray) -> list:
    """``a.tolist()``, with None for NaN and infinities (JSON has neither)."""
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        return [None if not math.isfinite(x) else x for x in a.tolist()]
    return a.tolist()


def point_result(
    sensor_name: str, out: tuple, threshold: float, method: str, warming_up: bool
) -> AnomalyResult:
    """``AnomalyResult(sensor_name, *out, threshold, method, warming_up)`` for ``out`` = (value,
    timestamp, is_anomaly, score, deviation, expected, window_count) as the stores return it, in
    half the time of the dataclass ``__init__`` (the hot path of ``detect``)."""
    r = _new(AnomalyResult)
    r.sensor_name = sensor_name
    r.value, r.timestamp, r.is_anomaly, r.score, r.deviation, r.expected, r.window_count = out
    r.threshold = threshold
    r.method = method
    r.warming_up = warming_up
    return r


@dataclass(slots=True)
class BatchResult:
    """The verdicts on a batch of points of one sensor, as NumPy arrays.

    Element ``i`` equals the AnomalyResult that ``detect`` would have returned for
    point ``i`` of the same stream; ``result[i]`` builds that AnomalyResult.
    """

    sensor_name: str
    values: np.ndarray
    timestamps: np.ndarray
    is_anomaly: np.ndarray
    scores: np.ndarray
    deviations: np.ndarray
    expected: np.ndarray
    window_counts: np.ndarray
    threshold: float
    method: str
    #: The scores the flags are raised on: for the ensemble, ``scores`` with its
    #: alarm logic applied (a continuing incident raises no new alarm, and the
    #: ``100`` points after an alarm stay below the threshold); ``scores`` itself for
    #: the other methods. Rank points (ROC, PR, VUS) on ``scores``; count alarms
    #: (NAB) on ``alert_scores``.
    alert_scores: np.ndarray | None = None
    #: Per point, whether the detector was still warming up (see ``AnomalyResult.warming_up``);
    #: all False when not given.
    warming_up: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.alert_scores is None:
            self.alert_scores = self.scores
        if self.warming_up is None:
            self.warming_up = np.zeros(len(self.values), dtype=bool)

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, i: int) -> AnomalyResult:
        return AnomalyResult(
            sensor_name=self.sensor_name,
            value=float(self.values[i]),
            timestamp=float(self.timestamps[i]),
            is_anomaly=bool(self.is_anomaly[i]),
            score=float(self.scores[i]),
            deviation=float(self.deviations[i]),
            expected=float(self.expected[i]),
            threshold=self.threshold,
            method=self.method,
            window_count=int(self.window_counts[i]),
            warming_up=bool(self.warming_up[i]),
        )

    def __iter__(self) -> Iterator[AnomalyResult]:
        return (self[i] for i in range(len(self)))

    @property
    def anomaly_count(self) -> int:
        return int(np.count_nonzero(self.is_anomaly))

    @property
    def anomaly_indices(self) -> np.ndarray:
        """Indices of the flagged points."""
        return np.flatnonzero(self.is_anomaly)

    def anomalies(self) -> list[AnomalyResult]:
        """The flagged points as AnomalyResult objects."""
        return [self[int(i)] for i in self.anomaly_indices]

    def to_pandas(self) -> pd.DataFrame:
        """The batch as a pandas DataFrame, one row a point.

        Indexed by a ``DatetimeIndex`` in UTC named ``timestamp``, built from ``timestamps``
        at microsecond resolution (epoch seconds as float64 hold no finer); columns
        ``value, is_anomaly, score, alert_score, deviation, expected, window_count,
        warming_up``. ``frame.attrs`` holds ``sensor_name``, ``method`` and ``threshold``.
        A value skipped as missing (``missing="skip"``) has NaN in the float columns.
        Needs pandas (``pip install pandas``); the package itself does not.
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "BatchResult.to_pandas needs pandas, which is not installed: pip install pandas"
            ) from None
        micros = np.rint(self.timestamps * 1e6).astype(np.int64).astype("datetime64[us]")
        index = pd.DatetimeIndex(micros, name="timestamp").tz_localize("UTC")
        frame = pd.DataFrame(
            {
                "value": self.values,
                "is_anomaly": self.is_anomaly,
                "score": self.scores,
                "alert_score": self.alert_scores,
                "deviation": self.deviations,
                "expected": self.expected,
                "window_count": self.window_counts,
                "warming_up": self.warming_up,
            },
            index=index,
        )
        frame.attrs.update(sensor_name=self.sensor_name, method=self.method, threshold=self.threshold)
        return frame

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with lists in place of arrays."""
        return {
            "sensor_name": self.sensor_name,
            "method": self.method,
            "threshold": self.threshold,
            "values": _json_list(self.values),
            "timestamps": self.timestamps.tolist(),
            "is_anomaly": self.is_anomaly.tolist(),
            "scores": _json_list(self.scores),
            "alert_scores": _json_list(self.alert_scores),
            "deviations": _json_list(self.deviations),
            "expected": _json_list(self.expected),
            "window_counts": self.window_counts.tolist(),
            "warming_up": self.warming_up.tolist(),
            "anomaly_count": self.anomaly_count,
        }
