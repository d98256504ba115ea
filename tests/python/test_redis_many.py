"""Many sensors in one round trip on Redis (``detect_many`` / ``adetect_many``, and ``/api/batch``
on the Redis store): every point stored once and in order, results equal to one call per sensor;
on a real redis-server and on a real Redis Cluster (sync and asyncio clients)."""

from __future__ import annotations

import asyncio
import threading

import httpx
import numpy as np
import pytest
import redis
import redis.asyncio
from servers import HOST
from test_api_support import LiveServer

from anomaly_detection import Settings, StatisticalAnomalyDetector
from anomaly_detection.api import create_app
from anomaly_detection.redis import AnomalyRedisKeys
from anomaly_detection.redis.codec import decode_mirror, decode_points


def _settings(**kw) -> Settings:
    base = {"detection_method": "zscore", "window_size": 200, "min_samples": 5, "redis_alerts": False}
    return Settings(**{**base, **kw})


def _stored(client, keys: AnomalyRedisKeys, sensor: str) -> tuple[np.ndarray, int]:
    """The sensor's window values (checked against the compact mirror) and its count."""
    values, stamps = decode_points(client.lrange(keys.window(sensor), 0, -1))
    mirror = decode_mirror(
        client.get(keys.mirror(sensor)), *client.hmget(keys.counters(sensor), "ring", "seen")
    )
    np.testing.assert_array_equal(mirror[0], values)
    np.testing.assert_array_equal(mirror[1], stamps)
    return values, int(client.hget(keys.counters(sensor), "seen"))


def _batches(rng: np.random.Generator, sensors: list[str], n: int) -> dict[str, np.ndarray]:
    return {s: rng.normal(20, 1, int(rng.integers(1, n))).round(6) for s in sensors}


def _check_many_equals_one_by_one(client_many, client_one, reader, keys, run) -> None:
    """Three rounds of many sensors at once against the same batches one sensor per call."""
    rng = np.random.default_rng(7)
    many = StatisticalAnomalyDetector(_settings(), redis_client=client_many)
    one = StatisticalAnomalyDetector(_settings(redis_key_prefix="one"), redis_client=client_one)
    sensors = [f"m{i}" for i in range(25)]
    sent: dict[str, list[float]] = {s: [] for s in sensors}
    for r in range(3):
        batches = _batches(rng, sensors, 40)
        stamps = {s: 1.7e9 + r * 100 + np.arange(len(v), dtype=float) for s, v in batches.items()}
        got = run(many, batches, stamps)
        for s in sensors:
            want = one.detect_batch(s, batches[s], stamps[s]) if not one.store.is_async else None
            if want is not None:
                np.testing.assert_array_equal(got[s].scores, want.scores)
                np.testing.assert_array_equal(got[s].is_anomaly, want.is_anomaly)
            sent[s].extend(batches[s].tolist())
    for s in sensors:
        values, seen = _stored(reader, keys, s)
        assert values.tolist() == sent[s][-200:]  # once each, in order
        assert seen == len(sent[s])


def test_detect_many_on_redis_stores_once_in_order(redis_server, redis_client):
    _check_many_equals_one_by_one(
        redis_client, redis_client, redis_client, AnomalyRedisKeys(), lambda det, b, t: det.detect_many(b, t)
    )


def test_adetect_many_on_redis_asyncio_stores_once_in_order(redis_server, redis_client):
    async def body() -> None:
        client = redis.asyncio.Redis(host=HOST, port=redis_server.port)
        try:
            det = StatisticalAnomalyDetector(_settings(), redis_client=client)
            rng = np.random.default_rng(3)
            sensors = [f"a{i}" for i in range(30)]
            sent: dict[str, list[float]] = {s: [] for s in sensors}
            # two requests at once on one event loop, sharing half their sensors
            for _ in range(4):
                first, second = _batches(rng, sensors[:20], 30), _batches(rng, sensors[10:], 30)
                await asyncio.gather(det.adetect_many(first), det.adetect_many(second))
                for batch in (first, second):
                    for s, v in batch.items():
                        sent[s].extend(v.tolist())
            keys = AnomalyRedisKeys()
            for s in sensors:
                values, seen = _stored(redis_client, keys, s)
                assert seen == len(sent[s])
                assert sorted(values.tolist()) == sorted(sent[s][-200:])  # the two requests may interleave
            # alone, a request keeps its order
            lone = _batches(rng, sensors, 30)
            await det.adetect_many(lone)
            for s in sensors:
                assert _stored(redis_client, keys, s)[0].tolist()[-len(lone[s]) :] == lone[s].tolist()
        finally:
            await client.aclose()

    asyncio.run(body())


def test_many_sensors_on_a_cluster_sync_and_asyncio(redis_cluster):
    sync = redis.cluster.RedisCluster(host=HOST, port=redis_cluster.port)
    keys = AnomalyRedisKeys("anomaly", hash_tag=True)
    try:
        _check_many_equals_one_by_one(sync, sync, sync, keys, lambda det, b, t: det.detect_many(b, t))

        async def body() -> None:
            client = redis.asyncio.cluster.RedisCluster(host=HOST, port=redis_cluster.port)
            try:
                det = StatisticalAnomalyDetector(_settings(redis_key_prefix="acl"), redis_client=client)
                batches = _batches(np.random.default_rng(5), [f"c{i}" for i in range(20)], 30)
                await det.adetect_many(batches)
                await det.adetect_many(batches)
                for s, v in batches.items():
                    values, seen = _stored(sync, AnomalyRedisKeys("acl", hash_tag=True), s)
                    assert values.tolist() == v.tolist() * 2
                    assert seen == 2 * len(v)
            finally:
                await client.aclose()

        asyncio.run(body())
    finally:
        sync.close()


def test_api_batch_with_many_sensors_stores_each_point_once_and_in_order(redis_server, redis_client):
    """Two workers (two apps), each posting /api/batch requests of 40 sensors from two threads."""
    settings = Settings(store_backend="redis", redis_url=redis_server.url, detection_method="zscore",
                        min_samples=5, window_size=500)  # fmt: skip
    apps = [create_app(settings) for _ in range(2)]
    sent: dict[str, list[float]] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []

    def post(url: str, worker: int, thread: int) -> None:
        try:
            with httpx.Client(base_url=url, timeout=30) as http:
                for r in range(6):
                    metrics = []
                    for i in range(40):
                        sensor = f"w{worker}t{thread}s{i}"
                        values = [float(r * 1000 + k) + 0.25 * i for k in range(1 + (i + r) % 4)]
                        metrics += [{"type": "point", "sensor_name": sensor, "value": v} for v in values]
                        with lock:
                            sent.setdefault(sensor, []).extend(values)
                    response = http.post("/api/batch", json={"metrics": metrics})
                    assert response.status_code == 200, response.text
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    with LiveServer(apps[0]) as a, LiveServer(apps[1]) as b:
        threads = [
            threading.Thread(target=post, args=(url, w, t)) for w, url in enumerate((a, b)) for t in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert not errors, errors
    keys = AnomalyRedisKeys()
    assert len(sent) == 160
    for sensor, values in sent.items():
        stored, seen = _stored(redis_client, keys, sensor)
        assert stored.tolist() == values, sensor
        assert seen == len(values)


def test_detect_many_on_redis_refuses_non_finite_input_and_changes_nothing(redis_client):
    det = StatisticalAnomalyDetector(Settings(detection_method="zscore", redis_alerts=False),
                                     redis_client=redis_client)  # fmt: skip
    det.detect_many({"a": np.arange(30.0), "b": np.arange(30.0)})
    keys = [k for s in ("a", "b") for k in AnomalyRedisKeys().sensor_keys(s)]
    before = {k: redis_client.dump(k) for k in keys}
    good = np.arange(3.0)
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ValueError, match=r"values\[1\]: expected a finite number"):
            det.detect_many({"a": good, "b": np.array([1.0, bad])})
        with pytest.raises(ValueError, match="timestamps: expected finite numbers"):
            det.detect_many({"a": good, "b": good}, {"a": good, "b": np.array([1.0, bad, 3.0])})
    assert {k: redis_client.dump(k) for k in keys} == before
    assert det.stats("a")["points_seen"] == 30
