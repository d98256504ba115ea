"""detect_many: several sensors' batches in one call, in parallel threads on the
embedded store; each result equals detect_batch, and bad input changes nothing."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly_detection import SensorLimitError, StatisticalAnomalyDetector

CLASSIC = ["zscore", "mad", "iqr", "ewma", "cusum", "ensemble"]


def batches(n_sensors: int = 6, n: int = 3000, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {f"pump-{i}": rng.normal(20.0 + i, 1.0, n) for i in range(n_sensors)}
    out["pump-0"][n // 3] = 1e308  # a glitch in one of them
    return out


@pytest.mark.parametrize("method", CLASSIC)
@pytest.mark.parametrize("threads", [0, 1, 2, 5])
def test_each_sensor_equals_detect_batch(method, threads):
    data = batches(n=600 if method == "ensemble" else 3000)
    ts = {name: np.arange(len(v), dtype=float) for name, v in data.items()}
    many = StatisticalAnomalyDetector(detection_method=method, window_size=50)
    one = StatisticalAnomalyDetector(detection_method=method, window_size=50)
    # Two calls: the second continues each sensor's state.
    for half in (
        slice(0, len(next(iter(data.values()))) // 2),
        slice(len(next(iter(data.values()))) // 2, None),
    ):
        got = many.detect_many({k: v[half] for k, v in data.items()}, {k: t[half] for k, t in ts.items()},
                               threads=threads)  # fmt: skip
        assert list(got) == list(data)
        for name in data:
            want = one.detect_batch(name, data[name][half], ts[name][half])
            for field in ("is_anomaly", "scores", "deviations", "expected", "window_counts"):
                np.testing.assert_array_equal(getattr(got[name], field), getattr(want, field), err_msg=field)
    assert many.to_bytes() == one.to_bytes()


def test_bad_input_changes_nothing():
    det = StatisticalAnomalyDetector(detection_method="zscore", window_size=20, max_sensors=3)
    det.detect_batch("a", np.arange(30.0))
    before = det.to_bytes()
    bad_value = {"a": np.arange(5.0), "b": np.array([1.0, np.nan])}
    with pytest.raises(ValueError, match="finite"):
        det.detect_many(bad_value)
    with pytest.raises(ValueError, match="sensor name"):
        det.detect_many({"a": np.arange(5.0), "b:c": np.arange(5.0)})
    with pytest.raises(ValueError, match="without values"):
        det.detect_many({"a": np.arange(5.0)}, {"z": np.arange(5.0)})
    with pytest.raises(ValueError, match="threads"):
        det.detect_many({"a": np.arange(5.0)}, threads=-1)
    with pytest.raises(TypeError, match="mapping"):
        det.detect_many([("a", np.arange(5.0))])
    with pytest.raises(SensorLimitError):
        det.detect_many({"a": np.arange(5.0), "b": np.arange(5.0), "c": np.arange(5.0), "d": np.arange(5.0)})
    assert det.to_bytes() == before
    assert det.sensors() == ["a"]


def test_ready_arrays_are_checked_as_any_other_input():
    """Float64 arrays with timestamps for every sensor (the service's batches) skip the general
    conversion, not its checks: the same errors, in the same order (every sensor's values before
    any timestamps), and nothing changed; a view that is not contiguous, an int array or a list
    takes the general path with the same results."""
    det = StatisticalAnomalyDetector(detection_method="zscore", window_size=20)
    det.detect_batch("a", np.arange(30.0), np.arange(30.0))
    before = det.to_bytes()
    ok = np.arange(5.0)
    for vals, ts, message in [
        ({"a": ok, "b": np.array([1.0, np.inf])}, {"a": np.array([1.0, np.nan, 3, 4, 5]), "b": ok[:2]},
         r"values\[1\]: expected a finite number, got inf"),
        ({"a": ok, "b": ok[:2]}, {"a": ok, "b": np.array([1.0, np.nan])}, "timestamps"),
        ({"a": ok, "b": ok[:2]}, {"a": ok, "b": ok}, "timestamps"),
        ({"a": ok, "b": ok[:0]}, {"a": ok, "b": ok[:0]}, "at least one value"),
    ]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            det.detect_many(vals, ts)
    assert det.to_bytes() == before
    twin = StatisticalAnomalyDetector(detection_method="zscore", window_size=20)
    twin.detect_batch("a", np.arange(30.0), np.arange(30.0))
    values = np.random.default_rng(3).normal(0, 1, 80)
    ready = det.detect_many({"a": values[:40:2].copy(), "b": values[40:]},
                            {"a": np.arange(30.0, 50.0), "b": np.arange(40.0)})  # fmt: skip
    general = twin.detect_many({"a": values[:40:2], "b": list(values[40:])},  # a strided view, a list
                               {"a": np.arange(30, 50), "b": np.arange(40.0)})  # int timestamps  # fmt: skip
    for name in ("a", "b"):
        for field in ("is_anomaly", "scores", "deviations", "expected", "window_counts", "timestamps"):
            np.testing.assert_array_equal(getattr(ready[name], field), getattr(general[name], field))
    assert det.to_bytes() == twin.to_bytes() != before


def test_redis_store_scores_sensors_one_after_another(redis_client):
    data = batches(n_sensors=3, n=500)
    ts = {name: np.arange(500.0) for name in data}
    shared = StatisticalAnomalyDetector(detection_method="zscore", window_size=50, redis_client=redis_client)
    embedded = StatisticalAnomalyDetector(detection_method="zscore", window_size=50)
    got = shared.detect_many(data, ts)
    want = embedded.detect_many(data, ts)
    for name in data:
        np.testing.assert_array_equal(got[name].scores, want[name].scores)
        np.testing.assert_array_equal(got[name].is_anomaly, want[name].is_anomaly)
