"""The write-back after a Redis outage (issue 16, item 4), with the fault caused for real: a
redis-server killed with SIGKILL mid-stream and restarted on the same port (with an
append-only file, so that it comes back with what it held), a write-back stalled with
``CLIENT PAUSE``. Shown: the write-back runs in the background in bounded appends while
callers detect; every point is stored once and in order, ``seen`` exact; the alerts and
anomaly counts of the outage reach the stream, the channel and the counters once each."""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
import tracemalloc

import numpy as np
import pytest
import redis
from hypothesis import given
from hypothesis import settings as settings_
from hypothesis import strategies as st
from redis.backoff import NoBackoff
from redis.retry import Retry
from servers import RedisServer

from anomaly_detection import Settings, StatisticalAnomalyDetector
from anomaly_detection.redis.alerts import AlertWriter, RedisAlertSink
from anomaly_detection.stores.fallback import ANOMALY, SENT, PointBuffer, plan_write_back

# The server writes every command to its append-only file before answering: a SIGKILL
# loses nothing it acknowledged, and the restarted server holds the points of before.
DURABLE = ("--appendonly", "yes", "--appendfsync", "always")


def settings(**kw) -> Settings:
    base = {
        "detection_method": "zscore",
        "window_size": 100_000,  # every point stays in the window: the whole stream is checked
        "min_samples": 5,
        "redis_retry_interval": 0.05,
        "redis_socket_timeout": 0.5,
    }
    return Settings(**{**base, **kw})


_clients: list[redis.Redis] = []


@pytest.fixture(autouse=True)
def _close_clients():
    """Close every client a test made (no socket is left for the garbage collector)."""
    yield
    while _clients:
        _clients.pop().close()


def client_of(server: RedisServer, timeout: float = 0.5) -> redis.Redis:
    """A client as the package builds one: bounded timeouts, no retries of its own."""
    client = server.client(socket_timeout=timeout, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    _clients.append(client)
    return client


def series(seed: int, n: int, spikes: list[int]) -> np.ndarray:
    x = np.random.default_rng(seed).normal(20.0, 0.5, n)
    x[spikes] += 15.0
    return x


def window_of(client: redis.Redis, sensor: str) -> tuple[np.ndarray, np.ndarray]:
    entries = [json.loads(e) for e in client.lrange(f"anomaly:temp:data:{sensor}:queue", 0, -1)]
    return np.array([e["value"] for e in entries]), np.array([e["timestamp"] for e in entries])


def counters_of(client: redis.Redis, sensor: str) -> tuple[int, int]:
    seen, anomalies = client.hmget(f"anomaly:temp:data:{sensor}:stats", "seen", "anomalies")
    return int(seen or 0), int(anomalies or 0)


def wait_until(condition, what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds} s"
        time.sleep(0.01)


# --- the buffer and the plan of appends -------------------------------------------------


def test_the_point_buffer_costs_29_bytes_a_point():
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        buffer = PointBuffer()
        for i in range(100_000):  # single-point calls: the worst case of the old buffer (394 bytes)
            buffer.append("s", np.array([float(i)]), np.array([float(i)]), i + 1, np.uint8(i % 2))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert buffer._chunks[0].dtype.itemsize == 29  # sensor u4, seq u8, value f8, timestamp f8, flags u1
    assert sum(chunk.nbytes for chunk in buffer._chunks) == 13 * 8192 * 29  # the last chunk part full
    assert held / 100_000 <= 32  # everything allocated for it, measured: 30.9 bytes a point


@settings_(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(1, 9), st.booleans(), st.booleans()),
        min_size=1,
        max_size=40,
    ),
    st.integers(1, 12),
)
def test_the_plan_keeps_each_sensors_order_and_sends_a_sent_call_alone(calls, limit):
    buffer, expected, sent_calls, seq_of_point = PointBuffer(), {}, set(), {}
    for seq, (sensor, n, sent, anomalous) in enumerate(calls, start=1):
        values = np.arange(n, dtype=float) + 100 * seq
        flags = np.full(n, (SENT if sent else 0) | (ANOMALY if anomalous else 0), np.uint8)
        buffer.append(sensor, values, values + 0.5, seq, flags)
        expected.setdefault(sensor, []).extend(values.tolist())
        seq_of_point.update(dict.fromkeys(values.tolist(), seq))
        if sent:
            sent_calls.add(seq)
    got: dict[str, list[float]] = {}
    anomalies = 0
    while len(buffer):
        rows = buffer.take(limit)
        assert len(rows) >= min(limit, len(buffer))  # never fewer than asked, never a call cut
        for chunk in plan_write_back(rows, buffer.name, limit):
            seqs = {seq_of_point[v] for v in chunk.values.tolist()}
            assert chunk.seq == max(seqs)  # the sequence number of its last call
            assert len(chunk.values) <= limit or len(seqs) == 1  # bounded, unless one call is larger
            if seqs & sent_calls:
                assert len(seqs) == 1  # a call whose append may have run goes alone
            np.testing.assert_array_equal(chunk.timestamps, chunk.values + 0.5)
            got.setdefault(chunk.sensor, []).extend(chunk.values.tolist())
            anomalies += chunk.anomalies
        buffer.pop(len(rows))
    assert got == expected
    assert anomalies == sum(n for _, n, _, anomalous in calls if anomalous)


# --- the outage, for real ---------------------------------------------------------------


def test_sigkill_mid_stream_every_point_once_in_order_and_the_outage_alerts_once():
    server = RedisServer(*DURABLE).start()
    try:
        client = client_of(server)
        det = StatisticalAnomalyDetector(settings(redis_probe_interval=0.2), redis_client=client)
        x = series(1, 600, spikes=[150, 260, 305, 333, 420, 555])
        t = np.arange(600.0)
        flagged = [det.detect("s", float(x[i]), timestamp=t[i]).is_anomaly for i in range(250)]
        server.kill()  # SIGKILL mid-stream
        # during the outage: the spikes at 260, 305, 333, 420 raise alerts
        flagged += [det.detect("s", float(x[i]), timestamp=t[i]).is_anomaly for i in range(250, 450)]
        before, during = sum(flagged[:250]), sum(flagged[250:])
        assert all(flagged[i] for i in (260, 305, 333, 420))
        health = det.health()
        assert health["degraded"] is True
        assert health["write_back"] == {
            "state": "waiting", "buffered": 200, "written": 0,
            "alerts_held": during, "alerts_delivered": before, "alerts_dropped": 0,
        }  # fmt: skip
        server.start()  # the same port, from its append-only file
        admin = client_of(server)
        wait_until(lambda: not det.health()["degraded"], "the write-back")
        health = det.health()
        assert health["write_back"] == {
            "state": "idle", "buffered": 0, "written": 200,
            "alerts_held": 0, "alerts_delivered": before + during, "alerts_dropped": 0,
        }  # fmt: skip
        # the outage's alerts were published once each (by the server that came back)
        publishes = int(admin.info("commandstats").get("cmdstat_publish", {}).get("calls", 0))
        assert publishes == during
        flagged += [det.detect("s", float(x[i]), timestamp=t[i]).is_anomaly for i in range(450, 600)]

        values, stamps = window_of(admin, "s")
        np.testing.assert_array_equal(stamps, t)  # every point once, in order
        np.testing.assert_array_equal(values, x)
        seen, anomalies = counters_of(admin, "s")
        assert seen == 600
        assert anomalies == sum(flagged)  # the outage's counted once
        alerts = [json.loads(fields[b"alert"]) for _, fields in admin.xrange("anomaly:stream:alerts")]
        assert sorted(a["timestamp"] for a in alerts) == t[np.array(flagged)].tolist()  # each once
        assert {150.0, 260.0, 305.0, 333.0, 420.0, 555.0} <= {a["timestamp"] for a in alerts}
        assert admin.zcard("anomaly:index:alerts") == sum(flagged)  # each stored and indexed once
        det.store.close()
    finally:
        server.stop()


def _fifty_points_then_an_outlier(client):
    """A detector on `client` that has stored 50 points of a 60-point series whose point 50 is
    an outlier, and how many of the 50 it flagged."""
    det = StatisticalAnomalyDetector(
        settings(redis_probe_interval=0.1, redis_alerts=False), redis_client=client
    )
    x, t = series(3, 60, [50]), np.arange(60.0)
    before = int(np.count_nonzero(det.detect_batch("s", x[:50], t[:50]).is_anomaly))
    return det, x, t, before


def _assert_stored_once_after_restart(server, det, x, t, anomalies):
    """Redis restarted on its append-only file: once the write-back has run, every point is
    stored once, in order, and the anomalies counted once."""
    server.start()  # the same port, from its append-only file
    admin = client_of(server)
    wait_until(lambda: not det.health()["degraded"], "the write-back")
    values, stamps = window_of(admin, "s")
    np.testing.assert_array_equal(stamps, t)  # the killed call's point once, the rest after it
    np.testing.assert_array_equal(values, x)
    assert counters_of(admin, "s") == (60, anomalies)  # each anomaly counted once
    det.store.close()


@pytest.mark.parametrize("ran", [False, True], ids=["count-lost", "count-ran-reply-lost"])
@pytest.mark.parametrize("single", [True, False], ids=["detect", "detect_batch"])
def test_redis_killed_between_an_append_and_its_count_counts_the_anomaly_once(single, ran):
    # The points of a call are appended, scored, then their anomalies counted in a second
    # round trip: Redis killed between the two. The count goes to the write-back, which
    # sends it once when the server is back; if the lost count had run (its reply lost),
    # the writer's mark makes the second one add nothing.
    server = RedisServer(*DURABLE).start()
    try:
        client = client_of(server)
        det, x, t, before = _fifty_points_then_an_outlier(client)
        store = det.store
        real = store._count_script

        def kill_first(sensor: str, seq: int, count: int):
            store._count_script = real
            if ran:  # the count reaches the server, its reply does not
                step = real(sensor, seq, count)
                step.script(keys=step.keys, args=step.args, client=client_of(server))
            server.kill()
            return real(sensor, seq, count)

        store._count_script = kill_first
        if not single:  # no window kept, as when a claim fails: the count takes its own round trip
            store._kept.clear()
        if single:
            flagged = [det.detect("s", float(x[50]), timestamp=50.0).is_anomaly]
        else:
            flagged = list(det.detect_batch("s", x[50:51], t[50:51]).is_anomaly)
        assert flagged == [True]
        assert det.health()["degraded"] is True
        flagged += [det.detect("s", float(x[i]), timestamp=t[i]).is_anomaly for i in range(51, 60)]
        _assert_stored_once_after_restart(server, det, x, t, before + sum(flagged))
    finally:
        server.stop()


@pytest.mark.parametrize("ran", [False, True], ids=["append-lost", "append-ran-reply-lost"])
def test_redis_killed_around_an_append_that_counts_counts_the_anomaly_once(ran, monkeypatch):
    # A batch scored on the window its store kept, its append claiming that window with the
    # anomaly count: Redis killed as the append is sent (it ran, its reply lost; or it never
    # ran). The call is scored on the fallback; the write-back appends it once and sends its
    # count, which adds nothing where the append counted it.
    import anomaly_detection.stores.redis as redis_store

    server = RedisServer(*DURABLE).start()
    try:
        client = client_of(server)
        det, x, t, before = _fifty_points_then_an_outlier(client)
        store = det.store
        assert "s" in store._kept  # the window kept for the next batch's claim
        real = redis_store.encode_append
        counted_in_script = []

        def kill_on_claim(*args):
            arg = real(*args)
            if len(args) > 8 and args[10] > 0 and not counted_in_script:  # a claim with a count
                monkeypatch.setattr(redis_store, "encode_append", real)
                if ran:  # the append reaches the server, its reply does not
                    other = client_of(server)
                    assert len(store._script(keys=store._append_keys("s"), args=[arg], client=other)) == 4
                    counted_in_script.append(counters_of(other, "s"))
                server.kill()
                counted_in_script.append(None)
            return arg

        monkeypatch.setattr(redis_store, "encode_append", kill_on_claim)
        flagged = list(det.detect_batch("s", x[50:51], t[50:51]).is_anomaly)
        assert flagged == [True]
        assert counted_in_script  # the claim was made
        if ran:
            assert counted_in_script[0] == (51, before + 1)  # the point and its count, together
        assert det.health()["degraded"] is True
        flagged += list(det.detect_batch("s", x[51:60], t[51:60]).is_anomaly)
        _assert_stored_once_after_restart(server, det, x, t, before + sum(flagged))
    finally:
        server.stop()


def test_the_write_back_of_100k_points_runs_in_the_background_while_callers_detect():
    server = RedisServer(*DURABLE).start()
    try:
        client = client_of(server)
        det = StatisticalAnomalyDetector(settings(redis_alerts=False), redis_client=client)
        det.store.write_back_chunk = 500  # points per append of the write-back
        sensors = [f"s{k}" for k in range(10)]
        for k, name in enumerate(sensors):
            det.detect_batch(name, series(k, 100, []), np.arange(100.0))
        server.kill()
        for b in range(100):  # 100,000 points in 1,000 calls of 100, the sensors interleaved
            for k, name in enumerate(sensors):
                lo = 100 + 100 * b
                det.detect_batch(name, series(1000 * k + b, 100, []), np.arange(lo, lo + 100.0))
        assert det.health()["buffered_points"] == 100_000
        server.start()
        admin = client_of(server)
        wait_until(lambda: det.health()["write_back"]["written"] > 0, "the write-back's start")
        admin.client_pause(3000, all=False)  # writes stall: the write-back waits on Redis
        try:
            result = det.detect("s0", 20.0, timestamp=10_100.0)  # a caller, meanwhile
            progress = det.health()["write_back"]
        finally:
            admin.client_unpause()
        # The call returned while the write-back was still in progress, part of the way through.
        assert result.window_count > 0
        assert progress["state"] in {"writing", "waiting"}
        assert 0 < progress["written"] < 100_000 < progress["written"] + progress["buffered"]
        wait_until(lambda: not det.health()["degraded"], "the write-back's end")
        assert det.health()["write_back"]["written"] == 100_001
        for k, name in enumerate(sensors):
            values, stamps = window_of(admin, name)
            extra = [10_100.0] if name == "s0" else []
            np.testing.assert_array_equal(stamps, np.r_[np.arange(10_100.0), extra])
            expected = np.concatenate(
                [series(k, 100, [])]
                + [series(1000 * k + b, 100, []) for b in range(100)]
                + [np.array([20.0])[: len(extra)]]
            )
            np.testing.assert_array_equal(values, expected)
            assert counters_of(admin, name)[0] == len(stamps)
        det.store.close()
    finally:
        server.stop()


def test_an_asyncio_client_writes_back_in_a_task_while_callers_await():
    import redis.asyncio as aioredis

    server = RedisServer(*DURABLE).start()
    port = server.port

    async def run():
        client = aioredis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5, socket_connect_timeout=0.5,
                                retry=None)  # fmt: skip
        det = StatisticalAnomalyDetector(settings(redis_alerts=False), redis_client=client)
        det.store.write_back_chunk = 200
        x = series(5, 30_300, spikes=[120, 5_000, 17_000, 30_100])
        flagged = 0
        for i in range(100):
            flagged += (await det.adetect("a", float(x[i]), timestamp=float(i))).is_anomaly
        server.kill()
        flagged += (await det.adetect("a", float(x[100]), timestamp=100.0)).is_anomaly  # trips the breaker
        for lo in range(101, 30_101, 1000):
            batch = await det.adetect_batch("a", x[lo : lo + 1000], np.arange(lo, lo + 1000.0))
            flagged += int(np.count_nonzero(batch.is_anomaly))
        assert det.health()["buffered_points"] == 30_001
        server.start()
        deadline = time.monotonic() + 60
        while det.health()["write_back"]["written"] == 0:  # one turn of the loop at a time
            assert time.monotonic() < deadline
            await asyncio.sleep(0)
        # Between two appends of the write-back: a caller's adetect returns without awaiting it.
        result = await det.adetect("a", float(x[30_101]), timestamp=30_101.0)
        progress = det.health()["write_back"]
        flagged += result.is_anomaly
        assert progress["state"] == "writing"
        assert 0 < progress["written"] < 30_001
        while det.health()["degraded"]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        for i in range(30_102, 30_300):
            flagged += (await det.adetect("a", float(x[i]), timestamp=float(i))).is_anomaly
        raw = await client.lrange("anomaly:temp:data:a:queue", 0, -1)
        seen, anomalies = await client.hmget("anomaly:temp:data:a:stats", "seen", "anomalies")
        await det.store.aclose()
        await client.aclose()
        return [json.loads(e) for e in raw], int(seen), int(anomalies), flagged

    try:
        entries, seen, anomalies, flagged = asyncio.run(run())
        x = series(5, 30_300, spikes=[120, 5_000, 17_000, 30_100])
        np.testing.assert_array_equal([e["timestamp"] for e in entries], np.arange(30_300.0))
        np.testing.assert_array_equal([e["value"] for e in entries], x)
        assert seen == 30_300
        assert flagged >= 4
        assert anomalies == flagged  # the outage's anomalies counted once
    finally:
        server.stop()


def test_a_child_forked_during_an_outage_leaves_the_parents_points_and_alerts_to_the_parent():
    # A pre-forking server forks its workers from a process whose store is degraded: the
    # child must not inherit the open breaker (its probe thread does not run in the child:
    # it would stay degraded for good) nor the buffered points and held alerts (written
    # back by both processes they would be stored twice).
    server = RedisServer(*DURABLE).start()
    try:
        client = client_of(server)
        det = StatisticalAnomalyDetector(settings(redis_probe_interval=2.0), redis_client=client)
        x = series(2, 45, spikes=[40])
        t = np.arange(45.0)
        flagged = [det.detect("s", float(x[i]), timestamp=t[i]).is_anomaly for i in range(30)]
        server.kill()
        flagged += [det.detect("s", float(x[i]), timestamp=t[i]).is_anomaly for i in range(30, 45)]
        assert flagged[40]
        server.start()
        health = det.health()  # the probe (every 2 s) has not written back yet
        assert health["degraded"] is True
        assert (health["write_back"]["buffered"], health["write_back"]["alerts_held"]) == (
            15,
            sum(flagged[30:]),
        )
        pid = os.fork()
        if pid == 0:  # the child: clean, and a writer of its own on Redis
            code = 1
            try:
                health = det.health()
                clean = not health["degraded"] and health["write_back"]["buffered"] == 0
                clean = clean and health["write_back"]["alerts_held"] == 0
                for i in range(5):
                    det.detect("c", float(i), timestamp=float(i))
                code = 0 if clean and not det.health()["degraded"] else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        wait_until(lambda: not det.health()["degraded"], "the parent's write-back")
        admin = client_of(server)
        values, stamps = window_of(admin, "s")
        np.testing.assert_array_equal(stamps, t)  # the parent's points, each once
        np.testing.assert_array_equal(values, x)
        assert counters_of(admin, "s") == (45, sum(flagged))
        assert window_of(admin, "c")[0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]  # the child's
        alerts = [json.loads(fields[b"alert"]) for _, fields in admin.xrange("anomaly:stream:alerts")]
        assert (
            sorted(a["timestamp"] for a in alerts if a["sensor_name"] == "s") == t[np.array(flagged)].tolist()
        )
        det.store.close()
    finally:
        server.stop()


def test_delivery_ids_are_unique_per_sink_and_a_forked_child_draws_its_own(redis_client):
    # A delivery id names an alert's delivery mark for 7 days: two alerts must never share one
    # (the second would be taken for a retry of the first and dropped), across sinks,
    # processes and a fork.
    sinks = [RedisAlertSink(redis_client, settings()) for _ in range(2)]

    def ids(sink, n):
        for i in range(n):
            sink._hold({"sensor_name": "s", "value": float(i)})
        got = [delivery_id for delivery_id, _ in sink.outbox]
        sink.outbox.clear()
        return got

    first, second = ids(sinks[0], 1000), ids(sinks[1], 1000)
    assert all(re.fullmatch("[0-9a-f]{32}", d) for d in first + second)
    assert len(set(first) | set(second)) == 2000
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id is not the parent's next one
        try:
            os.write(write, ids(sinks[0], 1)[0].encode())
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    child = os.read(read, 64).decode()
    os.close(read)
    parent = ids(sinks[0], 1)[0]
    assert re.fullmatch("[0-9a-f]{32}", child)
    assert child != parent
    assert child not in first


def stall(server: RedisServer, seconds: float) -> threading.Thread:
    """DEBUG SLEEP on a connection of its own; returns once the server answers nobody."""
    sleeper = server.client()
    _clients.append(sleeper)
    thread = threading.Thread(target=sleeper.execute_command, args=("DEBUG", "SLEEP", str(seconds)))
    thread.start()
    probe = client_of(server, timeout=0.05)
    wait_until(lambda: _times_out(probe), "the stall")
    return thread


def _times_out(client: redis.Redis) -> bool:
    try:
        client.ping()
    except redis.exceptions.TimeoutError:
        return True
    time.sleep(0.005)
    return False


def test_a_delivery_retried_after_its_reply_was_lost_adds_and_publishes_nothing():
    server = RedisServer("--enable-debug-command", "yes").start()
    try:
        client = client_of(server, timeout=0.3)
        admin = client_of(server, timeout=5)
        writer = AlertWriter(client, settings())
        alert = {"received_at": 1.0, "sensor_name": "s", "timestamp": 42.0, "value": 99.0}
        first = writer.write(alert, delivery_id="d0")  # (and the server has the script from here on)
        sleeper = stall(server, 1.5)  # the script runs after the client has timed out
        with pytest.raises(redis.exceptions.TimeoutError):
            writer.write(alert, delivery_id="d1")
        sleeper.join()
        wait_until(lambda: admin.xlen("anomaly:stream:alerts") == 2, "the delayed delivery")
        assert admin.zcard("anomaly:index:alerts") == 2  # the same script stored and indexed d1
        stored = writer.write(alert, delivery_id="d1")  # delivered again: the same alert
        again = writer.write(alert, delivery_id="d1")
        assert stored == again
        assert admin.xlen("anomaly:stream:alerts") == 2
        assert int(admin.info("commandstats")["cmdstat_publish"]["calls"]) == 2  # d0, d1
        ids = [i.decode() for i, _ in admin.xrange("anomaly:stream:alerts")]
        assert ids == [first["id"], stored["id"]]
        assert json.loads(admin.get(f"anomaly:alerts:{stored['id']}"))["timestamp"] == 42.0
        assert admin.zcard("anomaly:index:alerts") == 2
    finally:
        server.stop()


def test_a_pipelined_delivery_retried_after_its_reply_was_lost_stores_and_publishes_each_once():
    server = RedisServer("--enable-debug-command", "yes").start()
    try:
        client = client_of(server, timeout=0.3)
        admin = client_of(server, timeout=5)
        writer = AlertWriter(client, settings(), index_size=3)
        pubsub = admin.pubsub()
        pubsub.subscribe("anomaly:channel:alerts")
        assert pubsub.get_message(timeout=1)["type"] == "subscribe"
        items = [(f"d{i}", {"received_at": 1.0, "sensor_name": "s", "timestamp": 10.0 + i}) for i in range(5)]
        writer.deliver_many(items[:1])  # (and the server has the script from here on)
        sleeper = stall(server, 1.5)  # the pipeline runs after the client has timed out
        with pytest.raises(redis.exceptions.TimeoutError):
            writer.deliver_many(items)
        sleeper.join()
        wait_until(lambda: admin.xlen("anomaly:stream:alerts") == 5, "the delayed delivery")
        ids = writer.deliver_many(items)  # delivered again: nothing added or published
        assert ids == writer.deliver_many(items)
        assert ids == [i.decode() for i, _ in admin.xrange("anomaly:stream:alerts")]
        messages = []
        while (m := pubsub.get_message(timeout=0.2)) is not None:
            messages.append(json.loads(m["data"]))
        assert [m["id"] for m in messages] == ids  # each published once, in order, with its id
        for message in messages:  # stored as published
            assert json.loads(admin.get(f"anomaly:alerts:{message['id']}")) == message
            assert admin.ttl(f"anomaly:alerts:{message['id']}") > 600_000
        newest = admin.zrange("anomaly:index:alerts", 0, -1, withscores=True)
        assert newest == [(i.encode(), 12.0 + k) for k, i in enumerate(ids[2:])]  # capped at 3, by time
        pubsub.close()
    finally:
        server.stop()


def test_a_bad_alert_in_a_delivery_writes_nothing():
    server = RedisServer().start()
    try:
        admin = client_of(server, timeout=5)
        writer = AlertWriter(client_of(server), settings())
        good = {"sensor_name": "s", "timestamp": 1.0}
        for bad in (
            {"sensor_name": "s", "timestamp": float("inf")},
            {"sensor_name": "s", "value": float("nan")},
        ):
            with pytest.raises(ValueError):
                writer.deliver_many([("d0", good), ("d1", bad)])
            with pytest.raises(ValueError):
                writer.write(bad, delivery_id="d2")
        assert admin.dbsize() == 0
    finally:
        server.stop()


def test_the_alert_stream_stays_capped_when_delivered_in_one_script():
    server = RedisServer().start()
    try:
        admin = client_of(server, timeout=5)
        writer = AlertWriter(client_of(server), settings(alerts_stream_maxlen=100))
        for lo in range(0, 2_000, 100):
            writer.deliver_many(
                [(f"d{i}", {"sensor_name": "s", "timestamp": float(i)}) for i in range(lo, lo + 100)]
            )
        assert 100 <= admin.xlen("anomaly:stream:alerts") < 2_000  # MAXLEN ~ trims whole nodes
        assert admin.zcard("anomaly:index:alerts") == 2_000
    finally:
        server.stop()


def test_alerts_beyond_the_outbox_are_dropped_and_counted():
    server = RedisServer().start()
    try:
        client = client_of(server)
        det = StatisticalAnomalyDetector(settings(redis_probe_interval=60), redis_client=client)
        sink = next(listener for listener in det._listeners if hasattr(listener, "outbox"))
        sink.outbox_size = 3
        det.detect_batch("s", series(2, 100, []), np.arange(100.0))
        server.kill()
        x = np.full(10, 20.0)
        x[[1, 3, 5, 7, 9]] = 60.0
        flagged = [det.detect("s", float(v), timestamp=100.0 + i).is_anomaly for i, v in enumerate(x)]
        assert sum(flagged) == 5
        progress = det.health()["write_back"]
        assert (progress["alerts_held"], progress["alerts_dropped"]) == (3, 2)
        held = [alert["timestamp"] for _, alert in sink.outbox]
        assert held == [101.0, 103.0, 105.0]  # the oldest kept, the newest refused
        det.store.close()
        assert det.health()["write_back"]["state"] == "stopped"
    finally:
        server.stop()


def test_close_stops_a_write_back_under_way_and_keeps_the_rest_buffered():
    server = RedisServer().start()
    try:
        client = client_of(server)
        det = StatisticalAnomalyDetector(settings(redis_alerts=False), redis_client=client)
        det.store.write_back_chunk = 100
        det.detect_batch("s", series(3, 100, []), np.arange(100.0))
        server.kill()
        for lo in range(100, 50_100, 100):
            det.detect_batch("s", series(lo, 100, []), np.arange(lo, lo + 100.0))
        server.start()  # empty: it holds only what the write-back sends
        admin = client_of(server)
        wait_until(lambda: det.health()["write_back"]["written"] > 0, "the write-back's start")
        admin.client_pause(3000, all=False)  # the write-back waits on Redis
        try:
            thread = det.store._probe_thread
            det.store.close()
        finally:
            admin.client_unpause()
        assert thread is not None
        assert not thread.is_alive()  # joined: nothing more is written back
        progress = det.health()["write_back"]
        assert progress["state"] == "stopped"
        assert 0 < progress["written"] < 50_000
        assert progress["buffered"] + progress["written"] == 50_000  # the rest stays buffered
        stamps = window_of(admin, "s")[1]
        assert len(stamps) in {progress["written"], progress["written"] + 100}  # (+ the paused append)
        np.testing.assert_array_equal(stamps, np.arange(100.0, 100.0 + len(stamps)))  # in order, once
    finally:
        server.stop()


def test_a_child_forked_in_the_middle_of_a_write_back_starts_clean_and_the_parent_finishes_it():
    # The fork comes while the parent's probe thread is writing back: one append of three done,
    # the write-back's lock held, the breaker open. The child gets the lock free, the breaker
    # closed and nothing buffered (it writes its own sensor at once); the parent, once its
    # thread goes on, stores the rest of its points once each and closes its breaker.
    go = threading.Event()
    server = RedisServer(*DURABLE).start()
    try:
        client = client_of(server)
        det = StatisticalAnomalyDetector(settings(redis_probe_interval=0.2), redis_client=client)
        store = det.store
        store.write_back_chunk = 5
        x = series(4, 45, spikes=[38])
        t = np.arange(45.0)
        flagged = [det.detect("s", float(x[i]), timestamp=t[i]).is_anomaly for i in range(30)]
        paused = threading.Event()
        original = store.fallback.written_back

        def written_back(n: int) -> None:  # the probe thread stops after the first append
            original(n)
            if not paused.is_set():
                paused.set()
                assert go.wait(30)

        store.fallback.written_back = written_back
        server.kill()
        flagged += [det.detect("s", float(x[i]), timestamp=t[i]).is_anomaly for i in range(30, 45)]
        assert flagged[38]
        server.start()
        assert paused.wait(30), "the write-back did not start"
        assert det.health()["write_back"]["buffered"] == 10  # mid-way: 5 of 15 written back
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                import signal

                signal.alarm(20)  # a lock inherited held would hang the child: fail it instead
                health = det.health()
                clean = not health["degraded"] and health["write_back"]["buffered"] == 0
                for i in range(8):
                    det.detect("c", float(i), timestamp=float(i))
                det.detect_batch("c", [8.0, 9.0], timestamps=[8.0, 9.0])
                code = 0 if clean and not det.health()["degraded"] else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        go.set()
        wait_until(lambda: not det.health()["degraded"], "the parent's write-back")
        admin = client_of(server)
        values, stamps = window_of(admin, "s")
        np.testing.assert_array_equal(stamps, t)  # the parent's points, each once, in order
        np.testing.assert_array_equal(values, x)
        assert counters_of(admin, "s") == (45, sum(flagged))
        assert window_of(admin, "c")[1].tolist() == [float(i) for i in range(10)]  # the child's
        assert counters_of(admin, "c")[0] == 10
        store.close()
    finally:
        go.set()  # never leave the probe thread waiting
        server.stop()


def test_the_fallback_keeps_the_window_not_the_callers_batch():
    # What Redis stored is remembered for the embedded fallback, about a window a sensor: a
    # batch of 200,000 points (or a view into one) must not be kept alive for its last 100.
    import gc
    import weakref

    server = RedisServer().start()
    try:
        det = StatisticalAnomalyDetector(settings(window_size=100), redis_client=client_of(server))
        big, stamps = series(3, 200_000, spikes=[]), np.arange(200_000.0)
        refs = [weakref.ref(big), weakref.ref(stamps)]
        det.detect_batch("whole", big, stamps)
        det.detect_batch("view", big[-50:], stamps[-50:])  # a view holds its base
        del big, stamps
        gc.collect()
        assert [r() is None for r in refs] == [True, True]
        # the fallback still starts from the window Redis held: the next point scores alike
        expected = StatisticalAnomalyDetector(settings(window_size=100))
        expected.detect_batch("whole", series(3, 200_000, spikes=[]), np.arange(200_000.0))
        server.kill()
        got = det.detect("whole", 1e3, timestamp=300_000.0)
        want = expected.detect("whole", 1e3, timestamp=300_000.0)
        assert (got.is_anomaly, got.score) == (want.is_anomaly, want.score)
        assert got.is_anomaly
    finally:
        server.stop()


@pytest.mark.parametrize("call", ["detect_batch", "detect_many"])
def test_the_fallback_keeps_no_alias_of_a_buffer_the_caller_reuses(call):
    # A caller filling one buffer per call (a reader's loop) hands its own arrays: what Redis
    # stored must be remembered as it was, not as the buffer holds it after the next fill.
    server = RedisServer().start()
    try:
        det = StatisticalAnomalyDetector(settings(window_size=100), redis_client=client_of(server))
        expected = StatisticalAnomalyDetector(settings(window_size=100))
        buf, stamps = 20.0 + 0.1 * np.arange(50.0) % 1.0, np.arange(50.0)
        expected.detect_batch("s", buf.copy(), stamps.copy())
        if call == "detect_batch":
            det.detect_batch("s", buf, stamps)
        else:
            det.detect_many({"s": buf}, {"s": stamps})
        buf[:] = 1e6  # the caller's next fill, not stored anywhere
        stamps[:] = 0.0
        server.kill()
        got = det.detect("s", 21.0, timestamp=60.0)
        want = expected.detect("s", 21.0, timestamp=60.0)
        assert (got.is_anomaly, got.score, got.expected) == (want.is_anomaly, want.score, want.expected)
    finally:
        server.stop()
