"""The ensemble on Redis: its checkpoint beside the window gives exactly the
embedded store's scores, one point or a batch at a time, across processes and
restarts; corrupt checkpoints are rebuilt; the key lives and dies with the window."""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np
import pytest
from servers import RedisServer, run_processes

from anomaly_detection import Settings, StatisticalAnomalyDetector, _core
from anomaly_detection.evaluation.nab import NabCorpus
from anomaly_detection.redis import scripts
from anomaly_detection.utils.redis_namespaces import AnomalyRedisKeys, AnomalyRedisManager, AnomalyRedisTTL

NAB_FILE = "artificialWithAnomaly/art_daily_jumpsup.csv"  # 4,032 points, 5 minutes apart, daily period 288
STATE_KEY = "anomaly:temp:data:s:state"


def settings(**kw) -> Settings:
    base = {
        "detection_method": "ensemble",
        "window_size": 100,
        "redis_alerts": False,
        "redis_retry_interval": 0.05,
    }
    return Settings(**{**base, **kw})


@pytest.fixture(scope="module")
def series(shared_data) -> tuple[np.ndarray, np.ndarray]:
    if not (shared_data / "nab" / "data" / NAB_FILE).exists():
        pytest.skip(f"NAB data not found under {shared_data}")
    f = NabCorpus.load(shared_data / "nab", files=[NAB_FILE]).files[NAB_FILE]
    return f.values.astype(float), f.timestamps.astype("datetime64[s]").astype(float)


@pytest.fixture(scope="module")
def reference(series):
    """The embedded store's scores of the whole series (one process, every point)."""
    values, stamps = series
    return StatisticalAnomalyDetector(settings()).detect_batch("s", values, stamps)


def commands(client, name: str) -> int:
    return int(client.info("commandstats").get(f"cmdstat_{name}", {}).get("calls", 0))


def assert_same(got_scores, got_flags, ref, lo: int = 0, hi: int | None = None) -> None:
    np.testing.assert_array_equal(got_scores, ref.scores[lo:hi])  # bit for bit
    np.testing.assert_array_equal(got_flags, ref.is_anomaly[lo:hi])


def test_one_point_per_call_equals_the_embedded_store(redis_client, series, reference):
    values, stamps = series
    assert reference.anomaly_count > 0  # the series has something to find
    det = StatisticalAnomalyDetector(settings(), redis_client=redis_client)
    det.detect("warm", 1.0, timestamp=0.0)  # loads the append script
    redis_client.script_load(scripts.COUNT_ONCE)  # and the count's (else its first EVALSHA is refused)
    calls = commands(redis_client, "evalsha")
    got = [det.detect("s", float(v), timestamp=float(t)) for v, t in zip(values, stamps)]
    assert_same([r.score for r in got], [r.is_anomaly for r in got], reference)
    np.testing.assert_array_equal([r.window_count for r in got], reference.window_counts)
    np.testing.assert_array_equal([r.expected for r in got], reference.expected)
    # One round trip per call, plus a checkpoint every window_size // 2 points and a count
    # (COUNT_ONCE, an EVALSHA too) per call that found an anomaly.
    n = len(values)
    assert n <= commands(redis_client, "evalsha") - calls <= n + n // 50 + 1 + reference.anomaly_count
    assert det.stats("s")["points_seen"] == n
    assert redis_client.llen("anomaly:temp:data:s:queue") == 100


def test_batches_of_random_sizes_equal_the_embedded_store(redis_client, series, reference):
    values, stamps = series
    det = StatisticalAnomalyDetector(settings(), redis_client=redis_client)
    rng = np.random.default_rng(8)
    lo = 0
    while lo < len(values):
        hi = min(len(values), lo + int(rng.choice([1, 2, 7, 49, 50, 51, 99, 100, 101, 333])))
        got = det.detect_batch("s", values[lo:hi], stamps[lo:hi])
        assert_same(got.scores, got.is_anomaly, reference, lo, hi)
        np.testing.assert_array_equal(got.window_counts, reference.window_counts[lo:hi])
        lo = hi


def test_a_restarted_client_continues_exactly(redis_client, series, reference):
    values, stamps = series
    first = StatisticalAnomalyDetector(settings(), redis_client=redis_client)
    first.detect_batch("s", values[:1234], stamps[:1234])
    for i in range(1234, 1260):  # a few single points: the last checkpoint is behind
        first.detect("s", float(values[i]), timestamp=float(stamps[i]))
    second = StatisticalAnomalyDetector(settings(), redis_client=redis_client)  # empty cache
    got = [second.detect("s", float(values[i]), timestamp=float(stamps[i])) for i in range(1260, 1400)]
    assert_same([r.score for r in got], [r.is_anomaly for r in got], reference, 1260, 1400)
    # The first one, whose cache is now behind, catches up from the stored checkpoint.
    rest = first.detect_batch("s", values[1400:], stamps[1400:])
    assert_same(rest.scores, rest.is_anomaly, reference, 1400)


def _worker(port: int, proc: int, max_batch: int, out) -> None:
    import redis

    from anomaly_detection import StatisticalAnomalyDetector

    client = redis.Redis(host="127.0.0.1", port=port)
    det = StatisticalAnomalyDetector(settings(), redis_client=client)
    script = det.store._script
    positions: list[int] = []

    def recording(*args, **kwargs):  # notes where each call's points landed in the stream
        reply = script(*args, **kwargs)
        positions.append(int(reply[0]))
        return reply

    det.store._script = recording
    rng = np.random.default_rng(proc)
    values = np.sin(np.arange(900) / (7.0 + proc)) * 10 + rng.normal(0, 1, 900) + 100 * proc
    values[rng.integers(0, 900, 5)] += 40
    stamps = 1e9 + proc * 1e6 + np.arange(900) * 300.0
    calls, i = [], 0
    while i < len(values):
        m = int(rng.integers(1, max_batch + 1)) if rng.random() < 0.3 else 1
        chunk = slice(i, min(len(values), i + m))
        if m == 1:
            r = det.detect("shared", float(values[i]), timestamp=float(stamps[i]))
            scores = [r.score]
        else:
            scores = det.detect_batch("shared", values[chunk], stamps[chunk]).scores.tolist()
        calls.append((positions[-1], values[chunk].tolist(), stamps[chunk].tolist(), scores))
        i = chunk.stop
    out.put((proc, calls))


@pytest.mark.parametrize(("nproc", "max_batch"), [(2, 5), (4, 5), (2, 100)])
def test_processes_sharing_a_sensor_get_the_scores_of_one_process(
    redis_server, redis_client, nproc, max_batch
):
    # Batches up to the window (100) make the window miss the stored checkpoint now and then:
    # the caller then waits for the one the previous appender is saving.
    results = run_processes(_worker, [(redis_server.port, p, max_batch) for p in range(nproc)])
    # Rebuild the one stream Redis saw, in its order, and score it in one process.
    total = nproc * 900
    values, stamps, shared_scores = np.zeros(total), np.zeros(total), np.full(total, np.nan)
    covered = np.zeros(total, dtype=int)
    for _, calls in results:
        for position, vals, ts, scores in calls:
            span = slice(position, position + len(vals))
            values[span], stamps[span], shared_scores[span] = vals, ts, scores
            covered[span] += 1
    np.testing.assert_array_equal(covered, 1)  # every point has exactly one place: none lost
    one = StatisticalAnomalyDetector(settings()).detect_batch("shared", values, stamps)
    np.testing.assert_array_equal(shared_scores, one.scores)
    assert one.scores.max() > 0  # past the warm-up, something was scored
    assert redis_client.hget("anomaly:temp:data:shared:stats", "seen") == str(total).encode()


def test_corrupt_checkpoint_warns_and_is_rebuilt(redis_client, series, caplog):
    values, stamps = series
    det = StatisticalAnomalyDetector(settings(), redis_client=redis_client)
    det.detect_batch("s", values[:600], stamps[:600])
    assert redis_client.hget(STATE_KEY, "seen") == b"600"
    blob = bytearray(redis_client.hget(STATE_KEY, "blob"))
    blob[200] ^= 0xFF
    redis_client.hset(STATE_KEY, "blob", bytes(blob))
    fresh = StatisticalAnomalyDetector(settings(), redis_client=redis_client)  # must read the stored one
    with caplog.at_level(logging.WARNING, logger="anomaly_detection.stores.redis"):
        r = fresh.detect("s", float(values[600]), timestamp=float(stamps[600]))
    assert 0.0 <= r.score <= 1.0
    assert "unreadable" in caplog.text
    assert "possible corruption" in caplog.text
    assert "rebuilt from the window" in caplog.text
    # A readable checkpoint replaced it at once.
    restored = _core.EnsembleState.from_bytes(redis_client.hget(STATE_KEY, "blob"), 0.5)
    assert int(redis_client.hget(STATE_KEY, "seen")) == 601
    assert restored.seen == 101  # rebuilt from the window of 100, then the new point
    # From then on every process agrees again: the rebuilt state is the checkpoint.
    third = StatisticalAnomalyDetector(settings(), redis_client=redis_client)
    a = [fresh.detect("s", float(values[i]), timestamp=float(stamps[i])) for i in range(601, 640)]
    b = [third.detect("s", float(values[i]), timestamp=float(stamps[i])) for i in range(640, 700)]
    # ... as one process that started at the window's oldest point (500) would.
    restarted = StatisticalAnomalyDetector(settings()).detect_batch("x", values[500:700], stamps[500:700])
    np.testing.assert_array_equal([r.score for r in a + b], restarted.scores[101:])
    # Garbage of every kind: never a crash.
    for junk in (b"", b"ADET", b"\x00" * 64, bytes(range(256))):
        redis_client.hset(STATE_KEY, mapping={"blob": junk, "seen": "700"})
        fresh = StatisticalAnomalyDetector(settings(), redis_client=redis_client)
        assert 0.0 <= fresh.detect("s", 1.0, timestamp=float(stamps[-1])).score <= 1.0
    redis_client.hset(STATE_KEY, "seen", "not a number")
    fresh = StatisticalAnomalyDetector(settings(), redis_client=redis_client)
    assert 0.0 <= fresh.detect("s", 1.0, timestamp=float(stamps[-1])).score <= 1.0
    assert int(redis_client.hget(STATE_KEY, "seen")) == int(
        redis_client.hget("anomaly:temp:data:s:stats", "seen")
    )


def test_checkpoint_beyond_the_counter_is_replaced(redis_client, series, caplog):
    # A checkpoint claiming more points than the sensor's counter cannot come from its appends;
    # left in place it would refuse every later save. It is treated as corrupt and replaced.
    values, stamps = series
    det = StatisticalAnomalyDetector(settings(), redis_client=redis_client)
    det.detect_batch("s", values[:600], stamps[:600])
    redis_client.hset(STATE_KEY, "seen", "10000")
    fresh = StatisticalAnomalyDetector(settings(), redis_client=redis_client)
    with caplog.at_level(logging.WARNING, logger="anomaly_detection.stores.redis"):
        fresh.detect("s", float(values[600]), timestamp=float(stamps[600]))
    assert "claims 10000 points, its counter 600" in caplog.text
    assert int(redis_client.hget(STATE_KEY, "seen")) == 601
    assert _core.EnsembleState.from_bytes(redis_client.hget(STATE_KEY, "blob"), 0.5).seen == 101


def test_decoding_client_is_refused_for_the_ensemble(redis_server, redis_client):
    decoding = redis_server.client(decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses=False"):
            StatisticalAnomalyDetector(settings(), redis_client=decoding)
        assert list(redis_client.scan_iter("anomaly:*")) == []  # refused before anything was written
        det = StatisticalAnomalyDetector(settings(detection_method="zscore"), redis_client=decoding)
        assert det.detect_batch("d", [1.0, 2.0, 3.0]).window_counts.tolist() == [0, 1, 2]
    finally:
        decoding.close()


def test_checkpoint_key_has_the_ttl_and_goes_with_the_window(redis_client, series):
    values, stamps = series
    keys = AnomalyRedisKeys()
    assert keys.checkpoint("s") == STATE_KEY
    assert AnomalyRedisKeys(hash_tag=True).checkpoint("s") == "anomaly:temp:data:{s}:state"
    assert AnomalyRedisTTL.TEMP_STATE == AnomalyRedisTTL.TEMP_DATA
    det = StatisticalAnomalyDetector(settings(temp_data_ttl=1234), redis_client=redis_client)
    det.detect_batch("s", values[:300], stamps[:300])
    assert 1230 <= redis_client.ttl(STATE_KEY) <= 1234
    assert 1230 <= redis_client.ttl(keys.window("s")) <= 1234
    assert det.reset("s") is True
    assert redis_client.exists(STATE_KEY, keys.window("s"), keys.counters("s")) == 0
    # The manager's clean-up removes it too, and a recreated sensor starts afresh.
    det.detect_batch("s", values[:300], stamps[:300])
    manager = AnomalyRedisManager(redis_client, settings())
    assert manager.clear_temp_data("s") is True
    assert redis_client.exists(STATE_KEY, keys.window("s"), keys.counters("s")) == 0
    again = det.detect_batch("s", values[:300], stamps[:300])  # det's cache is of the old sensor
    np.testing.assert_array_equal(again.scores, StatisticalAnomalyDetector(settings()).detect_batch(
        "s", values[:300], stamps[:300]).scores)  # fmt: skip


def test_a_new_sensor_of_the_same_name_never_uses_an_old_cache(redis_client, series):
    values, stamps = series
    det = StatisticalAnomalyDetector(settings(), redis_client=redis_client)
    det.detect_batch("s", values[:500], stamps[:500])
    other = StatisticalAnomalyDetector(settings(), redis_client=redis_client)
    assert other.reset("s") is True  # by another process: det's cache is now stale
    shifted = values[::-1].copy()
    got = [det.detect("s", float(shifted[i]), timestamp=float(stamps[i])) for i in range(700)]
    ref = StatisticalAnomalyDetector(settings()).detect_batch("s", shifted[:700], stamps[:700])
    np.testing.assert_array_equal([r.score for r in got], ref.scores)


def test_asyncio_client_equals_the_embedded_store(redis_server, series, reference):
    import redis.asyncio as aioredis

    values, stamps = series

    async def run():
        client = aioredis.Redis(host="127.0.0.1", port=redis_server.port)
        await client.flushall()
        det = StatisticalAnomalyDetector(settings(), redis_client=client)
        single = [await det.adetect("s", float(values[i]), timestamp=float(stamps[i])) for i in range(400)]
        batch = await det.adetect_batch("s", values[400:1500], stamps[400:1500])
        await client.aclose()
        return single, batch

    single, batch = asyncio.run(run())
    assert_same([r.score for r in single], [r.is_anomaly for r in single], reference, 0, 400)
    assert_same(batch.scores, batch.is_anomaly, reference, 400, 1500)


def test_redis_cluster_keeps_the_checkpoint_in_the_sensor_slot(redis_cluster, series, reference):
    values, stamps = series
    client = redis_cluster.client()
    client.flushall()
    det = StatisticalAnomalyDetector(settings(redis_cluster=True), redis_client=client)
    got = [det.detect("s", float(values[i]), timestamp=float(stamps[i])) for i in range(350)]
    batch = det.detect_batch("s", values[350:1200], stamps[350:1200])
    assert_same([r.score for r in got], [r.is_anomaly for r in got], reference, 0, 350)
    assert_same(batch.scores, batch.is_anomaly, reference, 350, 1200)
    state = "anomaly:temp:data:{s}:state"
    assert client.exists(state) == 1
    assert client.keyslot(state) == client.keyslot("anomaly:temp:data:{s}:queue")
    assert det.reset("s") is True
    assert client.exists(state) == 0
    client.close()


def test_fallback_goes_on_from_the_last_state_and_writes_back():
    rng = np.random.default_rng(3)
    values = np.sin(np.arange(1200) * 2 * np.pi / 288) * 10 + rng.normal(0, 0.5, 1200)
    values[1050] += 30
    stamps = np.arange(1200) * 300.0
    reference = StatisticalAnomalyDetector(settings()).detect_batch("s", values, stamps)
    server = RedisServer().start()
    try:
        client = server.client(socket_timeout=0.5, socket_connect_timeout=0.5)
        det = StatisticalAnomalyDetector(settings(), redis_client=client)
        det.detect_batch("s", values[:1000], stamps[:1000])
        server.kill()
        during = [det.detect("s", float(values[i]), timestamp=float(stamps[i])) for i in range(1000, 1100)]
        assert det.health()["degraded"] is True
        # The embedded fallback continued the ensemble: same scores as without the outage.
        assert_same([r.score for r in during], [r.is_anomaly for r in during], reference, 1000, 1100)
        assert any(r.is_anomaly for r in during)
        server.start()  # same port, empty (no persistence)
        deadline = time.monotonic() + 10
        while det.health()["degraded"]:  # the background probe writes the buffer back
            assert time.monotonic() < deadline
            time.sleep(0.02)
        det.detect("s", float(values[1100]), timestamp=float(stamps[1100]))
        assert det.health()["degraded"] is False
        assert det.stats("s")["points_seen"] == 101  # the buffered 100 written back, then one more
        seen = int(client.hget("anomaly:temp:data:s:state", "seen"))
        assert 101 - 50 <= seen <= 101  # the checkpoint followed the write-back
    finally:
        server.stop()


@pytest.mark.parametrize("method", ["ensemble", "zscore"])
def test_non_finite_input_raises_and_changes_nothing_in_redis(redis_client, series, method):
    values, stamps = series
    det = StatisticalAnomalyDetector(settings(detection_method=method), redis_client=redis_client)
    det.detect_batch("s", values[:120], stamps[:120])
    before = {k: redis_client.dump(k) for k in AnomalyRedisKeys().sensor_keys("s")}
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite"):
            det.detect("s", bad, timestamp=1.0)
        with pytest.raises(ValueError, match="finite"):
            det.store.detect_batch("s", np.array([1.0, bad]), np.array([1.0, 2.0]))
    assert {k: redis_client.dump(k) for k in before} == before
    assert det.stats("s")["points_seen"] == 120


def test_a_clear_spike_in_the_first_minutes_is_flagged_on_redis(redis_client):
    # 100 readings of 20 +- 0.3 and then 95.0, default settings: the warm-up's robust z
    rng = np.random.default_rng(3)
    values = 20 + rng.uniform(-0.3, 0.3, 100)
    det = StatisticalAnomalyDetector(Settings(redis_alerts=False), redis_client=redis_client)
    for i, v in enumerate(values):
        assert not det.detect("warm", float(v), timestamp=float(i)).is_anomaly
    result = det.detect("warm", 95.0, timestamp=100.0)
    assert result.is_anomaly
    assert result.score >= 0.5
    embedded = StatisticalAnomalyDetector().detect_batch("warm", np.r_[values, 95.0], np.arange(101.0))
    assert result.score == embedded.scores[-1]


def test_a_mirror_of_unreadable_numbers_is_dropped_not_an_error_on_every_call(redis_client, caplog):
    # The ring of the right length holding a NaN (bytes corrupted in place): the ensemble, which
    # reads the mirror on every call, must score on what it can read and drop the mirror (the
    # next append rebuilds it), as the other methods do, not raise after its point was stored.
    import struct

    s = settings(window_size=10)
    det = StatisticalAnomalyDetector(s, redis_client=redis_client)
    for i in range(12):
        det.detect("s", float(i % 3), timestamp=float(i))
    mirror = AnomalyRedisKeys().mirror("s")
    redis_client.setrange(mirror, 16 * 5, struct.pack("<d", float("nan")))
    with caplog.at_level(logging.WARNING):
        got = det.detect("s", 1.0, timestamp=12.0)
    assert "compact mirror of s" in caplog.text
    assert np.isfinite(got.score)
    assert not redis_client.hexists(AnomalyRedisKeys().counters("s"), "ring")  # dropped
    det.detect("s", 2.0, timestamp=13.0)
    ring = redis_client.get(mirror)
    values = np.frombuffer(ring[:-8], dtype="<f8")[0::2]
    assert np.isfinite(values).all()  # rebuilt from the list
    assert redis_client.hget(AnomalyRedisKeys().counters("s"), "seen") == b"14"


def _one_minute(irregular: bool) -> tuple[np.ndarray, np.ndarray]:
    """1,600 points a minute apart (the likelihoods' warm-up, counted in time, is 750 points),
    a daily wave and a shift; ``irregular``: duplicate and backward timestamps, jitter, a gap of
    two days and values near the largest double (the polyres feature's kept values)."""
    rng = np.random.default_rng(3)
    n = 1600
    v = np.sin(np.arange(n) * 2 * np.pi / 1440) + 0.1 * rng.standard_normal(n)
    v[900:930] += 0.9
    t = 1.7e9 + 60.0 * np.arange(n)
    if irregular:
        t += rng.uniform(-20, 20, n)
        t[100:400:3] = t[99:399:3]
        t[500:520] -= 3600
        t[1000:] += 2 * 86400
        v[700:702] = 1e308, -1e308
    return v, t


@pytest.mark.parametrize("irregular", [False, True])
def test_one_minute_series_mid_warm_up_equal_the_embedded_store(redis_client, irregular):
    """Checkpoints saved and restored all through the warm-up (every 50 points, batches of
    random sizes, a fresh detector per call) give the embedded store's scores bit for bit."""
    v, t = _one_minute(irregular)
    ref = StatisticalAnomalyDetector(settings()).detect_batch("s", v, t)
    scores = np.asarray(ref.scores)
    assert np.isfinite(scores).all()
    if not irregular:
        assert scores[:750].max() < 0.5 < scores[900:930].max()  # the shift is found after the warm-up
    rng = np.random.default_rng(1)
    got: list[float] = []
    while len(got) < len(v):
        i = len(got)
        k = int(rng.integers(1, 120))
        det = StatisticalAnomalyDetector(settings(), redis_client=redis_client)
        got.extend(det.detect_batch("s", v[i : i + k], t[i : i + k]).scores)
    np.testing.assert_array_equal(got, ref.scores)


def test_stats_of_values_near_the_largest_double_equal_the_embedded_store(redis_client):
    """A window holding values near the largest double: the Redis store's summary (read by
    every batch of the ensemble's warm-up) neither overflows nor warns (numpy's sum of
    squares did: a RuntimeWarning, an inf stddev), and agrees with the embedded store's."""
    values = np.r_[np.linspace(-1.0, 1.0, 12), 1e308, -1e308, 1.7e308, 1.7e308, np.ones(6)]
    stamps = 1.7e9 + 60.0 * np.arange(len(values))
    embedded = StatisticalAnomalyDetector(settings())
    on_redis = StatisticalAnomalyDetector(settings(), redis_client=redis_client)
    np.testing.assert_array_equal(
        on_redis.detect_batch("s", values, stamps).scores, embedded.detect_batch("s", values, stamps).scores
    )
    got, want = on_redis.stats("s"), embedded.stats("s")
    assert np.isfinite([got["mean"], got["stddev"]]).all()
    for field in ("mean", "stddev"):
        assert got[field] == pytest.approx(want[field], rel=1e-12), field
    for field in ("points_seen", "window_count", "min", "max", "last_timestamp"):
        assert got[field] == want[field], field
    # an ordinary window: numpy's own figures, bit for bit
    window = np.linspace(3.0, 9.5, 40)
    on_redis.detect_batch("o", window, 1.7e9 + 60.0 * np.arange(40))
    assert on_redis.stats("o")["mean"] == float(window.mean())
    assert on_redis.stats("o")["stddev"] == float(window.std(ddof=1))


def test_a_checkpoint_learned_on_the_largest_doubles_is_read_back(redis_client, caplog):
    """400 points of DBL_MAX: the ensemble's learned bin width overflowed to inf, so every
    checkpoint was refused as corrupt and a second process rebuilt the state from the window
    (different verdicts after). Now the fresh process continues as the embedded store does."""
    largest = float(np.finfo(np.float64).max)
    s = settings(window_size=50, fallback_policy="strict")
    local, first = StatisticalAnomalyDetector(s), StatisticalAnomalyDetector(s, redis_client=redis_client)
    ts = 1.7e9 + 60.0 * np.arange(500)
    x = np.full(400, largest)
    local.detect_batch("s", x, ts[:400])
    first.detect_batch("s", x, ts[:400])
    second = StatisticalAnomalyDetector(s, redis_client=redis_client)
    try:
        with caplog.at_level(logging.WARNING, logger="anomaly_detection.stores.redis"):
            b = second.detect_batch("s", np.sin(np.arange(100.0)), ts[400:])
        a = local.detect_batch("s", np.sin(np.arange(100.0)), ts[400:])
        assert not [r.message for r in caplog.records if "checkpoint" in r.message or "rebuilt" in r.message]
        np.testing.assert_array_equal(a.is_anomaly, b.is_anomaly)
        np.testing.assert_array_equal(a.scores, b.scores)
    finally:
        first.store.close()
        second.store.close()
