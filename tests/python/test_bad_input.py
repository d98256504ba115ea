"""Bad input gets a clear error and changes nothing; corrupt bytes never crash."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anomaly_detection import Settings, StatisticalAnomalyDetector

BAD_NAMES = ["", "a:b", "a*", "a?", "a[1]", "x]", "{tag}", "}", "with space", "tab\t", "new\nline", "x" * 201]


@pytest.fixture
def det():
    d = StatisticalAnomalyDetector(window_size=10, min_samples=3)
    d.detect_batch("s", [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0])
    return d


def unchanged(det, before):
    after = det.get_window("s")
    np.testing.assert_array_equal(after.values, before.values)
    np.testing.assert_array_equal(after.timestamps, before.timestamps)
    assert det.stats("s")["points_seen"] == 4


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "abc", "1.5", None, [1.0], b"1"])
def test_detect_rejects_non_finite_or_non_numeric_values(det, value):
    before = det.get_window("s")
    with pytest.raises((ValueError, TypeError)):
        det.detect("s", value)
    unchanged(det, before)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ([1.0, math.nan, 2.0], r"values\[1\]"),
        ([1.0, math.inf], r"values\[1\]"),
        ([], "empty"),
        (np.ones((2, 3)), "1-D"),
        (np.float64(3.0), "1-D"),
        (["a", "b"], "dtype"),
        (np.array([1, 2], dtype=object), "dtype"),
        (np.array(["2026-01-01"], dtype="datetime64[s]"), "dtype"),
    ],
)
def test_detect_batch_rejects_bad_arrays_and_changes_nothing(det, values, match):
    before = det.get_window("s")
    with pytest.raises(ValueError, match=match):
        det.detect_batch("s", values)
    unchanged(det, before)


@pytest.mark.parametrize(
    "timestamps", [[1.0, 2.0], [1.0, 2.0, 3.0, 4.0], np.ones((3, 1)), [1.0, math.nan, 3.0], ["x", "y", "z"]]
)
def test_detect_batch_rejects_bad_timestamps(det, timestamps):
    before = det.get_window("s")
    with pytest.raises(ValueError, match="timestamp"):
        det.detect_batch("s", [5.0, 6.0, 7.0], timestamps)
    unchanged(det, before)


def test_timestamps_accept_datetime64_and_iso_strings(det):
    r = det.detect_batch(
        "t", [1.0, 2.0], np.array(["2026-01-01T00:00:00", "2026-01-01T00:00:01"], "datetime64[s]")
    )
    np.testing.assert_array_equal(r.timestamps, [1767225600.0, 1767225601.0])
    r = det.detect_batch("u", [1.0, 2.0], ["2026-01-01T00:00:00+00:00", "2026-01-01 00:00:02"])
    np.testing.assert_array_equal(r.timestamps, [1767225600.0, 1767225602.0])


@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_sensor_names_are_rejected(det, name):
    with pytest.raises(ValueError, match="sensor name"):
        det.detect(name, 1.0)
    with pytest.raises(ValueError, match="sensor name"):
        det.detect_batch(name, [1.0])
    assert det.sensors() == ["s"]


def test_non_string_sensor_name_is_a_type_error(det):
    with pytest.raises(TypeError):
        det.detect(42, 1.0)


def test_valid_names_include_unicode_and_punctuation(det):
    for name in ["pump-1", "rack_7.temp", "höhe/2", "x" * 200, "ünïcode-ключ"]:
        det.detect(name, 1.0)
    assert len(det.sensors()) == 6


@pytest.mark.parametrize(
    "kwargs",
    [
        {"detection_method": "bogus"},
        {"window_size": 1},
        {"window_size": 0},
        {"min_samples": 1},
        {"zscore_threshold": 0},
        {"zscore_threshold": -1},
        {"mad_threshold": math.nan},
        {"ewma_alpha": 0},
        {"ewma_alpha": 1.5},
        {"cusum_k": -0.1},
        {"max_sensors": -1},
        {"window_size": 10, "min_samples": 20},
        {"redis_port": 0},
        {"redis_key_prefix": "bad:prefix"},
        {"fallback_policy": "sometimes"},
        {"sse_heartbeat_seconds": 1e-9},  # a keep-alive every nanosecond flooded the stream's clients
    ],
)
def test_invalid_settings_raise_value_error(kwargs):
    with pytest.raises(ValueError):  # pydantic's ValidationError is a ValueError
        Settings(**kwargs)
    with pytest.raises(ValueError):
        StatisticalAnomalyDetector(**kwargs)


def test_settings_read_from_prefixed_environment_and_dotenv_only_when_asked(monkeypatch, tmp_path):
    monkeypatch.setenv("ANOMALY_WINDOW_SIZE", "64")
    monkeypatch.setenv("ANOMALY_DETECTION_METHOD", "mad")
    monkeypatch.setenv("ANOMALY_API_KEYS", "k1, k2")
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("ANOMALY_REDIS_HOST=redis.internal\nANOMALY_MIN_SAMPLES=7\n")
    s = Settings()
    assert (s.window_size, s.detection_method, s.api_keys) == (64, "mad", ["k1", "k2"])
    assert (s.redis_host, s.min_samples) == ("localhost", 10)  # a .env in the working directory is not read
    s = Settings(_env_file=".env")
    assert (s.redis_host, s.min_samples) == ("redis.internal", 7)
    assert s.threshold == 3.5
    assert "k1" not in repr(s)  # secrets stay out of logs
    monkeypatch.setenv("ANOMALY_WINDOW_SIZE", "1")
    with pytest.raises(ValueError, match="window_size"):
        Settings()


def test_a_host_applications_unprefixed_variables_are_not_read(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name, value in (("WINDOW_SIZE", "7"), ("REDIS_HOST", "elsewhere"), ("DETECTION_METHOD", "nope")):
        monkeypatch.setenv(name, value)
    (tmp_path / ".env").write_text("ANOMALY_WINDOW_SIZE=1\n")
    s = Settings()
    assert (s.window_size, s.redis_host, s.detection_method) == (100, "localhost", "ensemble")
    assert StatisticalAnomalyDetector().settings.window_size == 100


@pytest.mark.parametrize(
    ("call", "hint"),
    [
        (lambda: Settings(windowsize=10), "window_size"),
        (lambda: Settings(detection_methd="mad"), "detection_method"),
        (lambda: StatisticalAnomalyDetector(windowsize=10), "window_size"),
        (lambda: StatisticalAnomalyDetector(detection_methd="mad"), "detection_method"),
        (lambda: StatisticalAnomalyDetector(Settings(), zscore_treshold=2.0), "zscore_threshold"),
        (lambda: Settings().replace(min_sample=3), "min_samples"),
    ],
)
def test_unknown_keyword_arguments_raise_type_error_with_the_close_match(call, hint):
    with pytest.raises(TypeError, match=f"did you mean {hint}\\?"):
        call()


def test_unknown_attribute_raises_type_error_and_changes_nothing():
    s = Settings()
    with pytest.raises(TypeError, match="did you mean window_size"):
        s.windowsize = 10
    assert s.window_size == 100
    with pytest.raises(TypeError, match=r"unknown setting 'xyzzy'$"):
        Settings(xyzzy=1)


def test_threshold_keyword_sets_the_chosen_methods_threshold():
    det = StatisticalAnomalyDetector(detection_method="zscore", threshold=2.0)
    assert (det.threshold, det.settings.zscore_threshold, det.settings.mad_threshold) == (2.0, 2.0, 3.5)
    assert Settings(detection_method="iqr", threshold=3.0).iqr_multiplier == 3.0
    assert Settings(threshold=0.8).ensemble_threshold == 0.8
    s = Settings(detection_method="mad")
    s.threshold = 4.0
    assert s.mad_threshold == 4.0
    with pytest.raises(ValueError, match="ensemble_threshold"):
        Settings(threshold=2.0)  # the ensemble's threshold is a score in (0, 1]


def test_settings_defaults_match_the_original_prototype(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert (s.redis_host, s.redis_port, s.redis_db, s.redis_password, s.redis_ssl, s.redis_key_prefix) == (
        "localhost", 6379, 0, None, False, "anomaly",
    )  # fmt: skip


def test_get_settings_is_cached():
    from anomaly_detection import get_settings

    assert get_settings() is get_settings()


def test_original_prototype_import_paths():
    from anomaly_detection import Settings as S1
    from anomaly_detection import StatisticalAnomalyDetector as D1
    from anomaly_detection.config.settings import Settings as S2
    from anomaly_detection.core.detector import StatisticalAnomalyDetector as D3
    from anomaly_detection.core.StatisticalAnomalyDetector import StatisticalAnomalyDetector as D2

    assert S1 is S2
    assert D1 is D2 is D3


def _snapshot() -> bytes:
    d = StatisticalAnomalyDetector(detection_method="mad", window_size=16, min_samples=3)
    d.detect_batch("a", np.arange(40.0))
    d.detect_batch("b", np.sin(np.arange(10.0)))
    return d.to_bytes()


def test_snapshot_restores():
    d = StatisticalAnomalyDetector.from_bytes(_snapshot())
    assert d.sensors() == ["a", "b"]
    assert d.stats("a")["points_seen"] == 40


@pytest.mark.parametrize("cut", [0, 1, 10, 23, 24, 30, -1])
def test_truncated_snapshot_raises_value_error(cut):
    blob = _snapshot()
    with pytest.raises(ValueError, match="possible corruption"):
        StatisticalAnomalyDetector.from_bytes(blob[:cut] if cut >= 0 else blob[:-1])


def test_wrong_family_or_garbage_raises_value_error():
    with pytest.raises(ValueError, match="magic"):
        StatisticalAnomalyDetector.from_bytes(b"not a snapshot at all, just some bytes")
    with pytest.raises(TypeError):
        StatisticalAnomalyDetector.from_bytes("text")


def test_random_mutations_never_crash():
    blob = bytearray(_snapshot())
    rng = np.random.default_rng(0)
    for _ in range(20_000):
        mutated = blob.copy()
        for pos in rng.integers(0, len(blob), rng.integers(1, 4)):
            mutated[pos] = int(rng.integers(0, 256))
        if mutated == blob:
            continue
        with pytest.raises(ValueError):
            StatisticalAnomalyDetector.from_bytes(bytes(mutated))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash(data):
    with pytest.raises(ValueError):
        StatisticalAnomalyDetector.from_bytes(data)


def test_every_setting_is_documented_with_its_environment_variable():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "settings.md").read_text()
    missing = [
        name for name in Settings.model_fields if f"| `ANOMALY_{name.upper()}` | `{name}` |" not in docs
    ]
    assert missing == []


@pytest.mark.parametrize("method", ["zscore", "ewma", "cusum", "iqr", "mad", "ensemble"])
@pytest.mark.parametrize(
    ("where", "bad", "match"),
    [
        ("values", math.nan, r"^values\[2500\]: expected a finite number, got nan$"),
        ("values", -math.inf, r"^values\[2500\]: expected a finite number, got -inf$"),
        ("timestamps", math.inf, r"^timestamps\[2500\]: expected a finite number, got inf$"),
    ],
)
def test_a_non_finite_entry_deep_in_a_batch_changes_nothing(method, where, bad, match):
    # The embedded store checks the batch as its kernels reach each block (z-score, EWMA and
    # CUSUM), after earlier blocks have moved the running sums: still nothing may change, on
    # a known sensor or a new one, and the error names the entry.
    det = StatisticalAnomalyDetector(detection_method=method, window_size=50, min_samples=5)
    rng = np.random.default_rng(3)
    det.detect_batch("s", rng.normal(20.0, 1.0, 300), np.arange(300.0))
    before = det.to_bytes()
    values, ts = rng.normal(20.0, 1.0, 3000), 300.0 + np.arange(3000.0)
    (values if where == "values" else ts)[2500] = bad
    for sensor in ("s", "new"):
        with pytest.raises(ValueError, match=match):
            det.detect_batch(sensor, values, ts)
        assert det.to_bytes() == before
        assert det.sensors() == ["s"]
