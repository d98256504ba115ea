"""Issue 16, item 8: every input that was accepted or answered badly gets a clear
ValueError (422 over HTTP, with no binding internals in the message) and changes nothing."""

from __future__ import annotations

import struct

import httpx
import numpy as np
import pytest
from test_api_support import LiveServer

from anomaly_detection import Settings, StatisticalAnomalyDetector
from anomaly_detection.api import create_app
from anomaly_detection.forest import IsolationForest

LONE_SURROGATE = "pump\ud800"
BLANK_LOOKALIKES = {
    "no-break space": "pump\u00a01",
    "line separator U+2028": "pump\u20281",
    "zero-width space": "pump\u200b1",
    "BOM": "\ufeffpump",
    "right-to-left override": "pump\u202e1",
}
HUGE = 10**400


@pytest.fixture
def det():
    d = StatisticalAnomalyDetector(window_size=10, min_samples=3)
    d.detect_batch("s", [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0])
    return d


def assert_unchanged(det) -> None:
    """The state the fixture made, exactly: one sensor, its four points."""
    assert det.sensors() == ["s"]
    window = det.get_window("s")
    np.testing.assert_array_equal(window.values, [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(window.timestamps, [1.0, 2.0, 3.0, 4.0])
    assert det.stats("s")["points_seen"] == 4


def assert_no_internals(message: str) -> None:
    for internal in ("incompatible function arguments", "_core", "pybind", "Invoked with", "(self:"):
        assert internal not in message, message


# --- sensor names -------------------------------------------------------------------------------


def test_lone_surrogate_in_a_sensor_name_is_a_value_error(det):
    for call in (
        lambda: det.detect(LONE_SURROGATE, 1.0, 5.0),
        lambda: det.detect_batch(LONE_SURROGATE, [1.0], [5.0]),
        lambda: det.get_window(LONE_SURROGATE),
        lambda: det.reset(LONE_SURROGATE),
    ):
        with pytest.raises(ValueError, match="lone surrogate") as info:
            call()
        assert_no_internals(str(info.value))
    assert_unchanged(det)


@pytest.mark.parametrize("name", BLANK_LOOKALIKES.values(), ids=BLANK_LOOKALIKES.keys())
def test_unicode_blanks_and_invisible_characters_in_names_are_refused(det, name):
    with pytest.raises(ValueError, match="invisible"):
        det.detect(name, 1.0, 5.0)
    with pytest.raises(ValueError, match="invisible"):
        det.detect_batch(name, [1.0, 2.0], [5.0, 6.0])
    assert_unchanged(det)


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_and_dot_dot_are_refused_as_names(det, name):
    with pytest.raises(ValueError, match=r"'\.' and '\.\.'"):
        det.detect(name, 1.0, 5.0)
    with pytest.raises(ValueError, match="sensor name"):
        det.detect_batch(name, [1.0], [5.0])
    assert_unchanged(det)
    det.detect("...", 1.0, 5.0)  # only the path segments themselves
    det.detect(".hidden", 1.0, 5.0)
    assert det.sensors() == ["...", ".hidden", "s"]


# --- values and timestamps ----------------------------------------------------------------------


def test_huge_integer_value_is_a_value_error_not_overflow(det):
    with pytest.raises(ValueError, match="value: expected a finite number") as info:
        det.detect("s", HUGE, 5.0)
    assert len(str(info.value)) < 200  # 401 digits are cut
    with pytest.raises(ValueError, match="values"):
        det.detect_batch("s", [1.0, HUGE], [5.0, 6.0])
    assert_unchanged(det)


def test_huge_integer_timestamp_is_a_value_error_not_overflow(det):
    with pytest.raises(ValueError, match="timestamp: expected a finite number"):
        det.detect("s", 1.0, HUGE)
    with pytest.raises(ValueError, match=r"timestamps\[1\]"):
        det.detect_batch("s", [1.0, 2.0], [5.0, HUGE])
    assert_unchanged(det)


def test_nat_timestamp_is_refused(det):
    with pytest.raises(ValueError, match="NaT"):
        det.detect("s", 1.0, np.datetime64("NaT"))
    with pytest.raises(ValueError, match=r"timestamps\[1\].*NaT"):
        det.detect_batch("s", [1.0, 2.0], np.array(["2026-01-01", "NaT"], dtype="datetime64[s]"))
    assert_unchanged(det)


def test_none_inside_a_timestamp_list_is_refused_not_now(det):
    with pytest.raises(ValueError, match=r"timestamps\[1\]: expected .* got None"):
        det.detect_batch("s", [1.0, 2.0], [5.0, None])
    with pytest.raises(ValueError, match=r"timestamps\[0\]"):
        det.detect_batch("s", [1.0, 2.0], [None, "2026-01-01T00:00:00"])
    assert_unchanged(det)


def test_complex_timestamps_are_refused(det):
    with pytest.raises(ValueError, match="timestamp"):
        det.detect("s", 1.0, 5 + 1j)
    with pytest.raises(ValueError, match="timestamp"):
        det.detect("s", 1.0, np.complex128(5 + 1j))
    with pytest.raises(ValueError, match="complex"):
        det.detect_batch("s", [1.0, 2.0], np.array([5 + 0j, 6 + 1j]))
    with pytest.raises(ValueError, match=r"timestamps\[1\]"):
        det.detect_batch("s", [1.0, 2.0], ["2026-01-01T00:00:00", 6 + 1j])
    assert_unchanged(det)


def test_bool_values_are_refused(det):
    with pytest.raises(ValueError, match="booleans"):
        det.detect_batch("s", np.array([True, False]), [5.0, 6.0])
    with pytest.raises(ValueError, match="booleans"):
        det.prime("s", [True, False, True])
    with pytest.raises(ValueError, match="value"):
        det.detect("s", True, 5.0)
    with pytest.raises(ValueError, match="value"):
        det.detect("s", np.bool_(False), 5.0)
    assert_unchanged(det)


def test_masked_entries_raise_under_the_raise_policy(det):
    masked = np.ma.masked_array([10.0, 11.0, 12.0], mask=[False, True, False])
    with pytest.raises(ValueError, match=r"values\[1\].*masked"):
        det.detect_batch("s", masked, [5.0, 6.0, 7.0])
    assert_unchanged(det)
    # no entry masked: the data is used as it is
    det.detect_batch("s", np.ma.masked_array([5.0, 6.0], mask=[False, False]), [5.0, 6.0])
    assert det.stats("s")["points_seen"] == 6


def test_masked_entries_are_missing_values_under_skip():
    det = StatisticalAnomalyDetector(window_size=10, min_samples=3, missing="skip")
    batch = det.detect_batch(
        "s", np.ma.masked_array([1.0, 99.0, 3.0], mask=[False, True, False]), [1.0, 2.0, 3.0]
    )
    assert np.isnan(batch.scores[1])
    np.testing.assert_array_equal(det.get_window("s").values, [1.0, 3.0])


# --- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [" , ", ",", " ,, ,"])
def test_api_keys_of_only_separators_are_refused_not_auth_off(monkeypatch, raw):
    monkeypatch.setenv("ANOMALY_API_KEYS", raw)
    with pytest.raises(ValueError, match="api_keys"):
        Settings()
    with pytest.raises(ValueError, match="api_keys"):
        Settings(api_keys=["key", "  "])
    monkeypatch.setenv("ANOMALY_API_KEYS", "")
    assert Settings().api_keys == []  # an empty value still means: no authentication
    monkeypatch.setenv("ANOMALY_API_KEYS", " k1 ,, k2 ")
    assert Settings().api_keys == ["k1", "k2"]


def test_ttl_beyond_what_redis_accepts_is_refused(monkeypatch):
    monkeypatch.setenv("ANOMALY_TEMP_DATA_TTL", str(10**17))
    with pytest.raises(ValueError, match="temp_data_ttl"):
        Settings()
    settings = Settings(temp_data_ttl=600)
    with pytest.raises(ValueError, match="temp_data_ttl"):
        settings.temp_data_ttl = 10**17
    assert settings.temp_data_ttl == 600


def test_the_largest_ttl_is_accepted_by_redis(redis_client):
    from anomaly_detection.config.settings import REDIS_MAX_TTL

    det = StatisticalAnomalyDetector(Settings(temp_data_ttl=REDIS_MAX_TTL, detection_method="zscore"),
                                     redis_client=redis_client)  # fmt: skip
    det.detect("ttl-max", 1.0, 1.0)
    assert det.get_window("ttl-max").values.tolist() == [1.0]
    assert redis_client.ttl(next(iter(redis_client.scan_iter("anomaly:temp:data:ttl-max*")))) > 10**14


# --- bytes --------------------------------------------------------------------------------------


def _reseal(blob: bytes, payload: bytes) -> bytes:
    """``blob``'s header around a new payload (length and FNV-1a checksum recomputed)."""
    h = 0xCBF29CE484222325
    for b in payload:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return blob[:8] + struct.pack("<QQ", len(payload), h) + payload


def test_snapshot_with_a_non_utf8_sensor_name_is_refused_at_load():
    det = StatisticalAnomalyDetector(detection_method="zscore", window_size=10, min_samples=3)
    det.detect_batch("abcd", [1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    blob = det.to_bytes()
    payload = blob[24:]
    assert payload.count(b"abcd") == 1
    bad = _reseal(blob, payload.replace(b"abcd", b"ab\xff\xfe"))
    assert StatisticalAnomalyDetector.from_bytes(_reseal(blob, payload)).sensors() == [
        "abcd"
    ]  # resealing works
    with pytest.raises(ValueError, match="possible corruption: sensor name"):
        StatisticalAnomalyDetector.from_bytes(bad)
    for invisible in ("a\u200bc".encode(), b".."):  # the same rule as for names given to detect
        renamed = payload.replace(b"\x04\x00\x00\x00abcd", struct.pack("<I", len(invisible)) + invisible)
        if renamed == payload:  # the name's length prefix is not 32-bit: use 64-bit
            renamed = payload.replace(
                struct.pack("<Q", 4) + b"abcd", struct.pack("<Q", len(invisible)) + invisible
            )
        assert renamed != payload
        with pytest.raises(ValueError, match="possible corruption: sensor name"):
            StatisticalAnomalyDetector.from_bytes(_reseal(blob, renamed))


def test_isolation_forest_bytes_with_absurd_n_features_fail_at_load():
    X = np.random.default_rng(0).normal(size=(256, 3))
    blob = IsolationForest(n_estimators=5, random_state=0).fit(X).to_bytes()
    payload = blob[24:]
    field = struct.pack("<Q", 3)
    assert field in payload
    at = payload.index(field)  # the first u64 equal to 3 after the config is n_features_in
    absurd = _reseal(blob, payload[:at] + struct.pack("<Q", 4293918720) + payload[at + 8 :])
    with pytest.raises(ValueError, match="n_features_in"):
        IsolationForest.from_bytes(absurd)
    assert IsolationForest.from_bytes(blob).n_features_in_ == 3


# --- over HTTP ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live():
    app = create_app(Settings(detection_method="zscore", min_samples=3, window_size=10))
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        r = client.post("/api/detect/batch", json={"sensor_name": "h", "values": [1.0, 2.0, 3.0]})
        assert r.status_code == 200, r.text
        yield client


def _sensors(client) -> list[str]:
    return sorted(
        s["name"] if isinstance(s, dict) else s for s in client.get("/api/sensors").json()["sensors"]
    )


@pytest.mark.parametrize(
    "body",
    [
        '{"sensor_name": "pump\\ud800", "value": 1.0}',
        '{"sensor_name": "pump\\u00a01", "value": 1.0}',
        '{"sensor_name": "pump\\u2028", "value": 1.0}',
        '{"sensor_name": "pump\\u200b", "value": 1.0}',
        '{"sensor_name": "..", "value": 1.0}',
        '{"sensor_name": "h", "value": 1' + "0" * 400 + "}",
        '{"sensor_name": "h", "value": 1.0, "timestamp": 1' + "0" * 400 + "}",
    ],
    ids=["surrogate", "nbsp", "u2028", "zwsp", "dotdot", "huge-value", "huge-timestamp"],
)
def test_http_bad_input_is_422_without_internals_and_changes_nothing(live, body):
    before = _sensors(live)
    point = '{"type": "point", ' + body[1:]
    valid = '{"type": "point", "sensor_name": "h2", "value": 1.0}'
    for path, payload in (
        ("/api/detect", body),
        ("/api/batch", '{"metrics": [' + point + "]}"),
        ("/api/batch", '{"metrics": [' + valid + ", " + point + "]}"),  # a valid item is not stored either
    ):
        r = live.post(path, content=payload, headers={"content-type": "application/json"})
        assert r.status_code == 422, (path, r.status_code, r.text)
        assert_no_internals(r.text)
    assert _sensors(live) == before
    assert live.get("/api/sensors/h/window").json()["values"] == [1.0, 2.0, 3.0]


def test_a_huge_integer_in_a_batch_names_its_entry(det):
    # "values: expected numbers, got an array of dtype object" did not say which entry.
    with pytest.raises(ValueError, match=r"values\[1\]: expected a number, got 1000") as info:
        det.detect_batch("s", [1.0, HUGE, 3.0], [5.0, 6.0, 7.0])
    assert len(str(info.value)) < 200  # 401 digits are cut
    with pytest.raises(ValueError, match=r"values\[2\]: expected a number, got None"):
        det.detect_batch("s", [1.0, 2.0, None], [5.0, 6.0, 7.0])
    assert_unchanged(det)


def test_a_huge_integer_in_a_batch_with_gaps_names_its_entry():
    # missing="skip" takes None as a gap; a value that is no number still names its entry.
    det = StatisticalAnomalyDetector(detection_method="zscore", missing="skip")
    with pytest.raises(ValueError, match=r"values\[2\]: expected a number, got 1000"):
        det.detect_batch("g", [1.0, None, HUGE, 3.0], [5.0, 6.0, 7.0, 8.0])
    assert "g" not in det.sensors()


def test_a_huge_integer_in_an_http_batch_names_its_entry():
    app = create_app(Settings(detection_method="zscore", min_samples=3))
    service = app.state.anomaly_service
    body = '{"sensor_name": "huge", "values": [1.0, 2.0, ' + str(HUGE) + "]}"
    with LiveServer(app) as url:
        r = httpx.post(
            url + "/api/detect/batch", content=body, headers={"content-type": "application/json"}, timeout=10
        )
    assert r.status_code == 422, r.text  # the request model names the entry already
    assert r.json()["detail"][0]["loc"] == ["body", "values", 2], r.text
    assert len(r.text) < 400
    assert "huge" not in service.detector.sensors()
