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
    conversion, not its checks: the same errors as the same data given as lists (the general
    path), and nothing changed; a view that is not contiguous, an int array or a list takes the
    general path with the same results."""
    det = StatisticalAnomalyDetector(detection_method="zscore", window_size=20)
    det.detect_batch("a", np.arange(30.0), np.arange(30.0))
    before = det.to_bytes()
    ok = np.arange(5.0)
    for vals, ts, message in [
        ({"a": ok, "b": np.array([1.0, np.inf])}, {"a": np.array([1.0, np.nan, 3, 4, 5]), "b": ok[:2]},
         r"expected a finite number, got (inf|nan)"),
        ({"a": ok, "b": ok[:2]}, {"a": ok, "b": np.array([1.0, np.nan])}, "timestamps"),
        ({"a": ok, "b": ok[:2]}, {"a": ok, "b": ok}, "timestamps"),
        ({"a": ok, "b": ok[:0]}, {"a": ok, "b": ok[:0]}, "at least one value"),
    ]:  # fmt: skip
        with pytest.raises(ValueError, match=message) as ready:
            det.detect_many(vals, ts)
        as_lists = ({k: list(v) for k, v in vals.items()}, {k: list(v) for k, v in ts.items()})
        with pytest.raises(ValueError) as general:
            det.detect_many(*as_lists)
        assert str(ready.value) == str(general.value)
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


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("where", ["values", "timestamps"])
def test_non_finite_in_the_last_sensor_changes_no_sensor(threads, where):
    # Long batches: the workers check them in chunks of 65,536 points, the bad entry in a
    # late chunk of the last sensor, while the other sensors' chunks pass.
    n = 200_000
    det = StatisticalAnomalyDetector(detection_method="zscore", window_size=50)
    det.detect_batch("a", np.arange(100.0), np.arange(100.0))
    before = det.to_bytes()
    rng = np.random.default_rng(3)
    data = {name: rng.normal(20.0, 1.0, n) for name in ("a", "b", "c")}
    ts = {name: np.arange(n, dtype=float) for name in data}
    bad = {"values": data, "timestamps": ts}[where]["c"]
    bad[150_001] = np.inf
    bad[170_000] = np.nan  # a later one: the first is named
    msg = rf"sensor 'c': {where}\[150001\]: expected a finite number, got inf"
    with pytest.raises(ValueError, match=msg):
        det.detect_many(data, ts, threads=threads)
    assert det.to_bytes() == before
    assert det.sensors() == ["a"]
    # The first bad sensor in order is named, wherever the workers found one first.
    data["b"][5] = -np.inf
    with pytest.raises(ValueError, match=r"sensor 'b': values\[5\]: expected a finite number, got -inf"):
        det.detect_many(data, ts, threads=threads)
    assert det.to_bytes() == before


@pytest.mark.parametrize("threads", [0, 2, 3])
def test_unequal_sensors_equal_detect_batch(threads):
    # Sensors of very different lengths (the workers take the longest first), one empty-ish
    # sensor of one point, and more than 65,536 points in one of them.
    rng = np.random.default_rng(5)
    sizes = {"tiny": 1, "short": 700, "long": 150_000, "mid": 20_000}
    data = {name: rng.normal(5.0, 2.0, k) for name, k in sizes.items()}
    many = StatisticalAnomalyDetector(detection_method="zscore", window_size=30)
    one = StatisticalAnomalyDetector(detection_method="zscore", window_size=30)
    ts = {name: np.arange(len(v), dtype=float) for name, v in data.items()}
    got = many.detect_many(data, ts, threads=threads)
    assert list(got) == list(data)
    for name, values in data.items():
        want = one.detect_batch(name, values, ts[name])
        for field in ("is_anomaly", "scores", "deviations", "expected", "window_counts", "timestamps"):
            np.testing.assert_array_equal(getattr(got[name], field), getattr(want, field), err_msg=field)
    assert many.to_bytes() == one.to_bytes()


@pytest.mark.parametrize("order", ["F", "C"])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_2d_array_with_sensor_names_equals_the_mapping(order, threads):
    rng = np.random.default_rng(8)
    matrix = np.array(rng.normal(10.0, 1.0, (3000, 4)), order=order)
    matrix[1500, 2] = 40.0
    names = ["w", "x", "y", "z"]
    ts = np.arange(3000.0) * 60.0
    by_matrix = StatisticalAnomalyDetector(detection_method="zscore", window_size=40)
    by_mapping = StatisticalAnomalyDetector(detection_method="zscore", window_size=40)
    got = by_matrix.detect_many(matrix, ts, sensors=names, threads=threads)
    want = by_mapping.detect_many({n: matrix[:, j].copy() for j, n in enumerate(names)},
                                  {n: ts for n in names}, threads=threads)  # fmt: skip
    assert list(got) == names
    assert got["y"].is_anomaly[1500]
    for name in names:
        for field in (
            "values",
            "timestamps",
            "is_anomaly",
            "scores",
            "deviations",
            "expected",
            "window_counts",
        ):
            np.testing.assert_array_equal(
                getattr(got[name], field), getattr(want[name], field), err_msg=field
            )
    assert by_matrix.to_bytes() == by_mapping.to_bytes()
    if order == "F":  # a column of a Fortran-ordered array is scored in place
        assert np.shares_memory(got["x"].values, matrix)


def test_a_2d_array_refuses_bad_input_and_changes_nothing():
    det = StatisticalAnomalyDetector(detection_method="zscore", window_size=20)
    det.detect_batch("a", np.arange(30.0))
    before = det.to_bytes()
    matrix = np.ones((100, 3))
    with pytest.raises(TypeError, match=r"sensors=\[name, \.\.\.\]"):
        det.detect_many(matrix)
    with pytest.raises(ValueError, match=r"one column per sensor \(2\), got shape \(100, 3\)"):
        det.detect_many(matrix, sensors=["a", "b"])
    with pytest.raises(ValueError, match=r"given twice: \['a'\]"):
        det.detect_many(matrix, sensors=["a", "b", "a"])
    with pytest.raises(TypeError, match="2-D NumPy array"):
        det.detect_many({"a": np.ones(3)}, sensors=["a"])
    with pytest.raises(TypeError, match="shared by every sensor"):
        det.detect_many(matrix, {"a": np.arange(100.0)}, sensors=["a", "b", "c"])
    with pytest.raises(ValueError, match="timestamps"):
        det.detect_many(matrix, np.arange(99.0), sensors=["a", "b", "c"])
    bad = matrix.copy()
    bad[99, 2] = np.nan  # the last entry of the last sensor
    with pytest.raises(ValueError, match=r"sensor 'c': values\[99\]: expected a finite number, got nan"):
        det.detect_many(bad, sensors=["a", "b", "c"], threads=2)
    assert det.to_bytes() == before
    assert det.sensors() == ["a"]


@pytest.mark.parametrize("method", ["zscore", "ensemble"])
def test_outputs_share_a_block_but_a_kept_result_is_never_rewritten(method):
    # The sensors' outputs of one call are slices of one array per field (from the output
    # cache when large): each has its sensor's length, and a result kept while later calls
    # run (their blocks taken from the cache) keeps its values.
    n = 40_000 if method == "ensemble" else 150_000
    rng = np.random.default_rng(11)
    data = {name: rng.normal(0.0, 1.0, n - 7 * i) for i, name in enumerate(("a", "b", "c"))}
    det = StatisticalAnomalyDetector(detection_method=method, window_size=50)
    kept = det.detect_many(data, threads=2)["b"]
    fields = ("is_anomaly", "scores", "deviations", "expected", "window_counts", "alert_scores")
    snapshot = {f: getattr(kept, f).copy() for f in fields}
    assert len(kept.scores) == n - 7
    assert (method == "ensemble") != np.shares_memory(kept.alert_scores, kept.scores)
    for _ in range(3):
        other = det.detect_many({k: v[::-1].copy() for k, v in data.items()}, threads=2)
        assert not np.shares_memory(other["b"].scores, kept.scores)
        del other
    for f in fields:
        np.testing.assert_array_equal(getattr(kept, f), snapshot[f], err_msg=f)


def test_sensors_without_timestamps_are_stamped_with_one_instant():
    import time

    det = StatisticalAnomalyDetector(detection_method="zscore", window_size=20)
    before = time.time()
    out = det.detect_many({"a": np.arange(50.0), "b": np.arange(30.0), "c": np.arange(40.0)},
                          {"c": np.arange(40.0)}, threads=2)  # fmt: skip
    after = time.time()
    now = out["a"].timestamps[0]
    assert before <= now <= after
    assert np.all(out["a"].timestamps == now)
    assert np.all(out["b"].timestamps == now)
    assert len(out["b"].timestamps) == 30
    np.testing.assert_array_equal(out["c"].timestamps, np.arange(40.0))
    np.testing.assert_array_equal(det.get_window("b").timestamps, np.full(20, now))
