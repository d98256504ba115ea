"""The window's compact mirror (the ring ``anomaly:temp:data:<sensor>:mirror``, described by the fields ``ring`` and
``tail`` of ``anomaly:temp:data:<sensor>:stats``) against the JSON window
it mirrors, on a real redis-server: random sequences of detect / detect_batch / reset from two
writers, and writers that change the list behind the detector's back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anomaly_detection import Settings, StatisticalAnomalyDetector
from anomaly_detection.redis import AnomalyRedisKeys, AnomalyRedisManager
from anomaly_detection.redis.codec import decode_mirror, decode_points

KEYS = AnomalyRedisKeys()


def _mirror(client, sensor: str) -> tuple[np.ndarray, np.ndarray] | None:
    return decode_mirror(
        client.get(KEYS.mirror(sensor)), *client.hmget(KEYS.counters(sensor), "ring", "seen")
    )


def _json_window(client, sensor: str) -> tuple[np.ndarray, np.ndarray]:
    return decode_points(client.lrange(KEYS.window(sensor), 0, -1))


def _assert_consistent(client, sensor: str) -> None:
    values, stamps = _json_window(client, sensor)
    mirror = _mirror(client, sensor)
    assert mirror is not None, "no mirror after an append"
    np.testing.assert_array_equal(mirror[0], values)
    np.testing.assert_array_equal(mirror[1], stamps)
    assert client.ttl(KEYS.counters(sensor)) > 0
    assert client.ttl(KEYS.mirror(sensor)) > 0


@pytest.mark.parametrize("method", ["zscore", "mad", "ensemble"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mirror_follows_the_json_window(redis_client, method, seed):
    rng = np.random.default_rng(seed)
    window = int(rng.choice([10, 17, 40]))
    settings = Settings(detection_method=method, window_size=window, redis_alerts=False)
    writers = [StatisticalAnomalyDetector(settings, redis_client=redis_client) for _ in range(2)]
    embedded = StatisticalAnomalyDetector(settings)
    t = 1.7e9
    for _ in range(60):
        det = writers[int(rng.integers(2))]
        action = rng.random()
        if action < 0.05:
            det.reset("s")
            embedded.reset("s")
            assert redis_client.exists(KEYS.counters("s")) == 0
            continue
        n = 1 if action < 0.55 else int(rng.integers(1, 3 * window))
        values = rng.normal(20, 2, n).round(int(rng.integers(0, 17)))
        stamps = t + np.arange(n) * 60.0
        t += n * 60.0
        if n == 1:
            got = det.detect("s", float(values[0]), timestamp=float(stamps[0]))
            want = embedded.detect("s", float(values[0]), timestamp=float(stamps[0]))
            if method != "ensemble":
                np.testing.assert_allclose(got.score, want.score, rtol=1e-9)  # NaN while warming up
        else:
            got = det.detect_batch("s", values, stamps)
            want = embedded.detect_batch("s", values, stamps)
            if method != "ensemble":
                np.testing.assert_allclose(
                    got.scores, want.scores, rtol=1e-9
                )  # the embedded store keeps running sums
        _assert_consistent(redis_client, "s")


def test_a_foreign_writer_is_noticed_and_the_mirror_rebuilt(redis_client):
    settings = Settings(detection_method="zscore", window_size=10, redis_alerts=False)
    det = StatisticalAnomalyDetector(settings, redis_client=redis_client)
    embedded = StatisticalAnomalyDetector(settings)
    det.detect_batch("s", np.arange(12.0), np.arange(12.0))
    embedded.detect_batch("s", np.arange(12.0), np.arange(12.0))
    # Another program appends to the JSON list as the original prototype did (other spacing).
    key = KEYS.window("s")
    redis_client.rpush(key, json.dumps({"value": 100.0, "timestamp": 12.0}))
    redis_client.ltrim(key, -10, -1)
    embedded.detect("s", 100.0, timestamp=12.0)
    got, want = det.detect("s", 5.0, timestamp=13.0), embedded.detect("s", 5.0, timestamp=13.0)
    np.testing.assert_allclose(
        got.score, want.score, rtol=1e-9
    )  # scored against the list, not the stale mirror
    _assert_consistent(redis_client, "s")
    # The package's own manager drops the mirror when it writes the list.
    AnomalyRedisManager(redis_client, settings).store_temp_data("s", {"value": 7.0, "timestamp": 14.0})
    assert not redis_client.hexists(KEYS.counters("s"), "ring")
    embedded.detect("s", 7.0, timestamp=14.0)
    got, want = det.detect("s", 6.0, timestamp=15.0), embedded.detect("s", 6.0, timestamp=15.0)
    np.testing.assert_allclose(got.score, want.score, rtol=1e-9)
    _assert_consistent(redis_client, "s")


def test_an_entry_lua_cannot_read_keeps_the_json_path(redis_client):
    settings = Settings(detection_method="zscore", window_size=10, min_samples=3, redis_alerts=False)
    det = StatisticalAnomalyDetector(settings, redis_client=redis_client)
    embedded = StatisticalAnomalyDetector(settings)
    # A point with an ISO timestamp (another writer's): Python reads it, the script does not.
    redis_client.rpush(KEYS.window("s"), json.dumps({"value": 3.0, "timestamp": "2026-01-01T00:00:00"}))
    embedded.detect("s", 3.0, timestamp=1767225600.0)
    for i in range(12):
        got, want = (
            det.detect("s", float(i), timestamp=2e9 + i),
            embedded.detect("s", float(i), timestamp=2e9 + i),
        )
        np.testing.assert_allclose(got.score, want.score, rtol=1e-9)
        if i < 9:  # the foreign entry is still in the window: no mirror
            assert not redis_client.hexists(KEYS.counters("s"), "ring")
    _assert_consistent(redis_client, "s")


def test_a_decoding_client_reads_the_json_window(redis_server):
    client = redis_server.client(decode_responses=True)
    client.flushall()
    settings = Settings(detection_method="zscore", window_size=8, min_samples=3, redis_alerts=False)
    det = StatisticalAnomalyDetector(settings, redis_client=client)
    embedded = StatisticalAnomalyDetector(settings)
    values = np.random.default_rng(3).normal(0, 1, 30)
    for i, v in enumerate(values.tolist()):
        got, want = det.detect("s", v, timestamp=float(i)), embedded.detect("s", v, timestamp=float(i))
        np.testing.assert_allclose(got.score, want.score, rtol=1e-9)
    np.testing.assert_array_equal(_mirror(redis_server.client(), "s")[0], values[-8:])
    client.close()
