"""The fingerprint pipeline: aggregation, warm-up, alerts on injected incidents only."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly_detection.fingerprints import (
    FEATURE_NAMES,
    Fingerprint,
    FingerprintAggregator,
    FingerprintDetector,
    FingerprintPipeline,
)

INTERVAL = 5.0
T0 = 1_700_000_000.0
EDGES = [("api-gateway", "GET:/api/users"), ("api-gateway", "GET:/api/orders"),
         ("user-service", "GET:/users"), ("payment-service", "POST:/api/payments"),
         ("order-service", "GET:/api/orders")]  # fmt: skip


def traffic(rng, k: int, incident: str | None = None):
    """The records of interval ``k``: ``(kind, fields)`` in time order."""
    start = T0 + k * INTERVAL
    n = rng.poisson(100)
    latency = rng.lognormal(np.log(80.0), 0.35, n) * (4.0 if incident == "latency" else 1.0)
    p5xx = 0.4 if incident == "5xx" else 0.01
    u = rng.random(n)
    status = np.where(u < p5xx, 503, np.where(u < p5xx + 0.02, 404, 200))
    which = rng.integers(0, len(EDGES), n)
    records = [(start + INTERVAL * t, "metric", {"service": EDGES[e][0], "endpoint": EDGES[e][1],
                "response_time": float(lt), "status_code": int(s)})
               for t, e, lt, s in zip(np.sort(rng.random(n)), which, latency, status)]  # fmt: skip
    for t in rng.random(rng.poisson(10)):
        level = "ERROR" if rng.random() < 0.05 else "INFO"
        log = {"level": level, "service": "user-service", "message": "m"}
        records.append((start + INTERVAL * t, "log", log))
    for t in rng.random(2):
        kpi = {"metric_name": "orders", "value": float(rng.normal(50, 5)), "expected_range": [20, 80]}
        records.append((start + INTERVAL * t, "business", kpi))
    records.sort(key=lambda r: r[0])
    return records


def run(pipeline: FingerprintPipeline, n: int, incidents: dict[int, str] | None = None, seed: int = 0):
    rng = np.random.default_rng(seed)
    for k in range(n):
        for ts, kind, fields in traffic(rng, k, (incidents or {}).get(k)):
            pipeline.add(kind, {**fields, "timestamp": ts})
    pipeline.flush(T0 + n * INTERVAL)
    return pipeline.recent(10_000)


def features(fp: Fingerprint) -> dict[str, float]:
    return fp.as_dict()


# --- the aggregator ------------------------------------------------------------------------------


def test_one_interval_gives_the_expected_features():
    agg = FingerprintAggregator(interval=5.0)
    for i, (status, latency) in enumerate([(200, 10.0), (200, 20.0), (404, 30.0), (503, 40.0)]):
        assert agg.add_metric("web", f"GET:/e{i % 2}", latency, status, timestamp=100.0 + i) == []
    agg.add_log("ERROR", "web", "boom", timestamp=101.0)
    agg.add_log("info", "web", "fine", timestamp=101.5)
    agg.add_business("orders", 90.0, [20, 80], timestamp=102.0)
    agg.add_business("orders", 50.0, [20, 80], timestamp=102.5)
    [fp] = agg.flush(now=105.0)
    f = features(fp)
    assert (fp.start, fp.end) == (100.0, 105.0)
    assert fp.names == FEATURE_NAMES
    assert fp.values.shape == (len(FEATURE_NAMES),)
    assert f["request_rate"] == pytest.approx(4 / 5)
    assert f["error_4xx_rate"] == f["error_5xx_rate"] == 0.25
    assert f["latency_p50"] == pytest.approx(25.0, abs=5.0)
    assert f["latency_p99"] == pytest.approx(40.0, abs=1.0)
    assert f["distinct_endpoints"] == 2
    assert f["distinct_services"] == 1
    assert f["new_edges"] == 2
    assert f["top_endpoint_share"] == 0.5
    assert f["log_rate"] == pytest.approx(2 / 5)
    assert f["log_error_rate"] == 0.5
    assert f["business_metrics"] == pytest.approx(2 / 5)
    assert f["business_out_of_range"] == 0.5
    assert fp.counts == {"requests": 4, "logs": 2, "business": 2}
    assert Fingerprint.from_dict(fp.to_dict()).as_dict() == f


@pytest.mark.parametrize("ahead", [1e298, 1e20, 3600.0])
def test_one_event_from_the_far_future_does_not_stop_the_fingerprints(ahead):
    """One record timestamped ahead of the clock (1e298, 1e20: any client can send one over
    HTTP) opened an interval there: every later event was 'late', folded into an interval that
    never closed (at 1e20 and beyond, start + 5 s == start), and no fingerprint came again. An
    event more than an interval ahead of the clock is now taken at the clock's time."""
    now = [1000.0]
    agg = FingerprintAggregator(interval=5.0, clock=lambda: now[0])
    agg.add_metric("web", "GET:/", 10.0, 200, timestamp=1000.0 + ahead)
    assert agg.early == 1
    out = []
    for t in range(1001, 1021):
        now[0] = float(t)
        out += agg.add_metric("web", "GET:/", 10.0, 200, timestamp=float(t))
    out += agg.flush(now=1021.0)
    assert [(fp.start, fp.end) for fp in out] == [(1000.0, 1005.0), (1005.0, 1010.0), (1010.0, 1015.0),
                                                  (1015.0, 1020.0)]  # fmt: skip
    assert sum(fp.counts["requests"] for fp in out) == 20
    assert agg.late == 0


def test_intervals_close_on_event_time_quiet_ones_are_zero_and_edges_stay_known():
    agg = FingerprintAggregator(interval=5.0, max_gap=3)
    agg.add_metric("web", "GET:/", 10.0, 200, timestamp=3.0)  # opens [0, 5)
    out = agg.add_metric("web", "GET:/", 10.0, 200, timestamp=17.0)  # closes [0,5), [5,10), [10,15)
    assert [(fp.start, fp.end) for fp in out] == [(0.0, 5.0), (5.0, 10.0), (10.0, 15.0)]
    assert features(out[0])["new_edges"] == 1
    assert features(out[1])["request_rate"] == 0
    assert features(out[1])["latency_p50"] == 0
    assert agg.open_interval == (15.0, 20.0)
    agg.add_metric("web", "GET:/", 10.0, 200, timestamp=1.0)  # late: folded into the open interval
    assert agg.late == 1
    [fp] = agg.flush(now=20.0)
    assert fp.counts["requests"] == 2
    assert features(fp)["new_edges"] == 0
    assert agg.flush(now=20.0) == []
    assert agg.flush(now=-1.0) == []
    # A silence longer than max_gap: 1 + 3 intervals, then a jump to the current one.
    out = agg.add_metric("web", "GET:/", 10.0, 200, timestamp=1000.0)
    assert len(out) == 4
    assert agg.open_interval == (1000.0, 1005.0)
    assert [fp.start for fp in agg.recent(2)] == [30.0, 35.0]


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("add_metric", ("web", "GET:/", float("nan"), 200)),
        ("add_metric", ("web", "GET:/", -1.0, 200)),
        ("add_metric", ("web", "GET:/", 1.0, 700)),
        ("add_metric", ("web", "GET:/", 1.0, 200.5)),
        ("add_metric", ("", "GET:/", 1.0, 200)),
        ("add_metric", ("web", "GET:/", 1.0, 200, float("inf"))),
        ("add_business", ("orders", 1.0, [5, 1])),
        ("add_business", ("orders", 1.0, [1])),
        ("add_business", ("orders", "x")),
        ("add_log", ("LOUD", "web")),
        ("add_log", (None, "web")),
    ],
)
def test_bad_records_raise_value_error_and_change_nothing(method, args):
    agg = FingerprintAggregator(interval=5.0)
    agg.add_metric("web", "GET:/", 10.0, 200, timestamp=0.0)
    before = agg._open.requests, agg.late, agg.open_interval
    with pytest.raises(ValueError):
        getattr(agg, method)(*args)
    assert (agg._open.requests, agg.late, agg.open_interval) == before
    [fp] = agg.flush(now=5.0)
    assert fp.counts == {"requests": 1, "logs": 0, "business": 0}


@pytest.mark.parametrize(
    "kwargs", [{"interval": 0}, {"interval": float("nan")}, {"history": 0}, {"max_gap": -1}]
)
def test_bad_aggregator_parameters(kwargs):
    with pytest.raises(ValueError):
        FingerprintAggregator(**kwargs)


@pytest.mark.parametrize("interval", [1e-300, 5e-324, 1e-9])
def test_an_interval_below_a_millisecond_is_refused(interval):
    """A tiny interval overflowed the interval number (OverflowError from the first record), or was
    below the resolution of epoch seconds (start + interval == start: every record emitted
    max_gap + 1 empty fingerprints)."""
    with pytest.raises(ValueError, match="interval"):
        FingerprintAggregator(interval=interval)


def test_a_timestamp_whose_interval_number_overflows_is_refused_and_changes_nothing():
    agg = FingerprintAggregator(interval=1e-3, clock=lambda: 1.7e9)
    with pytest.raises(ValueError, match="timestamp"):
        agg.add_log("ERROR", "svc", "x", timestamp=-1e306)  # -1e309 intervals: OverflowError before
    assert agg.open_interval is None
    agg.add_log("ERROR", "svc", "x", timestamp=1.7e9)
    assert agg.open_interval == pytest.approx((1.7e9, 1.7e9 + 1e-3))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"warmup": 1},
        {"warmup": 100, "max_training": 50},
        {"min_deviation": -1},
        {"threshold_quantile": 2},
        {"lock_ttl": 0},
        {"top_features": 0},
    ],
)
def test_bad_detector_parameters(kwargs):
    with pytest.raises(ValueError):
        FingerprintDetector(**kwargs)


def test_bad_fingerprint_documents():
    for doc in [
        {},
        {"start": 0, "end": 5, "features": {"a": "x"}},
        {"start": 0, "end": 5, "features": {"a": float("nan")}},
        # IndexError, OverflowError, a bool taken as 1.0, a list of pairs taken as counts before
        {"start": 0, "end": 5, "features": [1, 2]},
        {"start": 0, "end": 5, "features": {"a": 1}, "counts": {"requests": float("inf")}},
        {"start": 0, "end": 5, "features": {"a": True}},
        {"start": 0, "end": 5, "features": {"a": 1}, "counts": [["requests", 2]]},
    ]:
        with pytest.raises(ValueError):
            Fingerprint.from_dict(doc)


# --- the detector on simulated traffic -------------------------------------------------------------


def test_warmup_then_scores_and_scheduled_refits():
    pipeline = FingerprintPipeline(detector=FingerprintDetector(warmup=60, retrain_every=50))
    scored = run(pipeline, 200, seed=3)
    assert len(scored) == 200
    assert all(np.isnan(s.score) for s in scored[:60])
    assert not any(np.isnan(s.score) for s in scored[60:])
    assert pipeline.detector.fits == 1 + 140 // 50
    assert pipeline.detector.status()["fitted"] is True


def test_incidents_alert_exactly_their_intervals_naming_the_features():
    alerts = []
    pipeline = FingerprintPipeline(detector=FingerprintDetector(on_alert=alerts.append, random_state=0))
    scored = run(pipeline, 300, {100: "5xx", 200: "latency"}, seed=0)
    assert [i for i, s in enumerate(scored) if s.is_anomaly] == [100, 200]
    assert [a["interval"][0] for a in alerts] == [T0 + 100 * INTERVAL, T0 + 200 * INTERVAL]
    assert alerts[0]["top_features"][0]["name"] == "error_5xx_rate"
    assert alerts[0]["top_features"][0]["value"] > 0.3 > alerts[0]["top_features"][0]["expected"]
    assert set(scored[200].top_features) == {"latency_p50", "latency_p95", "latency_p99"}
    assert scored[100].score > np.median([s.score for s in scored[60:100]])


@pytest.mark.parametrize("seed", [1, 5])
def test_control_run_of_normal_traffic_raises_no_alert(seed):
    alerts = []
    pipeline = FingerprintPipeline(detector=FingerprintDetector(on_alert=alerts.append, random_state=seed))
    scored = run(pipeline, 400, seed=seed)
    assert len(scored) == 400
    assert pipeline.detector.fits >= 5
    assert alerts == []
    assert not any(s.is_anomaly for s in scored)


def test_same_seed_same_scores():
    def scores(traffic_seed, forest_seed):
        p = FingerprintPipeline(detector=FingerprintDetector(warmup=40, random_state=forest_seed))
        return np.array([s.score for s in run(p, 120, {90: "5xx"}, seed=traffic_seed)])

    a = scores(7, 0)
    np.testing.assert_array_equal(a, scores(7, 0))
    assert not np.array_equal(a[40:], scores(7, 1)[40:], equal_nan=True)
    assert not np.array_equal(a[40:], scores(8, 0)[40:], equal_nan=True)


def test_a_fingerprint_of_other_features_during_the_warm_up_is_refused_and_changes_nothing():
    """A vector of another length (or the same features in another order) was kept for training:
    the fit at the end of the warm-up failed, and every later update raised, for good."""
    rng = np.random.default_rng(0)

    def normal(i: int) -> Fingerprint:
        return Fingerprint(5.0 * i, 5.0 * i + 5, rng.normal(10, 1, len(FEATURE_NAMES)))

    d = FingerprintDetector(warmup=5, random_state=0)
    for i in range(3):
        d.update(normal(i))
    for bad in (
        Fingerprint(15.0, 20.0, np.ones(3), names=("a", "b", "c")),
        Fingerprint(15.0, 20.0, np.ones(len(FEATURE_NAMES)), names=tuple(reversed(FEATURE_NAMES))),
        Fingerprint(15.0, 20.0, np.ones(3)),  # 14 names for 3 values
    ):
        with pytest.raises(ValueError, match="fingerprint"):
            d.update(bad)
    assert (d.seen, len(d._training)) == (3, 3)
    for i in range(3, 8):
        d.update(normal(i))
    assert d.fitted
    assert d.names == FEATURE_NAMES


def test_a_listener_that_raises_is_logged_and_the_others_hear_every_fingerprint(caplog):
    """A raising listener stopped the fingerprints of the call (the second of two closed at once was
    never scored, later listeners heard none) and raised out of add_metric after the record was
    folded: the collector's request failed for a record it had counted."""
    p = FingerprintPipeline()
    heard: list = []

    def boom(fp):
        raise RuntimeError("listener boom")

    p.aggregator.add_listener(boom)
    p.aggregator.add_listener(heard.append)
    p.add("log", {"level": "ERROR", "service": "a", "message": "x", "timestamp": 1000.0})
    closed = p.add("log", {"level": "ERROR", "service": "a", "message": "x", "timestamp": 1012.0})
    assert len(closed) == 2
    assert len(p.recent()) == 2
    assert heard == closed
    assert "listener boom" in caplog.text


def test_an_on_alert_that_raises_is_logged_and_the_alerting_fingerprint_kept(caplog):
    """An on_alert that raised made update() raise: the alerting fingerprint (the one that matters)
    was missing from recent(), its score lost."""

    def boom(alert):
        raise RuntimeError("on_alert boom")

    pipeline = FingerprintPipeline(detector=FingerprintDetector(on_alert=boom, random_state=0))
    scored = run(pipeline, 150, {100: "5xx"}, seed=0)
    assert len(scored) == 150
    assert [i for i, s in enumerate(scored) if s.is_anomaly] == [100]
    assert "on_alert boom" in caplog.text
