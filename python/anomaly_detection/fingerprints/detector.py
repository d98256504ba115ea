"""An IsolationForest over system fingerprints: warm-up, scoring, scheduled retraining
(one worker at a time under a Redis lock) and alerts that name the deviating features."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from anomaly_detection.fingerprints.aggregator import FEATURE_NAMES, Fingerprint, settings_or_default
from anomaly_detection.forest import IsolationForest
from anomaly_detection.redis.alerts import alert_record
from anomaly_detection.redis.driver import redis_errors

__all__ = ["FingerprintDetector", "FingerprintScore"]
_log = logging.getLogger(__name__)

# Deletes the lock only if it still holds our token (it may have expired and been taken).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class FingerprintScore:
    """The verdict on one fingerprint.

    ``score`` is the forest's anomaly score (the paper's ``2^(-E[h]/c)``, higher is more
    anomalous; NaN during warm-up), ``threshold`` the score above which the forest flags a
    fingerprint, ``deviations`` the robust z of every feature against the training
    fingerprints, ``top_features`` the names that deviated most (largest ``|z|`` first).
    """

    fingerprint: Fingerprint
    score: float
    threshold: float
    is_anomaly: bool
    deviations: dict[str, float] = field(default_factory=dict)
    top_features: tuple[str, ...] = ()
    alert: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.fingerprint.to_dict(),
            "score": None if np.isnan(self.score) else self.score,
            "threshold": None if np.isnan(self.threshold) else self.threshold,
            "is_anomaly": self.is_anomaly,
            "top_features": list(self.top_features),
            "deviations": self.deviations,
        }


class FingerprintDetector:
    """Learns what normal fingerprints look like and flags those that do not fit.

    After ``warmup`` fingerprints it fits an :class:`~anomaly_detection.forest.IsolationForest`
    on them; every later fingerprint is scored. A fingerprint is anomalous when its forest
    score exceeds the threshold (the highest training score plus ``margin``) *and* at least
    one feature lies ``min_deviation`` robust standard deviations from its training median
    (``|x - median| / max(1.4826 * MAD, floor)``): the forest judges the whole vector, the
    robust z names what changed and keeps alerts to changes a person can see. Anomalous
    fingerprints are kept out of later training sets. Every ``retrain_every`` fingerprints
    the forest is refitted on the last ``max_training`` normal ones.

    Parameters
    ----------
    warmup : int
        Fingerprints before the first fit (60 = 5 minutes of 5-s intervals).
    retrain_every : int
        Fingerprints between refits (0: never refit).
    max_training : int
        Most recent normal fingerprints used for a fit.
    n_estimators, max_samples, random_state
        Of the forest (``random_state`` makes runs repeat).
    margin : float
        Added to the highest training score to give the threshold.
    min_deviation : float
        Robust z that at least one feature must reach for an alert.
    top_features : int
        How many features an alert names.
    on_alert : callable, optional
        ``on_alert(alert)`` with the alert document.
    redis_client : redis client, optional
        With Redis a fit runs under the lock ``<prefix>:cache:lock:<model_name>``
        (``SET NX PX lock_ttl``): a worker that does not get it skips the fit and loads the
        model the lock holder stored. The model bytes go to ``<prefix>:model:<model_name>``
        (``AnomalyRedisManager.store_model``), its baseline (medians, scales, threshold) to
        ``<prefix>:config:<model_name>.baseline``; unless ``settings.redis_alerts`` is False,
        alerts are written by :class:`anomaly_detection.redis.alerts.AlertWriter`, as a
        detector's are (stream, key, time index, channel; the stream id becomes the alert's
        ``id``, which is a random hex id otherwise).
    settings : Settings, optional
        Key prefix, hash tags, ``redis_alerts``, ``alerts_stream_maxlen`` (default
        :func:`get_settings`).
    model_name : str
        Name of the model key.
    lock_ttl : float
        Seconds after which a crashed worker's lock frees itself.
    """

    def __init__(
        self,
        warmup: int = 60,
        retrain_every: int = 60,
        max_training: int = 720,
        *,
        n_estimators: int = 100,
        max_samples: int | str = "auto",
        random_state: int = 0,
        threshold_quantile: float = 0.99,
        margin: float = 0.0,
        min_deviation: float = 8.0,
        max_deviation: float = 15.0,
        top_features: int = 3,
        on_alert: Callable[[dict[str, Any]], Any] | None = None,
        redis_client: Any = None,
        settings: Any = None,
        model_name: str = "fingerprints",
        lock_ttl: float = 60.0,
    ) -> None:
        for name, value, low in (("warmup", warmup, 2), ("retrain_every", retrain_every, 0),
                                 ("max_training", max_training, 2), ("top_features", top_features, 1)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
        if max_training < warmup:
            raise ValueError(f"max_training: expected >= warmup ({warmup}), got {max_training}")
        for name, value in (("margin", margin), ("min_deviation", min_deviation),
                            ("max_deviation", max_deviation), ("lock_ttl", lock_ttl)):  # fmt: skip
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not np.isfinite(value)
                or value < 0
            ):
                raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
        if (
            isinstance(threshold_quantile, bool)
            or not isinstance(threshold_quantile, (int, float))
            or not (0.0 <= threshold_quantile <= 1.0)
        ):
            raise ValueError(f"threshold_quantile: expected a number in [0, 1], got {threshold_quantile!r}")
        if lock_ttl <= 0:
            raise ValueError(f"lock_ttl: expected > 0 seconds, got {lock_ttl!r}")
        self.warmup = warmup
        self.retrain_every = retrain_every
        self.max_training = max_training
        self.threshold_quantile = float(threshold_quantile)
        self.margin = float(margin)
        self.min_deviation = float(min_deviation)
        self.max_deviation = float(max_deviation)
        self.top_features = top_features
        self.on_alert = on_alert
        self.model_name = model_name
        self.lock_ttl = float(lock_ttl)
        self.forest = IsolationForest(
            n_estimators=n_estimators, max_samples=max_samples, random_state=random_state
        )
        self.fitted = False
        self.threshold = float("nan")
        self.names: tuple[str, ...] = FEATURE_NAMES
        self.fits = 0  # fits done here
        self.loads = 0  # models loaded from Redis (another worker fitted)
        self.skipped_fits = 0  # fits skipped because another worker held the lock
        self.seen = 0
        self._median = np.zeros(0)
        self._scale = np.ones(0)
        self._since_fit = 0
        self._training: deque[np.ndarray] = deque(maxlen=max_training)
        self._lock = threading.RLock()
        self.redis = redis_client
        self.manager = None
        self.writer = None
        if redis_client is not None:
            from anomaly_detection.redis.alerts import AlertWriter
            from anomaly_detection.redis.manager import AnomalyRedisManager

            settings = settings_or_default(settings)
            self.manager = AnomalyRedisManager(redis_client, settings)
            keys = self.manager.keys
            self.lock_key = keys.cache("lock", model_name)
            self.baseline_key = f"{model_name}.baseline"
            keys.model(model_name)  # validates the name now rather than at the first fit
            if settings.redis_alerts:
                self.writer = AlertWriter(redis_client, settings)
            self._release = redis_client.register_script(_RELEASE)

    # --- scoring -------------------------------------------------------------------------------

    def __call__(self, fingerprint: Fingerprint) -> FingerprintScore:
        """Same as :meth:`update` (so the detector can listen to an aggregator)."""
        return self.update(fingerprint)

    def update(self, fingerprint: Fingerprint) -> FingerprintScore:
        """Score ``fingerprint`` (once fitted), learn from it, refit when due."""
        x = np.asarray(fingerprint.values, dtype=np.float64)
        if x.ndim != 1 or not np.isfinite(x).all():
            raise ValueError(f"fingerprint: expected a finite 1-D vector, got shape {x.shape}")
        names = tuple(fingerprint.names)
        if len(names) != x.shape[0]:
            raise ValueError(f"fingerprint: {len(names)} names for {x.shape[0]} values")
        with self._lock:
            if self.fitted and x.shape[0] != self._median.shape[0]:
                raise ValueError(f"fingerprint: expected {self._median.shape[0]} features, got {x.shape[0]}")
            if not self.fitted and not self._training:
                self.names = names  # the warm-up's first fingerprint names the features
            elif names != self.names:
                # during the warm-up another vector would break every fit (and the training set) for good
                raise ValueError(f"fingerprint: expected the features {list(self.names)}, got {list(names)}")
            self.seen += 1
            if not self.fitted:
                self._training.append(x)
                if len(self._training) >= self.warmup:
                    self.fit()
                return FingerprintScore(fingerprint, float("nan"), self.threshold, False)
            result = self._score(fingerprint, x)
            if not result.is_anomaly:
                self._training.append(x)
            self._since_fit += 1
            if self.retrain_every and self._since_fit >= self.retrain_every:
                self.fit()
        if result.alert is not None:
            result = replace(result, alert=self._raise(result.alert))
        return result

    def deviations(self, values: np.ndarray) -> np.ndarray:
        """Robust z of each feature against the training fingerprints."""
        if not self.fitted:
            from anomaly_detection.errors import NotFittedError

            raise NotFittedError("the fingerprint detector is still warming up")
        return (np.asarray(values, dtype=np.float64) - self._median) / self._scale

    def _score(self, fingerprint: Fingerprint, x: np.ndarray) -> FingerprintScore:
        score = float(-self.forest.score_samples(x[None, :])[0])
        z = self.deviations(x)
        order = np.argsort(-np.abs(z), kind="stable")[: self.top_features]
        top = tuple(self.names[i] for i in order)
        worst = float(np.abs(z).max())
        is_anomaly = worst >= self.max_deviation or (score > self.threshold and worst >= self.min_deviation)
        deviations = {n: round(float(v), 3) for n, v in zip(self.names, z)}
        alert = None
        if is_anomaly:
            fields = {
                "id": uuid.uuid4().hex,
                "sensor_name": "system.fingerprint",
                "method": "fingerprint",
                "source": "fingerprint",
                "timestamp": fingerprint.end,
                "interval": [fingerprint.start, fingerprint.end],
                "value": score,
                "score": score,
                "threshold": self.threshold,
                "is_anomaly": True,
                "top_features": [
                    {
                        "name": self.names[i],
                        "value": float(x[i]),
                        "expected": float(self._median[i]),
                        "z": round(float(z[i]), 3),
                    }
                    for i in order
                ],
                "features": fingerprint.as_dict(),
            }
            # The one severity rule, on the largest robust deviation and the one that flags.
            alert = alert_record("fingerprint", worst, self.min_deviation, fields)
        return FingerprintScore(fingerprint, score, self.threshold, is_anomaly, deviations, top, alert)

    def _raise(self, alert: dict[str, Any]) -> dict[str, Any]:
        if self.writer is not None:
            try:
                alert = self.writer.write(alert)
            except redis_errors() as exc:  # the fingerprint is scored all the same; on_alert still hears it
                _log.error("fingerprint alert %s not written to Redis: %s", alert.get("id"), exc)
        if self.on_alert is not None:
            try:
                self.on_alert(alert)
            except Exception:  # noqa: BLE001 - the fingerprint is scored and kept all the same
                _log.exception("fingerprint on_alert %r failed", self.on_alert)
        return alert

    # --- training ------------------------------------------------------------------------------

    def fit(self) -> bool:
        """Fit on the kept normal fingerprints now. With Redis, only under the lock: returns
        False (and loads the stored model, if any) when another worker holds it."""
        with self._lock:
            X = np.vstack(self._training)
            self._since_fit = 0
            if self.redis is None:
                self._fit(X)
                return True
            token = uuid.uuid4().hex
            try:
                locked = self.redis.set(self.lock_key, token, nx=True, px=int(self.lock_ttl * 1000))
            except redis_errors() as exc:  # Redis down: fitted here, shared at a later fit
                _log.warning("fingerprint model fitted without Redis (%s): not shared", exc)
                self._fit(X)
                return True
            if not locked:
                self.skipped_fits += 1
                try:
                    self.load()
                except ValueError as exc:  # corrupt: keep learning; fitted here once the lock is free
                    _log.warning("stored fingerprint model not loaded: %s", exc)
                except redis_errors() as exc:  # down since the lock: tried again at the next fit
                    _log.warning("stored fingerprint model not loaded: Redis unavailable (%s)", exc)
                return False
            try:
                self._fit(X)
                assert self.manager is not None
                self.manager.store_model(self.model_name, self.forest.to_bytes())
                self.manager.set_config(self.baseline_key, self._baseline())
            except redis_errors() as exc:  # fitted here all the same
                _log.warning("fingerprint model fitted but not shared: Redis unavailable (%s)", exc)
            finally:
                with contextlib.suppress(*redis_errors()):  # if not released, it expires after lock_ttl
                    self._release(keys=[self.lock_key], args=[token])
            return True

    def _fit(self, X: np.ndarray) -> None:
        self.forest.fit(X)
        median = np.median(X, axis=0)
        spread = np.abs(X - median)
        # MAD is 0 for a feature that is mostly constant (a rare 4xx, an occasional error
        # log): the mean absolute deviation then still measures its normal spread, and the
        # floors (1% of its typical size, at least 1e-3) keep a feature that never moved
        # from turning noise into infinite z. Both are scaled to equal sd for a normal.
        scale = np.maximum(1.4826 * np.median(spread, axis=0), 1.2533 * spread.mean(axis=0))
        self._scale = np.maximum(scale, np.maximum(0.01 * np.abs(median), 1e-3))
        self._median = median
        train = -self.forest.score_samples(X)
        self.threshold = float(np.quantile(train, self.threshold_quantile)) + self.margin
        self.fitted = True
        self.fits += 1

    def _baseline(self) -> dict[str, Any]:
        return {"names": list(self.names), "median": self._median.tolist(), "scale": self._scale.tolist(),
                "threshold": self.threshold, "fitted_at": time.time()}  # fmt: skip

    def load(self) -> bool:
        """Load the model and baseline another worker stored; False if there is none."""
        if self.manager is None:
            return False
        blob = self.manager.load_model(self.model_name)
        baseline = self.manager.get_config(self.baseline_key)
        if blob is None or not isinstance(baseline, dict):
            return False
        forest = IsolationForest.from_bytes(blob)
        try:
            median = np.asarray(baseline["median"], dtype=np.float64)
            scale = np.asarray(baseline["scale"], dtype=np.float64)
            threshold = float(baseline["threshold"])
            names = tuple(baseline["names"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"fingerprint baseline: possible corruption: {e!r}") from None
        if not (median.shape == scale.shape == (len(names),)) or not (scale > 0).all():
            raise ValueError("fingerprint baseline: possible corruption: inconsistent shapes or scales")
        if not (np.isfinite(median).all() and np.isfinite(scale).all() and np.isfinite(threshold)):
            raise ValueError(
                "fingerprint baseline: possible corruption: non-finite median, scale or threshold"
            )
        if forest.n_features_in_ != len(names):
            raise ValueError(
                f"fingerprint model: possible corruption: a forest of {forest.n_features_in_} features "
                f"for a baseline of {len(names)}"
            )
        with self._lock:
            self.forest, self._median, self._scale = forest, median, scale
            self.threshold, self.names, self.fitted = threshold, names, True
            self.loads += 1
        return True

    def status(self) -> dict[str, Any]:
        """Warm-up progress, fits, threshold."""
        return {
            "fitted": self.fitted,
            "seen": self.seen,
            "warmup": self.warmup,
            "training": len(self._training),
            "fits": self.fits,
            "loads": self.loads,
            "skipped_fits": self.skipped_fits,
            "threshold": None if np.isnan(self.threshold) else self.threshold,
        }
