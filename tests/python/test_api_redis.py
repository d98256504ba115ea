"""The HTTP service on Redis: one view of sensors and alerts for every worker.

In-process apps on a real redis-server (two apps = two workers), and
``anomaly-detection serve --workers 2`` as a subprocess on a free port.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from servers import HOST, RedisServer, free_port, package_env, wait_for, wait_for_workers
from test_api_support import LiveServer, sse_events

from anomaly_detection import Settings
from anomaly_detection.api import create_app
from anomaly_detection.redis import scripts
from anomaly_detection.redis.codec import text

KEYS_FP_STREAM = "anomaly:stream:fingerprints"


def _settings(**kw) -> Settings:
    # z-score with a short warm-up: the tests inject a spike after a few points.
    base = {"store_backend": "redis", "detection_method": "zscore", "min_samples": 5, "window_size": 50,
            "sse_heartbeat_seconds": 0.5}  # fmt: skip
    return Settings(**{**base, **kw})


def _warm(client, sensor: str, n: int = 20) -> None:
    r = client.post(
        "/api/detect/batch", json={"sensor_name": sensor, "values": [10.0 + 0.1 * (i % 3) for i in range(n)]}
    )
    assert r.status_code == 200, r.text


def _read_events(url: str, n: int, headers=None, params=None, started: threading.Event | None = None):
    """The first n SSE events (id, data) of ``url``/api/alerts/stream."""
    with (
        httpx.Client(base_url=url, timeout=15) as client,
        client.stream("GET", "/api/alerts/stream", headers=headers or {}, params=params) as r,
    ):
        assert r.status_code == 200
        return sse_events(r.iter_lines(), n, on_connected=None if started is None else started.set)


@pytest.fixture
def two_workers(redis_server, redis_client):
    """Two apps (as two workers would be) on the same Redis."""
    apps = [create_app(_settings(redis_url=redis_server.url)) for _ in range(2)]
    with (
        LiveServer(apps[0]) as a,
        LiveServer(apps[1]) as b,
        httpx.Client(base_url=a, timeout=10) as ca,
        httpx.Client(base_url=b, timeout=10) as cb,
    ):
        yield ca, cb


def test_two_apps_share_sensors_windows_and_alerts(two_workers, redis_client):
    a, b = two_workers
    _warm(a, "shared-1")
    r = b.post("/api/detect", json={"sensor_name": "shared-1", "value": 500.0, "timestamp": 1000.0})
    assert r.json()["is_anomaly"] is True
    assert r.json()["window_count"] == 20
    a.post("/api/batch", json={"metrics": [{"type": "point", "sensor_name": "shared-2", "value": 1.0}]})
    for path in ("/api/sensors", "/api/anomalies", "/api/sensors/shared-1/window"):
        assert a.get(path).json() == b.get(path).json(), path
    page = a.get("/api/anomalies").json()
    assert page["total"] == 1
    alert = page["items"][0]
    assert alert["sensor_name"] == "shared-1"
    assert alert["source"] == "detect"
    assert alert["value"] == 500.0
    # the id is the stream id, and the alert is where the Redis layout says
    assert redis_client.xlen("anomaly:stream:alerts") == 1
    assert redis_client.exists(f"anomaly:alerts:{alert['id']}") == 1
    assert a.get("/api/sensors").json()["sensors"] == ["shared-1", "shared-2"]
    assert a.get("/health").json()["anomalies_count"] == 1


def test_anomalies_filter_and_paginate_from_redis(two_workers):
    a, b = two_workers
    _warm(a, "f-1")
    _warm(a, "f-2")
    for i, (sensor, value) in enumerate([("f-1", 300.0), ("f-2", 400.0), ("f-1", 900.0), ("f-2", 1900.0)]):
        client = a if i % 2 else b
        assert client.post("/api/detect", json={"sensor_name": sensor, "value": value, "timestamp": 100.0 + i}
                           ).json()["is_anomaly"]  # fmt: skip
    page = b.get("/api/anomalies", params={"sensor": "f-1"}).json()
    assert page["total"] == 2
    assert [x["value"] for x in page["items"]] == [900.0, 300.0]
    page = a.get("/api/anomalies", params={"start": 101, "end": 102}).json()
    assert page["total"] == 2
    assert [x["timestamp"] for x in page["items"]] == [102.0, 101.0]
    page = a.get("/api/anomalies", params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 4
    assert [x["value"] for x in page["items"]] == [900.0]
    assert b.get("/api/anomalies", params={"sensor": "nope"}).json() == {"total": 0, "limit": 100, "offset": 0,
                                                                          "items": []}  # fmt: skip


def test_anomalies_past_the_end_or_nan_bounds_answer_as_without_redis(two_workers, redis_server):
    """An offset beyond Redis's 64-bit integers was a 503 (ZRANGEBYSCORE's LIMIT refused it),
    a NaN bound too ("min or max is not a float"): past the end is an empty page, as on the
    embedded store, and a NaN bound is a 422 on both."""
    a, _ = two_workers
    _warm(a, "o-1")
    assert a.post("/api/detect", json={"sensor_name": "o-1", "value": 500.0, "timestamp": 1.0}).json()[
        "is_anomaly"
    ]
    huge = 2**64 + 5
    for params in ({"offset": huge}, {"offset": 2**63}, {"offset": huge, "start": 0, "end": 10}):
        r = a.get("/api/anomalies", params=params)
        assert r.status_code == 200, (params, r.text)
        page = r.json()
        assert (page["items"], page["total"], page["offset"]) == ([], 1, params["offset"])
    embedded = create_app(Settings(detection_method="zscore"))
    with LiveServer(embedded) as url, httpx.Client(base_url=url, timeout=10) as e:
        for client in (a, e):
            for params in ({"start": "nan"}, {"end": "NaN"}):
                r = client.get("/api/anomalies", params=params)
                assert r.status_code == 422, (params, r.text)


def test_a_range_alert_whose_distance_overflows_reaches_every_worker(two_workers):
    """-DBL_MAX against an expected range [DBL_MAX, DBL_MAX]: the alert's deviation and its
    expected value ((low + high) / 2) were inf, the JSON codec refused the document and the
    alert stayed in the worker that raised it ("could not write an alert to Redis")."""
    a, b = two_workers
    largest = 1.7976931348623157e308
    r = a.post("/api/business-metrics", json={"metric_name": "wide", "value": -largest,
                                               "expected_range": [largest, largest]})  # fmt: skip
    assert r.status_code == 200, r.text
    [alert] = r.json()["anomalies"]
    page = b.get("/api/anomalies", params={"sensor": "business.wide"}).json()
    assert page["total"] == 1
    assert page["items"][0]["id"] == alert["id"]
    assert page["items"][0]["deviation"] is None


def test_business_range_alert_is_shared(two_workers):
    a, b = two_workers
    r = a.post(
        "/api/business-metrics", json={"metric_name": "revenue", "value": 5.0, "expected_range": [10, 20]}
    )
    assert r.status_code == 200
    assert r.json()["anomalies"][0]["method"] == "expected_range"
    items = b.get("/api/anomalies").json()["items"]
    assert [x["method"] for x in items] == ["expected_range"]
    assert items[0]["id"] == r.json()["anomalies"][0]["id"]


def test_sse_follows_the_stream_of_every_worker_and_replays(two_workers):
    a, b = two_workers
    _warm(a, "sse-r")
    got: list = []
    started = threading.Event()
    reader = threading.Thread(target=lambda: got.extend(_read_events(str(a.base_url), 2, started=started)))
    reader.start()
    assert started.wait(10)
    assert a.post("/api/detect", json={"sensor_name": "sse-r", "value": 500.0}).json()["is_anomaly"]
    assert b.post("/api/detect", json={"sensor_name": "sse-r", "value": 900.0}).json()["is_anomaly"]
    reader.join(timeout=15)
    assert [e["data"]["value"] for e in got] == [500.0, 900.0]
    assert all(e["id"] == e["data"]["id"] for e in got)
    # two more while "disconnected"; reconnecting (to the other worker) with Last-Event-ID replays them
    for v in (1500.0, 2500.0):
        b.post("/api/detect", json={"sensor_name": "sse-r", "value": v})
    missed = _read_events(str(b.base_url), 2, headers={"Last-Event-ID": got[1]["id"]})
    assert [e["data"]["value"] for e in missed] == [1500.0, 2500.0]
    replay = _read_events(str(a.base_url), 4, params={"since": "0"})
    assert [e["data"]["value"] for e in replay] == [500.0, 900.0, 1500.0, 2500.0]


@pytest.mark.parametrize(
    "bad",
    # the last three: parts beyond Redis's 64-bit ids, which XREAD refuses (a stream of
    # "redis unavailable, retrying" forever)
    [
        "x",
        "12-ab",
        "-1",
        "1-2-3",
        "18446744073709551616",
        "1-18446744073709551616",
        "9" * 20 + "-" + "9" * 20,
    ],
)
def test_sse_rejects_a_bad_last_event_id(two_workers, bad):
    a, _ = two_workers
    with a.stream("GET", "/api/alerts/stream", headers={"Last-Event-ID": bad}) as r:
        assert r.status_code == 422
        r.read()
    assert "Last-Event-ID" in r.json()["detail"]


@pytest.mark.parametrize("ahead", ["99999999999999-0", "18446744073709551615-18446744073709551615"])
def test_sse_an_id_beyond_the_streams_newest_follows_from_the_newest(two_workers, ahead):
    """An id the stream never gave (made up, or from a Redis that was flushed) made XREAD wait
    for ids past it: nothing was sent until the clock reached it (the year 5138, or never)."""
    a, _ = two_workers
    _warm(a, "sse-ahead")
    got: list = []
    started = threading.Event()
    reader = threading.Thread(
        target=lambda: got.extend(
            _read_events(str(a.base_url), 1, headers={"Last-Event-ID": ahead}, started=started)
        ),
        daemon=True,
    )
    reader.start()
    assert started.wait(10)
    assert a.post("/api/detect", json={"sensor_name": "sse-ahead", "value": 500.0}).json()["is_anomaly"]
    reader.join(timeout=5)
    assert [e["data"]["value"] for e in got] == [500.0]


def test_corrupt_alert_entries_are_skipped_by_the_page_and_the_stream(two_workers, redis_client):
    """Garbage another program (or a bad disk) left under the alert keys, in the index or in the
    stream: /api/anomalies and the SSE stream skip it (logged), never a 500, a 422 or invalid JSON."""
    a, _ = two_workers
    _warm(a, "corrupt")
    for v in (500.0, 900.0):
        assert a.post("/api/detect", json={"sensor_name": "corrupt", "value": v}).json()["is_anomaly"]
    good, spoilt = a.get("/api/anomalies").json()["items"]  # newest first
    key = f"anomaly:alerts:{spoilt['id']}"
    redis_client.zadd("anomaly:index:alerts", {"not a stream id": 1.0, "1-1": 2.0})
    redis_client.set("anomaly:alerts:1-1", json.dumps({**good, "value": None}))
    for garbage in (b"\xff\xfe\x00", b"[1, 2]", b'{"sensor_name": "corrupt"}',
                    json.dumps({**spoilt, "value": float("nan")}).encode(), b"[" * 100_000, None):  # fmt: skip
        redis_client.delete(key)
        if garbage is None:
            redis_client.hset(key, "a", "b")  # WRONGTYPE
        else:
            redis_client.set(key, garbage)
        for params in ({}, {"sensor": "corrupt"}):
            r = a.get("/api/anomalies", params=params)
            assert r.status_code == 200, (garbage, r.text)
            assert [item["id"] for item in r.json()["items"]] == [good["id"]]
    stream = "anomaly:stream:alerts"
    for fields in (
        {"alert": b"\xff"},
        {"alert": '{"value": NaN}'},
        {"other": "1"},
        {"alert": '{"sensor_name": "x"}'},
        {"alert": "[" * 100_000},  # RecursionError in json.loads: the stream's generator died
    ):
        redis_client.xadd(stream, fields)
    assert a.post("/api/detect", json={"sensor_name": "corrupt", "value": 1500.0}).json()["is_anomaly"]
    events = _read_events(str(a.base_url), 3, params={"since": "0"})
    assert [e["data"]["value"] for e in events] == [500.0, 900.0, 1500.0]


def test_redis_down_gives_503_on_sensor_reads_and_alerts_from_this_worker():
    server = RedisServer().start()
    app = create_app(_settings(redis_url=server.url, redis_socket_timeout=0.5, redis_probe_interval=60))
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=10) as c:
        _warm(c, "down-1")
        server.kill()
        assert c.get("/api/sensors").status_code == 503
        # the failed read opens the breaker: this worker's alerts (none yet) are answered
        assert c.get("/api/anomalies").json()["total"] == 0
        # detection falls back to the embedded store; the alert is kept by this worker
        _warm(c, "down-1")
        assert c.post("/api/detect", json={"sensor_name": "down-1", "value": 900.0}).json()["is_anomaly"]
        assert app.state.anomaly_service.hub.total == 1
        assert [a["value"] for a in c.get("/api/anomalies").json()["items"]] == [900.0]
        health = c.get("/health").json()
        assert health["degraded"] is True
        assert health["store"]["write_back"]["alerts_held"] == 1
    server.stop()


def test_collector_writes_with_redis_down_are_accepted_and_their_fingerprints_scored():
    """The fingerprint aggregator's XADD failed with Redis down and its ConnectionError escaped the
    collector: a 503 for records whose points the detector had accepted (a retry stores them
    twice) and the closed fingerprints never scored. With the fallback policy they are answered
    200, the fingerprints scored and the ones not streamed counted."""
    server = RedisServer().start()
    app = create_app(_settings(redis_url=server.url, redis_socket_timeout=0.5, redis_probe_interval=60))
    pipeline = app.state.anomaly_service.fingerprints
    t0 = time.time() - 100
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=10) as c:

        def metric(k: int) -> httpx.Response:
            body = {
                "service": "web",
                "endpoint": "/",
                "response_time": 10.0,
                "status_code": 200,
                "timestamp": t0 + 5 * k,
            }
            return c.post("/api/metrics", json=body)

        assert [metric(k).status_code for k in range(3)] == [200] * 3
        server.kill()
        for k in range(3, 6):
            r = metric(k)
            assert r.status_code == 200, r.text
        r = c.post(
            "/api/logs", json={"level": "ERROR", "message": "m", "service": "web", "timestamp": t0 + 30}
        )
        assert r.status_code == 200, r.text
    status = pipeline.status()
    assert status["stream_errors"] >= 4
    assert status["detector"]["seen"] == status["emitted"] == 6  # every closed interval scored
    server.stop()


def test_a_fingerprint_stream_key_of_another_type_does_not_stop_the_fingerprints(redis_server, redis_client):
    """Another program's value under the stream key (WRONGTYPE) raised out of every record that
    closed an interval."""
    redis_client.set(KEYS_FP_STREAM, "not a stream")
    app = create_app(
        _settings(redis_url=f"redis://127.0.0.1:{redis_client.connection_pool.connection_kwargs['port']}/0")
    )
    pipeline = app.state.anomaly_service.fingerprints
    for k in range(4):
        pipeline.add("log", {"level": "ERROR", "service": "web", "message": "m", "timestamp": 1000.0 + 5 * k})
    assert pipeline.rejected == 0
    assert pipeline.aggregator.stream_errors == 3
    assert len(pipeline.recent()) == pipeline.detector.seen == 3


def test_concurrent_alerts_with_redis_up_are_answered_with_their_stream_ids(two_workers, redis_client):
    # the alerts go through one outbox a process: a request whose alert another thread is
    # delivering waits for it, so every answer still carries the stream id
    a, _ = two_workers
    sensors = [f"conc-{i}" for i in range(12)]
    for sensor in sensors:
        _warm(a, sensor)

    def spike(sensor: str) -> list[dict]:
        body = {"metrics": [{"type": "point", "sensor_name": sensor, "value": 900.0, "timestamp": 9000.0}]}
        return _spike(a, "/api/batch", body)

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = [alert for alerts in pool.map(spike, sensors) for alert in alerts]
    assert sorted(x["sensor_name"] for x in answers) == sorted(sensors)
    stream_ids = {text(entry_id) for entry_id, _ in redis_client.xrange("anomaly:stream:alerts")}
    assert {x["id"] for x in answers} == stream_ids
    assert len(stream_ids) == 12


def test_outage_alerts_beyond_the_outbox_are_dropped_and_counted_in_health():
    server = RedisServer().start()
    app = create_app(_settings(redis_url=server.url, redis_socket_timeout=0.5, redis_probe_interval=60))
    app.state.anomaly_service.alert_log.sink.outbox_size = 2
    try:
        with LiveServer(app) as url, httpx.Client(base_url=url, timeout=10) as c:
            sensors = [f"full-{i}" for i in range(3)]
            for sensor in sensors:
                _warm(c, sensor)
            server.kill()
            for i, sensor in enumerate(sensors):
                _spike(c, "/api/detect", {"sensor_name": sensor, "value": 900.0, "timestamp": 7000.0 + i})
            # every answer held its alert and this worker lists all 3; Redis will get the 2 oldest
            assert c.get("/api/anomalies").json()["total"] == 3
            write_back = c.get("/health").json()["store"]["write_back"]
            assert (write_back["alerts_held"], write_back["alerts_dropped"]) == (2, 1)
            held = [alert["timestamp"] for _, alert in app.state.anomaly_service.alert_log.sink.outbox]
            assert held == [7000.0, 7001.0]
    finally:
        app.state.anomaly_service.detector.store.close()
        server.stop()


# A SIGKILL loses nothing the server acknowledged: it comes back with the points of before.
DURABLE = ("--appendonly", "yes", "--appendfsync", "always")


def test_a_batchs_alerts_are_delivered_together_with_their_stream_ids(redis_server, redis_client):
    # on the worker-thread path a request's alerts are held while its points are scored, then
    # delivered in one go: two round trips for all (the delivery scripts, then storing and
    # indexing), not two for each alert
    app = create_app(_settings(redis_url=redis_server.url))
    sensors = [f"together-{i}" for i in range(6)]
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        for sensor in sensors:
            _warm(client, sensor)
        body = {
            "metrics": [
                {"type": "point", "sensor_name": s, "value": 900.0, "timestamp": 9000.0} for s in sensors
            ]
        }
        # the count script as after any earlier anomaly (a server that lacks it has every
        # script of the count pipeline sent again alone, once)
        redis_client.script_load(scripts.COUNT_ONCE)
        before = redis_client.info("stats")["total_reads_processed"]
        alerts = _spike(client, "/api/batch", body)
        reads = redis_client.info("stats")["total_reads_processed"] - before
    assert sorted(a["sensor_name"] for a in alerts) == sensors
    stream_ids = [text(entry_id) for entry_id, _ in redis_client.xrange("anomaly:stream:alerts")]
    assert len(stream_ids) == 6
    assert sorted(a["id"] for a in alerts) == sorted(stream_ids)
    # the appends, the anomaly counts, the two of the alerts and this INFO: 5 reads, 7 on a server
    # that has not seen the delivery script yet (SCRIPT LOAD, then the pipeline again); an alert
    # at a time, as before, was 2 more reads for each: 15-17
    assert reads <= 9, reads


def _spike(client, path: str, body: dict) -> list[dict]:
    """POST a spike; the alerts of the 200 answer."""
    r = client.post(path, json=body)
    assert r.status_code == 200, r.text
    if path == "/api/detect":
        assert r.json()["is_anomaly"] is True
        return [r.json()]
    return r.json()["anomalies"]


def test_outage_alerts_reach_the_redis_stream_once_when_it_returns_and_every_worker_sees_them():
    server = RedisServer(*DURABLE).start()
    settings = _settings(redis_url=server.url, redis_socket_timeout=0.5, redis_probe_interval=0.2)
    apps = [create_app(settings) for _ in range(2)]
    sensors = [f"out-{i}" for i in range(5)]
    admin = None
    try:
        with (
            LiveServer(apps[0]) as a_url,
            LiveServer(apps[1]) as b_url,
            httpx.Client(base_url=a_url, timeout=10) as a,
            httpx.Client(base_url=b_url, timeout=10) as b,
        ):
            for sensor in sensors:  # one spike per sensor: no spike widens another's window
                _warm(a, sensor)
            before = _spike(a, "/api/detect", {"sensor_name": "out-0", "value": 900.0, "timestamp": 5000.0})
            assert isinstance(before[0]["timestamp"], float)
            server.kill()  # SIGKILL
            # during the outage: 200 answers, the alerts in them (4 spikes, by both endpoints)
            during = _spike(a, "/api/detect", {"sensor_name": "out-1", "value": 900.0, "timestamp": 5001.0})
            assert len(during) == 1
            during_alerts = _spike(
                a, "/api/detect", {"sensor_name": "out-2", "value": 950.0, "timestamp": 5002.0}
            )
            batch = [
                {"type": "point", "sensor_name": "out-3", "value": 10.1, "timestamp": 5003.0},
                {"type": "point", "sensor_name": "out-3", "value": 800.0, "timestamp": 5004.0},
                {"type": "point", "sensor_name": "out-4", "value": 700.0, "timestamp": 5005.0},
            ]
            batched = _spike(a, "/api/batch", {"metrics": batch})
            assert [(x["sensor_name"], x["timestamp"]) for x in batched] == [
                ("out-3", 5004.0),
                ("out-4", 5005.0),
            ]
            outage = {("out-1", 5001.0), ("out-2", 5002.0), ("out-3", 5004.0), ("out-4", 5005.0)}
            assert len(during_alerts) == 1
            # this worker's /api/anomalies shows them now; /health counts them as held
            page = a.get("/api/anomalies").json()
            assert {(x["sensor_name"], x["timestamp"]) for x in page["items"]} == outage
            health = a.get("/health").json()
            assert health["degraded"] is True
            write_back = health["store"]["write_back"]
            assert (write_back["alerts_held"], write_back["alerts_dropped"]) == (4, 0)
            assert write_back["alerts_delivered"] == 1  # the alert of before the outage

            server.start()  # the same port, from its append-only file
            admin = server.client()
            wait_for(lambda: a.get("/health").json()["degraded"] is False, 20, "worker a's write-back")
            write_back = a.get("/health").json()["store"]["write_back"]
            assert (write_back["alerts_held"], write_back["alerts_delivered"]) == (0, 5)
            # in the stream and the index once each, published once each by the server that came back
            entries = [json.loads(fields[b"alert"]) for _, fields in admin.xrange("anomaly:stream:alerts")]
            assert sorted((x["sensor_name"], x["timestamp"]) for x in entries) == sorted(
                outage | {("out-0", 5000.0)}
            )
            assert admin.zcard("anomaly:index:alerts") == 5
            publishes = int(admin.info("commandstats").get("cmdstat_publish", {}).get("calls", 0))
            assert publishes == 4
            # the other worker (live all along; its first call after the outage may fail and recover)
            wait_for(lambda: b.get("/health").json()["degraded"] is False, 20, "worker b's probe")
            for client in (a, b):
                page = client.get("/api/anomalies").json()
                assert page["total"] == 5
                assert {(x["sensor_name"], x["timestamp"]) for x in page["items"]} == outage | {
                    ("out-0", 5000.0)
                }
                assert all(admin.exists(f"anomaly:alerts:{x['id']}") for x in page["items"])
                assert client.get("/health").json()["anomalies_count"] == 5
            # the other worker's SSE replays them from the stream (since=0), once each, in stream order
            events = _read_events(b_url, 5, params={"since": "0"})
            assert [(e["data"]["sensor_name"], e["data"]["timestamp"]) for e in events][1:] == sorted(outage)
            assert [e["id"] for e in events] == [x["id"] for x in reversed(page["items"])]
            # the anomaly counters: one per spiked sensor, the outage's counted once
            seen = {"out-0": 21, "out-1": 21, "out-2": 21, "out-3": 22, "out-4": 21}
            for sensor in sensors:
                stats = b.get(f"/api/sensors/{sensor}/window").json()["stats"]
                assert (stats["points_seen"], stats["anomalies"]) == (seen[sensor], 1), sensor
                counters = admin.hmget(f"anomaly:temp:data:{sensor}:stats", "seen", "anomalies")
                assert [int(x) for x in counters] == [seen[sensor], 1], sensor
    finally:
        if admin is not None:
            admin.close()
        for app in apps:
            app.state.anomaly_service.detector.store.close()
        server.stop()


def test_two_apps_on_a_cluster_share_alerts_and_sse(redis_cluster):
    settings = _settings(redis_cluster=True, redis_host=HOST, redis_port=redis_cluster.port,
                         redis_key_prefix="apicluster")  # fmt: skip
    apps = [create_app(settings) for _ in range(2)]
    with (
        LiveServer(apps[0]) as a_url,
        LiveServer(apps[1]) as b_url,
        httpx.Client(base_url=a_url, timeout=10) as a,
        httpx.Client(base_url=b_url, timeout=10) as b,
    ):
        _warm(a, "cl-1")
        _warm(b, "cl-2")
        got: list = []
        started = threading.Event()
        reader = threading.Thread(target=lambda: got.extend(_read_events(a_url, 2, started=started)))
        reader.start()
        assert started.wait(10)
        assert b.post("/api/detect", json={"sensor_name": "cl-1", "value": 700.0}).json()["is_anomaly"]
        assert a.post("/api/detect", json={"sensor_name": "cl-2", "value": 800.0}).json()["is_anomaly"]
        reader.join(timeout=15)
        assert [e["data"]["sensor_name"] for e in got] == ["cl-1", "cl-2"]
        assert {"cl-1", "cl-2"} <= set(b.get("/api/sensors").json()["sensors"])
        assert (
            a.get("/api/anomalies", params={"sensor": "cl-2"}).json()
            == b.get("/api/anomalies", params={"sensor": "cl-2"}).json()
        )
        assert b.get("/api/anomalies", params={"sensor": "cl-2"}).json()["total"] == 1


# --- serve --workers 2 ---------------------------------------------------------------------------


def _serve(redis_url: str, port: int, log: Path) -> subprocess.Popen:
    env = package_env()
    env.update(ANOMALY_STORE_BACKEND="redis", ANOMALY_REDIS_URL=redis_url, ANOMALY_DETECTION_METHOD="zscore",
               ANOMALY_MIN_SAMPLES="5", ANOMALY_WINDOW_SIZE="50", ANOMALY_SSE_HEARTBEAT_SECONDS="0.5")  # fmt: skip
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "anomaly_detection.api.cli", "serve", "--workers", "2",
             "--host", HOST, "--port", str(port)],
            env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip


def test_serve_two_workers_give_one_view(redis_server, redis_client, tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    proc = _serve(redis_server.url, port, log)
    url = f"http://{HOST}:{port}"
    # a new connection per request, so that requests are spread over both workers
    fresh = httpx.Limits(max_keepalive_connections=0)
    try:
        with httpx.Client(base_url=url, timeout=10, limits=fresh) as c:
            wait_for_workers(c, proc, log, 2, 60)
            got: list = []
            started = threading.Event()
            reader = threading.Thread(target=lambda: got.extend(_read_events(url, 3, started=started)))
            reader.start()
            assert started.wait(10)
            for sensor in ("w-1", "w-2", "w-3"):
                for i in range(20):
                    r = c.post("/api/detect", json={"sensor_name": sensor, "value": 10.0 + 0.1 * (i % 3)})
                    assert r.status_code == 200
            for sensor in ("w-1", "w-2", "w-3"):
                r = c.post(
                    "/api/batch", json={"metrics": [{"type": "point", "sensor_name": sensor, "value": 900.0}]}
                )
                assert len(r.json()["anomalies"]) == 1
            reader.join(timeout=15)
            assert sorted(e["data"]["sensor_name"] for e in got) == ["w-1", "w-2", "w-3"]
            views = {}
            for path in ("/api/sensors", "/api/anomalies", "/api/sensors/w-2/window"):
                # Ask until both workers have answered this path (the kernel, not us, picks the
                # worker of a new connection), then every answer must be the same view.
                seen, answered, asked = set(), set(), 0
                deadline = time.monotonic() + 30
                while len(answered) < 2 or asked < 8:
                    assert time.monotonic() < deadline, f"{path}: only workers {answered} answered"
                    with httpx.Client(base_url=url, timeout=10) as one:  # one connection, so one worker
                        answered.add(one.get("/health").json()["worker_pid"])
                        seen.add(json.dumps(one.get(path).json(), sort_keys=True))
                    asked += 1
                assert len(seen) == 1, path
                views[path] = json.loads(seen.pop())
            assert views["/api/sensors"]["sensors"] == ["w-1", "w-2", "w-3"]
            assert views["/api/anomalies"]["total"] == 3
            assert len(views["/api/sensors/w-2/window"]["values"]) == 21
            assert redis_client.xlen("anomaly:stream:alerts") == 3
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_stalled_redis_never_blocks_the_event_loop():
    # Detection through the service's sync client runs on worker threads: while one request
    # waits for a Redis that sleeps, the loop answers others (issue 16, item 1).
    server = RedisServer("--enable-debug-command", "yes").start()
    app = create_app(_settings(redis_url=server.url, redis_socket_timeout=5))
    try:
        with LiveServer(app) as url, httpx.Client(base_url=url, timeout=10) as c:
            _warm(c, "stall-1")
            finished: list[str] = []

            def stalled_detect():
                r = c.post("/api/detect", json={"sensor_name": "stall-1", "value": 10.0})
                assert r.status_code == 200, r.text
                finished.append("detect")

            sleeper = threading.Thread(target=server.client().execute_command, args=("DEBUG", "SLEEP", "1.5"))
            sleeper.start()
            time.sleep(0.1)  # Redis is asleep from here on
            detect = threading.Thread(target=stalled_detect)
            detect.start()
            time.sleep(0.2)  # the detect request is waiting for Redis
            with httpx.Client(base_url=url, timeout=10) as other:
                assert other.get("/config").status_code == 200
            finished.append("config")
            detect.join()
            sleeper.join()
            assert finished == ["config", "detect"]
            assert app.state.anomaly_service.detector.health()["degraded"] is False  # no timeout
    finally:
        server.stop()
