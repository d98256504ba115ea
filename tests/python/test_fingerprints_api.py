"""The fingerprint pipeline behind the HTTP service (uvicorn on a free 127.0.0.1 port)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from test_api_support import LiveServer
from test_fingerprints import INTERVAL, T0, traffic

from anomaly_detection import Settings
from anomaly_detection.api import create_app
from anomaly_detection.fingerprints import FingerprintAggregator, FingerprintDetector, FingerprintPipeline

N, BURST, SLOW = 50, 40, 45


@pytest.fixture(scope="module")
def served():
    pipeline = FingerprintPipeline(
        FingerprintAggregator(interval=INTERVAL),
        FingerprintDetector(warmup=30, retrain_every=0, random_state=0),
        auto_flush=False,  # intervals close on the records' timestamps only
    )
    app = create_app(Settings(min_samples=5, window_size=50), fingerprints=pipeline)
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        rng = np.random.default_rng(0)
        for k in range(N):
            records = traffic(rng, k, {BURST: "5xx", SLOW: "latency"}.get(k))
            kinds = {"metric": "application", "business": "business", "log": "log"}
            items = [{"type": kinds[kind], **fields, "timestamp": ts} for ts, kind, fields in records]
            r = client.post("/api/batch", json={"metrics": items})
            assert r.status_code == 200, r.text
            if k == 10:  # the single-record endpoints feed the same interval
                ts = T0 + 10 * INTERVAL + 4.9
                assert client.post("/api/logs", json={"level": "ERROR", "message": "x", "service": "s",
                                                      "timestamp": ts}).status_code == 200  # fmt: skip
                assert client.post("/api/business-metrics", json={"metric_name": "orders", "value": 500,
                                   "expected_range": [20, 80], "timestamp": ts}).status_code == 200  # fmt: skip
                assert client.post("/api/metrics", json={"service": "new-svc", "endpoint": "GET:/new",
                                   "metrics": {"response_time": 5, "status_code": 200},
                                   "timestamp": ts}).status_code == 200  # fmt: skip
        closing = {"service": "web", "endpoint": "GET:/", "response_time": 50, "status_code": 200,
                   "timestamp": T0 + N * INTERVAL}  # fmt: skip
        r = client.post("/api/metrics", json=closing)
        assert r.status_code == 200
        yield client


def test_get_fingerprints_returns_every_interval_with_scores(served):
    body = served.get("/api/fingerprints", params={"limit": 1000}).json()
    items = body["items"]
    assert len(items) == N
    assert [it["start"] for it in items] == [T0 + k * INTERVAL for k in range(N)]
    assert all(it["score"] is None for it in items[:30])
    assert all(it["score"] > 0 for it in items[30:])
    assert body["feature_names"][:3] == ["request_rate", "error_4xx_rate", "error_5xx_rate"]
    assert body["status"]["detector"]["fitted"] is True
    assert body["status"]["emitted"] == N
    assert len(served.get("/api/fingerprints", params={"limit": 5}).json()["items"]) == 5
    assert served.get("/api/fingerprints", params={"limit": 0}).status_code == 422


def test_single_record_endpoints_feed_the_aggregator(served):
    fp = served.get("/api/fingerprints", params={"limit": 1000}).json()["items"][10]
    assert fp["features"]["new_edges"] == 1  # new-svc -> GET:/new
    assert fp["features"]["business_out_of_range"] == pytest.approx(1 / 3)
    assert fp["counts"]["business"] == 3


def test_incidents_are_the_only_fingerprint_alerts(served):
    items = served.get("/api/fingerprints", params={"limit": 1000}).json()["items"]
    assert [k for k, it in enumerate(items) if it["is_anomaly"]] == [BURST, SLOW]
    assert items[BURST]["top_features"][0] == "error_5xx_rate"
    assert items[SLOW]["top_features"][0].startswith("latency_")
    alerts = served.get("/api/anomalies", params={"sensor": "system.fingerprint"}).json()["items"]
    assert sorted(a["interval"][0] for a in alerts) == [T0 + BURST * INTERVAL, T0 + SLOW * INTERVAL]
    assert all(a["method"] == "fingerprint" and a["source"] == "fingerprint" for a in alerts)
