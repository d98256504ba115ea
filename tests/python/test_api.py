"""The HTTP service over real HTTP (uvicorn on a free 127.0.0.1 port)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading

import httpx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_api_support import LiveServer, sse_events

from anomaly_detection import Settings
from anomaly_detection.api import create_app, sensor_name_for
from anomaly_detection.api.models import point_groups

KEY = "s3cret-key-for-tests"


@pytest.fixture(scope="module")
def live():
    settings = Settings(detection_method="zscore", min_samples=5, window_size=50, log_rate_interval=0.5, sse_heartbeat_seconds=0.5,
                        max_batch_items=100, max_request_bytes=64 * 1024)  # fmt: skip
    app = create_app(settings)
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        client.app = app
        yield client


@pytest.fixture(scope="module")
def secured():
    app = create_app(Settings(detection_method="zscore", api_keys=[KEY, "second-key"],
                              cors_origins=["http://example.test"]))  # fmt: skip
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        client.app = app
        yield client


def _warm(client, sensor: str, n: int = 20, base: float = 10.0) -> None:
    r = client.post(
        "/api/detect/batch", json={"sensor_name": sensor, "values": [base + 0.1 * (i % 3) for i in range(n)]}
    )
    assert r.status_code == 200, r.text


# --- detection ---------------------------------------------------------------------------------


def test_detect_returns_the_fields_of_anomaly_result(live):
    _warm(live, "pump-1")
    r = live.post(
        "/api/detect", json={"sensor_name": "pump-1", "value": 50.0, "timestamp": "2024-01-15T10:30:00Z"}
    )
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"sensor_name", "value", "timestamp", "is_anomaly", "score", "deviation", "expected",
                         "window_count", "threshold", "method", "warming_up"}  # fmt: skip
    assert body["is_anomaly"] is True
    assert body["warming_up"] is False  # 20 points learned, min_samples is 5
    assert body["timestamp"] == 1705314600.0
    assert body["window_count"] == 20


def test_detect_batch_equals_loop(live):
    values = [1.0, 1.1, 0.9, 1.0, 1.2, 1.0, 9.0, 1.0]
    batch = live.post(
        "/api/detect/batch", json={"sensor_name": "b-batch", "values": values, "timestamps": list(range(8))}
    ).json()
    loop = [live.post("/api/detect", json={"sensor_name": "b-loop", "value": v, "timestamp": i}).json()
            for i, v in enumerate(values)]  # fmt: skip
    assert batch["is_anomaly"] == [x["is_anomaly"] for x in loop]
    assert batch["scores"] == pytest.approx([x["score"] for x in loop])
    assert batch["anomaly_count"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {"sensor_name": "bad:name", "value": 1.0},
        {"sensor_name": "ok", "value": "abc"},
        {"sensor_name": "ok"},
        {"sensor_name": "ok", "value": 1.0, "timestamp": "not a time"},
        {"sensor_name": "ok", "value": 1.0, "unknown": 1},
    ],
)
def test_invalid_detect_bodies_give_422_and_change_nothing(live, body):
    before = live.get("/api/sensors").json()["sensors"]
    r = live.post("/api/detect", json=body)
    assert r.status_code == 422
    assert r.json()["detail"]
    assert live.get("/api/sensors").json()["sensors"] == before


def test_nan_in_batch_gives_422_and_changes_nothing(live):
    r = live.post("/api/detect/batch", content=b'{"sensor_name": "nan-s", "values": [1.0, NaN]}',
                  headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 422
    assert "nan-s" not in live.get("/api/sensors").json()["sensors"]
    r = live.post("/api/detect/batch", json={"sensor_name": "len-s", "values": [1.0, 2.0], "timestamps": [1]})
    assert r.status_code == 422
    assert "len-s" not in live.get("/api/sensors").json()["sensors"]


# --- the collector (the original prototype's bodies, both spellings) ---------------------------------------------


def test_metrics_nested_and_flat(live):
    nested = {"service": "payment-service", "endpoint": "POST:/api/payments",
              "metrics": {"response_time": 150, "status_code": 200, "payload_size": 1024}}  # fmt: skip
    r = live.post("/api/metrics", json=nested)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["points"] == 3
    assert set(body["sensors"]) == {"payment-service.POST_api_payments.response_time",
                                    "payment-service.POST_api_payments.error",
                                    "payment-service.POST_api_payments.payload_size"}  # fmt: skip
    flat = {"service": "user-service", "endpoint": "/api/users", "response_time": 245, "status_code": 200,
            "timestamp": "2024-01-15T10:30:00Z", "user_id": "user123", "session_id": "sess456"}  # fmt: skip
    body = live.post("/api/metrics", json=flat).json()
    assert sorted(body["sensors"]) == ["user-service.api_users.error", "user-service.api_users.response_time"]
    window = live.get("/api/sensors/user-service.api_users.response_time/window").json()
    assert window["values"] == [245.0]
    assert window["timestamps"] == [1705314600.0]
    # the original prototype's middleware example: timestamp nested inside metrics
    nested_ts = {
        "service": "web-api",
        "endpoint": "GET:/x",
        "metrics": {"response_time": 5, "timestamp": 1700000000},
    }
    live.post("/api/metrics", json=nested_ts)
    assert live.get("/api/sensors/web-api.GET_x.response_time/window").json()["timestamps"] == [1700000000.0]


@pytest.mark.parametrize(
    "body",
    [
        {"endpoint": "/x", "metrics": {"response_time": 1}},  # no service
        {"service": "s", "endpoint": "/x", "metrics": {"note": "text"}},  # no number
        {"service": "s", "metrics": "nope"},
    ],
)
def test_metrics_invalid(live, body):
    assert live.post("/api/metrics", json=body).status_code == 422


def test_business_metrics_both_spellings_and_expected_range(live):
    r = live.post("/api/business-metrics", json={"metric_name": "daily_revenue", "value": 45000,
                  "expected_range": [40000, 60000], "metadata": {"currency": "USD", "region": "US-WEST"}})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["sensors"] == ["business.daily_revenue"]
    assert r.json()["anomalies"] == []
    r = live.post("/api/business-metrics", json={"metric_type": "revenue", "value": 15420.50, "currency": "USD",
                  "timestamp": "2024-01-15T10:30:00Z", "user_id": "user123", "region": "us-west"})  # fmt: skip
    assert r.json()["sensors"] == ["business.revenue"]
    r = live.post(
        "/api/business-metrics", json={"metric_name": "test_kpi", "value": 200, "expected_range": [80, 120]}
    )
    alerts = r.json()["anomalies"]
    assert len(alerts) == 1
    assert alerts[0]["method"] == "expected_range"
    assert alerts[0]["sensor_name"] == "business.test_kpi"
    page = live.get("/api/anomalies", params={"sensor": "business.test_kpi"}).json()
    assert page["total"] == 1
    assert live.post("/api/business-metrics", json={"value": 1}).status_code == 422
    assert (
        live.post(
            "/api/business-metrics", json={"metric_name": "x", "value": 1, "expected_range": [5, 1]}
        ).status_code
        == 422
    )


def test_logs_both_spellings_and_error_rate(live):
    for body in ({"log_level": "ERROR", "message": "Database connection timeout", "service": "user-service",
                  "context": {"user_id": "12345"}},
                 {"level": "error", "message": "Database connection timeout", "service": "user-service",
                  "timestamp": "2024-01-15T10:30:00Z", "trace_id": "t", "metadata": {"retry_count": 3}}):  # fmt: skip
        r = live.post("/api/logs", json=body)
        assert r.status_code == 200, r.text
    assert live.post("/api/logs", json={"message": "no level"}).status_code == 422
    assert live.post("/api/logs", json={"level": "LOUD", "message": "m"}).status_code == 422
    # the interval (0.5 s) closes by itself: the error count becomes a point of logs.user-service.error_rate
    import time

    # The two errors may fall in one interval (one point, 2.0) or straddle two (1.0 and 1.0,
    # the second when its interval closes too): both are counted either way.
    deadline = time.monotonic() + 5
    counted: list[float] = []
    while sum(counted) < 2:
        assert time.monotonic() < deadline, f"the log intervals were not flushed: {counted}"
        time.sleep(0.1)
        if "logs.user-service.error_rate" in live.get("/api/sensors").json()["sensors"]:
            counted = live.get("/api/sensors/logs.user-service.error_rate/window").json()["values"]
    assert sum(counted) == 2.0
    assert counted[0] in (1.0, 2.0)


def test_batch_both_shapes(live):
    prototype_flat = {"metrics": [
        {"type": "application", "service": "api-gateway", "endpoint": "GET:/api/users",
         "metrics": {"response_time": 89, "status_code": 200}},
        {"type": "business", "metric_name": "user_registrations", "value": 23},
        {"type": "log", "log_level": "INFO", "message": "User login successful", "service": "auth-service"},
    ]}  # fmt: skip
    r = live.post("/api/batch", json=prototype_flat)
    assert r.status_code == 200, r.text
    assert r.json()["records"] == 3
    assert "business.user_registrations" in r.json()["sensors"]
    prototype_nested = {"batch_id": "batch123", "metrics": [
        {"type": "metric", "data": {"service": "order-service", "endpoint": "/api/orders", "response_time": 180,
                                    "status_code": 200, "timestamp": "2024-01-15T10:30:00Z"}},
        {"type": "business_metric", "data": {"metric_type": "order_value", "value": 299.99, "currency": "USD",
                                             "timestamp": "2024-01-15T10:30:00Z", "user_id": "user123"}},
    ]}  # fmt: skip
    body = live.post("/api/batch", json=prototype_nested).json()
    assert body["batch_id"] == "batch123"
    assert body["records"] == 2
    assert "order-service.api_orders.response_time" in body["sensors"]
    assert "business.order_value" in body["sensors"]


def test_batch_points_are_scored_in_order(live):
    items = [
        {"type": "point", "sensor_name": "bp", "value": 5.0 + 0.01 * (i % 4), "timestamp": i}
        for i in range(30)
    ]
    items.append({"type": "point", "sensor_name": "bp", "value": 500.0, "timestamp": 30})
    body = live.post("/api/batch", json={"items": items}).json()
    assert body["points"] == 31
    assert [a["value"] for a in body["anomalies"]] == [500.0]
    assert live.get("/api/sensors/bp/window").json()["values"][-1] == 500.0


def test_batch_invalid_item_changes_nothing(live):
    items = [{"type": "point", "sensor_name": "bi", "value": 1.0},
             {"type": "business", "value": 3},  # no name
             {"type": "weird", "value": 3}]  # fmt: skip
    r = live.post("/api/batch", json={"metrics": items})
    assert r.status_code == 422
    locs = [d["loc"] for d in r.json()["detail"]]
    assert locs[0][:3] == ["body", "metrics", 1]
    assert locs[-1][:3] == ["body", "metrics", 2]
    assert "bi" not in live.get("/api/sensors").json()["sensors"]


def test_batch_over_item_limit_gives_413(live):
    items = [{"type": "point", "sensor_name": "big", "value": 1.0}] * 101
    r = live.post("/api/batch", json={"metrics": items})
    assert r.status_code == 413
    assert "limit is 100" in r.json()["detail"]
    assert "big" not in live.get("/api/sensors").json()["sensors"]


def test_body_over_size_limit_gives_413(live):
    big = {"sensor_name": "huge", "values": [1.0] * 20_000}
    r = live.post("/api/detect/batch", json=big)
    assert r.status_code == 413
    # a chunked body (no Content-Length) is limited too
    payload = json.dumps(big).encode()
    r = live.post("/api/detect/batch", content=iter([payload[i : i + 4096] for i in range(0, len(payload), 4096)]),
                  headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 413
    assert "huge" not in live.get("/api/sensors").json()["sensors"]


# --- reading ---------------------------------------------------------------------------------------


def test_anomalies_filter_and_paginate(live):
    _warm(live, "page-s")
    for i in range(3):
        live.post(
            "/api/detect", json={"sensor_name": "page-s", "value": 1000.0 + 1000 * i, "timestamp": 100 + i}
        )
    page = live.get("/api/anomalies", params={"sensor": "page-s"}).json()
    assert page["total"] == 3
    assert [a["value"] for a in page["items"]] == [3000.0, 2000.0, 1000.0]  # newest first
    assert all(a["severity"] in ("warning", "critical") and a["source"] == "detect" for a in page["items"])
    second = live.get("/api/anomalies", params={"sensor": "page-s", "limit": 1, "offset": 1}).json()
    assert [a["value"] for a in second["items"]] == [2000.0]
    ranged = live.get("/api/anomalies", params={"sensor": "page-s", "start": 101, "end": 101}).json()
    assert [a["timestamp"] for a in ranged["items"]] == [101.0]
    assert live.get("/api/anomalies", params={"limit": 0}).status_code == 422


def test_sensors_window_and_404(live):
    _warm(live, "win-s", n=7)
    assert "win-s" in live.get("/api/sensors").json()["sensors"]
    w = live.get("/api/sensors/win-s/window").json()
    assert len(w["values"]) == len(w["timestamps"]) == 7
    assert w["stats"]["sensor_name"] == "win-s"
    assert live.get("/api/sensors/never-seen/window").status_code == 404


def test_fingerprints_endpoint_reports_its_pipeline(live):
    # Items appear as intervals close (covered in test_fingerprints_api.py); here only the shape.
    body = live.get("/api/fingerprints").json()
    assert isinstance(body["items"], list)
    assert "fingerprint" in body["note"]
    assert body["status"]["interval"] == 5.0


def test_health_config_metrics(live):
    h = live.get("/health").json()
    assert h["status"] == "ok"
    assert h["degraded"] is False
    assert h["store"]["store"] == "embedded"
    assert h["redis"] == {"configured": False, "reachable": None}
    assert h["uptime_seconds"] >= 0
    assert h["version"]
    c = live.get("/config").json()
    assert c["window_size"] == 50
    assert c["api_keys"] == "<0 configured>"
    _warm(live, "prom-s")
    live.post("/api/detect", json={"sensor_name": "prom-s", "value": 999.0})
    text = live.get("/metrics").text
    assert 'anomaly_http_requests_total{method="POST",route="/api/detect",status="200"}' in text
    assert 'anomaly_anomalies_total{method="zscore"}' in text
    assert "anomaly_detection_latency_seconds_bucket" in text
    assert 'anomaly_points_ingested_total{source="detect"}' in text
    assert "anomaly_store_errors_total" in text


def test_openapi_has_examples(live):
    spec = live.get("/openapi.json").json()
    for path in ("/api/metrics", "/api/business-metrics", "/api/logs", "/api/batch", "/api/detect"):
        assert "post" in spec["paths"][path]
    schemas = spec["components"]["schemas"]
    assert schemas["LogRequest"]["examples"][0]["log_level"] == "ERROR"
    assert schemas["LogRequest"]["examples"][1]["level"] == "ERROR"


def test_sensor_names_are_sanitised():
    assert sensor_name_for("svc a", "POST:/api/x{1}", "response_time") == "svc_a.POST_api_x_1.response_time"
    long = sensor_name_for("s" * 300)
    assert len(long.encode()) <= 200
    assert long != sensor_name_for("s" * 301)


# --- security ----------------------------------------------------------------------------------------


def test_writes_need_a_key(secured):
    body = {"sensor_name": "sec", "value": 1.0}
    r = secured.post("/api/detect", json=body)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert secured.post("/api/detect", json=body, headers={"X-API-Key": "wrong"}).status_code == 403
    assert secured.post("/api/metrics", json={"service": "s", "response_time": 1}).status_code == 401
    assert secured.get("/api/sensors").json()["sensors"] == []  # nothing changed
    assert secured.post("/api/detect", json=body, headers={"X-API-Key": KEY}).status_code == 200
    assert (
        secured.post("/api/detect", json=body, headers={"Authorization": "Bearer second-key"}).status_code
        == 200
    )
    assert secured.get("/api/sensors").json()["sensors"] == ["sec"]
    config = secured.get("/config").json()
    assert KEY not in json.dumps(config)
    assert config["api_keys"] == "<2 configured>"


def test_cors(secured):
    r = secured.options("/api/detect", headers={"Origin": "http://example.test", "Access-Control-Request-Method": "POST",
                                                "Access-Control-Request-Headers": "X-API-Key"})  # fmt: skip
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://example.test"
    r = secured.options(
        "/api/detect", headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in r.headers


# --- SSE ---------------------------------------------------------------------------------------------


def _read_events(client, headers, n, params=None):
    """The first n events (id, data) of the stream."""
    with client.stream("GET", "/api/alerts/stream", headers=headers, params=params) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        return sse_events(r.iter_lines(), n, id_type=int)


def test_sse_live_and_reconnect_with_last_event_id(live):
    _warm(live, "sse-s")
    got: list = []
    reader = threading.Thread(target=lambda: got.extend(_read_events(live, {}, 2)))
    reader.start()
    import time

    deadline = time.monotonic() + 5
    while live.app.state.anomaly_service.hub.subscribers == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    for v in (500.0, 900.0):
        assert live.post("/api/detect", json={"sensor_name": "sse-s", "value": v}).json()["is_anomaly"]
    reader.join(timeout=10)
    assert [e["data"]["value"] for e in got] == [500.0, 900.0]
    assert got[1]["id"] == got[0]["id"] + 1
    # while "disconnected", two more alerts; reconnecting with the last id replays them
    for v in (1500.0, 2500.0):
        live.post("/api/detect", json={"sensor_name": "sse-s", "value": v})
    missed = _read_events(live, {"Last-Event-ID": str(got[1]["id"])}, 2)
    assert [e["data"]["value"] for e in missed] == [1500.0, 2500.0]
    assert missed[0]["id"] == got[1]["id"] + 1
    assert live.get("/api/alerts/stream", headers={"Last-Event-ID": "x"}).status_code == 422
    # int() takes these; an event id is ASCII digits (they replayed from another id than given)
    for odd in ("+1", "1_0", "\u0661", " 1"):
        with live.stream("GET", "/api/alerts/stream", params={"since": odd}) as r:  # no waiting on a stream
            assert r.status_code == 422, odd


def test_sse_an_id_this_process_never_gave_replays_its_alerts_instead_of_stalling(live):
    """A browser reconnecting after a restart sends the last id of the old process: ids start
    again at 1, so waiting for ids beyond it would send nothing until the new process had
    raised as many alerts (those lost to the client)."""
    _warm(live, "sse-restart")
    assert live.post("/api/detect", json={"sensor_name": "sse-restart", "value": 700.0}).json()["is_anomaly"]
    hub = live.app.state.anomaly_service.hub
    oldest = hub.since(0)[0]["id"]
    for stale in (hub.last_id + 1000, 10**100):
        got: list = []
        reader = threading.Thread(
            target=lambda s=stale, out=got: out.extend(_read_events(live, {"Last-Event-ID": str(s)}, 1)),
            daemon=True,
        )
        reader.start()
        reader.join(timeout=5)
        assert [e["id"] for e in got] == [oldest], stale


def test_batch_fast_points_keep_order_and_bad_names_change_nothing(live):
    items = [{"type": "point", "sensor_name": "ord", "value": 1.0, "timestamp": 1},
             {"type": "point", "data": {"sensor_name": "ord", "value": 2.0, "timestamp": "1970-01-01T00:00:02Z"}},
             {"type": "point", "sensor_name": "ord", "value": 3.0, "timestamp": 3}]  # fmt: skip
    assert live.post("/api/batch", json={"metrics": items}).status_code == 200
    assert live.get("/api/sensors/ord/window").json()["values"] == [1.0, 2.0, 3.0]
    bad = [{"type": "point", "sensor_name": "fine-name", "value": 1.0},
           {"type": "point", "sensor_name": "bad name", "value": 1.0}]  # fmt: skip
    assert live.post("/api/batch", json={"metrics": bad}).status_code == 422
    assert "fine-name" not in live.get("/api/sensors").json()["sensors"]


def test_batch_of_plain_points_equals_detect_batch_and_rejects_non_finite(live):
    values = [1.0, 1.1, 0.9, 1.0, 1.2, 1.0, 9.0, 1.0]
    items = [{"type": "point", "sensor_name": s, "value": v, "timestamp": i}
             for i, v in enumerate(values) for s in ("plain-a", "plain-b")]  # fmt: skip
    r = live.post("/api/batch", json={"metrics": items})
    assert r.status_code == 200
    assert r.json()["points"] == 16
    assert sorted(a["sensor_name"] for a in r.json()["anomalies"]) == ["plain-a", "plain-b"]
    ref = live.post("/api/detect/batch", json={"sensor_name": "plain-ref", "values": values,
                                               "timestamps": list(range(8))}).json()  # fmt: skip
    window = live.get("/api/sensors/plain-b/window").json()
    assert window["values"] == values
    assert window["timestamps"] == [float(i) for i in range(8)]
    assert [a["value"] for a in r.json()["anomalies"]] == [
        v for v, f in zip(values, ref["is_anomaly"]) if f
    ] * 2
    for bad in ('{"metrics": [{"type": "point", "sensor_name": "plain-c", "value": 1e400}]}',
                '{"metrics": [{"type": "point", "sensor_name": "plain-c", "value": 1, "timestamp": NaN}]}',
                '{"metrics": [{"type": "point", "sensor_name": "plain-c", "value": 1%s}]}' % ("0" * 400)):  # fmt: skip
        r = live.post("/api/batch", content=bad, headers={"content-type": "application/json"})
        assert r.status_code == 422, bad
    assert "plain-c" not in live.get("/api/sensors").json()["sensors"]


def test_default_settings_flag_a_clear_spike_in_the_first_minutes():
    # 100 readings of 20 +- 0.3, then 95.0, through POST /api/detect with default Settings
    app = create_app(Settings())
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        values = [20.0 + 0.3 * ((i * 7) % 5 - 2) / 2 for i in range(100)]
        r = client.post("/api/detect/batch", json={"sensor_name": "boiler", "values": values})
        assert r.status_code == 200, r.text
        assert not any(r.json()["is_anomaly"])
        r = client.post("/api/detect", json={"sensor_name": "boiler", "value": 95.0})
        assert r.status_code == 200, r.text
        assert r.json()["is_anomaly"] is True
        assert r.json()["method"] == "ensemble"


def test_missing_values_are_422_by_default_and_skipped_when_asked(live):
    r = live.post("/api/detect/batch", json={"sensor_name": "gappy", "values": [1.0, None, 2.0]})
    assert r.status_code == 422
    r = live.post("/api/detect", json={"sensor_name": "gappy", "value": None})
    assert r.status_code == 422
    app = create_app(Settings(missing="skip", detection_method="zscore", min_samples=3))
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        values = [10.0, 10.1, None, 10.2, 9.9, 10.0, None, 30.0]
        r = client.post("/api/detect/batch", json={"sensor_name": "gappy", "values": values})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["scores"][2] is None
        assert body["scores"][6] is None
        assert body["is_anomaly"] == [False] * 7 + [True]
        assert body["window_counts"][7] == 5  # the two missing values changed nothing
        r = client.post("/api/detect", json={"sensor_name": "gappy", "value": None})
        assert r.status_code == 200, r.text
        assert r.json()["score"] is None
        assert r.json()["is_anomaly"] is False
        window = client.get("/api/sensors/gappy/window").json()
        assert window["values"] == [v for v in values if v is not None]


def test_write_bodies_are_parsed_as_json_loads_parses_them(live):
    # pydantic-core parses the write routes' bodies; what it refuses json.loads parses
    values = [0.1, 1e-7, 5e-324, 1.7976931348623157e308, 2.2250738585072011e-308, -0.0, 2**53 + 1, 123456.789]
    raw = '{"sensor_name": "pj", "values": [' + ", ".join(repr(v) for v in values) + "]}"
    r = live.post("/api/detect/batch", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    window = live.get("/api/sensors/pj/window").json()["values"]
    assert window == [float(v) for v in json.loads(raw)["values"]]
    # UTF-16 (json.loads reads it, pydantic-core does not): the same point
    r = live.post("/api/detect", content=json.dumps({"sensor_name": "pj", "value": 7.25}).encode("utf-16"),
                  headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert live.get("/api/sensors/pj/window").json()["values"][-1] == 7.25
    # a lone surrogate: read by json.loads, then refused as a sensor name (422), nothing written
    r = live.post("/api/detect", content=b'{"sensor_name": "pj\\ud800", "value": 1.0}',
                  headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] != "json_invalid"
    # invalid JSON: json.loads's error, as FastAPI reports it
    bad = '{"metrics": [{"type": "point", "sensor_name": "pj", "value": 1.0},'
    with pytest.raises(json.JSONDecodeError) as err:
        json.loads(bad)
    r = live.post("/api/batch", content=bad, headers={"content-type": "application/json"})
    assert r.status_code == 422
    detail = r.json()["detail"][0]
    assert (detail["type"], detail["loc"]) == ("json_invalid", ["body", err.value.pos])
    assert live.get("/api/sensors/pj/window").json()["values"] == [*window, 7.25]


def _groups_by_definition(items):
    """The plain-point grouping by its definition: every item a dict whose keys are among type,
    sensor_name, value, timestamp, a point, a str name, an int/float value, an int/float or
    absent/None timestamp; else None."""
    groups = {}
    for raw in items:
        if not (type(raw) is dict and raw.keys() <= {"type", "sensor_name", "value", "timestamp"}):
            return None
        name, value, ts = raw.get("sensor_name"), raw.get("value"), raw.get("timestamp")
        if raw.get("type") != "point" or type(name) is not str or type(value) not in (int, float):
            return None
        if ts is not None and type(ts) not in (int, float):
            return None
        groups.setdefault(name, ([], []))
        groups[name][0].append(value)
        groups[name][1].append(ts)
    return groups


def _arrays_by_definition(items, now):
    """point_groups by its definition: the groups as floats (a missing timestamp is now), None
    when a number is not finite or beyond float64."""
    groups = _groups_by_definition(items)
    if groups is None:
        return None
    out = {}
    for name, (values, stamps) in groups.items():
        try:
            v = [float(x) for x in values]
            t = [now if x is None else float(x) for x in stamps]
        except OverflowError:
            return None
        if not all(math.isfinite(x) for x in v + t):
            return None
        out[name] = (v, t)
    return out


_numbers = st.floats() | st.integers() | st.sampled_from([10**400, -(10**309), 2**53 + 1, 2**70 + 1, -0.0])
_fields = st.dictionaries(
    st.sampled_from(["type", "sensor_name", "value", "timestamp", "data", "x"]),
    st.one_of(st.none(), st.just("point"), st.sampled_from(["a", "b"]), _numbers, st.booleans()),
)
_points = st.fixed_dictionaries(
    {"type": st.just("point"), "sensor_name": st.sampled_from(["a", "b", "c"]), "value": _numbers},
    optional={"timestamp": st.none() | _numbers, "x": st.none() | st.integers()},
)


@given(st.lists(_points | _fields | st.integers(), max_size=8))
def test_batch_grouping_is_its_definition(items):
    now = 1_700_000_000.5
    got = point_groups(items, now)
    expected = _arrays_by_definition(items, now)
    if got is not None:
        assert all(v.dtype == t.dtype == np.float64 for v, t in got.values())
        got = {name: (v.tolist(), t.tolist()) for name, (v, t) in got.items()}
    assert repr(got) == repr(expected)  # (repr: key order, -0.0)


def test_batch_grouping_refuses_what_is_not_a_list_of_dicts():
    point = {"type": "point", "sensor_name": "a", "value": 1.0}
    assert point_groups((point,), 0.0) is None  # a tuple
    assert point_groups([point, [point]], 0.0) is None
    assert list(point_groups([], 0.0)) == []
    big = [{**point, "sensor_name": f"s{i % 7}", "value": float(i)} for i in range(10_000)]
    groups = point_groups(big, 0.0)
    assert list(groups) == [f"s{i}" for i in range(7)]
    assert groups["s3"][0].tolist() == [float(i) for i in range(3, 10_000, 7)]


_KEY_CHANGES_THE_LIST = """
from anomaly_detection import _core

class Key:  # equal to nothing; once armed, asked, it changes the list
    armed = False
    def __init__(self, like, change):
        self.like, self.change = like, change
    def __hash__(self):
        return hash(self.like)
    def __eq__(self, other):
        if Key.armed:
            self.change()
        return False

def take_name():  # a dict lookup may ask more than once (hash probing): the list may be empty
    if items:
        items[0].pop("sensor_name", None)
    items.clear()

items = [{Key("type", lambda: items.clear()): 1, "sensor_name": "a" * 30, "value": 1.0}, {"type": "point", "sensor_name": "b", "value": 2.0}]
Key.armed = True
print(_core.group_points(items, 0.0), len(items))
Key.armed = False
items = [{"type": "point", "sensor_name": "n" * 40 + str(len(items)), Key("value", take_name): 0, "value": 1.0}]
Key.armed = True
print(_core.group_points(items, 0.0), len(items))
"""


def test_batch_grouping_survives_a_key_that_changes_the_list():
    """A key whose ``__eq__`` (run by a dict lookup; never in parsed JSON) empties the list, or
    takes the name out of its item, while the items are read: no crash (the items and what was
    read of them, borrowed from the list, were freed under the loop; ``-X dev``: freed memory is
    overwritten, so a read of it fails at once), an answer or None."""
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", _KEY_CHANGES_THE_LIST],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["None", "0", "None", "0"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/detect", {"sensor_name": "bool-a", "value": True}),
        ("/api/detect", {"sensor_name": "bool-a", "value": 1.0, "timestamp": False}),
        ("/api/detect/batch", {"sensor_name": "bool-a", "values": [1.0, False]}),
        ("/api/detect/batch", {"sensor_name": "bool-a", "values": [1.0, 2.0], "timestamps": [1, True]}),
        ("/api/batch", {"metrics": [{"type": "point", "sensor_name": "bool-a", "value": True}]}),
        (
            "/api/batch",
            {"metrics": [{"type": "point", "sensor_name": "bool-a", "value": 1, "timestamp": True}]},
        ),
        ("/api/business-metrics", {"metric_name": "bool-b", "value": True}),
        ("/api/business-metrics", {"metric_name": "bool-b", "value": 1.0, "expected_range": [False, True]}),
        ("/api/metrics", {"service": "bool-c", "metrics": {"response_time": 1.0}, "timestamp": True}),
        ("/api/logs", {"service": "bool-d", "level": "ERROR", "message": "m", "timestamp": False}),
    ],
)
def test_json_booleans_are_not_numbers_422_and_nothing_changes(live, path, body):
    """A JSON true/false where a value or a timestamp goes is refused, as the library refuses a
    bool (it was taken as 1.0/0.0, against the OpenAPI 'number' the schema declares)."""
    before = live.get("/api/sensors").json()["sensors"]
    r = live.post(path, json=body)
    assert r.status_code == 422, r.text
    assert live.get("/api/sensors").json()["sensors"] == before


@given(st.lists(st.text(min_size=0, max_size=30), min_size=1, max_size=3))
def test_sanitised_names_are_always_valid_sensor_names(parts):
    """Control and invisible characters (U+0080, U+200B, U+2028 ...) passed through: the
    collector's records were counted and fed to the fingerprints, then refused with a 422, or
    (a log's service) accepted and their error-rate point dropped when its interval closed."""
    from anomaly_detection.core.validation import check_sensor_name

    check_sensor_name(sensor_name_for(*parts) or "_")


@pytest.mark.parametrize("service", ["bad\x80svc", "zero\u200bwidth", "line\u2028sep", "soft\xadhyphen"])
def test_collector_records_of_any_service_name_are_stored_not_refused(live, service):
    before = live.get("/health").json()["collector"]["records"]
    r = live.post("/api/metrics", json={"service": service, "metrics": {"response_time": 1.0}})
    assert r.status_code == 200, r.text
    [sensor] = r.json()["sensors"]
    assert sensor == sensor_name_for(service, "response_time")
    assert sensor in live.get("/api/sensors").json()["sensors"]
    assert live.get("/health").json()["collector"]["records"]["metric"] == before["metric"] + 1


def test_a_refused_write_leaves_the_collector_and_fingerprints_as_they_were(live):
    """A batch refused for a point's sensor name (checked when scored), a record with more
    sensors than a request may hold: the records had been counted and fed to the fingerprint
    pipeline first."""

    def state():
        return live.get("/health").json()["collector"], live.get("/api/fingerprints").json()

    before = state()
    log = {"type": "log", "level": "ERROR", "message": "m", "service": "refused-svc"}
    metric = {"type": "metric", "service": "refused-svc", "metrics": {"response_time": 3.0}}
    point = {"type": "point", "sensor_name": "bad:name", "value": 1.0}
    r = live.post("/api/batch", json={"metrics": [log, metric, point]})
    assert r.status_code == 422, r.text
    assert state() == before
    app = live.app.state.anomaly_service
    many = {f"m{i}": float(i) for i in range(app.settings.max_sensors_per_request + 1)}
    r = live.post("/api/metrics", json={"service": "refused-svc", "metrics": many})
    assert r.status_code == 413, r.text
    assert state() == before
    assert "refused-svc.m0" not in live.get("/api/sensors").json()["sensors"]


@pytest.mark.parametrize(
    "path",
    ["/api/detect", "/api/detect/batch", "/api/metrics", "/api/business-metrics", "/api/logs", "/api/batch"],
)
@pytest.mark.parametrize("body", [b"\x80|", b'{"sensor_name": "x\xc3(", "value": 1}', b"\xff"])
def test_a_body_that_is_no_text_is_a_documented_422(live, path, body):
    """Bytes no Unicode encoding reads (json.loads raises UnicodeDecodeError, not a JSON error)
    were a 400 'There was an error parsing the body', a status the OpenAPI document does not
    list (schemathesis, ST103); now the json_invalid 422 of any other unparsable body."""
    r = live.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["type"] == "json_invalid"
