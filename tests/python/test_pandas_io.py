"""pandas in, pandas out: a Series' DatetimeIndex stamps its points, BatchResult.to_pandas,
nullable dtypes under both ``missing`` policies."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pandas as pd
import pytest
from servers import run_python

from anomaly_detection import StatisticalAnomalyDetector

COLUMNS = [
    "value",
    "is_anomaly",
    "score",
    "alert_score",
    "deviation",
    "expected",
    "window_count",
    "warming_up",
]


def _values(n: int = 40) -> np.ndarray:
    v = 20.0 + np.sin(np.arange(n) / 3.0)
    v[-1] = 60.0
    return v


def _detector(**overrides) -> StatisticalAnomalyDetector:
    return StatisticalAnomalyDetector(
        **{"detection_method": "zscore", "window_size": 20, "min_samples": 5, **overrides}
    )


def _epoch(index: pd.DatetimeIndex) -> np.ndarray:
    """Epoch seconds of an index, computed apart from the package's own conversion."""
    utc = index.tz_convert("UTC") if index.tz is not None else index.tz_localize("UTC")
    return np.array([t.timestamp() for t in utc])


def _state(det: StatisticalAnomalyDetector) -> dict:
    return {name: det.get_window(name) for name in det.sensors()}


# --- the DatetimeIndex gives the timestamps -----------------------------------------------------


@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_a_tz_aware_index_gives_the_timestamps(tz):
    index = pd.date_range("2026-03-08 05:00", periods=40, freq="15min", tz=tz)  # New York's DST change
    series = pd.Series(_values(), index=index)
    batch = _detector().detect_batch("s", series)
    expected = _epoch(index)
    np.testing.assert_array_equal(batch.timestamps, expected)
    np.testing.assert_array_equal(
        _detector().detect_batch("s", series.to_numpy(), expected).scores, batch.scores
    )
    assert batch.is_anomaly[-1]


def test_a_naive_index_is_taken_as_utc():
    naive = pd.date_range("2026-01-01", periods=40, freq="s")
    batch = _detector().detect_batch("s", pd.Series(_values(), index=naive))
    np.testing.assert_array_equal(batch.timestamps, _epoch(naive))
    assert batch.timestamps[0] == 1767225600.0  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_every_index_resolution_gives_the_same_seconds(unit):
    index = pd.DatetimeIndex(["2026-01-01 00:00:00", "2026-01-01 00:00:02"]).as_unit(unit)
    batch = _detector().detect_batch("s", pd.Series([1.0, 2.0], index=index))
    np.testing.assert_array_equal(batch.timestamps, [1767225600.0, 1767225602.0])
    if unit != "s":
        fraction = pd.DatetimeIndex(["2026-01-01 00:00:00.25"]).as_unit(unit)
        batch = _detector().detect_batch("t", pd.Series([1.0], index=fraction))
        np.testing.assert_array_equal(batch.timestamps, [1767225600.25])


def test_a_series_without_a_datetime_index_is_stamped_now():
    series = pd.Series(_values(5), index=pd.Index([10, 20, 30, 40, 50]))
    before = time.time()
    batch = _detector().detect_batch("s", series)
    after = time.time()
    assert ((batch.timestamps >= before) & (batch.timestamps <= after)).all()
    assert not np.isin(batch.timestamps, [10, 20, 30, 40, 50]).any()


def test_explicit_timestamps_win_over_the_index():
    series = pd.Series(_values(5), index=pd.date_range("2026-01-01", periods=5, freq="h"))
    batch = _detector().detect_batch("s", series, [1.0, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_array_equal(batch.timestamps, [1.0, 2.0, 3.0, 4.0, 5.0])
    other = pd.date_range("2030-06-01", periods=5, freq="D", tz="Asia/Tokyo")
    np.testing.assert_array_equal(_detector().detect_batch("s", series, other).timestamps, _epoch(other))
    as_series = pd.Series(other)  # a tz-aware Series of timestamps
    np.testing.assert_array_equal(_detector().detect_batch("s", series, as_series).timestamps, _epoch(other))


def test_explicit_index_timestamps_of_the_wrong_length_are_refused():
    det = _detector()
    with pytest.raises(ValueError, match=r"expected 3 .* length 2"):
        det.detect_batch("s", [1.0, 2.0, 3.0], pd.date_range("2026-01-01", periods=2, freq="h", tz="UTC"))
    assert det.sensors() == []


def test_a_nat_in_the_index_is_refused_and_changes_nothing():
    det = _detector()
    det.detect_batch("s", [1.0, 2.0], [1.0, 2.0])
    before = _state(det)
    index = pd.DatetimeIndex(["2026-01-01", pd.NaT, "2026-01-03"], tz="UTC")
    with pytest.raises(ValueError, match=r"timestamps\[1\]: .*NaT"):
        det.detect_batch("s", pd.Series([1.0, 2.0, 3.0], index=index))
    with pytest.raises(ValueError, match=r"timestamps\[1\]: .*NaT"):
        det.prime("s", pd.Series([1.0, 2.0, 3.0], index=index))
    assert _state(det).keys() == before.keys()
    np.testing.assert_array_equal(det.get_window("s").timestamps, [1.0, 2.0])


def test_prime_takes_the_index_and_fires_no_alert():
    det = _detector()
    alerts = []
    det.add_alert_listener(alerts.append)
    index = pd.date_range("2026-01-01", periods=40, freq="min", tz="Europe/Berlin")
    assert det.prime("s", pd.Series(_values(), index=index)) == 40
    assert alerts == []
    np.testing.assert_array_equal(det.get_window("s").timestamps, _epoch(index)[-20:])


def test_detect_many_takes_each_series_index_unless_timestamps_are_given():
    a = pd.Series(_values(), index=pd.date_range("2026-01-01", periods=40, freq="min", tz="UTC"))
    b = pd.Series(_values(), index=pd.date_range("2026-02-01", periods=40, freq="min"))
    c = _values()
    before = time.time()
    out = _detector().detect_many({"a": a, "b": b, "c": c}, timestamps={"b": np.arange(40.0)}, threads=2)
    np.testing.assert_array_equal(out["a"].timestamps, _epoch(a.index))
    np.testing.assert_array_equal(out["b"].timestamps, np.arange(40.0))
    assert (out["c"].timestamps >= before).all()
    np.testing.assert_array_equal(out["a"].scores, _detector().detect_batch("a", a).scores)


def test_adetect_batch_takes_the_index():
    index = pd.date_range("2026-01-01", periods=40, freq="min", tz="UTC")
    batch = asyncio.run(_detector().adetect_batch("s", pd.Series(_values(), index=index)))
    np.testing.assert_array_equal(batch.timestamps, _epoch(index))


def test_the_index_reaches_redis(redis_client):
    det = StatisticalAnomalyDetector(detection_method="zscore", window_size=20, min_samples=5,
                                     redis_client=redis_client)  # fmt: skip
    index = pd.date_range("2026-01-01", periods=40, freq="min", tz="Asia/Kolkata")
    batch = det.detect_batch("s", pd.Series(_values(), index=index))
    np.testing.assert_array_equal(batch.timestamps, _epoch(index))
    np.testing.assert_array_equal(det.get_window("s").timestamps, _epoch(index)[-20:])


# --- a DataFrame is refused ---------------------------------------------------------------------


def test_a_dataframe_is_refused_with_a_pointer_and_changes_nothing(redis_client):
    frame = pd.DataFrame({"cpu": _values(), "mem": _values()})
    for det in (_detector(), StatisticalAnomalyDetector(redis_client=redis_client)):
        with pytest.raises(TypeError, match=r"got a DataFrame .*'cpu'.*frame\[name\].*detect_many"):
            det.detect_batch("s", frame)
        with pytest.raises(TypeError, match=r"got a DataFrame .*detect_many"):
            asyncio.run(det.adetect_batch("s", frame))
        with pytest.raises(TypeError, match=r"got a DataFrame .*prime each column"):
            det.prime("s", frame)
        with pytest.raises(TypeError, match="got a DataFrame"):
            det.detect_many({"ok": _values(), "s": frame})
        with pytest.raises(TypeError, match=r"mapping .* DataFrame .*to_dict\('series'\)"):
            det.detect_many(frame)
        assert det.sensors() == []
    assert redis_client.dbsize() == 0


def test_the_suggested_to_dict_gives_one_sensor_per_column():
    index = pd.date_range("2026-01-01", periods=40, freq="min", tz="UTC")
    frame = pd.DataFrame({"cpu": _values(), "mem": _values() + 1.0}, index=index)
    out = _detector().detect_many(frame.to_dict("series"))
    assert sorted(out) == ["cpu", "mem"]
    np.testing.assert_array_equal(out["mem"].values, frame["mem"].to_numpy())
    np.testing.assert_array_equal(out["mem"].timestamps, _epoch(index))


# --- BatchResult.to_pandas ----------------------------------------------------------------------


def test_to_pandas_gives_the_columns_on_a_utc_index():
    index = pd.date_range("2026-01-01 00:00:00.123", periods=40, freq="250ms", tz="Europe/Paris")
    batch = _detector().detect_batch("pump-1", pd.Series(_values(), index=index))
    frame = batch.to_pandas()
    assert list(frame.columns) == COLUMNS
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert str(frame.index.tz) == "UTC"
    assert frame.index.name == "timestamp"
    assert (frame.index == index).all()  # the same instants, to the millisecond
    for column, array in [
        ("value", batch.values),
        ("is_anomaly", batch.is_anomaly),
        ("score", batch.scores),
        ("alert_score", batch.alert_scores),
        ("deviation", batch.deviations),
        ("expected", batch.expected),
        ("window_count", batch.window_counts),
        ("warming_up", batch.warming_up),
    ]:
        np.testing.assert_array_equal(frame[column].to_numpy(), array)
    assert frame["is_anomaly"].dtype == bool
    assert frame["warming_up"].dtype == bool
    assert frame["warming_up"].iloc[0]
    assert not frame["warming_up"].iloc[-1]
    assert frame["is_anomaly"].iloc[-1]
    assert frame.attrs == {"sensor_name": "pump-1", "method": "zscore", "threshold": 3.0}


def test_to_pandas_of_epoch_seconds_and_of_the_ensemble():
    stamps = 1767225600.0 + np.arange(40) * 60.0
    batch = StatisticalAnomalyDetector().detect_batch("s", _values(), stamps)
    frame = batch.to_pandas()
    assert frame.index[0] == pd.Timestamp("2026-01-01", tz="UTC")
    assert frame.index[-1] == pd.Timestamp("2026-01-01 00:39", tz="UTC")
    assert frame.attrs["method"] == "ensemble"
    assert frame["warming_up"].all()  # the ensemble's first 300 points
    # the ensemble's alarm logic: its own column, not a copy of the scores
    np.testing.assert_array_equal(frame["alert_score"].to_numpy(), batch.alert_scores)
    np.testing.assert_array_equal(frame["score"].to_numpy(), batch.scores)


def test_to_pandas_without_pandas_names_the_install():
    code = (
        "import sys\n"
        "sys.modules['pandas'] = None\n"
        "from anomaly_detection import StatisticalAnomalyDetector\n"
        "batch = StatisticalAnomalyDetector().detect_batch('s', [1.0, 2.0], [1.0, 2.0])\n"
        "try:\n"
        "    batch.to_pandas()\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert "pip install pandas" in out.stdout


# --- nullable and masked input under the missing policy -----------------------------------------


@pytest.mark.parametrize(
    "series",
    [
        pd.Series([1.0, 2.0, pd.NA, 4.0], dtype="Float64"),
        pd.Series([1, 2, pd.NA, 4], dtype="Int64"),
        pd.Series([1.0, 2.0, np.nan, 4.0]),
    ],
    ids=["Float64", "Int64", "float64-nan"],
)
def test_missing_pandas_entries_raise_under_the_raise_policy(series):
    det = _detector()
    det.detect_batch("s", [1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"values\[2\]: expected a number, got a missing .*missing='skip'"):
        det.detect_batch("s", series, [3.0, 4.0, 5.0, 6.0])
    with pytest.raises(ValueError, match=r"values\[2\]"):
        det.prime("s", series)
    with pytest.raises(ValueError, match=r"values\[2\]"):
        det.detect_many({"s": series})
    np.testing.assert_array_equal(det.get_window("s").values, [1.0, 2.0])
    assert det.stats("s")["points_seen"] == 2


@pytest.mark.parametrize("dtype", ["Float64", "Int64", "float64", "int64", "Int32", "UInt8"])
def test_nullable_dtypes_without_missing_entries_are_plain_numbers(dtype):
    data = [20, 21, 19, 20, 22, 21, 20, 19, 90]
    batch = _detector().detect_batch("s", pd.Series(data, dtype=dtype), np.arange(9.0))
    reference = _detector().detect_batch("s", np.array(data, dtype=float), np.arange(9.0))
    np.testing.assert_array_equal(batch.values, reference.values)
    np.testing.assert_array_equal(batch.scores, reference.scores)
    assert batch.is_anomaly[-1]


@pytest.mark.parametrize("dtype", ["Float64", "Int64"])
def test_missing_pandas_entries_are_skipped_under_skip(dtype):
    det = _detector(missing="skip")
    series = pd.Series([20, 21, pd.NA, 19, 20, 22, pd.NA, 21, 90], dtype=dtype)
    batch = det.detect_batch("s", series, np.arange(9.0))
    assert np.isnan(batch.values[[2, 6]]).all()
    assert np.isnan(batch.scores[[2, 6]]).all()
    assert not batch.is_anomaly[[2, 6]].any()
    assert batch.is_anomaly[-1]
    np.testing.assert_array_equal(det.get_window("s").values, [20, 21, 19, 20, 22, 21, 90])
    np.testing.assert_array_equal(det.get_window("s").timestamps, [0, 1, 3, 4, 5, 7, 8])
    # the present points scored as the same series without the gaps
    reference = _detector().detect_batch("s", [20.0, 21, 19, 20, 22, 21, 90], [0.0, 1, 3, 4, 5, 7, 8])
    np.testing.assert_array_equal(batch.scores[~np.isnan(batch.values)], reference.scores)


def test_the_index_with_gaps_under_skip():
    index = pd.date_range("2026-01-01", periods=9, freq="5min", tz="America/Chicago")
    series = pd.Series([20, 21, pd.NA, 19, 20, 22, pd.NA, 21, 90], dtype="Float64", index=index)
    det = _detector(missing="skip")
    batch = det.detect_batch("s", series)
    np.testing.assert_array_equal(batch.timestamps, _epoch(index))  # every point keeps its stamp
    np.testing.assert_array_equal(det.get_window("s").timestamps, _epoch(index)[[0, 1, 3, 4, 5, 7, 8]])
    frame = batch.to_pandas()
    assert (frame.index == index).all()
    assert frame["value"].isna().tolist() == [False, False, True, False, False, False, True, False, False]
    assert frame["score"].isna().sum() == 2
    assert frame["is_anomaly"].iloc[-1]
    assert not frame["is_anomaly"].iloc[[2, 6]].any()
    asynchronous = asyncio.run(_detector(missing="skip").adetect_batch("s", series))
    np.testing.assert_array_equal(asynchronous.scores, batch.scores)


def test_a_masked_numpy_array_and_a_nullable_series_agree_under_skip():
    masked = np.ma.masked_array([20.0, 21.0, 0.0, 19.0, 90.0], mask=[False, False, True, False, False])
    nullable = pd.Series([20.0, 21.0, pd.NA, 19.0, 90.0], dtype="Float64")
    a = _detector(missing="skip", min_samples=2).detect_batch("s", masked, np.arange(5.0))
    b = _detector(missing="skip", min_samples=2).detect_batch("s", nullable, np.arange(5.0))
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.is_anomaly, b.is_anomaly)


@pytest.mark.parametrize("missing", ["raise", "skip"])
def test_non_numeric_series_are_refused_under_both_policies(missing):
    det = _detector(missing=missing)
    with pytest.raises(ValueError, match=r"values(\[0\]: expected a number, got 'a'|: expected numbers)"):
        det.detect_batch("s", pd.Series(["a", "b"]), [1.0, 2.0])
    with pytest.raises(ValueError, match=r"booleans|expected numbers"):
        det.detect_batch("s", pd.Series([True, False]), [1.0, 2.0])
    with pytest.raises(ValueError, match=r"expected numbers|values\[0\]: expected a number, got True"):
        det.detect_batch("s", pd.Series([True, pd.NA], dtype="boolean"), [1.0, 2.0])
    assert det.sensors() == []
