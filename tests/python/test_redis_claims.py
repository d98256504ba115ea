"""The general path's claims (issue #17 item 6): a store that kept a sensor's window after its
last append scores the next batch on it before sending it, and the append script, when the
claim holds (nobody appended since), adds the anomaly count with the points; otherwise the
points are scored on the window the script answers and counted by COUNT_ONCE, as before.
Shown on a real redis-server: the results equal the embedded store's, the counters equal the
flags (one writer, two writers in one process, two processes), a retried append with a count
and a later COUNT_ONCE of it add nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np

from anomaly_detection import Settings, StatisticalAnomalyDetector
from anomaly_detection.redis import AnomalyRedisKeys, scripts
from anomaly_detection.redis.codec import encode_append

KEYS = AnomalyRedisKeys()


def _settings(**kw) -> Settings:
    base = {"detection_method": "zscore", "window_size": 30, "min_samples": 5, "redis_alerts": False}
    return Settings(**{**base, **kw})


def _series(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(20.0, 0.5, n)
    x[rng.choice(np.arange(10, n), size=n // 15, replace=False)] += 12.0
    return x


def _anomalies(client, sensor: str) -> int:
    return int(client.hget(KEYS.counters(sensor), "anomalies") or 0)


def _window(client, sensor: str) -> tuple[np.ndarray, np.ndarray]:
    entries = [json.loads(e) for e in client.lrange(KEYS.window(sensor), 0, -1)]
    return np.array([e["value"] for e in entries]), np.array([e["timestamp"] for e in entries])


def test_a_claimed_batch_is_counted_by_its_append_and_scores_as_the_embedded_store(redis_client):
    det = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
    embedded = StatisticalAnomalyDetector(_settings())
    store = det.store
    sent = []
    real = store._count_script
    store._count_script = lambda *a: sent.append(a) or real(*a)
    x, t = _series(1, 400), np.arange(400.0)
    flagged = 0
    for lo in range(0, 400, 20):
        got = det.detect_batch("s", x[lo : lo + 20], t[lo : lo + 20])
        want = embedded.detect_batch("s", x[lo : lo + 20], t[lo : lo + 20])
        np.testing.assert_array_equal(got.is_anomaly, want.is_anomaly)
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-12, atol=1e-12)
        flagged += int(np.count_nonzero(got.is_anomaly))
        assert _anomalies(redis_client, "s") == flagged
    assert flagged > 10
    assert sent == []  # each batch after the first claimed the window it kept: no COUNT_ONCE
    mark = redis_client.hget(KEYS.counters("s"), f"a:{store.writer_id}")
    assert mark is not None
    assert int(mark.split(b":")[0]) > 1


def test_an_append_with_a_count_sent_again_counts_once(redis_client):
    script = redis_client.register_script(scripts.APPEND)
    count_once = redis_client.register_script(scripts.COUNT_ONCE)
    keys = [KEYS.window("s"), KEYS.counters("s"), KEYS.mirror("s")]
    v = np.arange(5.0)

    def append(seq, values, prev=0, known=0, counted=0):
        stamps = values + 100.0 * seq
        arg = encode_append(10, 60, len(values), "w1", seq, True, values, stamps, prev, known, counted)
        return script(keys=keys, args=[arg])

    assert len(append(1, v)) == 5  # no claim: the window answered (an empty mirror)
    assert _anomalies(redis_client, "s") == 0
    claimed = append(2, v, prev=1, known=5, counted=3)
    assert claimed == [5, [], 0, 1]  # the claim held: counted with the points
    assert _anomalies(redis_client, "s") == 3
    again = append(2, v, prev=1, known=5, counted=3)  # its reply was lost: sent again
    assert again[0] == 5
    assert again[2] == 1
    assert _anomalies(redis_client, "s") == 3
    assert count_once(keys=[keys[1]], args=["w1", 2, 3, 60]) == 0  # the write-back's count of it
    assert _anomalies(redis_client, "s") == 3
    assert int(redis_client.hget(keys[1], "seen")) == 10
    assert redis_client.llen(keys[0]) == 10
    # a claim that does not hold (the count of points it left is wrong) counts nothing
    failed = append(3, v, prev=2, known=7, counted=4)
    assert len(failed) == 5
    assert failed[2] == 0
    assert _anomalies(redis_client, "s") == 3
    assert count_once(keys=[keys[1]], args=["w1", 3, 4, 60]) == 1  # counted by COUNT_ONCE, once
    assert count_once(keys=[keys[1]], args=["w1", 3, 4, 60]) == 0
    assert _anomalies(redis_client, "s") == 7
    # a claim naming another writer's last append counts nothing either
    other = encode_append(10, 60, 5, "w2", 1, True, v, v + 900.0, 3, 15, 2)
    assert len(script(keys=keys, args=[other])) == 5
    assert _anomalies(redis_client, "s") == 7


def test_two_writers_sharing_a_sensor_count_exactly_their_flags(redis_client):
    a = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
    b = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
    embedded = StatisticalAnomalyDetector(_settings())
    counts = []
    for det in (a, b):
        real = det.store._count_script
        det.store._count_script = lambda *args, real=real: counts.append(args) or real(*args)
    rng = np.random.default_rng(7)
    x = _series(2, 1200)
    lo, flagged, who = 0, 0, rng.integers(0, 3, size=200)
    for k in who:
        n = min(int(rng.integers(1, 25)), len(x) - lo)
        if n == 0:
            break
        v, t = x[lo : lo + n], np.arange(lo, lo + n, dtype=float)
        if k == 2:  # a's single detect between the batches: its claims of the batch path fail
            got = [a.detect("s", float(p), timestamp=float(s)).is_anomaly for p, s in zip(v, t)]
        else:
            got = list((a if k == 0 else b).detect_batch("s", v, t).is_anomaly)
        want = list(embedded.detect_batch("s", v, t).is_anomaly)
        assert got == want
        flagged += sum(got)
        lo += n
    values, stamps = _window(redis_client, "s")
    np.testing.assert_array_equal(values, x[lo - 30 : lo])
    np.testing.assert_array_equal(stamps, np.arange(lo - 30, lo, dtype=float))
    assert int(redis_client.hget(KEYS.counters("s"), "seen")) == lo
    assert flagged > 20
    assert _anomalies(redis_client, "s") == flagged
    assert counts  # some claims failed (the other writer appended since): counted by COUNT_ONCE


_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import redis
    from anomaly_detection import Settings, StatisticalAnomalyDetector

    port, seed = int(sys.argv[1]), int(sys.argv[2])
    client = redis.Redis(host="127.0.0.1", port=port)
    det = StatisticalAnomalyDetector(
        Settings(detection_method="zscore", window_size=30, min_samples=5, redis_alerts=False),
        redis_client=client,
    )
    rng = np.random.default_rng(seed)
    flagged = 0
    for i in range(300):
        n = int(rng.integers(1, 12))
        v = rng.normal(20.0, 0.5, n)
        v[rng.random(n) < 0.08] += 12.0
        flagged += int(np.count_nonzero(det.detect_batch("shared", v, np.full(n, float(i))).is_anomaly))
    print(flagged)
    """
)


def test_two_processes_sharing_a_sensor_count_exactly_their_flags(redis_server, redis_client):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(redis_server.port), str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for seed in (1, 2)
    ]
    flagged = 0
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        flagged += int(out)
    assert flagged > 20
    assert _anomalies(redis_client, "shared") == flagged
