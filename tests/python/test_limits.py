"""Issue 16, item 5: bounded memory. A finite sensor limit, idle embedded sensors
expire as their Redis keys do, a limit on distinct sensors per request, and the
service refuses to serve anonymous writes beyond 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from servers import HOST, free_port, package_env

from anomaly_detection import Settings, StatisticalAnomalyDetector
from anomaly_detection.api.cli import check_bind, is_loopback
from anomaly_detection.errors import SensorLimitError
from anomaly_detection.stores.embedded import EmbeddedStore


class FakeClock:
    """A monotonic clock the test moves by hand (the store's only view of time)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_max_sensors_is_finite_by_default():
    assert Settings().max_sensors == 10_000
    assert StatisticalAnomalyDetector().settings.to_detector_config().max_sensors == 10_000


def _store(ttl: float, clock: FakeClock, max_sensors: int = 0) -> EmbeddedStore:
    settings = Settings(detection_method="zscore", window_size=10, min_samples=3, max_sensors=max_sensors)
    return EmbeddedStore(settings.to_detector_config(), ttl=ttl, clock=clock)


def test_idle_embedded_sensors_expire_after_ttl_and_busy_ones_stay():
    clock = FakeClock()
    store = _store(100, clock)
    store.detect("idle", 1.0, 1.0)
    store.detect("busy", 1.0, 1.0)
    for step in range(1, 7):  # 150 s in steps of 25 s (the look interval is ttl / 4)
        clock.now += 25
        store.detect("busy", 1.0, 1.0 + step)
        store.expire_idle()
        if clock.now - 1000.0 < 100:  # never before ttl
            assert "idle" in store.sensors()
    assert store.sensors() == ["busy"]  # gone by 1.5 * ttl
    assert store.window("idle").values.size == 0
    assert store.summary("busy")["points_seen"] == 7


def test_the_per_point_path_costs_nothing_and_the_limit_makes_room_through_detect():
    det = StatisticalAnomalyDetector(detection_method="zscore", max_sensors=50, temp_data_ttl=100)
    clock = FakeClock()
    det._use_store(EmbeddedStore(det.settings.to_detector_config(), ttl=100, clock=clock))
    assert det.store.detect == det.store.registry.detect  # no Python frame per point
    for i in range(50):
        det.detect(f"old-{i}", 1.0, 1.0)
    det.store.expire_idle(force=True)  # a look notes the counts (any read would, when due)
    clock.now += 60
    det.detect("old-0", 2.0, 2.0)  # busy
    with pytest.raises(SensorLimitError):
        det.detect("new", 1.0, 1.0)  # nothing idle for 100 s yet: refused, nothing changed
    assert len(det.store.registry) == 50
    clock.now += 60
    det.detect("new", 1.0, 1.0)  # the limit makes room: the 49 idle sensors go
    assert sorted(det.store.registry.sensors()) == ["new", "old-0"]


def test_sensor_limit_makes_room_by_expiring_idle_sensors_first():
    clock = FakeClock()
    store = _store(100, clock, max_sensors=2)
    store.detect("a", 1.0, 1.0)
    store.detect("b", 1.0, 1.0)
    with pytest.raises(SensorLimitError):
        store.detect("c", 1.0, 1.0)
    assert sorted(store.registry.sensors()) == ["a", "b"]  # a refused sensor changes nothing
    store.expire_idle(force=True)  # the first look notes the counts
    clock.now += 100
    store.detect_batch("c", np.array([1.0, 2.0]), np.array([1.0, 2.0]))  # the limit forces a look
    assert store.sensors() == ["c"]


def test_detector_uses_temp_data_ttl_for_the_embedded_store_and_snapshots():
    det = StatisticalAnomalyDetector(temp_data_ttl=321)
    assert det.store.ttl == 321
    det.detect("s", 1.0, 1.0)
    restored = StatisticalAnomalyDetector.from_bytes(det.to_bytes(), Settings(temp_data_ttl=55))
    assert restored.store.ttl == 55
    assert restored.sensors() == ["s"]


# --- the HTTP service ---------------------------------------------------------------------------


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def _serve(tmp_path, *args: str, env: dict[str, str] | None = None):
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "anomaly_detection.api.cli", "serve", "--port", str(port), *args],
            env={**package_env(), **(env or {})}, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return proc, f"http://{HOST}:{port}", log


def _wait_up(proc, url: str, log) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "/health", timeout=1)
            return
        except httpx.TransportError:  # noqa: PERF203 - polling until the server is up
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "serve did not answer"
            time.sleep(0.1)


def test_ten_thousand_distinct_names_in_one_batch_are_refused_and_cost_no_memory(tmp_path):
    proc, url, log = _serve(tmp_path, "--host", HOST)
    try:
        _wait_up(proc, url, log)
        with httpx.Client(base_url=url, timeout=60) as client:
            # the process's own baseline after one request of each kind
            assert client.post(
                "/api/batch", json={"metrics": [{"type": "point", "sensor_name": "w", "value": 1.0}]}
            ).is_success
            before = _rss_kb(proc.pid)
            body = {
                "metrics": [
                    {"type": "point", "sensor_name": f"flood-{i}", "value": 1.0} for i in range(10_000)
                ]
            }
            r = client.post(
                "/api/batch", content=json.dumps(body), headers={"content-type": "application/json"}
            )
            assert r.status_code == 413, r.text
            assert "max_sensors_per_request" in r.json()["detail"]
            grown_mb = (_rss_kb(proc.pid) - before) / 1024
            sensors = client.get("/api/sensors").json()
            # at the limit: 500 fresh ensemble sensors in one request
            at_limit = {
                "metrics": [{"type": "point", "sensor_name": f"ok-{i}", "value": 1.0} for i in range(500)]
            }
            r = client.post("/api/batch", json=at_limit)
            assert r.status_code == 200, r.text
            at_limit_mb = (_rss_kb(proc.pid) - before) / 1024
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert len(sensors["sensors"]) == 1  # nothing of the refused request was stored
    print(f"RSS growth: refused 10,000-name request {grown_mb:.1f} MB; 500 sensors {at_limit_mb:.1f} MB")
    assert grown_mb < 100
    assert at_limit_mb < 100


def test_per_request_limit_counts_sensors_not_points_and_applies_to_every_path():
    from test_api_support import LiveServer

    from anomaly_detection.api import create_app

    app = create_app(Settings(detection_method="zscore", max_sensors_per_request=3))
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        many_points = {
            "metrics": [{"type": "point", "sensor_name": f"p{i % 3}", "value": float(i)} for i in range(30)]
        }
        assert client.post("/api/batch", json=many_points).status_code == 200
        four = [{"type": "point", "sensor_name": f"q{i}", "value": 1.0} for i in range(4)]
        r = client.post("/api/batch", json={"metrics": four})
        assert r.status_code == 413
        assert "limit is 3 per request" in r.json()["detail"]
        mixed = [
            *four[:3],
            {"type": "metric", "data": {"service": "api", "endpoint": "/x", "response_time": 5.0}},
        ]
        assert client.post("/api/batch", json={"metrics": mixed}).status_code == 413  # the slow path too
        assert sorted(client.get("/api/sensors").json()["sensors"]) == ["p0", "p1", "p2"]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("example.org", False)],
)  # fmt: skip
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_bind_beyond_loopback_needs_keys_or_the_explicit_flag():
    with pytest.raises(SystemExit, match="--allow-anonymous-writes"):
        check_bind(Settings(api_host="0.0.0.0"))
    check_bind(Settings(api_host="0.0.0.0", api_keys=["k"]))
    check_bind(Settings(api_host="0.0.0.0", allow_anonymous_writes=True))
    check_bind(Settings(api_host="127.0.0.1"))


def test_the_serve_flag_allows_anonymous_writes(monkeypatch):
    # Parsed only: nothing is started, so nothing binds beyond 127.0.0.1 in the tests.
    import argparse

    from anomaly_detection.api.cli import _settings, add_api_parsers

    monkeypatch.delenv("ANOMALY_API_KEYS", raising=False)
    parser = argparse.ArgumentParser()
    add_api_parsers(parser.add_subparsers())
    refused = _settings(parser.parse_args(["serve", "--host", "0.0.0.0"]))
    with pytest.raises(SystemExit, match=r"refusing to bind 0\.0\.0\.0 without ANOMALY_API_KEYS"):
        check_bind(refused)
    allowed = _settings(parser.parse_args(["serve", "--host", "0.0.0.0", "--allow-anonymous-writes"]))
    assert allowed.allow_anonymous_writes
    check_bind(allowed)
