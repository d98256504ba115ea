"""The HTTP service's request path on Redis awaits a ``redis.asyncio`` twin of its sync client.

Real redis-servers on free 127.0.0.1 ports, the app served by uvicorn (``LiveServer``), real
HTTP. The request path sends one pipeline a request with no worker thread; the store's breaker,
its write-back and the alert outbox stay on the sync client, so every guarantee of the sync
path holds: checked here with redis-server SIGKILLed while clients keep posting.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time

import httpx
import numpy as np
import pytest
from servers import RedisServer, wait_for
from test_api_support import LiveServer

from anomaly_detection import Settings
from anomaly_detection.api import create_app
from anomaly_detection.redis.client import async_client_like, redis_client_from_settings
from anomaly_detection.redis.codec import text
from anomaly_detection.stores.redis import RedisStore

_STREAM_ID = re.compile(r"^\d+-\d+$")


def _settings(**kw) -> Settings:
    base = {"store_backend": "redis", "detection_method": "zscore", "min_samples": 5, "window_size": 400,
            "sse_heartbeat_seconds": 0.5, "redis_async_requests": True}  # fmt: skip
    return Settings(**{**base, **kw})


def _batch(sensors: dict[str, list[tuple[float, float]]]) -> dict:
    return {
        "metrics": [
            {"type": "point", "sensor_name": s, "value": v, "timestamp": t}
            for s, points in sensors.items()
            for v, t in points
        ]
    }


def test_requests_on_redis_take_no_worker_thread_and_one_pipeline(redis_server, redis_client, monkeypatch):
    app = create_app(_settings(redis_url=redis_server.url))
    service = app.state.anomaly_service
    assert service._native
    assert not service._redis_blocks
    hops: list[object] = []
    real_to_thread = asyncio.to_thread

    async def counting_to_thread(fn, *args, **kwargs):
        hops.append(fn)
        return await real_to_thread(fn, *args, **kwargs)

    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=10) as c:
        warm = {f"nt-{i}": [(10.0 + 0.1 * (k % 3), 100.0 + k) for k in range(20)] for i in range(3)}
        assert c.post("/api/batch", json=_batch(warm)).status_code == 200
        redis_client.config_resetstat()
        monkeypatch.setattr(asyncio, "to_thread", counting_to_thread)
        spiked = {"nt-0": [(10.0, 200.0)], "nt-1": [(900.0, 201.0)], "nt-2": [(10.1, 202.0), (10.2, 203.0)]}
        r = c.post("/api/batch", json=_batch(spiked), headers={"Idempotency-Key": "nt-batch-1"})
        assert r.status_code == 200, r.text
        alerts = r.json()["anomalies"]
        d = c.post("/api/detect", json={"sensor_name": "nt-0", "value": 800.0, "timestamp": 204.0})
        b = c.post("/api/detect/batch", json={"sensor_name": "nt-2", "values": [10.0, 700.0]})
        assert (d.status_code, b.status_code) == (200, 200)
        assert hops == []  # no request went through a worker thread
        monkeypatch.setattr(asyncio, "to_thread", real_to_thread)
        stats = redis_client.info("commandstats")
        # the batch's 3 appends, then one each for the two detects: 5 EVALSHA of the append (each
        # claims the window its sensor's last append left, so the append counts the anomalies:
        # no COUNT_ONCE) and 3 of the alert delivery (the first of a script the server had not
        # seen loads it)
        evalsha = stats["cmdstat_evalsha"]
        refused = evalsha.get("failed_calls", 0)
        assert evalsha["calls"] - refused == 5 + 3
        assert int(redis_client.hget("anomaly:temp:data:nt-0:stats", "anomalies")) == 1
        assert int(redis_client.hget("anomaly:temp:data:nt-1:stats", "anomalies")) == 1
        assert int(redis_client.hget("anomaly:temp:data:nt-2:stats", "anomalies")) == 1
        assert refused == stats.get("cmdstat_script|load", {}).get("calls", 0) <= 2
        # the batch's alert carries its stream id, as does the detect's
        assert [(x["sensor_name"], x["value"]) for x in alerts] == [("nt-1", 900.0)]
        assert _STREAM_ID.match(alerts[0]["id"])
        assert d.json()["is_anomaly"] is True
        assert b.json()["is_anomaly"] == [False, True]
        ids = [entry_id.decode() for entry_id, _ in redis_client.xrange("anomaly:stream:alerts")]
        assert alerts[0]["id"] in ids
        assert len(ids) == 3
        # the idempotency key: the same body again replays the answer and stores nothing
        again = c.post("/api/batch", json=_batch(spiked), headers={"Idempotency-Key": "nt-batch-1"})
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert again.json() == r.json()
        assert redis_client.llen("anomaly:temp:data:nt-2:queue") == 20 + 2 + 2
        assert c.get("/health").json()["status"] == "ok"


def _stream(url: str, worker: int, requests: int, progress: list[int], answers: list, errors: list) -> None:
    """One client posting ``requests`` batches (2 own sensors, 5 points each, one spike on the
    first sensor every 10th request) plus one point to a sensor every client writes."""
    try:
        with httpx.Client(base_url=url, timeout=20) as c:
            for k in range(requests):
                own = {}
                for j in range(2):
                    points = []
                    for i in range(5):
                        n = k * 5 + i
                        spike = j == 0 and i == 2 and k % 10 == 9
                        points.append((900.0 + n if spike else 10.0 + 0.01 * (n % 7), 1000.0 + n))
                    own[f"kill-{worker}-{j}"] = points
                # 10 or 11, alternating in each client: whatever order the clients' points
                # arrive in, any 5 of them hold both values, so none is ever an outlier
                own["kill-shared"] = [(10.0 + (worker + k) % 2, 5000.0 + worker * 1000 + k)]
                r = c.post("/api/batch", json=_batch(own))
                answers.append((r.status_code, r.json()["anomalies"] if r.status_code == 200 else r.text))
                progress[worker] += 1
    except Exception as e:  # noqa: BLE001 - reported by the test
        errors.append(e)


@pytest.mark.parametrize("native", [True, False], ids=["asyncio", "threads"])
def test_redis_killed_mid_request_stream_keeps_every_point_and_alert_once(native):
    server = RedisServer("--appendonly", "yes", "--appendfsync", "always").start()
    settings = _settings(redis_url=server.url, redis_socket_timeout=0.5, redis_probe_interval=0.2)
    app = create_app(settings)
    service = app.state.anomaly_service
    assert service._native
    if not native:  # the worker-thread path (a Cluster's): the same guarantees
        service._native, service._redis_blocks = False, True
    workers, requests = 3, 40
    progress = [0] * workers
    answers: list = []
    errors: list = []
    admin = None
    try:
        with LiveServer(app) as url, httpx.Client(base_url=url, timeout=10) as c:
            threads = [
                threading.Thread(target=_stream, args=(url, w, requests, progress, answers, errors))
                for w in range(workers)
            ]
            for t in threads:
                t.start()
            wait_for(lambda: sum(progress) >= 25, 60, "requests before the kill")
            server.kill()  # SIGKILL while the clients post
            killed_at = sum(progress)
            wait_for(lambda: sum(progress) >= killed_at + 30, 60, "requests during the outage")
            health = c.get("/health").json()
            assert health["degraded"] is True
            assert health["store"]["write_back"]["buffered"] > 0
            restarted_ms = time.time() * 1000
            server.start()  # the same port, from its append-only file
            for t in threads:
                t.join(timeout=120)
            assert not errors, errors
            wait_for(lambda: c.get("/health").json()["degraded"] is False, 30, "the write-back")
            health = c.get("/health").json()
            admin = server.client()

            assert [status for status, _ in answers] == [200] * (workers * requests)
            answered = [a for _, alerts in answers for a in alerts]
            expected_spikes = {
                (f"kill-{w}-0", 1000.0 + k * 5 + 2)
                for w in range(workers)
                for k in range(requests)
                if k % 10 == 9
            }
            # every spike answered as an anomaly, once
            assert sorted((a["sensor_name"], a["timestamp"]) for a in answered) == sorted(expected_spikes)
            # answered from this worker during the outage (30 requests: one client made 10 of them,
            # so at least one spike)
            during = [a for a in answered if not _STREAM_ID.match(str(a["id"]))]
            assert during
            # each alert in the stream and the index once; the outage's published once by the new server
            entries = [json.loads(fields[b"alert"]) for _, fields in admin.xrange("anomaly:stream:alerts")]
            assert sorted((x["sensor_name"], x["timestamp"]) for x in entries) == sorted(expected_spikes)
            assert admin.zcard("anomaly:index:alerts") == len(expected_spikes)
            publishes = int(admin.info("commandstats").get("cmdstat_publish", {}).get("calls", 0))
            # the new server published exactly what it appended to the stream: the outage's alerts
            # (but one whose delivery ran on the old server, its reply lost: found by its mark)
            # and those of the requests after its start; each alert answered with a stream id
            # answered with its own
            stream = {(x["sensor_name"], x["timestamp"]): text(i) for i, x in
                      ((i, json.loads(f[b"alert"])) for i, f in admin.xrange("anomaly:stream:alerts"))}  # fmt: skip
            new = [i for i in stream.values() if int(i.split("-")[0]) >= restarted_ms]
            assert publishes == len(new)
            assert len(new) >= 1
            for a in answered:
                if _STREAM_ID.match(str(a["id"])):
                    assert stream[(a["sensor_name"], a["timestamp"])] == a["id"]
            write_back = health["store"]["write_back"]
            assert write_back["alerts_held"] == 0
            assert write_back["alerts_delivered"] == len(expected_spikes)
            # every point once, in order, on its own sensors; the shared sensor holds each once
            counted: dict[str, tuple[int, int]] = {}  # sensor: (counted, flagged)
            for w in range(workers):
                for j in range(2):
                    sensor = f"kill-{w}-{j}"
                    raw = admin.lrange(f"anomaly:temp:data:{sensor}:queue", 0, -1)
                    stamps = [json.loads(x)["timestamp"] for x in raw]
                    assert stamps == [1000.0 + n for n in range(requests * 5)], sensor
                    seen, anomalies = admin.hmget(f"anomaly:temp:data:{sensor}:stats", "seen", "anomalies")
                    assert int(seen) == requests * 5
                    counted[sensor] = (int(anomalies or 0), requests // 10 if j == 0 else 0)
            raw = admin.lrange("anomaly:temp:data:kill-shared:queue", 0, -1)
            stamps = sorted(json.loads(x)["timestamp"] for x in raw)
            assert stamps == sorted(5000.0 + w * 1000 + k for w in range(workers) for k in range(requests))
            assert int(admin.hget("anomaly:temp:data:kill-shared:stats", "seen")) == workers * requests
            assert all(got == want for got, want in counted.values()), counted  # each anomaly once
    finally:
        if admin is not None:
            admin.close()
        service.detector.store.close()
        server.stop()


def test_a_thread_and_the_loop_on_one_sensor_keep_the_appends_in_sequence(redis_server):
    # One store, one writer id: a thread's detect and the loop's adetect of the same sensor
    # at once never reach the server out of sequence (an older append would be refused).
    settings = _settings(redis_url=redis_server.url, redis_key_prefix="mixed")
    client = redis_client_from_settings(settings)
    store = RedisStore(client, settings)
    store.use_async_client(lambda: async_client_like(client, settings, settings.redis_socket_timeout))
    n = 150

    def from_thread():
        for i in range(n):
            store.detect("mixed-1", 10.0 + 0.01 * (i % 5), 1.0 + i)

    async def from_loop():
        for i in range(n):
            await store.adetect("mixed-1", 10.0 + 0.01 * (i % 5), 10_000.0 + i)
            if i % 10 == 0:
                await asyncio.sleep(0)  # let the thread in

    async def both():
        thread = asyncio.get_running_loop().run_in_executor(None, from_thread)
        await from_loop()
        await thread
        for driver in store._async_drivers.values():
            await driver.client.aclose()

    asyncio.run(both())
    window = store.window("mixed-1")
    assert len(window.values) == 2 * n
    stamps = np.asarray(window.timestamps)
    # each path's points once and in its own order
    assert list(stamps[stamps < 10_000]) == [1.0 + i for i in range(n)]
    assert list(stamps[stamps >= 10_000]) == [10_000.0 + i for i in range(n)]
    assert store.summary("mixed-1")["points_seen"] == 2 * n
    store.close()
    client.close()


@pytest.mark.parametrize("method", ["ensemble", "ewma"])
def test_other_methods_on_the_twin_score_as_the_sync_path(redis_server, method):
    settings = _settings(redis_url=redis_server.url, detection_method=method, window_size=60)
    values = np.r_[10.0 + 0.1 * np.sin(np.arange(120)), 60.0, 10.0 + 0.1 * np.sin(np.arange(20))]
    stamps = 1.0 + np.arange(len(values))

    def run(native: bool) -> list[tuple[bool, float]]:
        prefix = f"twin{method}{int(native)}"
        s = settings.model_copy(update={"redis_key_prefix": prefix})
        app = create_app(s)
        assert app.state.anomaly_service._native
        if not native:  # the worker-thread path, as before
            app.state.anomaly_service._native = False
            app.state.anomaly_service._redis_blocks = True
        out = []
        with LiveServer(app) as url, httpx.Client(base_url=url, timeout=20) as c:
            for k in range(0, len(values), 7):
                body = {"sensor_name": "tw", "values": values[k : k + 7].tolist(),
                        "timestamps": stamps[k : k + 7].tolist()}  # fmt: skip
                r = c.post("/api/detect/batch", json=body)
                assert r.status_code == 200, r.text
                got = r.json()
                out += [(flag, round(score, 9)) for flag, score in zip(got["is_anomaly"], got["scores"])]
        app.state.anomaly_service.detector.store.close()
        return out

    native, threaded = run(True), run(False)
    assert native == threaded
    assert any(flag for flag, _ in native)  # the spike
