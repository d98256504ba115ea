"""The single ``detect`` on a sync Redis client: one ``EVALSHA`` with one packed argument
(``codec.encode_append``, read by ``scripts.UNPACK_APPEND``), sent without redis-py's command
machinery on a kept connection; on a real redis-server."""

from __future__ import annotations

import json
import logging
import struct

import numpy as np
import pytest
import redis

from anomaly_detection import Settings, StatisticalAnomalyDetector
from anomaly_detection.redis import AnomalyRedisKeys, scripts
from anomaly_detection.redis.codec import decode_mirror, decode_points, encode_append, encode_append_point

KEYS = AnomalyRedisKeys()

# The fields UNPACK_APPEND defines, as the server reads them.
_ECHO = (
    scripts.UNPACK_APPEND
    + "return {tostring(w), tostring(ttl), tostring(total), tostring(seq), tostring(m), want, writer, new_pts, joined,"
    + " tostring(prev), tostring(known), refresh}"
)


def _mirror(client, sensor: str):
    return decode_mirror(
        client.get(KEYS.mirror(sensor)), *client.hmget(KEYS.counters(sensor), "ring", "seen")
    )


def _settings(**kw) -> Settings:
    return Settings(
        **{"detection_method": "zscore", "window_size": 10, "min_samples": 3, "redis_alerts": False, **kw}
    )


@pytest.mark.parametrize(
    ("n", "writer", "seq", "want"),
    [
        (1, "abcdef0123456789", 1, True),
        (3, "w1", 2**40 + 7, False),
        (10, "x" * 40, 12345, True),
        (0, "", 5, True),
    ],
)
def test_the_packed_argument_reads_back_on_the_server(redis_client, n, writer, seq, want):
    rng = np.random.default_rng(n)
    values = rng.normal(0, 1e6, n).round(int(rng.integers(0, 17)))
    values[: n // 2] *= -1e-300  # subnormals and signs survive
    stamps = 1.7e9 + rng.random(n) * 1e6
    arg = encode_append(10, 3600, 25, writer, seq, want, values, stamps)
    got = redis_client.eval(_ECHO, 0, arg)
    assert got[:6] == [b"10", b"3600", b"25", str(seq).encode(), str(n).encode(), 1 if want else 0]
    assert got[6] == writer.encode()
    pairs = np.frombuffer(got[7], dtype="<f8").reshape(n, 2)
    np.testing.assert_array_equal(pairs[:, 0], values)
    np.testing.assert_array_equal(pairs[:, 1], stamps)
    assert got[9:] == [b"0", b"0", 1]  # no claim on the window; the TTLs refreshed
    joined = got[8].split(b"\n") if n else []
    read_values, read_stamps = decode_points(joined)
    np.testing.assert_array_equal(read_values, values)
    np.testing.assert_array_equal(read_stamps, stamps)


def test_the_point_argument_is_the_general_one_of_one_point(redis_client):
    for value, stamp in [(20.1, 1.7e9), (-0.0, 0.5), (1e-310, 2e9 + 1 / 3)]:
        general = encode_append(100, 60, 1, "abcd", 9, True, np.array([value]), np.array([stamp]))
        assert encode_append_point(100, 60, b"abcd", 9, value, stamp) == general
    claim = encode_append_point(100, 60, b"abcd", 9, 1.0, 2.0, prev=2**40 + 3, known=12345, refresh=False)
    assert redis_client.eval(_ECHO, 0, claim)[9:] == [str(2**40 + 3).encode(), b"12345", 0]


def test_a_single_detect_is_one_evalsha_and_equals_the_embedded_store(redis_client):
    det = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
    embedded = StatisticalAnomalyDetector(_settings())
    assert det.store._point is not None  # the point path serves this client
    values = np.random.default_rng(4).normal(20, 1, 40)
    values[25] = 40.0
    for script in (scripts.APPEND, scripts.COUNT_ONCE):  # a new server lacks them: a first call loads it
        redis_client.script_load(script)
    redis_client.config_resetstat()
    for i, v in enumerate(values.tolist()):
        got, want = det.detect("s", v, timestamp=float(i)), embedded.detect("s", v, timestamp=float(i))
        assert (got.is_anomaly, got.window_count, got.warming_up) == (
            want.is_anomaly,
            want.window_count,
            want.warming_up,
        )
        np.testing.assert_allclose([got.score, got.expected], [want.score, want.expected], rtol=1e-9)
    stats = redis_client.info("commandstats")
    # one append a detect; the one anomaly counted by a second script (COUNT_ONCE)
    assert stats["cmdstat_evalsha"]["calls"] == 40 + 1
    assert stats["cmdstat_evalsha"].get("failed_calls", 0) == 0
    assert det.stats("s")["anomalies"] == 1
    assert det.stats("s")["points_seen"] == 40


def test_a_script_the_server_lost_is_loaded_again_and_the_point_stored_once(redis_client):
    det = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
    det.detect("s", 1.0, timestamp=1.0)
    redis_client.script_flush()
    det.detect("s", 2.0, timestamp=2.0)
    det.detect("s", 3.0, timestamp=3.0)
    assert [p for p in det.get_window("s").values] == [1.0, 2.0, 3.0]
    assert det.stats("s")["points_seen"] == 3


def test_bad_input_on_the_point_path_changes_nothing(redis_client):
    det = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
    det.detect("s", 1.0, timestamp=1.0)
    with pytest.raises(ValueError, match="finite"):
        det.detect("s", float("nan"), timestamp=2.0)
    with pytest.raises(ValueError):
        det.detect("s", 2.0, timestamp=float("inf"))
    with pytest.raises(ValueError):
        det.detect("bad name\n", 2.0, timestamp=2.0)
    assert redis_client.llen(KEYS.window("s")) == 1
    assert redis_client.hget(KEYS.counters("s"), "seen") == b"1"


def test_a_mirror_of_the_wrong_length_is_rebuilt(redis_client):
    det = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
    embedded = StatisticalAnomalyDetector(_settings())
    for i in range(12):
        det.detect("s", float(i % 5), timestamp=float(i))
        embedded.detect("s", float(i % 5), timestamp=float(i))
    redis_client.set(KEYS.mirror("s"), b"garbage")
    other = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)  # reads the mirror
    got, want = other.detect("s", 9.0, timestamp=12.0), embedded.detect("s", 9.0, timestamp=12.0)
    np.testing.assert_allclose(got.score, want.score, rtol=1e-9)  # answered from the JSON list
    mirror = _mirror(redis_client, "s")
    np.testing.assert_array_equal(mirror[0], decode_points(redis_client.lrange(KEYS.window("s"), 0, -1))[0])
    got, want = det.detect("s", 3.0, timestamp=13.0), embedded.detect("s", 3.0, timestamp=13.0)
    np.testing.assert_allclose(got.score, want.score, rtol=1e-9)


@pytest.mark.parametrize("single", [True, False])
def test_a_mirror_of_unreadable_numbers_is_dropped_and_rebuilt_not_a_crash(redis_client, caplog, single):
    det = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
    embedded = StatisticalAnomalyDetector(_settings())
    for i in range(12):
        det.detect("s", float(i % 5), timestamp=float(i))
        embedded.detect("s", float(i % 5), timestamp=float(i))
    ring = bytearray(redis_client.get(KEYS.mirror("s")))
    ring[16:24] = struct.pack("<d", float("nan"))  # the right length, one number not a number
    redis_client.set(KEYS.mirror("s"), bytes(ring), keepttl=True)
    with caplog.at_level(logging.WARNING, logger="anomaly_detection.stores.redis"):
        if single:
            # det's own next detect scores on the window it kept (the mirror is not sent to
            # it): the corrupt mirror is read by the next call that reads it, another writer's
            other = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
            got = other.detect("s", 9.0, timestamp=12.0)
        else:
            got = det.detect_batch("s", [9.0], [12.0])[0]
    embedded.detect("s", 9.0, timestamp=12.0)
    assert "compact mirror of s" in caplog.text
    assert np.isfinite(got.score)
    assert not redis_client.hexists(KEYS.counters("s"), "ring")  # dropped
    got, want = det.detect("s", 2.0, timestamp=13.0), embedded.detect("s", 2.0, timestamp=13.0)
    np.testing.assert_allclose(got.score, want.score, rtol=1e-9)  # this one from the JSON list, exact
    mirror = _mirror(redis_client, "s")
    np.testing.assert_array_equal(mirror[0], decode_points(redis_client.lrange(KEYS.window("s"), 0, -1))[0])


def test_the_point_path_keeps_one_connection_and_gives_it_back_on_close(redis_server):
    client = redis_server.client()
    client.flushall()
    det = StatisticalAnomalyDetector(_settings(), redis_client=client)
    pool = client.connection_pool
    for i in range(5):
        det.detect("s", float(i), timestamp=float(i))
    assert len(pool._in_use_connections) == 1  # the point path's
    det.store.close()
    assert len(pool._in_use_connections) == 0
    det.detect("s", 5.0, timestamp=5.0)  # still served, through the pool
    assert len(pool._in_use_connections) == 0
    assert det.stats("s")["points_seen"] == 6
    client.close()


def test_a_blocking_pool_lends_its_connections_only_for_the_call(redis_server):
    pool = redis.BlockingConnectionPool(
        host="127.0.0.1", port=redis_server.port, max_connections=1, timeout=1
    )
    client = redis.Redis(connection_pool=pool)
    client.flushall()
    det = StatisticalAnomalyDetector(_settings(), redis_client=client)
    for i in range(20):  # one connection in all: a kept one would starve the anomaly counter
        det.detect("s", 100.0 if i == 15 else float(i % 3), timestamp=float(i))
    assert det.stats("s")["points_seen"] == 20
    assert det.stats("s")["anomalies"] == 1
    client.close()


def test_a_kept_connection_the_server_dropped_is_replaced_without_opening_the_breaker(
    redis_server, redis_client
):
    from anomaly_detection.redis.client import redis_client_from_settings

    settings = _settings(redis_host="127.0.0.1", redis_port=redis_server.port)
    client = redis_client_from_settings(settings)  # no retries: a dropped connection would fail the call
    det = StatisticalAnomalyDetector(settings, redis_client=client)
    for i in range(3):
        det.detect("s", float(i), timestamp=float(i))
    assert redis_client.client_kill_filter(_type="normal", skipme=True) >= 1  # the kept connection among them
    det.detect("s", 3.0, timestamp=3.0)
    assert not det.store.degraded
    assert [float(v) for v in det.get_window("s").values] == [0.0, 1.0, 2.0, 3.0]
    assert det.stats("s")["points_seen"] == 4
    det.store.close()
    client.close()


def test_threads_share_the_kept_connection_and_the_pool(redis_client):
    import threading

    det = StatisticalAnomalyDetector(_settings(window_size=1000), redis_client=redis_client)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(150):
                det.detect(f"s{t % 2}", float(t * 1000 + i), timestamp=float(i))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for s, writers in (("s0", (0, 2)), ("s1", (1, 3))):
        stored = det.get_window(s).values
        assert det.stats(s)["points_seen"] == len(stored) == 300
        for t in writers:  # each thread's points once, in its order
            mine = stored[(stored >= t * 1000) & (stored < t * 1000 + 1000)]
            np.testing.assert_array_equal(mine, t * 1000 + np.arange(150.0))


# --- the mirror as a ring, the kept window, the TTLs (issue 17 item 6, round 3) -------------


def _replies(det) -> list[int]:
    """Spy on the point path: the length of each reply (4: the kept window was right)."""
    point, lengths = det.store._point, []
    send = point.send

    def spy(command, between=None):
        reply = send(command, between)
        lengths.append(len(reply))
        return reply

    point.send = spy
    return lengths


def test_the_ring_holds_point_k_in_slot_k_mod_w_and_follows_the_list(redis_client):
    det = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
    embedded = StatisticalAnomalyDetector(_settings())
    rng = np.random.default_rng(11)
    t = 0.0
    for n in [1] * 7 + [13] + [1] * 5 + [4, 1, 1, 25] + [1] * 9:
        values = rng.normal(5, 1, n)
        stamps = t + np.arange(n)
        t += n
        if n == 1:
            got = det.detect("s", float(values[0]), timestamp=float(stamps[0]))
            want = embedded.detect("s", float(values[0]), timestamp=float(stamps[0]))
            np.testing.assert_allclose(got.score, want.score, rtol=1e-9)
        else:
            det.detect_batch("s", values, stamps)
            embedded.detect_batch("s", values, stamps)
        listed = decode_points(redis_client.lrange(KEYS.window("s"), 0, -1))
        mirror = _mirror(redis_client, "s")
        np.testing.assert_array_equal(mirror[0], listed[0])
        np.testing.assert_array_equal(mirror[1], listed[1])
    seen = int(redis_client.hget(KEYS.counters("s"), "seen"))
    ring = redis_client.get(KEYS.mirror("s"))
    assert len(ring) == 16 * 10 + 8
    assert ring.endswith(scripts.RING_END.encode())
    slot = (seen - 1) % 10  # the last point, in slot k mod w
    assert struct.unpack_from("<dd", ring, 16 * slot) == (listed[0][-1], listed[1][-1])
    assert redis_client.hget(KEYS.counters("s"), "ring") == f"10:10:{seen}".encode()


def test_consecutive_detects_are_answered_from_the_kept_window_until_another_writer_appends(redis_client):
    det = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
    other = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
    embedded = StatisticalAnomalyDetector(_settings())
    lengths = _replies(det)
    values = np.random.default_rng(5).normal(0, 1, 30)
    for i, v in enumerate(values.tolist()):
        who = other if i in (10, 20, 21) else det
        got, want = who.detect("s", v, timestamp=float(i)), embedded.detect("s", v, timestamp=float(i))
        assert got.is_anomaly == want.is_anomaly
        np.testing.assert_allclose([got.score, got.expected], [want.score, want.expected], rtol=1e-9)
    # the first call, and each first call after the other writer's, gets the window; the rest do not
    assert [i for i, n in enumerate(lengths) if n != 4] == [0, 10, 19]
    assert len(lengths) == 27


def test_a_mirror_key_that_vanished_is_rebuilt_from_the_list_not_filled_with_zeros(redis_client):
    det = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
    embedded = StatisticalAnomalyDetector(_settings())
    for i in range(14):
        det.detect("s", float(i % 4), timestamp=float(i))
        embedded.detect("s", float(i % 4), timestamp=float(i))
    redis_client.delete(KEYS.mirror("s"))  # the counters still describe it
    got, want = det.detect("s", 7.0, timestamp=14.0), embedded.detect("s", 7.0, timestamp=14.0)
    np.testing.assert_allclose(got.score, want.score, rtol=1e-9)
    mirror = _mirror(redis_client, "s")
    np.testing.assert_array_equal(mirror[0], decode_points(redis_client.lrange(KEYS.window("s"), 0, -1))[0])
    assert 0 < redis_client.ttl(KEYS.mirror("s")) <= 3600


def test_the_mirror_of_earlier_versions_in_the_counters_is_migrated(redis_client):
    """A sensor written by an earlier version: the JSON list, the counters with the mirror
    in 'values', 'stamps', 'last' and no ring; and such a writer appending meanwhile."""
    embedded = StatisticalAnomalyDetector(_settings())
    values = np.random.default_rng(8).normal(10, 2, 10)
    entries = [json.dumps({"value": v, "timestamp": float(i)}) for i, v in enumerate(values.tolist())]
    for i, v in enumerate(values.tolist()):
        embedded.detect("s", v, timestamp=float(i))
    redis_client.rpush(KEYS.window("s"), *entries)
    redis_client.hset(KEYS.counters("s"), mapping={
        "seen": 10, "w:0123456789abcdef": "4:9", "values": values.astype("<f8").tobytes(),
        "stamps": np.arange(10.0).astype("<f8").tobytes(), "last": entries[-1],
    })  # fmt: skip
    det = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
    got, want = det.detect("s", 30.0, timestamp=10.0), embedded.detect("s", 30.0, timestamp=10.0)
    assert got.is_anomaly
    assert want.is_anomaly
    np.testing.assert_allclose(got.score, want.score, rtol=1e-9)
    assert redis_client.hmget(KEYS.counters("s"), "values", "stamps", "last") == [None, None, None]
    np.testing.assert_array_equal(_mirror(redis_client, "s")[0], [*values[1:].tolist(), 30.0])
    # a writer of the earlier version appends: list, 'seen' and its own 'last', not the ring
    entry = json.dumps({"value": 11.0, "timestamp": 11.0})
    redis_client.rpush(KEYS.window("s"), entry)
    redis_client.ltrim(KEYS.window("s"), -10, -1)
    redis_client.hset(KEYS.counters("s"), mapping={"seen": 12, "last": entry})
    embedded.detect("s", 11.0, timestamp=11.0)
    got, want = det.detect("s", 12.0, timestamp=12.0), embedded.detect("s", 12.0, timestamp=12.0)
    np.testing.assert_allclose(got.score, want.score, rtol=1e-9)  # its point seen: not the kept window
    np.testing.assert_array_equal(
        _mirror(redis_client, "s")[0], decode_points(redis_client.lrange(KEYS.window("s"), 0, -1))[0]
    )


def test_the_single_detect_refreshes_ttls_on_first_use_then_at_most_every_ttl_over_60(redis_client):
    det = StatisticalAnomalyDetector(_settings(temp_data_ttl=600), redis_client=redis_client)
    keys = (KEYS.window("s"), KEYS.counters("s"), KEYS.mirror("s"))
    det.detect("s", 1.0, timestamp=1.0)
    assert all(590 < redis_client.ttl(k) <= 600 for k in keys)
    for k in keys:
        redis_client.expire(k, 100)
    for i in range(2, 6):  # within 10 s (600 / 60) of the last refresh: no EXPIRE
        det.detect("s", float(i), timestamp=float(i))
    assert all(0 < redis_client.ttl(k) <= 100 for k in keys)
    det.store._point.sensors["s"].refreshed -= 10.0  # 10 s later
    det.detect("s", 6.0, timestamp=6.0)
    assert all(590 < redis_client.ttl(k) <= 600 for k in keys)
    for k in keys:
        redis_client.expire(k, 100)
    det.detect_batch("s", [7.0], [7.0])  # the general path refreshes on every call
    assert all(590 < redis_client.ttl(k) <= 600 for k in keys)
    # keys made anew (another process reset the sensor) get their TTLs at once
    redis_client.delete(*keys)
    det.detect("s", 8.0, timestamp=8.0)
    det.detect("s", 9.0, timestamp=9.0)
    assert all(590 < redis_client.ttl(k) <= 600 for k in keys)
    redis_client.delete(KEYS.counters("s"))  # the counters alone gone
    det.detect("s", 10.0, timestamp=10.0)
    assert 590 < redis_client.ttl(KEYS.counters("s")) <= 600


def test_writers_of_different_window_sizes_share_a_sensor_through_the_list(redis_client):
    """The ring is laid out for one window size: a writer of another rebuilds it from the
    list; each writer scores on the list's last window_size points, as without a mirror."""
    small = StatisticalAnomalyDetector(_settings(window_size=10), redis_client=redis_client)
    large = StatisticalAnomalyDetector(_settings(window_size=15), redis_client=redis_client)
    rng = np.random.default_rng(21)
    for i in range(60):
        det = small if rng.random() < 0.5 else large
        size = det.settings.window_size
        before = decode_points(redis_client.lrange(KEYS.window("s"), 0, -1))
        alone = StatisticalAnomalyDetector(_settings(window_size=size))  # that window, embedded
        if len(before[0]):
            alone.detect_batch("s", before[0][-size:], before[1][-size:])
        value = float(rng.normal(0, 1))
        got, want = det.detect("s", value, timestamp=float(i)), alone.detect("s", value, timestamp=float(i))
        assert (got.is_anomaly, got.window_count) == (want.is_anomaly, want.window_count)
        np.testing.assert_allclose([got.score, got.expected], [want.score, want.expected], rtol=1e-9)
        listed = decode_points(redis_client.lrange(KEYS.window("s"), 0, -1))
        np.testing.assert_array_equal(_mirror(redis_client, "s")[0], listed[0])


def test_a_forked_child_appends_as_a_writer_of_its_own(redis_client):
    # A store made before a fork (a pre-forking server's workers): parent and child then hold
    # the same writer id and the same next sequence number. The child's append and the
    # parent's next one must both be stored, each scored on the window the other left.
    import os

    det = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
    for i in range(5):
        det.detect("s", float(i), timestamp=float(i))
    pid = os.fork()
    if pid == 0:  # the child: one point, then gone without running the parent's clean-up
        code = 1
        try:
            det.detect("s", 100.0, timestamp=100.0)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    det.detect("s", 5.0, timestamp=5.0)
    assert [json.loads(e)["value"] for e in redis_client.lrange(KEYS.window("s"), 0, -1)] == [
        0.0, 1.0, 2.0, 3.0, 4.0, 100.0, 5.0,
    ]  # fmt: skip
    assert redis_client.hget(KEYS.counters("s"), "seen") == b"7"


def test_a_child_forked_while_another_thread_detects_does_not_wait_for_that_thread(redis_client):
    # A thread of the parent is inside a call on "s" (holding the sensor's lock and the kept
    # connection's) at the fork: that thread does not exist in the child, so a lock it held
    # would never be released there. The child's calls must go on.
    import os
    import signal
    import threading

    det = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
    det.detect("s", 1.0, timestamp=1.0)
    inside, leave = threading.Event(), threading.Event()
    store = det.store

    def hold_the_locks() -> None:
        stripe = store._locks.threading_stripe(store._locks.stripes(["s"])[0])
        with stripe, store._point._kept_lock:
            inside.set()
            leave.wait(30)

    holder = threading.Thread(target=hold_the_locks)
    holder.start()
    try:
        assert inside.wait(10)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                signal.alarm(10)  # a deadlocked child is killed by SIGALRM (exit status != 0)
                det.detect("s", 2.0, timestamp=2.0)
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    finally:
        leave.set()
        holder.join()
    assert os.waitstatus_to_exitcode(status) == 0
    assert [json.loads(e)["value"] for e in redis_client.lrange(KEYS.window("s"), 0, -1)] == [1.0, 2.0]


def test_a_mirror_key_that_vanished_beside_an_entry_the_script_cannot_read_leaves_no_key_without_ttl(
    redis_client,
):
    # A program rewrites an entry in the middle of the list (LSET: length and last entry kept,
    # so the ring still looks valid) with one the script cannot read, and the mirror key is
    # deleted alone. The append's SETRANGE then creates a partial key; the rebuild from the
    # list fails on the foreign entry: no key of the sensor may stay behind without a TTL.
    det = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
    for i in range(6):
        det.detect("s", float(i % 3), timestamp=float(i))
    redis_client.lset(KEYS.window("s"), 2, json.dumps({"value": 2.0, "timestamp": "2026-01-01T00:00:00"}))
    redis_client.delete(KEYS.mirror("s"))
    det.detect("s", 1.0, timestamp=6.0)
    assert len(det.get_window("s").values) == 7
    for key in redis_client.scan_iter(match="anomaly:*"):
        assert redis_client.ttl(key) > 0, key


def test_a_foreign_append_of_the_same_entry_to_a_full_window_is_noticed(redis_client):
    # A writer that does not keep the ring (an earlier version during a rolling upgrade)
    # appends an entry byte-identical to the list's last one to a full window: the list's
    # length and last entry are unchanged, but it counted a point. The next call must score
    # against the list's window (with the repeated point), as a detector fed the same points.
    det = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
    ref = StatisticalAnomalyDetector(_settings())
    for i in range(12):  # the window (10) is full
        det.detect("s", float(i % 4), timestamp=float(i))
        ref.detect("s", float(i % 4), timestamp=float(i))
    last = redis_client.lindex(KEYS.window("s"), -1)
    pipe = redis_client.pipeline(transaction=True)
    pipe.rpush(KEYS.window("s"), last).ltrim(KEYS.window("s"), -10, -1).hincrby(KEYS.counters("s"), "seen", 1)
    pipe.execute()
    ref.detect("s", 3.0, timestamp=11.0)  # the same point again
    got, want = det.detect("s", 2.5, timestamp=12.0), ref.detect("s", 2.5, timestamp=12.0)
    assert got.deviation == pytest.approx(want.deviation, rel=1e-12)
    assert redis_client.hget(KEYS.counters("s"), "seen") == b"14"


def test_a_ring_of_the_previous_layout_is_rebuilt_not_trusted(redis_client):
    # An upgrade meets the previous version's ring field ('<w>:<count>', no 'seen') over a
    # mirror that is stale: a writer of that version appended an entry byte-identical to the
    # list's last one to a full window (length and last entry unchanged). The new script must
    # not take that mirror as current: it rebuilds from the list and writes the new layout.
    det = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
    ref = StatisticalAnomalyDetector(_settings())
    for i in range(12):
        det.detect("s", float(i % 4), timestamp=float(i))
        ref.detect("s", float(i % 4), timestamp=float(i))
    counters = KEYS.counters("s")
    redis_client.hset(counters, "ring", "10:10")  # as the previous version left it
    last = redis_client.lindex(KEYS.window("s"), -1)
    pipe = redis_client.pipeline(transaction=True)
    pipe.rpush(KEYS.window("s"), last).ltrim(KEYS.window("s"), -10, -1).hincrby(counters, "seen", 1)
    pipe.execute()
    ref.detect("s", 3.0, timestamp=11.0)
    for i, v in enumerate([2.5, 9.0, 1.0]):
        got, want = det.detect("s", v, timestamp=12.0 + i), ref.detect("s", v, timestamp=12.0 + i)
        assert got.deviation == pytest.approx(want.deviation, rel=1e-12)
    assert redis_client.hget(counters, "ring") == b"10:10:16"


def test_objects_made_and_dropped_leave_no_fork_hook_behind_and_live_ones_still_run_theirs():
    # Each store and alert sink asks for a clean start in a forked child. A hook registered per
    # object (os.register_at_fork has no way to remove one) stayed for good: ~330 bytes and
    # ~1 us of every later fork per object ever made (a process making detectors over and
    # over: tests, notebooks). Dropped objects must leave nothing; live ones still run theirs.
    import gc
    import os
    import tracemalloc

    from anomaly_detection.redis.driver import on_fork_in_child

    class Tracked:
        cleaned = False

        def _after_fork_in_child(self) -> None:
            self.cleaned = True

    live = Tracked()
    on_fork_in_child(live)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(20_000):
            on_fork_in_child(Tracked())
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 200_000, f"{kept} bytes kept for 20,000 dropped objects"
    pid = os.fork()
    if pid == 0:
        os._exit(0 if live.cleaned else 3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert not live.cleaned  # the parent keeps its state


def test_the_kept_windows_are_bounded_in_bytes_too(redis_client, monkeypatch):
    # The point path keeps, per sensor, the window after its last append (16 bytes a window point)
    # for up to POINT_PREFIXES sensors: with large windows that count alone could hold gigabytes
    # (10,000 sensors of a 100,000-point window: 16 GB). A byte budget lowers the count.
    from anomaly_detection.stores.redis import RedisStore

    monkeypatch.setattr(RedisStore, "POINT_KEPT_BYTES", 16 * 50 * 5, raising=False)  # 5 windows of 50
    det = StatisticalAnomalyDetector(_settings(window_size=50), redis_client=redis_client)
    ref = StatisticalAnomalyDetector(_settings(window_size=50))
    rng = np.random.default_rng(3)
    for step in range(6):
        for i in range(20):
            value = float(rng.normal(10.0, 1.0)) + (30.0 if step == 5 and i % 7 == 0 else 0.0)
            got = det.detect(f"s{i}", value, timestamp=float(step))
            want = ref.detect(f"s{i}", value, timestamp=float(step))
            assert (got.is_anomaly, got.score, got.window_count) == (
                want.is_anomaly,
                want.score,
                want.window_count,
            )
            kept = [s for s in det.store._point.sensors.values() if s.values is not None]
            assert len(det.store._point.sensors) <= 5
            assert sum(len(s.values) + len(s.stamps) for s in kept) <= 16 * 50 * 5
    for i in range(20):
        assert det.stats(f"s{i}")["points_seen"] == 6


def test_the_fallbacks_remembered_windows_are_bounded_in_bytes_too(redis_client, monkeypatch):
    # The fallback remembers, per sensor, the window Redis held (the point path: views of the
    # windows it keeps) for up to max_sensors or 10,000 sensors: with large windows that count
    # alone held gigabytes beside the point path's byte budget (10,000 sensors of a 100,000-point
    # window: 16 GB, the point path's dropped windows kept alive). A byte budget lowers the count.
    from anomaly_detection.stores.fallback import Fallback

    monkeypatch.setattr(Fallback, "WINDOWS_KEPT_BYTES", 16 * 50 * 5, raising=False)  # 5 windows of 50
    det = StatisticalAnomalyDetector(_settings(window_size=50), redis_client=redis_client)
    rng = np.random.default_rng(3)
    for step in range(60):
        for i in range(20):
            if step % 2:
                det.detect(f"s{i}", float(rng.normal(10.0, 1.0)), timestamp=float(step))
            else:
                det.detect_batch(f"s{i}", rng.normal(10.0, 1.0, 3), step + np.arange(3.0) / 3)
            kept = det.store.fallback._windows.values()
            assert sum(8 * sum(len(a) for a in entry[:4]) for entry in kept) <= 16 * 50 * 5
    assert len(det.store.fallback._windows) >= 1
