"""``warming_up`` on results: the detector had learned too few points of the sensor (fewer than
``min_samples``; for the ensemble, fewer than its 300 learning points)."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly_detection import Settings, StatisticalAnomalyDetector


def _values(n: int, seed: int = 0) -> np.ndarray:
    return 20.0 + np.random.default_rng(seed).normal(size=n)


@pytest.mark.parametrize("method", ["zscore", "mad", "ewma"])
def test_points_warm_up_until_min_samples(method):
    det = StatisticalAnomalyDetector(detection_method=method, window_size=20, min_samples=8)
    flags = [det.detect("s", float(v), timestamp=float(i)).warming_up for i, v in enumerate(_values(12))]
    assert flags == [True] * 8 + [False] * 4
    det.reset("s")
    assert det.detect("s", 20.0, timestamp=100.0).warming_up is True


def test_the_ensemble_warms_up_for_300_points_beyond_its_window():
    det = StatisticalAnomalyDetector(detection_method="ensemble", window_size=50)
    flags = [det.detect("s", float(v), timestamp=60.0 * i).warming_up for i, v in enumerate(_values(320))]
    assert flags == [True] * 300 + [False] * 20
    det.reset("s")
    assert det.detect("s", 20.0, timestamp=1e6).warming_up is True


@pytest.mark.parametrize(("method", "learn"), [("zscore", 10), ("ensemble", 300)])
def test_batch_equals_the_loop(method, learn):
    values = _values(400, seed=1)
    ts = 60.0 * np.arange(400)
    batch_det = StatisticalAnomalyDetector(detection_method=method, min_samples=10)
    first = batch_det.detect_batch("s", values[:150], ts[:150])
    second = batch_det.detect_batch("s", values[150:], ts[150:])
    warming = np.concatenate([first.warming_up, second.warming_up])
    loop_det = StatisticalAnomalyDetector(detection_method=method, min_samples=10)
    loop = [loop_det.detect("s", float(v), float(t)).warming_up for v, t in zip(values, ts)]
    assert warming.tolist() == loop
    assert int(warming.sum()) == learn
    assert second[0].warming_up is bool(second.warming_up[0])
    assert first.to_dict()["warming_up"] == first.warming_up.tolist()


def test_missing_values_do_not_count_as_learned():
    det = StatisticalAnomalyDetector(Settings(detection_method="zscore", min_samples=3, missing="skip"))
    batch = det.detect_batch("s", [1.0, None, 2.0, np.nan, 3.0, 4.0], timestamps=range(6))
    assert batch.warming_up.tolist() == [True, True, True, True, True, False]
    assert det.detect("s", None, timestamp=7).warming_up is False
    assert StatisticalAnomalyDetector(Settings(missing="skip")).detect("t", None).warming_up is True


def test_to_dict_carries_warming_up():
    det = StatisticalAnomalyDetector(detection_method="zscore", min_samples=2)
    assert det.detect("s", 1.0, timestamp=0).to_dict()["warming_up"] is True


@pytest.mark.parametrize(("method", "learn"), [("zscore", 5), ("ensemble", 300)])
def test_on_redis_too(redis_client, method, learn):
    det = StatisticalAnomalyDetector(redis_client=redis_client, detection_method=method, min_samples=5)
    batch = det.detect_batch("r", _values(302, seed=2), 60.0 * np.arange(302))
    assert int(batch.warming_up.sum()) == learn
    assert batch.warming_up[:learn].all()
    assert det.detect("r", 20.0, timestamp=60.0 * 302).warming_up is False


@pytest.mark.parametrize("method", ["zscore", "ewma", "cusum", "mad", "iqr"])
@pytest.mark.parametrize("include_anomalies", [True, False])
def test_batch_warm_up_is_the_counts_below_min_samples(method, include_anomalies):
    # detect_batch finds the warm-up as a prefix (the counts never fall within a batch):
    # the same as comparing every count, in batches that start cold, mid warm-up and warm,
    # with spikes that an excluding window leaves out (its count then stands still).
    values = _values(300, seed=2)
    values[[3, 5, 6, 40, 41]] += 30.0
    det = StatisticalAnomalyDetector(
        detection_method=method, window_size=16, min_samples=12, include_anomalies_in_window=include_anomalies
    )
    for part in np.split(values, [7, 9, 60]):
        batch = det.detect_batch("s", part, np.arange(len(part), dtype=float))
        assert batch.warming_up.dtype == bool
        assert batch.warming_up.tolist() == (batch.window_counts < 12).tolist()
        assert np.all(np.diff(batch.window_counts.astype(np.int64)) >= 0)
