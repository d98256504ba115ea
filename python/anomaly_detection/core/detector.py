"""The streaming per-sensor detector: the package's main entry point."""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from time import time as _now
from typing import TYPE_CHECKING, Any

import numpy as np

from anomaly_detection import _core
from anomaly_detection.config.settings import Settings
from anomaly_detection.core.results import AnomalyResult, BatchResult, point_result
from anomaly_detection.core.validation import (
    as_timestamp,
    as_timestamps,
    as_value,
    as_values,
    as_values_with_gaps,
    batch_input,
    check_sensor_name,
)
from anomaly_detection.errors import SensorLimitError
from anomaly_detection.stores.base import SensorStore, SensorWindow
from anomaly_detection.stores.embedded import EmbeddedStore

if TYPE_CHECKING:
    from anomaly_detection.core.river_adapter import RiverAdapter

__all__ = ["StatisticalAnomalyDetector"]

_log = logging.getLogger(__name__)

# The points the ensemble learns before all its detectors score (EnsembleParams::kLearn in
# cpp/include/anomaly_detection/detectors/ensemble.hpp): its results are warming up until then,
# and on series sampled faster than every five minutes until its likelihoods go live (the
# store's ``progress``: 750 points at one minute).
_ENSEMBLE_LEARN = 300

# Batches larger than this run in a worker thread from the async API (the
# native loop releases the GIL, so the event loop keeps serving meanwhile).
_ASYNC_THREAD_MIN = 50_000


class StatisticalAnomalyDetector:
    """Scores each point of each sensor against that sensor's recent window.

    Parameters
    ----------
    settings : Settings, optional
        Method, window size, thresholds, warm-up and store options; defaults to
        ``Settings()`` (the ``ANOMALY_*`` environment variables).
    redis_client : redis.Redis or redis.cluster.RedisCluster, optional
        Keep sensor windows in Redis so that several processes share them; None
        (the default) keeps them in this process (the embedded store).
    **overrides
        Settings fields to override, e.g. ``detection_method="mad"``;
        ``threshold=`` sets the chosen method's threshold. An unknown name
        raises ``TypeError`` naming the closest setting.

    Examples
    --------
    >>> from anomaly_detection import StatisticalAnomalyDetector
    >>> det = StatisticalAnomalyDetector(detection_method="zscore", window_size=50, min_samples=10)
    >>> for t in range(100):
    ...     _ = det.detect("pump-1", 20.0 + 0.1 * (t % 5), timestamp=t)
    >>> result = det.detect("pump-1", 35.0, timestamp=100)
    >>> result.is_anomaly, result.method, round(result.score, 3)
    (True, 'zscore', 1.0)
    """

    #: Ensemble sensors this detector remembers to be past their warm-up (then it does not ask the
    #: store); beyond this many the memory starts afresh.
    LEARNED_KEPT = 100_000

    def __init__(self, settings: Settings | None = None, redis_client: Any = None, **overrides: Any) -> None:
        if settings is None:
            settings = Settings(**overrides)
        elif overrides:
            settings = settings.replace(**overrides)
        self.settings = settings
        self.method = settings.detection_method
        self.threshold = settings.threshold
        self.redis_client = redis_client
        self._skip_missing = settings.missing == "skip"
        self._ensemble = self.method == "ensemble"
        # Points of a sensor learned before its results stop warming up.
        self._learn = max(_ENSEMBLE_LEARN, settings.min_samples) if self._ensemble else settings.min_samples
        self._listeners: list[Callable[[AnomalyResult], None]] = []
        self._use_store(self._make_store(settings, redis_client))
        if redis_client is not None and settings.redis_alerts and not self.store.is_async:
            from anomaly_detection.alerts import RedisAlertSink

            # The store's breaker: alerts raised while Redis is down are held and delivered
            # once by its background write-back.
            self.add_alert_listener(RedisAlertSink(redis_client, settings, breaker=self.store))

    @staticmethod
    def _make_store(settings: Settings, redis_client: Any) -> SensorStore:
        if redis_client is None:
            return EmbeddedStore(settings.to_detector_config(), ttl=settings.temp_data_ttl)
        from anomaly_detection.stores.redis import RedisStore

        return RedisStore(redis_client, settings)

    def _use_store(self, store: SensorStore) -> None:
        self.store = store
        self._store_detect = store.detect
        # The embedded registry's own detect: the result is built in C++ (not for the
        # ensemble, whose warm-up outlasts its window).
        registry = getattr(store, "registry", None) if type(store) is EmbeddedStore else None
        native = registry is not None and not self._ensemble and store.detect == registry.detect
        self._native_detect = (
            registry.point_detector(self.threshold, self.method, self._learn, self._listeners)
            if native
            else None
        )
        # Ensemble sensors known to be past their warm-up (cleared when LEARNED_KEPT are: asked
        # again), each with the window count from which the memory is trusted. In this process's
        # own store every point is seen here, so a sensor reset or expired since shows itself by a
        # window emptied (its first point after counts 1): trusted while the window holds
        # min(300, window_size). A store other processes write (Redis) can be reset and refilled
        # elsewhere: trusted only while the window holds as many points as the warm-up took (a
        # sensor refilled since cannot have them yet); a smaller window cannot tell, so the
        # store's progress (this process's cached state, no I/O) is asked for every point.
        self._learned: dict[str, int] = {}
        self._own_store = type(store) is EmbeddedStore

    # --- detection -------------------------------------------------------------

    def detect(self, sensor_name: str, value: float, timestamp: Any = None) -> AnomalyResult:
        """Score one point of a sensor and add it to the sensor's window.

        ``timestamp`` may be epoch seconds, a datetime, an ISO-8601 string or None
        (now). Raises ValueError for a non-finite value or an invalid sensor name.
        """
        # The hot path: plain floats go straight to the store, which checks finiteness
        # and the sensor name; anything else is converted (or rejected) first.
        if type(sensor_name) is not str:
            raise TypeError(f"sensor name: expected str, got {type(sensor_name).__name__}")
        if self._skip_missing and _is_missing(value):
            return self._skipped(sensor_name, timestamp)
        if type(value) is not float:
            value = as_value(value)
        if timestamp is None:
            timestamp = _now()
        elif type(timestamp) is not float:
            timestamp = as_timestamp(timestamp)
        try:
            if self._native_detect is not None:
                # The embedded store builds the result in C++; a z-type window holds every
                # point up to min_samples (none is flagged before), so its count tells the
                # warm-up at no cost.
                result = self._native_detect(sensor_name, value, timestamp)
            else:
                result = self._store_result(sensor_name, value, timestamp)
        except TypeError:
            # The binding refuses a name it cannot convert (a lone surrogate) with its own
            # signature in the message: say what is wrong with the name instead.
            check_sensor_name(sensor_name)
            raise
        except SensorLimitError:
            make_room = getattr(self.store, "make_room", None)  # idle embedded sensors may go
            if make_room is None or not make_room():
                raise
            result = self._store_result(sensor_name, value, timestamp)
        if result.is_anomaly and self._listeners:
            self._notify(result)
        return result

    def _store_result(self, sensor_name: str, value: float, timestamp: float) -> AnomalyResult:
        """``detect`` of checked inputs through the store's tuple."""
        out = self._store_detect(sensor_name, value, timestamp)
        # A z-type window holds every point up to min_samples (none is flagged before), so its
        # count tells the warm-up at no cost; the ensemble's learning outlasts its window.
        if not self._ensemble:
            warming = out[6] < self._learn
        else:
            warming = self._warming_point(sensor_name, out[6])
        return point_result(sensor_name, out, self.threshold, self.method, warming)

    def detect_batch(self, sensor_name: str, values: Any, timestamps: Any = None) -> BatchResult:
        """Score points of one sensor in order; equal to a loop of ``detect``.

        ``values`` is a 1-D sequence or array of finite numbers, or a pandas Series;
        ``timestamps`` is None or a sequence of the same length (epoch seconds, datetimes,
        ISO-8601 strings, ``datetime64`` or a pandas DatetimeIndex). Without timestamps a
        Series with a DatetimeIndex is stamped by its index (a naive index is taken as
        UTC) and anything else is stamped now; given timestamps win over the index. A
        DataFrame is refused (``TypeError``): pass one column, or use :meth:`detect_many`.
        Nothing changes when any input is invalid.

        Examples
        --------
        >>> import pandas as pd
        >>> from anomaly_detection import StatisticalAnomalyDetector
        >>> det = StatisticalAnomalyDetector(detection_method="zscore", min_samples=10)
        >>> index = pd.date_range("2026-01-01", periods=60, freq="min", tz="Europe/Paris")
        >>> series = pd.Series([20.0 + 0.1 * (t % 5) for t in range(59)] + [35.0], index=index)
        >>> frame = det.detect_batch("pump-1", series).to_pandas()  # on UTC: Paris is UTC+1 in winter
        >>> frame.index[-1], bool(frame["is_anomaly"].iloc[-1])
        (Timestamp('2025-12-31 23:59:00+0000', tz='UTC'), True)
        """
        check_sensor_name(sensor_name)
        values, timestamps = batch_input(values, timestamps)
        if self._skip_missing:
            vals, present = as_values_with_gaps(values)
            ts = as_timestamps(timestamps, len(vals))
            if not present.all():
                out = (
                    self.store.detect_batch(sensor_name, vals[present], ts[present])
                    if present.any()
                    else None
                )
                return self._batch_result(sensor_name, vals, ts, _scatter(out, present), present)
        else:
            # The embedded store checks finiteness as it scores (no pass of its own).
            checked = not getattr(self.store, "checks_finite", False)
            vals = as_values(values, check_finite=checked)
            ts = as_timestamps(timestamps, len(vals), check_finite=checked)
        return self._batch_result(sensor_name, vals, ts, self.store.detect_batch(sensor_name, vals, ts))

    def detect_many(
        self,
        batches: Mapping[str, Any] | np.ndarray,
        timestamps: Mapping[str, Any] | Any | None = None,
        *,
        threads: int = 0,
        sensors: Sequence[str] | None = None,
    ) -> dict[str, BatchResult]:
        """Score several sensors' batches at once: ``{sensor: values}`` in, ``{sensor: BatchResult}`` out.

        Each result equals :meth:`detect_batch` on that sensor. On the embedded store the
        sensors run in parallel threads without the GIL (``threads=0``: one per hardware
        thread); other stores score them one after another. ``timestamps`` maps a sensor to
        its timestamps; a sensor without them is stamped as in :meth:`detect_batch` (by its
        pandas Series' DatetimeIndex, else now). Every input is checked before anything changes.

        ``batches`` may also be a 2-D array of shape ``(points, sensors)``, one column per
        sensor (as ``frame.to_numpy()``), with ``sensors`` naming the columns; ``timestamps``
        is then None or one 1-D sequence of the rows' timestamps, shared by every sensor. A
        Fortran-ordered array (what ``to_numpy()`` gives for a float frame) is read in place;
        the columns of a C-ordered one are copied first.
        """
        if type(threads) is not int or threads < 0:
            raise ValueError(f"threads: expected an int >= 0, got {threads!r}")
        if sensors is not None or (isinstance(batches, np.ndarray) and batches.ndim == 2):
            names, vals, ts = _matrix_inputs(batches, timestamps, sensors, self.store)
        else:
            names, vals, ts = _many_inputs(batches, timestamps, self.store)
        detect_many = getattr(self.store, "detect_many", None)
        if detect_many is not None:
            outs = detect_many(names, vals, ts, threads)
        else:
            outs = [self.store.detect_batch(name, v, t) for name, v, t in zip(names, vals, ts)]
        return {name: self._batch_result(name, v, t, out) for name, v, t, out in zip(names, vals, ts, outs)}

    def _skipped(self, sensor_name: str, timestamp: Any) -> AnomalyResult:
        """The result of a missing value under ``missing="skip"``: nothing scored or changed."""
        check_sensor_name(sensor_name)
        ts = _now() if timestamp is None else as_timestamp(timestamp)
        nan = float("nan")
        progress = self._progress(sensor_name)
        warming = progress is None or self._warming_at(*progress)
        return point_result(
            sensor_name, (nan, ts, False, nan, nan, nan, 0), self.threshold, self.method, warming
        )

    # --- warm-up -------------------------------------------------------------------

    def _progress(self, sensor_name: str, fresh: bool = False) -> tuple[int, int | None] | None:
        """(points the store has learned of a sensor, the point count from which its points are
        past the warm-up or None while that is not reached: the store's ``progress``, which
        reads no window); None where it cannot tell without awaiting (a ``redis.asyncio``
        client without this process's state of the sensor)."""
        progress = getattr(self.store, "progress", None)
        if progress is not None:
            return progress(sensor_name, fresh) if fresh else progress(sensor_name)
        if getattr(self.store, "is_async", False):  # a store of another kind: its summary's count
            return None
        summary = self.store.summary(sensor_name)
        return (int(summary["points_seen"]) if summary else 0), self._learn

    def _warming_at(self, before: int, live_from: int | None) -> bool:
        """Whether a point learned after ``before`` others is scored in the warm-up: before
        ``min_samples`` (the ensemble: 300) points, and for the ensemble until its likelihoods
        went live (``live_from``, None while they are not)."""
        return before < self._learn or (self._ensemble and (live_from is None or before < live_from))

    def _warming_point(self, sensor_name: str, window_count: int) -> bool:
        """Whether the ensemble was warming up for the point it has just learned: the store's
        progress per point until the sensor is past its warm-up (then ``_learned`` says)."""
        learned = self._learned.get(sensor_name)
        if learned is not None:
            if window_count >= learned:
                return False
            self._learned.pop(sensor_name, None)  # reset or expired since (another process, a TTL)
        progress = self._progress(sensor_name)
        if progress is None:
            return window_count < self._learn
        warming = self._warming_at(progress[0] - 1, progress[1])
        if not warming:
            self._learn_sensor(sensor_name, progress[1])
        return warming

    def _learn_sensor(self, sensor_name: str, live_from: int | None) -> None:
        if len(self._learned) >= self.LEARNED_KEPT:
            self._learned.clear()
        self._learned[sensor_name] = (
            min(self._learn, self.settings.window_size)
            if self._own_store
            else max(self._learn, live_from or 0)
        )

    def _warming_batch(
        self, sensor_name: str, window_counts: np.ndarray, present: np.ndarray | None
    ) -> np.ndarray:
        """Per point of a batch just learned, whether the detector was warming up."""
        if present is None and not self._ensemble:
            # A window never shrinks, so the counts rise through the batch and the warm-up is
            # a prefix: found by bisection instead of a comparison of every count. (The key in
            # the counts' own dtype: with a Python int NumPy casts every count to float64.)
            warming = np.zeros(len(window_counts), dtype=bool)
            if len(window_counts) and window_counts[0] >= self._learn:  # warm from the first point
                return warming
            warming[: int(np.searchsorted(window_counts, window_counts.dtype.type(self._learn)))] = True
            return warming
        learned = self._learned.get(sensor_name) if self._ensemble else None
        if learned is not None:
            if present is None and len(window_counts) and window_counts[0] >= learned:
                return np.zeros(len(window_counts), dtype=bool)
            self._learned.pop(sensor_name, None)  # reset or expired since, or gaps: asked again
        progress = self._progress(sensor_name)
        if progress is None:
            return window_counts < self._learn
        seen, live_from = progress
        learned = np.ones(len(window_counts), dtype=np.int64) if present is None else present.astype(np.int64)
        before = seen - int(learned.sum()) + np.cumsum(learned) - learned  # points learned before each
        warming = before < self._learn
        if self._ensemble:
            warming |= True if live_from is None else before < live_from
            if not self._warming_at(seen - 1, live_from):
                self._learn_sensor(sensor_name, live_from)
        return warming

    def prime(self, sensor_name: str, history: Any, timestamps: Any = None) -> int:
        """Learn a sensor's past points in order, as ``detect_batch`` would, but fire no
        alert for them (a warm start from history); returns how many were learned.

        ``history`` and ``timestamps`` are taken as by :meth:`detect_batch` (a pandas
        Series' DatetimeIndex gives the timestamps). Nothing changes when any input is invalid.
        """
        check_sensor_name(sensor_name)
        history, timestamps = batch_input(history, timestamps, hint="prime each column as its own sensor")
        vals = as_values(history)
        self.store.detect_batch(sensor_name, vals, as_timestamps(timestamps, len(vals)))
        return len(vals)

    def as_river(self) -> RiverAdapter:
        """This detector as a River anomaly detector: each key of an observation
        ``{sensor: value}`` is a sensor (see :class:`RiverAdapter`)."""
        from anomaly_detection.core.river_adapter import RiverAdapter

        return RiverAdapter(self)

    def _batch_result(
        self,
        sensor_name: str,
        vals: np.ndarray,
        ts: np.ndarray,
        out: tuple,
        present: np.ndarray | None = None,
    ) -> BatchResult:
        *arrays, alert_scores = out
        warming = self._warming_batch(sensor_name, arrays[4], present)
        batch = BatchResult(
            sensor_name, vals, ts, *arrays, self.threshold, self.method, alert_scores, warming
        )
        if self._listeners and _ANY(arrays[0]):  # AnomalyResult objects only for flagged points
            for result in batch.anomalies():
                self._notify(result)
        return batch

    # --- alerts ----------------------------------------------------------------

    def add_alert_listener(self, listener: Callable[[AnomalyResult], None]) -> None:
        """Call ``listener(result)`` for every anomaly found by this detector, in the
        thread that detected it. Exceptions from a listener are logged, never raised."""
        self._listeners.append(listener)

    def remove_alert_listener(self, listener: Callable[[AnomalyResult], None]) -> None:
        self._listeners.remove(listener)

    def _notify(self, result: AnomalyResult) -> None:
        for listener in list(self._listeners):
            try:
                listener(result)
            except Exception:  # noqa: BLE001, PERF203 - a listener's bug must not stop detection
                _log.exception("alert listener %r failed", listener)

    async def adetect(self, sensor_name: str, value: float, timestamp: Any = None) -> AnomalyResult:
        """Async twin of :meth:`detect` (awaits Redis with a ``redis.asyncio`` client)."""
        adetect = getattr(self.store, "adetect", None)
        if adetect is None or (self._skip_missing and _is_missing(value)):
            return self.detect(sensor_name, value, timestamp)
        check_sensor_name(sensor_name)
        value = as_value(value)
        timestamp = as_timestamp(timestamp)
        out = await adetect(sensor_name, value, timestamp)
        warming = out[6] < self._learn if not self._ensemble else self._warming_point(sensor_name, out[6])
        result = point_result(sensor_name, out, self.threshold, self.method, warming)
        if result.is_anomaly and self._listeners:
            self._notify(result)
        return result

    async def adetect_batch(self, sensor_name: str, values: Any, timestamps: Any = None) -> BatchResult:
        """Async twin of :meth:`detect_batch`; large embedded batches run off the event loop."""
        check_sensor_name(sensor_name)
        values, timestamps = batch_input(values, timestamps)
        adetect_batch = getattr(self.store, "adetect_batch", None)
        if self._skip_missing and adetect_batch is not None:
            vals, present = as_values_with_gaps(values)
            if not present.all():
                check_sensor_name(sensor_name)
                ts = as_timestamps(timestamps, len(vals))
                out = await adetect_batch(sensor_name, vals[present], ts[present]) if present.any() else None
                return self._batch_result(sensor_name, vals, ts, _scatter(out, present), present)
        if adetect_batch is None:
            if np.size(values) >= _ASYNC_THREAD_MIN:
                return await asyncio.to_thread(self.detect_batch, sensor_name, values, timestamps)
            return self.detect_batch(sensor_name, values, timestamps)
        check_sensor_name(sensor_name)
        vals = as_values(values)
        ts = as_timestamps(timestamps, len(vals))
        return self._batch_result(sensor_name, vals, ts, await adetect_batch(sensor_name, vals, ts))

    async def adetect_many(
        self, batches: Mapping[str, Any], timestamps: Mapping[str, Any] | None = None
    ) -> dict[str, BatchResult]:
        """Async twin of :meth:`detect_many`: on a ``redis.asyncio`` client the sensors' appends
        go to Redis in one pipeline (one round trip); other stores score as :meth:`detect_many`."""
        adetect_many = getattr(self.store, "adetect_many", None)
        if adetect_many is None or self._skip_missing:
            return self.detect_many(batches, timestamps)
        names, vals, ts = _many_inputs(batches, timestamps, self.store)
        outs = await adetect_many(names, vals, ts)
        return {name: self._batch_result(name, v, t, out) for name, v, t, out in zip(names, vals, ts, outs)}

    # --- state ---------------------------------------------------------------

    def get_window(self, sensor_name: str) -> SensorWindow:
        """The sensor's window (values, timestamps), oldest first; empty if unknown."""
        return self.store.window(check_sensor_name(sensor_name))

    def sensors(self) -> list[str]:
        """Names of the sensors with state, sorted."""
        return self.store.sensors()

    def stats(self, sensor_name: str) -> dict[str, Any]:
        """Counters and window statistics of a sensor, and ``warming_up``: whether its next point
        would be scored in the warm-up (as ``AnomalyResult.warming_up``); KeyError if unknown."""
        summary = self.store.summary(check_sensor_name(sensor_name))
        if summary is None:
            raise KeyError(sensor_name)
        # whether the sensor's next point would be scored in the warm-up
        if self._ensemble:  # not from this process's cached state: others may have written since
            progress = self._progress(sensor_name, fresh=True)
            warming = progress is None or self._warming_at(*progress)
        else:
            warming = summary["points_seen"] < self._learn
        return {
            "sensor_name": sensor_name, "method": self.method, "threshold": self.threshold, **summary,
            "warming_up": warming,
        }  # fmt: skip

    def reset(self, sensor_name: str) -> bool:
        """Forget a sensor's state; returns whether it existed."""
        self._learned.pop(sensor_name, None)
        return self.store.reset(check_sensor_name(sensor_name))

    def health(self) -> dict[str, Any]:
        """Store kind, degraded flag and counts."""
        return self.store.health()

    # --- persistence -----------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Snapshot of the configuration and every sensor's state (embedded store only)."""
        if not isinstance(self.store, EmbeddedStore):
            raise TypeError("to_bytes: only the embedded store is snapshotted (Redis keeps its own state)")
        return self.store.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes, settings: Settings | None = None) -> StatisticalAnomalyDetector:
        """Restore a snapshot made by :meth:`to_bytes`; ValueError on corrupt bytes.

        The detection settings come from the snapshot; other settings from ``settings``.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"from_bytes: expected bytes, got {type(data).__name__}")
        registry = _core.SensorRegistry.from_bytes(bytes(data))
        detector = cls(Settings.from_detector_config(registry.config, settings))
        detector._use_store(EmbeddedStore(registry=registry, ttl=detector.settings.temp_data_ttl))
        return detector

    def __reduce__(self):
        return (self.__class__.from_bytes, (self.to_bytes(), self.settings))

    def __repr__(self) -> str:
        return (
            f"StatisticalAnomalyDetector(method={self.method!r}, window_size={self.settings.window_size}, "
            f"threshold={self.threshold}, store={self.store.kind!r})"
        )


# detect's hot case (embedded store, a str and two floats) as a method descriptor calling C++
# with no Python frame; any other call goes to the Python method, kept as _detect_general.
StatisticalAnomalyDetector._detect_general = StatisticalAnomalyDetector.detect
_core._install_detect(
    StatisticalAnomalyDetector, inspect.cleandoc(StatisticalAnomalyDetector.detect.__doc__ or "")
)


def _many_inputs(
    batches: Mapping[str, Any], timestamps: Mapping[str, Any] | None, store: Any = None
) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """The sensor names, values and timestamps of a ``detect_many`` call, every input checked
    before anything changes. A ``store`` that checks finiteness itself before any change
    (``checks_finite_many``: the Redis store) is not given a second pass of the same check."""
    check_finite = not getattr(store, "checks_finite_many", False)
    if not isinstance(batches, Mapping):
        hint = (
            " (for a DataFrame, one sensor per column: frame.to_dict('series'))"
            if hasattr(batches, "columns")
            else ""
        )
        raise TypeError(
            f"batches: expected a mapping of sensor name to values, got {type(batches).__name__}{hint}"
        )
    if timestamps is not None and not isinstance(timestamps, Mapping):
        raise TypeError(
            f"timestamps: expected a mapping of sensor name to timestamps, got {type(timestamps).__name__}"
        )
    if timestamps is not None and (unknown := set(timestamps) - set(batches)):
        raise ValueError(f"timestamps: sensors without values: {sorted(unknown)!r}")
    names = [check_sensor_name(name) for name in batches]
    plain = _plain_arrays(batches, timestamps, names, check_finite)
    if plain is not None:
        return names, *plain
    given = [
        batch_input(batches[name], None if timestamps is None else timestamps.get(name)) for name in names
    ]
    vals = [as_values(v, check_finite) for v, _ in given]
    # The sensors stamped "now" share one array of that instant (a slice each): one fill
    # instead of one per sensor, on the calling thread.
    unstamped = [len(v) for v, (_, t) in zip(vals, given) if t is None]
    now = as_timestamps(None, max(unstamped)) if unstamped else None
    ts = [
        now[: len(v)] if t is None and now is not None else as_timestamps(t, len(v), check_finite)
        for v, (_, t) in zip(vals, given)
    ]
    return names, vals, ts


def _plain_arrays(
    batches: Mapping[str, Any], timestamps: Mapping[str, Any] | None, names: list[str], check_finite: bool
) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    """The values and timestamps of ``names`` when every one is already what :func:`as_values`
    and :func:`as_timestamps` return (a non-empty 1-D C-contiguous float64 ``ndarray``, not a
    subclass, timestamps of the same length): the same arrays, with the same finiteness check;
    None for anything else (the general checks then run). The service's batches come so."""
    if timestamps is None or len(timestamps) != len(names):
        return None
    vals = [batches[name] for name in names]
    ts = [timestamps.get(name) for name in names]
    for v, t in zip(vals, ts):
        if not (
            type(v) is np.ndarray and type(t) is np.ndarray and v.dtype == _F8 and t.dtype == _F8
            and v.ndim == 1 and t.ndim == 1 and v.size and v.size == t.size
            and v.flags.c_contiguous and t.flags.c_contiguous
        ):  # fmt: skip
            return None
    if check_finite:  # the general path's checks and their order: every sensor's values first
        for v in vals:
            as_values(v)
        for v, t in zip(vals, ts):
            as_timestamps(t, len(v))
    return vals, ts


_F8 = np.dtype(np.float64)
#: ``a.any()`` without ndarray.any's Python wrapper (a call per sensor of every batch).
_ANY = np.logical_or.reduce


def _matrix_inputs(
    matrix: Any, timestamps: Any, sensors: Sequence[str] | None, store: Any = None
) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """``_many_inputs`` of a 2-D array of shape (points, sensors), one column per sensor named
    by ``sensors``, and one 1-D sequence of timestamps (or None) shared by every sensor."""
    check_finite = not getattr(store, "checks_finite_many", False)
    if sensors is None:
        raise TypeError("sensors: a 2-D array of values needs sensors=[name, ...], one per column")
    if isinstance(sensors, str) or not isinstance(sensors, Sequence):
        raise TypeError(f"sensors: expected a sequence of sensor names, got {type(sensors).__name__}")
    if not isinstance(matrix, np.ndarray) or matrix.ndim != 2:
        raise TypeError(
            f"batches: with sensors=, expected a 2-D NumPy array (points, sensors), got {type(matrix).__name__}"
            + (f" of {matrix.ndim} dimensions" if isinstance(matrix, np.ndarray) else "")
        )
    names = [check_sensor_name(name) for name in sensors]
    if len(set(names)) != len(names):
        twice = sorted({name for name in names if names.count(name) > 1})
        raise ValueError(f"sensors: given twice: {twice!r} (one column per sensor)")
    if matrix.shape[1] != len(names):
        raise ValueError(f"batches: expected one column per sensor ({len(names)}), got shape {matrix.shape}")
    if matrix.dtype.kind not in "iuf":
        raise ValueError(f"batches: expected numbers, got an array of dtype {matrix.dtype}")
    if matrix.shape[0] == 0:
        raise ValueError("batches: expected at least one row, got an empty array")
    if isinstance(timestamps, Mapping):
        raise TypeError("timestamps: with a 2-D array, expected one 1-D sequence shared by every sensor")
    # A column of a Fortran-ordered float64 array is contiguous: a view, no copy.
    vals = [as_values(matrix[:, j], check_finite) for j in range(len(names))]
    ts = as_timestamps(timestamps, matrix.shape[0], check_finite)
    return names, vals, [ts] * len(names)


def _is_missing(value: Any) -> bool:
    """A missing value: None or a float NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _scatter(out: tuple | None, present: np.ndarray) -> tuple:
    """The store's arrays for the present values, spread over the whole batch: a
    missing value is not flagged and has NaN scores, deviation and expected value."""
    n = len(present)
    flags = np.zeros(n, dtype=bool)
    floats = [np.full(n, np.nan) for _ in range(4)]  # scores, deviations, expected, alert scores
    counts = np.zeros(n, dtype=np.uint64)
    if out is not None:
        is_anomaly, scores, deviations, expected, window_counts, alert_scores = out
        flags[present] = is_anomaly
        for full, part in zip(floats, (scores, deviations, expected, alert_scores)):
            full[present] = part
        counts[present] = window_counts
    scores, deviations, expected, alert_scores = floats
    return flags, scores, deviations, expected, counts, alert_scores
