"""Redis Cluster failover and slot migration under a stream (issue 16, item 9).

Real clusters of redis-server processes on loopback ports: three masters with one replica
each, a master SIGKILLed while points stream through the package's own client
(``redis_client_from_settings``); and a slot migrated by hand (``CLUSTER SETSLOT``,
``MIGRATE``) while they stream. Every point sent must be in Redis exactly once and in
order, and detection must give what a run without the fault gives.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
from servers import HOST, RedisClusterServers, wait_for

from anomaly_detection import Settings, StatisticalAnomalyDetector
from anomaly_detection.redis.client import redis_client_from_settings

WINDOW = 2000  # larger than any stream here: the window is every point sent


@pytest.fixture
def cluster_with_replicas():
    """Three masters and three replicas; a replica takes over 1 s after its master dies."""
    cluster = RedisClusterServers(replicas=1, node_timeout=1000).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_of_masters():
    cluster = RedisClusterServers().start()
    yield cluster
    cluster.stop()


def detector(cluster: RedisClusterServers, method: str) -> StatisticalAnomalyDetector:
    s = Settings(
        redis_cluster=True, redis_host=HOST, redis_port=cluster.port, redis_socket_timeout=1.0,
        redis_probe_interval=0.05, detection_method=method, window_size=WINDOW, redis_alerts=False,
    )  # fmt: skip
    return StatisticalAnomalyDetector(s, redis_client=redis_client_from_settings(s))


def reference(method: str) -> StatisticalAnomalyDetector:
    """The same detector without Redis: what an uninterrupted run gives."""
    return StatisticalAnomalyDetector(Settings(detection_method=method, window_size=WINDOW))


def owner_of(cluster: RedisClusterServers, det: StatisticalAnomalyDetector, sensor: str) -> int:
    """The port of the master that owns the sensor's slot."""
    slot = det.store.client.keyslot(det.store.keys.window(sensor))
    masters = cluster.masters(cluster.port)
    return next(port for port, (lo, hi) in masters.items() if lo <= slot <= hi)


def sensors_on_every_master(cluster, det, prefix: str) -> dict[str, int]:
    """One sensor name per master: name -> the port of the master owning its slot."""
    out: dict[str, int] = {}
    k = 0
    while len(set(out.values())) < 3:
        name = f"{prefix}{k}"
        port = owner_of(cluster, det, name)
        if port not in out.values():
            out[name] = port
        k += 1
    return out


class Stream:
    """Points of one sensor: 20 +- 0.5 (uniform), sent in order; keeps what was sent and got."""

    def __init__(self, det: StatisticalAnomalyDetector, sensor: str, seed: int) -> None:
        self.det, self.sensor = det, sensor
        self.rng = np.random.default_rng(seed)
        self.values: list[float] = []
        self.results: list = []

    def send(self, value: float | None = None) -> None:
        v = float(20.0 + self.rng.uniform(-0.5, 0.5)) if value is None else value
        stamp = 1e9 + len(self.values)
        self.values.append(v)
        self.results.append(self.det.detect(self.sensor, v, timestamp=stamp))

    def check(self, method: str) -> None:
        """0 lost, 0 duplicated, order kept, ``seen`` exact; results as without the fault."""
        n = len(self.values)
        window = self.det.get_window(self.sensor)
        np.testing.assert_array_equal(window.timestamps, 1e9 + np.arange(n))
        np.testing.assert_array_equal(window.values, self.values)
        assert self.det.stats(self.sensor)["points_seen"] == n
        ref = reference(method).detect_batch(self.sensor, np.array(self.values), 1e9 + np.arange(n))
        assert [r.is_anomaly for r in self.results] == list(ref.is_anomaly)
        np.testing.assert_allclose([r.score for r in self.results], ref.scores, rtol=1e-9, atol=1e-12)


def test_a_master_killed_mid_stream_loses_and_duplicates_no_point(cluster_with_replicas):
    cluster = cluster_with_replicas
    dets = {m: detector(cluster, m) for m in ("zscore", "ensemble")}
    owners = {m: sensors_on_every_master(cluster, det, m[0]) for m, det in dets.items()}
    named = [(det, name) for m, det in dets.items() for name in owners[m]]
    # Seeds whose streams raise no alarm in their first 1,000 points: an ensemble alert holds
    # the next ones back for a while, and the spike below must be the first.
    streams = [Stream(det, name, seed) for seed, (det, name) in zip((0, 1, 2, 3, 5, 6), named)]
    # The victim is the master the clients send PING to (their default node), the worst case
    # for the stores' probes.
    victim = dets["zscore"].store.client.get_default_node().port
    assert victim in owners["zscore"].values()
    assert victim in owners["ensemble"].values()
    replica = next(
        n.port for n in cluster.nodes if cluster.node_info(n.port).get("master_port") == f"{victim}"
    )

    def round_of_points() -> None:
        for s in streams:
            s.send()

    for _ in range(350):  # past the ensemble's 300-point warm-up
        round_of_points()
    # SIGKILL from another thread while the points stream: an append may be in flight.
    killer = threading.Timer(0.01, cluster.node(victim).kill)
    killer.start()
    fell_back = {m: False for m in dets}
    rounds = 0
    deadline = time.monotonic() + 30
    while rounds < 50 or killer.is_alive() or not all(fell_back.values()):
        round_of_points()
        rounds += 1
        for m, d in dets.items():
            fell_back[m] = fell_back[m] or d.health()["degraded"]
        assert time.monotonic() < deadline, f"the stores did not notice the dead master: {fell_back}"
    # The replica is promoted; until the stores have written their buffers back to it,
    # the points keep streaming (on the fallback, then on Redis).
    alive = [n.port for n in cluster.nodes if n.port != victim]
    wait_for(lambda: replica in cluster.masters(alive[0]), 30, "the replica's promotion")
    cluster.wait_until_ok(alive, timeout=30)
    assert victim not in cluster.masters(alive[0])
    deadline = time.monotonic() + 30
    waited = 0
    while any(d.health()["degraded"] for d in dets.values()):
        if waited < 300:  # at most 1,000 points a sensor in all
            round_of_points()
            waited += 1
        assert time.monotonic() < deadline, "the buffered points were not written back"
        time.sleep(0.01)
    for d in dets.values():
        assert d.health()["buffered_points"] == 0
    # After the failover: Redis again, a spike is flagged as an uninterrupted run flags it.
    for _ in range(30):
        round_of_points()
    for s in streams:
        s.send(35.0)
        assert s.results[-1].is_anomaly, s.sensor
    round_of_points()
    assert not any(d.health()["degraded"] for d in dets.values())
    for s in streams:
        s.check("zscore" if s.sensor.startswith("z") else "ensemble")
    for d in dets.values():
        d.store.close()
        d.store.client.close()


def test_the_async_replication_limit(cluster_with_replicas):
    """What a failover cannot give back: replication is asynchronous (no ``WAIT``), so the
    points a master acknowledged but had not sent to its replica when it died are lost. The
    replica is paused and its link cut to make that window 30 points wide (on loopback it is
    a fraction of a millisecond): exactly those 30 are missing, nothing else is, nothing is
    stored twice, and ``seen`` counts what the window holds."""
    cluster = cluster_with_replicas
    det = detector(cluster, "zscore")
    owners = sensors_on_every_master(cluster, det, "a")
    sensor, victim = next(iter(owners.items()))
    replica = next(n for n in cluster.nodes if cluster.node_info(n.port).get("master_port") == f"{victim}")
    stream = Stream(det, sensor, 0)
    for _ in range(100):
        stream.send()
    wait_for(
        lambda: (
            cluster.node_info(replica.port).get("slave_repl_offset")
            == cluster.node_info(victim).get("master_repl_offset")
        ),
        30,
        "the replica to have the first 100 points",
    )
    os.kill(replica.process.pid, signal.SIGSTOP)
    try:
        assert cluster.run_cli(victim, "client", "kill", "type", "replica").strip() == "1"
        for _ in range(30):  # acknowledged by the master alone
            stream.send()
        cluster.node(victim).kill()
    finally:
        os.kill(replica.process.pid, signal.SIGCONT)
    for _ in range(20):  # the store falls back
        stream.send()
    alive = [n.port for n in cluster.nodes if n.port != victim]
    wait_for(lambda: replica.port in cluster.masters(alive[0]), 60, "the replica's promotion")
    wait_for(lambda: not det.health()["degraded"], 30, "the write-back")
    for _ in range(20):
        stream.send()
    stamps = det.get_window(sensor).timestamps - 1e9
    expected = np.r_[np.arange(100), np.arange(130, 170)]
    np.testing.assert_array_equal(stamps, expected)  # 30 lost, none stored twice, order kept
    assert det.stats(sensor)["points_seen"] == 140
    det.store.close()
    det.store.client.close()


def test_a_slot_migrated_mid_stream_loses_nothing(cluster_of_masters):
    """ASK while the slot migrates, TRYAGAIN while a sensor's keys are split between the
    two nodes (the store falls back), MOVED after: every point in Redis once, in order."""
    cluster = cluster_of_masters
    det = detector(cluster, "zscore")
    client = det.store.client
    owners = sensors_on_every_master(cluster, det, "m")
    moving = next(iter(owners))
    source = owners[moving]
    target = next(port for port in owners.values() if port != source)
    slot = client.keyslot(det.store.keys.window(moving))
    streams = [Stream(det, name, seed) for seed, name in enumerate(owners)]

    def node_id(port: int) -> str:
        return cluster.run_cli(port, "cluster", "myid").strip()

    def setslot(port: int, *args: str) -> None:
        assert cluster.run_cli(port, "cluster", "setslot", str(slot), *args).strip() == "OK"

    def migrate(*keys: str) -> None:
        out = cluster.run_cli(source, "migrate", HOST, str(target), "", "0", "5000", "keys", *keys)
        assert out.strip() == "OK"

    def asking_calls(port: int) -> int:
        out = cluster.run_cli(port, "info", "commandstats")
        line = next((x for x in out.splitlines() if x.startswith("cmdstat_asking:")), "calls=0,")
        return int(line.split("calls=")[1].split(",")[0])

    def stream_rounds(n: int) -> None:
        for _ in range(n):
            for s in streams:
                s.send()

    stream_rounds(100)
    setslot(target, "importing", node_id(source))
    setslot(source, "migrating", node_id(target))
    stream_rounds(50)  # the keys are still on the source: served there
    window_key, counters_key = det.store.keys.window(moving), det.store.keys.counters(moving)
    migrate(window_key)
    # The append needs both keys, now on two nodes: TRYAGAIN until redis-py gives up; the
    # store detects on its fallback and its probe cannot write back yet.
    stream_rounds(20)
    assert det.health()["degraded"]
    assert det.health()["buffered_points"] >= 20
    migrate(counters_key, det.store.keys.mirror(moving))
    wait_for(lambda: not det.health()["degraded"], 30, "the write-back through ASK")
    asked = asking_calls(target)
    stream_rounds(50)  # the source answers ASK: redis-py asks the target
    assert asking_calls(target) >= asked + 50
    for port in owners.values():
        setslot(port, "node", node_id(target))
    stream_rounds(50)  # the client's slot map is stale: MOVED, then the target directly
    assert client.get_node_from_key(window_key).port == target
    assert not det.health()["degraded"]
    for s in streams:
        s.check("zscore")
    assert det.stats(moving)["points_seen"] == 270
    det.store.close()
    client.close()
