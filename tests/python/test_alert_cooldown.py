"""The ensemble's alert cooldown in points or in seconds: Settings, detect and detect_batch,
snapshots, the Redis store and the HTTP service."""

from __future__ import annotations

from datetime import timedelta

import httpx
import numpy as np
import pytest
from test_api_support import LiveServer

from anomaly_detection import Settings, StatisticalAnomalyDetector

HOUR = 3600.0


def irregular(n: int = 3000, seed: int = 3) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """A daily cycle sampled every 1 to 9 minutes at random, with three clear spikes: the
    second 40 minutes after the first, the third six hours after the first (beyond the echo of
    the second in the ensemble's shape feature: its windows of 32 points hold the spike)."""
    rng = np.random.default_rng(seed)
    ts = 1.7e9 + np.concatenate([[0.0], np.cumsum(rng.integers(1, 10, n - 1) * 60.0)])
    values = 50 + 10 * np.sin(2 * np.pi * ts / 86400) + rng.normal(0, 0.5, n)
    first = 2000
    second = int(np.searchsorted(ts, ts[first] + 40 * 60))
    third = int(np.searchsorted(ts, ts[first] + 6 * HOUR))
    values[[first, second, third]] = [500.0, 5_000.0, 50_000.0]  # each beyond the range so far
    return values, ts, [first, second, third]


def ensemble(**kw) -> StatisticalAnomalyDetector:
    return StatisticalAnomalyDetector(detection_method="ensemble", **kw)


# --- Settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (100, 100),
        ("250", 250),
        (0, 0),
        ("30min", timedelta(minutes=30)),
        ("90s", timedelta(seconds=90)),
        ("1.5h", timedelta(hours=1.5)),
        ("2 days", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("PT30M", timedelta(minutes=30)),
        (timedelta(seconds=45), timedelta(seconds=45)),
    ],
)
def test_cooldown_is_points_or_a_duration(given, expected):
    s = Settings(alert_cooldown=given)
    assert s.alert_cooldown == expected
    assert type(s.alert_cooldown) is type(expected)
    config = s.to_detector_config()
    if isinstance(expected, timedelta):
        assert (config.alert_cooldown, config.alert_cooldown_seconds) == (0, expected.total_seconds())
        assert s.alert_cooldown_seconds == expected.total_seconds()
    else:
        assert (config.alert_cooldown, config.alert_cooldown_seconds) == (expected, 0.0)
        assert s.alert_cooldown_seconds is None
    assert Settings.from_detector_config(config).alert_cooldown == expected
    assert Settings.model_validate(s.model_dump(mode="json")).alert_cooldown == expected


def test_cooldown_from_the_environment(monkeypatch):
    monkeypatch.setenv("ANOMALY_ALERT_COOLDOWN", "15min")
    assert Settings().alert_cooldown == timedelta(minutes=15)
    monkeypatch.setenv("ANOMALY_ALERT_COOLDOWN", "42")
    assert Settings().alert_cooldown == 42


@pytest.mark.parametrize(
    "bad",
    [-1, 1_000_001, 1.5, True, "5 parsecs", "soon", timedelta(seconds=-1), "1e11s", "-PT1M", "P400000D",
     "2000000000d", "9" * 400 + "s", "99999999999999999999w"],  # beyond timedelta: OverflowError before
)  # fmt: skip
def test_bad_cooldowns_are_refused(bad):
    with pytest.raises(ValueError, match="alert_cooldown"):
        Settings(alert_cooldown=bad)


def test_the_core_refuses_both_forms_at_once():
    config = Settings().to_detector_config()
    config.alert_cooldown_seconds = 60.0
    with pytest.raises(ValueError, match="not both"):
        config.validate()


# --- detection --------------------------------------------------------------------------


def test_a_cooldown_in_seconds_holds_alarms_for_that_long_on_irregular_timestamps():
    values, ts, (first, second, third) = irregular()
    held = ensemble(alert_cooldown="1h").detect_batch("s", values, ts)
    free = ensemble(alert_cooldown=0).detect_batch("s", values, ts)
    np.testing.assert_array_equal(held.scores, free.scores)  # the ranking score never sees the cooldown
    assert held.is_anomaly[first]
    assert free.is_anomaly[first]
    assert free.is_anomaly[second]  # without a cooldown: a second alarm 40 minutes on
    assert not held.is_anomaly[second]  # within the hour: held
    assert held.alert_scores[second] < free.alert_scores[second]
    assert held.is_anomaly[third]  # six hours on: a new alarm
    within = (ts > ts[first]) & (ts < ts[first] + HOUR)
    assert not held.is_anomaly[within].any()
    assert (held.alert_scores[within] < 0.5).all()
    # the same cooldown in points (as many as the hour holds here) does the same on these points,
    # but a cooldown in points knows nothing of time: 40 minutes are fewer points than the hour
    points = int(within.sum())
    by_points = ensemble(alert_cooldown=points).detect_batch("s", values, ts)
    np.testing.assert_array_equal(by_points.is_anomaly[: third + 1], held.is_anomaly[: third + 1])


def test_point_by_point_equals_the_batch_and_snapshots_keep_the_hold():
    values, ts, (first, second, third) = irregular()
    batch = ensemble(alert_cooldown=timedelta(hours=1)).detect_batch("s", values, ts)
    det = ensemble(alert_cooldown=timedelta(hours=1))
    det.detect_batch("s", values[: first + 1], ts[: first + 1])  # the first alarm
    restored = StatisticalAnomalyDetector.from_bytes(det.to_bytes())  # restored inside the cooldown
    assert restored.settings.alert_cooldown == timedelta(hours=1)
    loop = [restored.detect("s", float(v), float(t)) for v, t in zip(values[first + 1 :], ts[first + 1 :])]
    np.testing.assert_array_equal([r.is_anomaly for r in loop], batch.is_anomaly[first + 1 :])
    np.testing.assert_array_equal([r.score for r in loop], batch.scores[first + 1 :])
    assert not loop[second - first - 1].is_anomaly
    assert loop[third - first - 1].is_anomaly


def test_the_redis_store_holds_by_time_as_the_embedded_store(redis_client):
    values, ts, (first, second, third) = irregular()
    reference = ensemble(alert_cooldown="1h").detect_batch("s", values, ts)
    det = StatisticalAnomalyDetector(
        Settings(detection_method="ensemble", alert_cooldown="1h", redis_alerts=False),
        redis_client=redis_client,
    )
    flags, alert_scores = [], []
    for lo in range(0, len(values), 97):  # batches across the alarms, checkpoints in between
        part = det.detect_batch("s", values[lo : lo + 97], ts[lo : lo + 97])
        flags.extend(part.is_anomaly)
        alert_scores.extend(part.alert_scores)
    np.testing.assert_array_equal(flags, reference.is_anomaly)
    np.testing.assert_allclose(alert_scores, reference.alert_scores, rtol=0, atol=0)
    assert flags[first]
    assert not flags[second]
    assert flags[third]


def test_the_http_service_uses_the_cooldown_in_seconds():
    values, ts, (first, second, third) = irregular()
    app = create_app_with(alert_cooldown="1h")
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        got = {"is_anomaly": [], "alert_scores": []}
        for lo in range(0, len(values), 1000):
            r = client.post(
                "/api/detect/batch",
                json={
                    "sensor_name": "pump",
                    "values": values[lo : lo + 1000].tolist(),
                    "timestamps": ts[lo : lo + 1000].tolist(),
                },
            )
            assert r.status_code == 200, r.text
            for key, column in got.items():
                column.extend(r.json()[key])
    assert got["is_anomaly"][first]
    assert not got["is_anomaly"][second]
    assert got["is_anomaly"][third]
    reference = ensemble(alert_cooldown="1h").detect_batch("s", values, ts)
    np.testing.assert_allclose(got["alert_scores"], reference.alert_scores, rtol=1e-12)


def create_app_with(**kw):
    from anomaly_detection.api import create_app

    return create_app(Settings(detection_method="ensemble", max_batch_items=1000, **kw))
