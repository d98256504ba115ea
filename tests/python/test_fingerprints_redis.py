"""The fingerprint pipeline on a real redis-server: the capped stream, the training lock,
the stored model and the alerts."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from servers import RedisServer
from test_fingerprints import INTERVAL, T0, run

from anomaly_detection import Settings, StatisticalAnomalyDetector
from anomaly_detection.fingerprints import (
    FingerprintAggregator,
    FingerprintDetector,
    FingerprintPipeline,
    read_stream,
)
from anomaly_detection.forest import IsolationForest
from anomaly_detection.redis.alerts import severity_of
from anomaly_detection.utils.redis_namespaces import AnomalyRedisKeys, AnomalyRedisManager

SETTINGS = Settings(redis_key_prefix="fp-test")
KEYS = AnomalyRedisKeys.from_settings(SETTINGS)


def pipeline(redis_client, **detector):
    return FingerprintPipeline(
        FingerprintAggregator(redis_client=redis_client, settings=SETTINGS, stream_maxlen=50),
        FingerprintDetector(redis_client=redis_client, settings=SETTINGS, **detector),
    )


def test_fingerprints_go_to_a_capped_stream_under_the_prefix(redis_client):
    p = pipeline(redis_client, warmup=60)
    run(p, 200, seed=2)
    key = KEYS.stream("fingerprints")
    assert key == "fp-test:stream:fingerprints"
    assert 50 <= redis_client.xlen(key) < 200  # MAXLEN ~ trims whole nodes
    last = redis_client.xrevrange(key, count=1)[0][1]
    assert json.loads(last[b"data"]) == json.loads(last[b"fingerprint"])["vector"]
    back = read_stream(redis_client, SETTINGS, count=10)
    local = p.aggregator.recent(10)
    assert [fp.start for fp in back] == [fp.start for fp in local]
    np.testing.assert_array_equal(
        np.vstack([fp.values for fp in back]), np.vstack([fp.values for fp in local])
    )


def test_fit_runs_under_the_lock_and_stores_the_model(redis_client):
    p = pipeline(redis_client, warmup=60, retrain_every=0)
    lock = KEYS.cache("lock", "fingerprints")
    redis_client.set(lock, "another-worker", px=60_000)  # another worker is training
    run(p, 61, seed=4)
    d = p.detector
    assert (d.fitted, d.fits, d.skipped_fits) == (False, 0, 2)  # tried at the 60th and 61st
    assert redis_client.get(KEYS.model("fingerprints")) is None
    redis_client.delete(lock)
    assert d.fit() is True
    assert d.fitted
    assert d.fits == 1
    assert redis_client.exists(lock) == 0  # released
    blob = AnomalyRedisManager(redis_client, SETTINGS).load_model("fingerprints")
    x = np.vstack([fp.values for fp in p.aggregator.recent(5)])
    np.testing.assert_array_equal(
        IsolationForest.from_bytes(blob).score_samples(x), d.forest.score_samples(x)
    )
    # A second worker that finds the lock taken loads what the first stored.
    other = FingerprintDetector(redis_client=redis_client, settings=SETTINGS, warmup=2)
    redis_client.set(lock, "first-worker", px=60_000)
    other.update(p.aggregator.recent(2)[0])
    other.update(p.aggregator.recent(2)[1])
    assert (other.fitted, other.fits, other.skipped_fits, other.loads) == (True, 0, 1, 1)
    assert other.threshold == d.threshold
    np.testing.assert_array_equal(other.forest.score_samples(x), d.forest.score_samples(x))
    assert redis_client.get(lock) == b"first-worker"  # not ours: left alone


def test_a_lock_that_is_not_ours_is_not_released(redis_client):
    p = pipeline(redis_client, warmup=60, retrain_every=0)
    run(p, 60, seed=4)
    lock = KEYS.cache("lock", "fingerprints")
    redis_client.set(lock, "late-holder")  # as if ours expired and another took it mid-fit
    p.detector._release(keys=[lock], args=["our-token"])
    assert redis_client.get(lock) == b"late-holder"


def test_alerts_are_stored_published_and_streamed(redis_client):
    alerts = []
    p = pipeline(redis_client, on_alert=alerts.append)
    run(p, 120, {100: "5xx"}, seed=0)
    assert len(alerts) == 1
    stored = AnomalyRedisManager(redis_client, SETTINGS).list_alerts(10)
    assert [a["id"] for a in stored] == [alerts[0]["id"]]
    assert stored[0]["top_features"][0]["name"] == "error_5xx_rate"
    assert stored[0]["timestamp"] == T0 + 101 * INTERVAL
    [(_, fields)] = redis_client.xrange(KEYS.alerts_stream())
    assert json.loads(fields[b"alert"])["method"] == "fingerprint"


def test_corrupt_stored_model_or_baseline_raise_value_error(redis_client):
    p = pipeline(redis_client, warmup=60, retrain_every=0)
    run(p, 61, seed=4)
    manager = AnomalyRedisManager(redis_client, SETTINGS)
    good = manager.load_model("fingerprints")
    manager.store_model("fingerprints", good[:-7] + b"garbage")
    fresh = FingerprintDetector(redis_client=redis_client, settings=SETTINGS)
    with pytest.raises(ValueError):
        fresh.load()
    manager.store_model("fingerprints", good)
    manager.set_config(
        "fingerprints.baseline", {"median": [1, 2], "scale": [1], "threshold": 0.5, "names": ["a"]}
    )
    with pytest.raises(ValueError):
        fresh.load()
    assert not fresh.fitted


def test_a_corrupt_stored_model_never_loses_a_fingerprint_of_the_pipeline(redis_client, caplog):
    """A worker that finds the lock taken loads the stored model: corrupt bytes, or a forest of
    other features than the baseline names, used to raise out of every update (the fingerprint
    dropped from recent(), counted as a rejected record), or to be loaded and then refuse every
    later fingerprint. It is logged and the worker keeps warming up until it can fit itself."""
    first = pipeline(redis_client, warmup=60, retrain_every=0)
    run(first, 61, seed=4)
    manager = AnomalyRedisManager(redis_client, SETTINGS)
    good = manager.load_model("fingerprints")
    lock = KEYS.cache("lock", "fingerprints")
    three = IsolationForest(n_estimators=10, random_state=0).fit(
        np.random.default_rng(0).normal(size=(50, 3))
    )
    for bad in (good[:-7] + b"garbage", three.to_bytes()):
        manager.store_model("fingerprints", bad)
        redis_client.set(lock, "another-worker", px=60_000)
        second = pipeline(redis_client, warmup=60, retrain_every=0)
        scored = run(second, 65, seed=5)
        assert len(scored) == 65  # every fingerprint kept (and scored: warming up)
        assert second.rejected == 0
        d = second.detector
        assert (d.fitted, d.loads, d.skipped_fits) == (False, 0, 6)
        assert "stored fingerprint model not loaded" in caplog.text
        with pytest.raises(ValueError, match="corruption"):
            d.load()  # called directly, it still says so
        redis_client.delete(lock)
        assert d.fit() is True  # the lock is free: it fits and replaces the corrupt model
        assert IsolationForest.from_bytes(manager.load_model("fingerprints")).n_features_in_ == 14


@pytest.mark.parametrize(
    "fields",
    [{"other": "1"}, {"fingerprint": b"\xff"}, {"fingerprint": "[1]"},
     {"fingerprint": '{"start": 0, "end": 5, "features": [1, 2]}'},
     {"fingerprint": '{"start": 0, "end": 5, "features": {"a": 1}, "counts": {"x": Infinity}}'},
     {"fingerprint": "[" * 100_000}],
)  # fmt: skip
def test_read_stream_names_a_corrupt_entry_in_a_value_error(redis_client, fields):
    """An entry without the field, with bytes that are not UTF-8 JSON, or not a fingerprint
    document raised TypeError, IndexError or OverflowError from read_stream."""
    p = pipeline(redis_client, warmup=60)
    run(p, 3, seed=1)
    entry = redis_client.xadd(KEYS.stream("fingerprints"), fields).decode()
    with pytest.raises(ValueError, match=f"fingerprint stream entry {entry}: possible corruption"):
        read_stream(redis_client, SETTINGS, count=10)


def test_read_stream_refuses_a_count_that_is_not_a_positive_int(redis_client):
    for count in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="count"):
            read_stream(redis_client, SETTINGS, count=count)


def test_redis_down_at_a_fit_or_an_alert_never_stops_the_scoring():
    """The training lock's SET and the alert's writing raised ConnectionError out of update()
    while Redis was down: the warm-up never ended (every later fingerprint raised at its fit) and
    an alert's fingerprint was lost. They are logged; the model is fitted here, the alert handed
    to on_alert without its Redis id."""
    server = RedisServer().start()
    alerts: list = []
    detector = FingerprintDetector(
        redis_client=server.client(retry=None),
        settings=SETTINGS,
        warmup=60,
        retrain_every=0,
        on_alert=alerts.append,
    )
    p = FingerprintPipeline(FingerprintAggregator(), detector)
    server.kill()
    scored = run(p, 120, {100: "5xx"}, seed=0)
    assert len(scored) == 120
    assert p.rejected == 0
    assert detector.fitted
    assert detector.fits == 1
    assert [a["interval"][0] for a in alerts] == [T0 + 100 * INTERVAL]
    server.stop()


def test_a_fingerprint_alert_has_the_layout_and_severity_rule_of_a_detector_alert(redis_client):
    channel = redis_client.pubsub(ignore_subscribe_messages=True)
    channel.subscribe(KEYS.alerts_channel())
    raised = []
    run(pipeline(redis_client, on_alert=raised.append), 120, {100: "5xx"}, seed=0)
    detector = StatisticalAnomalyDetector(
        SETTINGS.replace(detection_method="zscore", window_size=50, min_samples=10), redis_client=redis_client
    )
    for t in range(30):
        detector.detect("pump-1", 20.0 + 0.1 * (t % 5), timestamp=t)
    result = detector.detect("pump-1", 35.0, timestamp=30)
    assert result.is_anomaly
    [fingerprint] = raised
    entries = redis_client.xrange(KEYS.alerts_stream())
    assert len(entries) == 2  # each alert written once, by the one writer
    docs = {}
    for entry_id, fields in entries:
        assert set(fields) == {b"alert"}
        doc = json.loads(fields[b"alert"])
        stored = json.loads(redis_client.get(KEYS.alert(entry_id.decode())))
        assert stored == {"id": entry_id.decode(), **doc}
        assert redis_client.zscore(KEYS.alerts_index(), entry_id.decode()) == doc["timestamp"]
        docs[doc["type"]] = stored
    assert docs["fingerprint"] == fingerprint  # what the listener got is what was written
    common = {"id", "type", "severity", "received_at", "sensor_name", "method", "timestamp", "value",
              "score", "threshold", "is_anomaly"}  # fmt: skip
    assert common <= set(docs["fingerprint"])
    assert common <= set(docs["anomaly"])
    assert docs["anomaly"]["severity"] == severity_of(result.deviation, result.threshold)
    worst = max(abs(f["z"]) for f in fingerprint["top_features"])
    assert fingerprint["severity"] == severity_of(worst, 8.0)  # the detector's min_deviation
    published, deadline = [], time.monotonic() + 10
    while len(published) < 2 and time.monotonic() < deadline:  # None also stands for the subscribe reply
        if (message := channel.get_message(timeout=1.0)) is not None:
            published.append(json.loads(message["data"]))
    channel.close()
    assert sorted(published, key=lambda a: a["type"]) == [docs["anomaly"], docs["fingerprint"]]


def test_no_alert_is_written_when_redis_alerts_is_off(redis_client):
    raised = []
    p = FingerprintPipeline(
        FingerprintAggregator(redis_client=redis_client, settings=SETTINGS),
        FingerprintDetector(
            redis_client=redis_client, settings=SETTINGS.replace(redis_alerts=False), on_alert=raised.append
        ),
    )
    run(p, 120, {100: "5xx"}, seed=0)
    assert len(raised) == 1
    assert len(raised[0]["id"]) == 32  # not written: a random hex id, not a stream id
    assert redis_client.xlen(KEYS.alerts_stream()) == 0
    assert AnomalyRedisManager(redis_client, SETTINGS).list_alerts(10) == []


def test_the_service_writes_each_fingerprint_alert_to_redis_once(redis_server, redis_client):
    from anomaly_detection.api.service import AnomalyService

    settings = SETTINGS.replace(store_backend="redis", redis_url=redis_server.url)
    service = AnomalyService(settings, redis_client=redis_server.client())
    try:
        run(service.fingerprints, 120, {100: "5xx"}, seed=0)  # its own pipeline (warm-up 60)
    finally:
        service.close()
    [(entry_id, fields)] = redis_client.xrange(KEYS.alerts_stream())
    assert json.loads(fields[b"alert"])["method"] == "fingerprint"
    stored = AnomalyRedisManager(redis_client, SETTINGS).list_alerts(10)
    assert [a["id"] for a in stored] == [entry_id.decode()]
    assert service.hub.total == 0  # written to Redis, so not kept in this process only
