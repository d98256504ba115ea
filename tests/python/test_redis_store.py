"""StatisticalAnomalyDetector on Redis: a real redis-server on a free port, the
original prototype's key layout, one round trip per call, no lost update between processes,
fallback and recovery when the server dies, alerts, a real three-master Cluster."""

from __future__ import annotations

import asyncio
import json
import select
import socket
import threading
import time

import numpy as np
import pytest
import redis
from hypothesis import given
from hypothesis import settings as settings_
from hypothesis import strategies as st
from servers import RedisServer, free_port, run_processes

from anomaly_detection import Settings, StatisticalAnomalyDetector, StoreUnavailableError
from anomaly_detection.redis.codec import encode_append
from anomaly_detection.stores.fallback import PointBuffer
from anomaly_detection.utils.redis_cli import redis_client_from_settings
from anomaly_detection.utils.redis_namespaces import AnomalyRedisManager


def settings(**kw) -> Settings:
    # These tests are about the store with z-score and friends (the ensemble's are in test_redis_ensemble.py).
    base = {"detection_method": "zscore", "window_size": 50, "min_samples": 5, "redis_retry_interval": 0.05}
    return Settings(**{**base, **kw})


def stream(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(10.0, 1.0, n)
    x[rng.integers(0, n, max(1, n // 50))] += 9.0
    return x


def commands(client, name: str) -> int:
    return int(client.info("commandstats").get(f"cmdstat_{name}", {}).get("calls", 0))


@pytest.mark.parametrize("method", ["zscore", "mad", "iqr"])
def test_results_equal_the_embedded_store(redis_client, method):
    s = settings(detection_method=method)
    shared = StatisticalAnomalyDetector(s, redis_client=redis_client)
    local = StatisticalAnomalyDetector(s)
    x = stream(1, 400)
    ts = np.arange(400.0)
    for i in range(100):  # one point at a time
        a = shared.detect("s1", float(x[i]), timestamp=float(ts[i]))
        b = local.detect("s1", float(x[i]), timestamp=float(ts[i]))
        assert a.is_anomaly == b.is_anomaly
        assert a.score == pytest.approx(b.score, abs=1e-9)
        assert a.deviation == pytest.approx(b.deviation, rel=1e-9, abs=1e-9)
        assert a.window_count == b.window_count
    for lo, hi in [(100, 130), (130, 131), (131, 400)]:  # then batches of several sizes
        a = shared.detect_batch("s1", x[lo:hi], ts[lo:hi])
        b = local.detect_batch("s1", x[lo:hi], ts[lo:hi])
        np.testing.assert_array_equal(a.is_anomaly, b.is_anomaly)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-9)
        np.testing.assert_array_equal(a.window_counts, b.window_counts)
    np.testing.assert_array_equal(shared.get_window("s1").values, local.get_window("s1").values)
    assert shared.stats("s1")["points_seen"] == local.stats("s1")["points_seen"] == 400
    assert shared.stats("s1")["anomalies"] == local.stats("s1")["anomalies"]


@pytest.mark.parametrize("batch", [False, True])
def test_an_alert_whose_deviation_overflows_is_stored_in_redis(redis_client, batch):
    """DBL_MAX after two zeros: an anomaly whose deviation is inf (DBL_MAX over the flat window's
    floor scale). Its alert document was refused by the JSON codec ("Out of range float values"),
    so the alert never reached Redis (only a logged listener failure); it is stored now, with
    the deviation null as over HTTP."""
    largest = float(np.finfo(np.float64).max)
    s = settings(window_size=3, min_samples=2)
    det = StatisticalAnomalyDetector(s, redis_client=redis_client)
    try:
        x = np.array([0.0, 0.0, largest])
        if batch:
            flags = det.detect_batch("s", x, np.arange(3.0)).is_anomaly.tolist()
        else:
            flags = [det.detect("s", float(v), timestamp=float(i)).is_anomaly for i, v in enumerate(x)]
        assert flags == [False, False, True]
        [alert] = AnomalyRedisManager(redis_client, s).list_alerts(10)
        assert alert["value"] == largest
        assert alert["deviation"] is None
        assert alert["timestamp"] == 2.0
    finally:
        det.store.close()


@pytest.mark.parametrize("method", ["ewma", "cusum"])
def test_stateful_methods_equal_embedded_within_one_window(redis_client, method):
    s = settings(detection_method=method, window_size=500)
    shared = StatisticalAnomalyDetector(s, redis_client=redis_client)
    local = StatisticalAnomalyDetector(s)
    x = stream(2, 300)
    a = [shared.detect("s", float(v), timestamp=float(i)) for i, v in enumerate(x)]
    b = [local.detect("s", float(v), timestamp=float(i)) for i, v in enumerate(x)]
    assert [r.is_anomaly for r in a] == [r.is_anomaly for r in b]
    np.testing.assert_allclose([r.score for r in a], [r.score for r in b], atol=1e-9)


def test_window_is_json_in_the_original_prototype_layout_with_ttl(redis_client):
    det = StatisticalAnomalyDetector(settings(window_size=5), redis_client=redis_client)
    det.detect_batch("temperature_sensor", [1.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0], np.arange(7.0) + 1e9)
    key = "anomaly:temp:data:temperature_sensor:queue"
    entries = [json.loads(e) for e in redis_client.lrange(key, 0, -1)]
    assert [e["value"] for e in entries] == [3.0, 4.0, 5.0, 6.0, 7.0]
    assert entries[0]["timestamp"] == 1e9 + 2
    assert 3590 <= redis_client.ttl(key) <= 3600
    assert det.sensors() == ["temperature_sensor"]
    assert det.stats("temperature_sensor")["points_seen"] == 7
    assert det.reset("temperature_sensor") is True
    assert redis_client.exists(key) == 0
    assert det.sensors() == []


def test_one_round_trip_per_detect_and_per_batch(redis_client):
    det = StatisticalAnomalyDetector(settings(), redis_client=redis_client)
    det.detect("warm", 1.0)  # loads the script once
    calls = commands(redis_client, "evalsha")
    for i in range(20):
        det.detect("rt", 10.0 + 0.01 * (i % 3))
    det.detect_batch("rt", np.full(5000, 10.0))
    assert commands(redis_client, "evalsha") - calls == 21


def test_batch_sends_only_what_the_window_keeps(redis_client):
    det = StatisticalAnomalyDetector(settings(window_size=10), redis_client=redis_client)
    before = commands(redis_client, "rpush")
    det.detect_batch("big", np.arange(100_000.0))
    assert commands(redis_client, "rpush") - before == 1
    assert redis_client.llen("anomaly:temp:data:big:queue") == 10
    assert det.stats("big")["points_seen"] == 100_000


def _worker(port: int, proc: int, n: int, window: int, out) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    det = StatisticalAnomalyDetector(settings(window_size=window, redis_alerts=False), redis_client=client)
    scored = anomalies = 0
    for start in range(0, n, 100):
        seq = np.arange(start, min(n, start + 100), dtype=float)
        if start % 200 == 0:
            result = det.detect_batch("shared", 10.0 + (seq % 7) * 0.1, proc * 1e6 + seq)
            scored += len(result)
            anomalies += result.anomaly_count
        else:
            for s_ in seq:
                r = det.detect("shared", 10.0 + (s_ % 7) * 0.1, timestamp=proc * 1e6 + s_)
                scored += 1
                anomalies += r.is_anomaly
    out.put((proc, scored, anomalies))


def test_four_processes_on_one_sensor_lose_no_update(redis_server, redis_client):
    window, n = 300, 10_000
    results = run_processes(_worker, [(redis_server.port, p, n, window) for p in range(4)])
    assert sorted(r[0] for r in results) == [0, 1, 2, 3]
    assert all(r[1] == n for r in results)  # every point was scored
    det = StatisticalAnomalyDetector(settings(window_size=window), redis_client=redis_client)
    stats = det.stats("shared")
    assert stats["points_seen"] == 4 * n  # the counter agrees
    assert stats["anomalies"] == sum(r[2] for r in results)
    window_ts = det.get_window("shared").timestamps
    assert len(window_ts) == window  # the window holds the last window_size points
    for proc in range(4):  # each writer's points in the window are a contiguous run, in order
        seqs = window_ts[(window_ts >= proc * 1e6) & (window_ts < (proc + 1) * 1e6)] - proc * 1e6
        if len(seqs):
            np.testing.assert_array_equal(np.diff(seqs), 1.0)
    finished_last = max(range(4), key=lambda p: np.flatnonzero(window_ts // 1e6 == p).max(initial=-1))
    assert window_ts[-1] == finished_last * 1e6 + n - 1


def _wait_until_recovered(det, seconds: float = 10.0) -> None:
    """Wait for the store's background probe to write the buffered points back."""
    deadline = time.monotonic() + seconds
    while det.health()["degraded"]:
        assert time.monotonic() < deadline, "the probe did not write the buffer back"
        time.sleep(0.02)


def test_fallback_when_redis_dies_and_write_back_when_it_returns():
    server = RedisServer().start()
    try:
        client = server.client(socket_timeout=0.5, socket_connect_timeout=0.5)
        det = StatisticalAnomalyDetector(settings(window_size=1000), redis_client=client)
        det.detect_batch("s", stream(3, 100), np.arange(100.0))
        assert det.health()["degraded"] is False
        server.kill()
        during = [det.detect("s", float(v), timestamp=100.0 + i) for i, v in enumerate(stream(4, 30))]
        batch = det.detect_batch("s", stream(5, 20), np.arange(130.0, 150.0))
        assert len(during) == 30
        assert len(batch) == 20
        health = det.health()
        assert health["degraded"] is True
        assert health["redis_reachable"] is False
        assert health["buffered_points"] == 50
        server.start()  # same port
        _wait_until_recovered(det)  # the background probe writes the buffer back
        det.detect("s", 10.0, timestamp=150.0)
        health = det.health()
        assert health["degraded"] is False
        assert health["buffered_points"] == 0
        window = det.get_window("s").timestamps
        # The server came back empty (no persistence): it now holds every point accepted since.
        np.testing.assert_array_equal(window, np.arange(100.0, 151.0))
        assert det.stats("s")["points_seen"] == 51
    finally:
        server.stop()


def test_strict_policy_raises_store_unavailable():
    server = RedisServer().start()
    try:
        client = server.client(socket_timeout=0.5, socket_connect_timeout=0.5)
        det = StatisticalAnomalyDetector(settings(fallback_policy="strict"), redis_client=client)
        det.detect("s", 1.0)
        server.kill()
        with pytest.raises(StoreUnavailableError, match="Redis is unavailable"):
            det.detect("s", 2.0)
        with pytest.raises(StoreUnavailableError):
            det.detect_batch("s", [1.0, 2.0])
    finally:
        server.stop()


def test_fallback_buffer_is_bounded_and_never_drops_silently():
    server = RedisServer().start()
    try:
        client = server.client(socket_timeout=0.5, socket_connect_timeout=0.5)
        det = StatisticalAnomalyDetector(
            settings(fallback_buffer_size=10, redis_retry_interval=60), redis_client=client
        )
        server.kill()
        det.detect_batch("s", np.ones(8))
        with pytest.raises(StoreUnavailableError, match="buffer is full"):
            det.detect_batch("s", np.ones(5))
        assert det.health()["buffered_points"] == 8
    finally:
        server.stop()


def test_password_db_and_url_settings_are_honoured():
    server = RedisServer(password="s3cret").start()
    try:
        s = settings(redis_host="127.0.0.1", redis_port=server.port, redis_password="s3cret", redis_db=3)
        det = StatisticalAnomalyDetector(s, redis_client=redis_client_from_settings(s))
        det.detect("db3", 1.0)
        assert server.client(db=3).exists("anomaly:temp:data:db3:queue") == 1
        assert server.client(db=0).exists("anomaly:temp:data:db3:queue") == 0
        url = settings(redis_url=f"redis://:s3cret@127.0.0.1:{server.port}/5")
        StatisticalAnomalyDetector(url, redis_client=redis_client_from_settings(url)).detect("db5", 1.0)
        assert server.client(db=5).exists("anomaly:temp:data:db5:queue") == 1
        wrong = settings(redis_host="127.0.0.1", redis_port=server.port, redis_password="nope")
        import redis

        with pytest.raises(redis.AuthenticationError):
            redis_client_from_settings(wrong).ping()
    finally:
        server.stop()


def test_tls_settings_are_honoured(tmp_path):
    import subprocess

    from servers import free_port

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    server = RedisServer(
        "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
        "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no", port=port,
    ).start()  # fmt: skip
    try:
        s = settings(redis_host="127.0.0.1", redis_port=port, redis_ssl=True, redis_ssl_ca_certs=str(cert))
        det = StatisticalAnomalyDetector(s, redis_client=redis_client_from_settings(s))
        det.detect_batch("tls", [1.0, 2.0, 3.0])
        assert det.stats("tls")["points_seen"] == 3
        assert det.health()["redis_reachable"] is True
        import redis

        plain = settings(redis_host="127.0.0.1", redis_port=port, redis_socket_timeout=0.5)
        with pytest.raises(redis.ConnectionError):  # a plain-text client cannot talk to the TLS port
            redis_client_from_settings(plain).ping()
    finally:
        server.stop()


def test_custom_prefix_and_neighbours_untouched(redis_client):
    neighbours = {
        "nextauth:session:abc": "s", "nextauth:user:1": "u", "fabric:lock:job1": "1",
        "fastapi:cache:route:/items": "c", "anomaly_detector:temp:data:legacy": "x",
    }  # fmt: skip
    for k, v in neighbours.items():
        redis_client.set(k, v)
    dumps = {k: redis_client.dump(k) for k in neighbours}
    det = StatisticalAnomalyDetector(settings(redis_key_prefix="ad2"), redis_client=redis_client)
    det.detect_batch("s", stream(6, 200))
    det.reset("s")
    det.detect("t", 1.0)
    AnomalyRedisManager(redis_client, settings(redis_key_prefix="ad2")).purge_namespace()
    assert {k: redis_client.dump(k) for k in neighbours} == dumps
    assert not list(redis_client.scan_iter(match="ad2:*"))


def test_anomalies_become_alerts_on_key_channel_and_stream(redis_client):
    det = StatisticalAnomalyDetector(settings(), redis_client=redis_client)
    pubsub = redis_client.pubsub()
    pubsub.subscribe("anomaly:channel:alerts")
    assert pubsub.get_message(timeout=1)["type"] == "subscribe"
    # A consumer group created before the anomalies, then "offline" while they happen.
    redis_client.xgroup_create("anomaly:stream:alerts", "dashboards", id="0", mkstream=True)
    det.detect_batch("pump", [10.0, 10.1, 9.9, 10.0, 10.05, 9.95, 10.0])
    r1 = det.detect("pump", 50.0)
    r2 = det.detect("pump", -30.0)
    assert r1.is_anomaly
    assert r2.is_anomaly
    message = pubsub.get_message(timeout=2)
    assert json.loads(message["data"])["value"] == 50.0
    manager = AnomalyRedisManager(redis_client, settings())
    alerts = manager.list_alerts(10)
    assert [a["value"] for a in alerts] == [-30.0, 50.0]  # newest first
    alert_key = f"anomaly:alerts:{alerts[0]['id']}"
    assert 604790 <= redis_client.ttl(alert_key) <= 604800
    entries = redis_client.xreadgroup("dashboards", "worker-1", {"anomaly:stream:alerts": ">"}, count=10)
    values = [json.loads(fields[b"alert"])["value"] for _, fields in entries[0][1]]
    assert values == [50.0, -30.0]
    pubsub.close()


def test_asyncio_client(redis_server):
    import redis.asyncio as aioredis

    async def run():
        client = aioredis.Redis(host="127.0.0.1", port=redis_server.port)
        await client.flushall()
        det = StatisticalAnomalyDetector(settings(), redis_client=client)
        local = StatisticalAnomalyDetector(settings())
        x = stream(7, 120)
        a = [await det.adetect("a", float(v), timestamp=float(i)) for i, v in enumerate(x[:60])]
        b = [local.detect("a", float(v), timestamp=float(i)) for i, v in enumerate(x[:60])]
        ab = await det.adetect_batch("a", x[60:], np.arange(60.0, 120.0))
        bb = local.detect_batch("a", x[60:], np.arange(60.0, 120.0))
        with pytest.raises(TypeError, match="adetect"):
            det.detect("a", 1.0)
        length = await client.llen("anomaly:temp:data:a:queue")
        await client.aclose()
        return a, b, ab, bb, length

    a, b, ab, bb, length = asyncio.run(run())
    assert [r.is_anomaly for r in a] == [r.is_anomaly for r in b]
    np.testing.assert_allclose([r.score for r in a], [r.score for r in b], atol=1e-9)
    np.testing.assert_array_equal(ab.is_anomaly, bb.is_anomaly)
    assert length == 50


def test_redis_cluster_detector_and_manager(redis_cluster):
    client = redis_cluster.client()
    s = settings(redis_cluster=True)
    det = StatisticalAnomalyDetector(s, redis_client=client)
    local = StatisticalAnomalyDetector(s)
    for i, sensor in enumerate(["alpha", "beta", "gamma", "delta"]):
        a = det.detect_batch(sensor, stream(i, 120), np.arange(120.0))
        b = local.detect_batch(sensor, stream(i, 120), np.arange(120.0))
        np.testing.assert_array_equal(a.is_anomaly, b.is_anomaly)
        det.detect(sensor, 10.0)
    assert det.sensors() == ["alpha", "beta", "delta", "gamma"]
    # Hash tags put every key of a sensor in one slot.
    assert client.exists("anomaly:temp:data:{alpha}:queue") == 1
    slot = client.keyslot("anomaly:temp:data:{alpha}:queue")
    assert client.keyslot("anomaly:temp:data:{alpha}:stats") == slot
    assert det.stats("alpha")["points_seen"] == 121
    manager = AnomalyRedisManager(client, s)
    health = manager.get_system_health()
    assert json.dumps(health, default=str)  # readable
    assert manager.list_alerts(100)  # the spikes raised alerts across the cluster
    assert manager.purge_namespace() > 0
    assert det.sensors() == []
    client.close()


def test_the_manager_on_a_cluster_handles_the_detectors_sensor_keys(redis_cluster):
    # On a Cluster the detector forces hash tags (anomaly:temp:data:{s}:queue): the manager
    # given the same client and settings must read, append to and clear those same keys, the
    # mirror included, not untagged ones in other slots.
    client = redis_cluster.client()
    s = settings(redis_cluster=True)
    det = StatisticalAnomalyDetector(s, redis_client=client)
    det.detect_batch("alpha", stream(0, 30), np.arange(30.0))
    manager = AnomalyRedisManager(client, s)
    assert len(manager.get_temp_data("alpha")) == 30
    assert manager.store_temp_data("alpha", {"value": 1.0, "timestamp": 30.0}) == 31
    assert det.stats("alpha")["window_count"] == 31
    assert client.exists("anomaly:temp:data:{alpha}:mirror") == 1
    assert manager.clear_temp_data("alpha") is True
    assert [k for k in client.scan_iter(match="anomaly:temp:data:*")] == []
    assert det.sensors() == []
    client.close()


# --- exactly once (issue 16, item 2) ---------------------------------------------------------


def _stall(server, seconds: float) -> threading.Thread:
    """Run DEBUG SLEEP on its own connection: the server answers nobody meanwhile."""
    admin = server.client()
    thread = threading.Thread(target=admin.execute_command, args=("DEBUG", "SLEEP", str(seconds)))
    thread.start()
    time.sleep(0.05)  # the server is asleep from here on
    return thread


@pytest.mark.parametrize("method", ["zscore", "ensemble"])
def test_a_stall_longer_than_the_socket_timeout_stores_every_point_once(method):
    server = RedisServer("--enable-debug-command", "yes").start()
    try:
        # redis-py's own retries are left on: they re-send EVALSHA after a timeout.
        client = server.client(socket_timeout=0.5, socket_connect_timeout=0.5)
        det = StatisticalAnomalyDetector(
            settings(detection_method=method, window_size=1000, redis_alerts=False), redis_client=client
        )
        n, stalls = 401, {100: 2.0, 250: 1.2}
        values, stamps = stream(7, n), 1e9 + np.arange(n)
        threads = []
        for i in range(n):
            if i in stalls:
                threads.append(_stall(server, stalls[i]))
            det.detect("s", float(values[i]), timestamp=float(stamps[i]))
        for thread in threads:
            thread.join()
        _wait_until_recovered(det)
        sent = commands(client, "evalsha")
        assert sent > n, "the stall must have made some append be sent twice"
        window = det.get_window("s")
        np.testing.assert_array_equal(window.timestamps, stamps)  # no duplicate, in order
        np.testing.assert_array_equal(window.values, values)
        assert det.stats("s")["points_seen"] == n
    finally:
        server.stop()


@pytest.mark.parametrize("single", [True, False], ids=["detect", "detect_batch"])
def test_an_anomaly_whose_append_was_retried_after_a_timeout_is_counted_once(single):
    # The spike's EVALSHA times out during a stall, runs when the server wakes, and redis-py's
    # retry sends it again: a repeat, answered as the first time. Its reply is the only one
    # the caller gets, so the anomaly it flags must still reach the counter (COUNT_ONCE: once).
    server = RedisServer("--enable-debug-command", "yes").start()
    try:
        client = server.client(socket_timeout=0.5, socket_connect_timeout=0.5)  # redis-py's retries on
        det = StatisticalAnomalyDetector(settings(window_size=100, redis_alerts=False), redis_client=client)
        x = np.random.default_rng(5).normal(10.0, 0.5, 40)
        x[30] += 20.0
        flagged = 0
        for i in range(40):
            thread = _stall(server, 1.2) if i == 30 else None
            if single:
                hit = det.detect("s", float(x[i]), timestamp=float(i)).is_anomaly
            else:
                hit = bool(det.detect_batch("s", x[i : i + 1], np.array([float(i)])).is_anomaly[0])
            flagged += hit
            if thread is not None:
                thread.join()
                assert hit, "the spike must be flagged"
        _wait_until_recovered(det)
        assert commands(client, "evalsha") > 40, "the stall must have made the spike's append be sent twice"
        assert det.stats("s")["points_seen"] == 40
        assert det.stats("s")["anomalies"] == flagged
    finally:
        server.stop()


def test_the_append_script_stores_a_repeat_once_and_answers_it_as_the_first_time(redis_client):
    det = StatisticalAnomalyDetector(
        settings(window_size=8, min_samples=2, redis_alerts=False), redis_client=redis_client
    )
    store = det.store
    det.detect_batch("s", [1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    keys = [store.keys.window("s"), store.keys.counters("s"), store.keys.mirror("s")]

    def append(writer, seq, value):
        point = np.array([value])
        # want_packed=False: the window as JSON entries
        return store._script(keys=keys, args=[encode_append(8, 60, 1, writer, seq, False, point, point)])

    first = append("w1", 7, 4.0)
    assert (first[0], first[2]) == (3, 0)
    det.detect_batch("s", [5.0, 6.0], [5.0, 6.0])  # another writer appends meanwhile
    again = append("w1", 7, 4.0)  # the same append sent again
    assert (again[0], again[1], again[2]) == (first[0], first[1], 1)  # answered as the first time
    assert append("w1", 6, 3.5) == [-1]  # an older one: refused
    assert append("w2", 1, 7.0)[2] == 0  # another writer's sequence is its own
    assert [json.loads(e)["value"] for e in redis_client.lrange(keys[0], 0, -1)] == [1, 2, 3, 4, 5, 6, 7]
    assert redis_client.hget(keys[1], "seen") == b"7"


# --- fail fast, recover in the background (issue 16, item 1) -----------------------------------


class _SilentServer:
    """A real TCP server on loopback that accepts connections and never answers: a stalled Redis.
    Counts the connections it accepts and the bytes it receives."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted, self.received = 0, 0
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select([self.sock, *self._conns], [], [], 0.05)
            for s in readable:
                if s is self.sock:
                    conn, _ = self.sock.accept()
                    self.accepted += 1
                    self._conns.append(conn)
                    continue
                try:
                    data = s.recv(65536)
                except ConnectionResetError:
                    data = b""
                self.received += len(data)
                if not data:  # the client hung up
                    self._conns.remove(s)
                    s.close()

    def settled(self) -> tuple[int, int]:
        """(connections accepted, bytes received) once the server has read what was sent so far."""
        before = None
        while before != (self.accepted, self.received):
            before = (self.accepted, self.received)
            time.sleep(0.2)
        return before

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in [self.sock, *self._conns]:
            conn.close()


def test_the_package_client_has_bounded_timeouts_and_no_retries():
    s = Settings(redis_host="127.0.0.1", redis_port=free_port(), redis_socket_timeout=0.4)
    client = redis_client_from_settings(s)
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (0.4, 0.4)
    assert client.get_retry().get_retries() == 0
    silent = _SilentServer()
    try:
        stalled = redis_client_from_settings(s.model_copy(update={"redis_port": silent.port}))
        with pytest.raises(redis.exceptions.TimeoutError):
            stalled.ping()
        assert silent.accepted == 1  # one try, not redis-py's default retries
    finally:
        silent.close()


def test_an_open_breaker_sends_nothing_to_redis_and_health_answers_from_it():
    silent = _SilentServer()
    try:
        # Alerts on: the alert sink holds the outage's alerts, it sends nothing either (issue 16, item 4).
        s = settings(redis_host="127.0.0.1", redis_port=silent.port, redis_socket_timeout=0.3,
                     redis_retry_interval=60)  # fmt: skip
        det = StatisticalAnomalyDetector(s, redis_client=redis_client_from_settings(s))
        first = det.detect("s", 10.0, timestamp=0.0)  # times out once: the breaker opens
        assert first.window_count == 0
        accepted, received = silent.settled()
        assert accepted == 1
        results = [det.detect("s", float(v), timestamp=1.0 + i) for i, v in enumerate(stream(2, 200))]
        health = det.health()
        assert (health["degraded"], health["redis_reachable"]) == (True, False)
        assert health["buffered_points"] == 201
        assert health["probe_interval"] == 60
        assert [r.window_count for r in results[:3]] == [1, 2, 3]  # the fallback goes on from the first point
        assert health["write_back"]["alerts_held"] == sum(r.is_anomaly for r in results) > 0
        assert silent.settled() == (accepted, received)  # no Redis I/O while the breaker is open
        det.store.close()
    finally:
        silent.close()


def test_an_asyncio_store_recovers_in_a_background_task():
    import redis.asyncio as aioredis

    server = RedisServer().start()
    port = server.port

    async def run():
        client = aioredis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5, socket_connect_timeout=0.5,
                                retry=None)  # fmt: skip
        det = StatisticalAnomalyDetector(settings(window_size=1000, redis_alerts=False), redis_client=client)
        x = stream(8, 60)
        for i in range(20):
            await det.adetect("a", float(x[i]), timestamp=float(i))
        server.kill()
        for i in range(20, 40):
            await det.adetect("a", float(x[i]), timestamp=float(i))
        assert det.health()["degraded"] is True
        assert det.health()["buffered_points"] == 20
        server.start()  # same port, empty
        deadline = time.monotonic() + 10
        while det.health()["degraded"]:  # nobody calls: the probe task writes the buffer back
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        length = await client.llen("anomaly:temp:data:a:queue")
        await client.aclose()
        return length

    try:
        assert asyncio.run(run()) == 20  # the restarted server holds the 20 points of the outage
    finally:
        server.stop()


@pytest.mark.parametrize("method", ["zscore", "mad", "iqr", "ewma", "cusum", "ensemble"])
def test_the_fallback_starts_warm_from_the_last_window(method):
    # Redis dies after 400 points; the outage's points are scored as without the outage,
    # spikes at outage points 0, 5 and 11 included (issue 16, item 3).
    rng = np.random.default_rng(7)
    t = np.arange(460.0) * 300.0
    values = 20 + np.sin(2 * np.pi * t / 86400) + rng.normal(0, 0.2, 460)
    for k in (0, 5, 11):
        values[400 + k] += 8.0
    kw = {"detection_method": method, "window_size": 500, "redis_alerts": False}
    reference = StatisticalAnomalyDetector(settings(**kw)).detect_batch("s", values, t)
    server = RedisServer().start()
    try:
        client = server.client(socket_timeout=0.5, socket_connect_timeout=0.5)
        det = StatisticalAnomalyDetector(settings(**kw), redis_client=client)
        det.detect_batch("s", values[:400], t[:400])
        server.kill()
        during = [det.detect("s", float(values[i]), timestamp=float(t[i])) for i in range(400, 460)]
        assert det.health()["degraded"] is True
        scores = np.array([r.score for r in during])
        np.testing.assert_allclose(scores, reference.scores[400:], rtol=1e-9, atol=1e-12)
        flags = [r.is_anomaly for r in during]
        assert flags == reference.is_anomaly[400:].tolist()
        assert flags[0]
        if method != "ensemble":  # the ensemble raises one alarm per incident, as without the outage
            assert flags[5]
            assert flags[11]
    finally:
        server.stop()


class _SmallBuffer(PointBuffer):
    CHUNK = 7  # calls span chunks often


@settings_(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(1, 20)), min_size=1, max_size=30),
       st.integers(0, 30))  # fmt: skip
def test_the_point_buffer_gives_back_every_call_in_order(calls, pops_between):
    buffer, expected = _SmallBuffer(), []
    got = []
    for seq, (sensor, n) in enumerate(calls, start=1):
        values = np.arange(n, dtype=float) + 1000 * seq
        buffer.append(sensor, values, values + 0.5, seq)
        expected.append((sensor, values.tolist(), seq))
        if seq == pops_between and (head := buffer.head()) is not None:  # drain one while filling
            got.append((head[0], head[1].tolist(), head[3]))
            buffer.pop(len(head[1]))
    while (head := buffer.head()) is not None:
        np.testing.assert_array_equal(head[2], head[1] + 0.5)
        got.append((head[0], head[1].tolist(), head[3]))
        buffer.pop(len(head[1]))
    assert got == expected
    assert len(buffer) == 0


def test_anomalies_found_during_an_outage_are_counted_when_redis_returns():
    server = RedisServer().start()
    try:
        client = server.client(socket_timeout=0.5, socket_connect_timeout=0.5)
        det = StatisticalAnomalyDetector(settings(window_size=1000), redis_client=client)
        det.detect_batch("s", stream(3, 100), np.arange(100.0))
        server.kill()
        outage = np.full(30, 10.0)
        outage[[5, 17]] = 40.0
        flagged = sum(det.detect("s", float(v), timestamp=100.0 + i).is_anomaly for i, v in enumerate(outage))
        assert flagged == 2
        server.start()
        _wait_until_recovered(det)
        # the server restarted empty: it holds the outage's points and their anomalies
        assert det.stats("s")["points_seen"] == 30
        assert det.stats("s")["anomalies"] == 2
    finally:
        server.stop()


def test_an_anomaly_count_arriving_after_its_sensor_was_reset_counts_nothing(redis_client):
    # A call's anomalies are counted by a second script after its append (COUNT_ONCE); when
    # the sensor is reset in between (another process's `reset`, or the count sent late by
    # the write-back), the old call's count must not land on the new sensor's counters.
    from anomaly_detection.redis import AnomalyRedisKeys, scripts

    det = StatisticalAnomalyDetector(
        Settings(detection_method="zscore", min_samples=5, redis_alerts=False), redis_client=redis_client
    )
    for i in range(10):
        det.detect("s", 20.0 + i % 2, timestamp=float(i))
    counters = AnomalyRedisKeys().counters("s")
    writer = det.store.writer_id
    seq = int(redis_client.hget(counters, f"w:{writer}").split(b":")[0])  # the last append's
    count = redis_client.register_script(scripts.COUNT_ONCE)
    ttl = det.settings.temp_data_ttl
    assert count(keys=[counters], args=[writer, seq, 1, ttl]) == 1  # its append is in the hash
    assert count(keys=[counters], args=[writer, seq, 1, ttl]) == 0  # once
    assert redis_client.hget(counters, "anomalies") == b"1"
    assert count(keys=[counters], args=[writer, seq + 1, 1, ttl]) == 0  # an append that never ran
    assert det.reset("s")
    assert count(keys=[counters], args=[writer, seq, 1, ttl]) == 0
    assert not redis_client.exists(counters)  # nothing left behind for the new sensor
    det.detect("s", 20.0, timestamp=20.0)
    assert redis_client.hget(counters, "anomalies") in (None, b"0")


def test_a_window_entry_nested_too_deep_for_json_is_skipped_not_a_crash(redis_client, caplog):
    """Another program's entry of arrays nested 100,000 deep made json.loads raise RecursionError,
    not a ValueError: every detection and window read of the sensor crashed (a 500 over HTTP)."""
    det = StatisticalAnomalyDetector(settings(), redis_client=redis_client)
    det.detect_batch("deep", [10.0, 10.2, 9.9, 10.1, 10.0], timestamps=[1, 2, 3, 4, 5])
    redis_client.rpush(det.store.keys.window("deep"), "[" * 100_000)
    redis_client.delete(det.store.keys.mirror("deep"))  # the window is read from the list
    assert det.detect("deep", 10.1, timestamp=6).window_count >= 5
    assert det.get_window("deep").values.tolist()[-1] == 10.1
    manager = AnomalyRedisManager(redis_client, settings())
    redis_client.set(manager.keys.config("deep"), "[" * 100_000)
    with pytest.raises(ValueError, match="corruption"):
        manager.get_config("deep")
