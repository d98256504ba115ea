"""Sketches shared through a real redis-server: semantics, and four processes losing nothing."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest
import redis

from anomaly_detection.errors import FilterFullError
from anomaly_detection.sketches import CountMinSketch, CuckooFilter
from anomaly_detection.sketches.shared import (
    SharedBloomFilter,
    SharedCountMinSketch,
    SharedCuckooFilter,
    SharedHyperLogLog,
    SharedTDigest,
    SharedTopK,
    sketch_key,
)

WORKERS = 4
PER_WORKER = 5_000


def test_sketch_key_layout_and_bad_names():
    assert sketch_key("endpoints") == "anomaly:sketch:endpoints"
    assert sketch_key("users", prefix="tenant1") == "tenant1:sketch:users"
    for bad in ("a:b", "a*", "", "x y", "{x}", "a" * 201):
        with pytest.raises(ValueError, match=r"name|sensor"):
            sketch_key(bad)
    with pytest.raises(ValueError, match="expected a str"):
        sketch_key(3)
    with pytest.raises(ValueError, match="prefix"):
        sketch_key("ok", prefix="bad prefix")  # type: ignore[arg-type]


def test_everything_stays_under_the_prefix(redis_client):
    redis_client.set("nextauth:session", "keep")
    SharedCountMinSketch(redis_client, "a", 100, 3).incrby("x", 1)
    SharedBloomFilter(redis_client, "b", 1000).add("x")
    SharedHyperLogLog(redis_client, "c").add("x")
    SharedCuckooFilter(redis_client, "d", 1000).add("x")
    SharedTDigest(redis_client, "e").add([1.0])
    SharedTopK(redis_client, "f", 3).add("x")
    keys = {k.decode() for k in redis_client.scan_iter()}
    assert keys - {"nextauth:session"} == {
        f"anomaly:sketch:{n}{suffix}" for n in "abcdef" for suffix in ("", ":meta")
    }
    assert redis_client.get("nextauth:session") == b"keep"


def test_a_decoding_client_is_refused(redis_server):
    client = redis_server.client(decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses"):
            SharedTDigest(client, "td")
    finally:
        client.close()


def test_parameters_must_match_the_stored_ones(redis_client):
    SharedCountMinSketch(redis_client, "cms", 100, 3)
    SharedCountMinSketch(redis_client, "cms", 100, 3)  # same parameters: fine
    with pytest.raises(ValueError, match="other parameters"):
        SharedCountMinSketch(redis_client, "cms", 200, 3)
    with pytest.raises(ValueError, match="other parameters"):
        SharedBloomFilter(redis_client, "cms", 100)


def test_shared_count_min_matches_a_local_sketch(redis_client):
    shared = SharedCountMinSketch(redis_client, "cms", 300, 4, seed=3)
    local = CountMinSketch(300, 4, seed=3)
    items = np.random.default_rng(0).zipf(1.3, 5000)
    shared.incrby(items)
    local.incrby(items)
    keys = np.unique(items)
    assert shared.query(keys).tolist() == local.query(keys).tolist()
    assert shared.snapshot() == local
    assert shared.incrby("new", 7) == local.incrby("new", 7)
    assert isinstance(shared.query("new"), int)
    with pytest.raises(ValueError, match="increments"):
        shared.incrby(["a"], -1)


def test_shared_count_min_saturates(redis_client):
    shared = SharedCountMinSketch(redis_client, "sat", 16, 2)
    shared.incrby("a", 2**32 - 2)
    assert shared.incrby("a", 10) == 2**32 - 1


def test_shared_bloom_and_hll(redis_client):
    bloom = SharedBloomFilter(redis_client, "bloom", 10_000, 0.01)
    assert bloom.add(["a", "b", "a"]).tolist() == [True, True, False]
    assert bloom.exists("a") is True
    rate = float(np.mean(bloom.exists(np.arange(10**6, 10**6 + 20_000))))
    assert rate < 0.01
    hll = SharedHyperLogLog(redis_client, "hll")
    assert hll.add(np.arange(50_000)) is True
    assert abs(hll.count() - 50_000) / 50_000 < 3 * 0.0081
    # Redis's own commands work on what we write.
    assert redis_client.pfcount("anomaly:sketch:hll") == hll.count()


def test_shared_cuckoo_semantics_match_a_local_filter(redis_client):
    shared = SharedCuckooFilter(redis_client, "cf", 2_000, bucket_size=2, max_iterations=100)
    items = np.arange(1_600)  # 78% of the slots: forces eviction walks
    shared.add(items)
    assert np.all(shared.exists(items))
    assert shared.size() == 1_600
    assert shared.delete(7) is True
    assert shared.count(7) == 0
    assert shared.add_nx([7, 8]).tolist() == [True, False]
    assert shared.count(8) >= 1
    local_like = CuckooFilter(2_000, 2, 100, expansion=0)
    with pytest.raises(FilterFullError):
        local_like.add(np.arange(10**6, 10**6 + 10_000))
    with pytest.raises(FilterFullError):
        shared.add(np.arange(10**6, 10**6 + 10_000))
    assert np.all(shared.exists(items[items != 7]))  # a failed walk was undone


def test_sharded_t_digest_and_top_k(redis_client):
    a = SharedTDigest(redis_client, "lat", worker_id="w1")
    b = SharedTDigest(redis_client, "lat", worker_id="w2")
    a.add(np.arange(0.0, 500.0))
    b.add(np.arange(500.0, 1000.0))
    assert a.total_weight() == b.total_weight() == 1000
    assert abs(a.quantile(0.5) - 500) < 10
    resumed = SharedTDigest(redis_client, "lat", worker_id="w1")
    assert resumed.merged() == a.merged()
    ta = SharedTopK(redis_client, "top", 2, width=20, depth=4, worker_id="w1")
    tb = SharedTopK(redis_client, "top", 2, width=20, depth=4, worker_id="w2")
    ta.incrby(["x", "y"], [10, 3])
    tb.incrby(["y", "z"], [9, 1])
    assert ta.list(with_count=True) == [("y", 12), ("x", 10)]


def test_a_shared_t_digest_of_huge_weights_is_readable(redis_client):
    # Each worker's total is a valid double (weights near 1e308), their sum is not: every read
    # raised "the total weight would exceed the largest double" until the shards were dropped.
    # Reads merge with every weight halved as often as needed: the same quantiles.
    from anomaly_detection.sketches import TDigest

    a = SharedTDigest(redis_client, "huge", worker_id="w1")
    b = SharedTDigest(redis_client, "huge", worker_id="w2")
    c = SharedTDigest(redis_client, "huge", worker_id="w3")
    a.add([1.0, 2.0], [1e308, 0.5e308])
    b.add([3.0, 4.0], [1e308, 2.2250738585072014e-308])  # the smallest weight
    c.add([5.0], [1.5e308])
    expected = TDigest()
    tiny = 2.2250738585072014e-308  # a quarter of it is subnormal: kept at the smallest weight
    expected.add([1.0, 2.0, 3.0, 4.0, 5.0], [1e308 / 4, 0.5e308 / 4, 1e308 / 4, tiny, 1.5e308 / 4])
    qs = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0]
    for reader in (a, b, c):
        assert reader.quantile(qs) == pytest.approx(expected.quantile(qs), rel=1e-12)
        assert reader.cdf(2.5) == pytest.approx(expected.cdf(2.5))
        assert reader.trimmed_mean(0.0, 1.0) == pytest.approx(expected.trimmed_mean(0.0, 1.0))
        assert reader.total_weight() == float("inf")  # 4e308: beyond the largest double
    with pytest.raises(ValueError, match="would exceed the largest double"):
        a.merged()  # one digest of the true weights cannot be made: refused, as TDigest.merge does
    local = TDigest()
    local.add([1.0], [1e308])
    other = TDigest()
    other.add([2.0], [1e308])
    with pytest.raises(ValueError, match="would exceed the largest double"):
        local.merge(other)
    assert local.total_weight == 1e308  # nothing changed
    local.merge(other, scale_to_fit=True)
    assert local.total_weight == 1e308  # each halved once
    halved = TDigest()
    halved.add([1.0, 2.0], [0.5e308, 0.5e308])
    assert local.quantile(qs) == pytest.approx(halved.quantile(qs), rel=1e-12)


def test_a_corrupt_shard_raises_value_error(redis_client):
    t = SharedTDigest(redis_client, "bad", worker_id="w1")
    t.add([1.0])
    redis_client.hset("anomaly:sketch:bad", "intruder", b"garbage")
    with pytest.raises(ValueError, match="corruption"):
        t.quantile(0.5)


# -- four processes ----------------------------------------------------------------------------


def _worker(port: int, index: int) -> None:
    client = redis.Redis(host="127.0.0.1", port=port)
    mine = np.arange(index * PER_WORKER, (index + 1) * PER_WORKER)
    common = np.arange(100)  # every worker counts these
    cms = SharedCountMinSketch(client, "mp-cms", 500, 4)
    bloom = SharedBloomFilter(client, "mp-bloom", 4 * PER_WORKER)
    hll = SharedHyperLogLog(client, "mp-hll")
    cuckoo = SharedCuckooFilter(client, "mp-cf", 8 * PER_WORKER)
    digest = SharedTDigest(client, "mp-td")
    top = SharedTopK(client, "mp-top", 3, width=50, depth=4)
    for chunk in np.array_split(mine, 10):  # many small batches interleave with the others
        cms.incrby(chunk)
        cms.incrby(common[: len(chunk) // 50])
        bloom.add(chunk)
        hll.add(chunk)
        cuckoo.add(chunk)
        digest.add(chunk.astype(float))
        top.incrby(["hot", f"warm{index}"], [5, 1])
    client.close()


def test_four_processes_lose_no_update(redis_server, redis_client):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(redis_server.port, i)) for i in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    everything = np.arange(WORKERS * PER_WORKER)
    total = WORKERS * PER_WORKER + WORKERS * 10 * (PER_WORKER // 10 // 50)
    snapshot = SharedCountMinSketch(redis_client, "mp-cms", 500, 4).snapshot()
    # Each row of a count-min sketch sums to the total of every increment: nothing lost.
    assert snapshot.counters().sum(axis=1).tolist() == [total] * 4
    assert np.all(SharedBloomFilter(redis_client, "mp-bloom", 4 * PER_WORKER).exists(everything))
    assert abs(SharedHyperLogLog(redis_client, "mp-hll").count() - len(everything)) < 0.03 * len(everything)
    cuckoo = SharedCuckooFilter(redis_client, "mp-cf", 8 * PER_WORKER)
    assert cuckoo.size() == len(everything)
    assert np.all(cuckoo.exists(everything))
    digest = SharedTDigest(redis_client, "mp-td")
    assert digest.total_weight() == len(everything)
    assert (digest.merged().min(), digest.merged().max()) == (0.0, len(everything) - 1.0)
    top = SharedTopK(redis_client, "mp-top", 3, width=50, depth=4)
    assert top.list(with_count=True)[0] == ("hot", WORKERS * 10 * 5)


def test_shared_sketches_work_on_a_redis_cluster(redis_cluster):
    client = redis_cluster.client()
    try:
        cms = SharedCountMinSketch(client, "cl-cms", 100, 3)
        assert cms.incrby(["a", "b"], [2, 3]).tolist() == [2, 3]
        bloom = SharedBloomFilter(client, "cl-bloom", 1000)
        assert bloom.add(["a", "b"]).tolist() == [True, True]
        assert bloom.exists("a") is True
        hll = SharedHyperLogLog(client, "cl-hll")
        hll.add(np.arange(1000))
        assert abs(hll.count() - 1000) < 50
        cuckoo = SharedCuckooFilter(client, "cl-cf", 1000)
        cuckoo.add(["x", "y"])
        assert cuckoo.exists(["x", "z"]).tolist() == [True, False]
        digest = SharedTDigest(client, "cl-td", worker_id="w")
        digest.add([1.0, 2.0, 3.0])
        assert digest.total_weight() == 3
        top = SharedTopK(client, "cl-top", 2, worker_id="w")
        top.incrby(["p", "q"], [4, 2])
        assert top.list() == ["p", "q"]
        for sketch in (cms, bloom, hll, cuckoo, digest, top):
            sketch.drop()
        assert not list(client.scan_iter(match="anomaly:sketch:cl-*"))
    finally:
        client.close()


@pytest.mark.parametrize("n", [50, 200_000])  # Redis keeps small HLLs sparse, large ones dense
def test_redis_compatible_hll_matches_pfadd_register_for_register(redis_client, n):
    from anomaly_detection.sketches import HyperLogLog

    items = np.arange(n, dtype=np.int64) * 7919
    shared = SharedHyperLogLog(redis_client, "hll-compat")
    shared.add(items)
    local = HyperLogLog(14, redis_compatible=True)
    local.add(items)
    # read back from Redis's own encoding: the same registers (the local sketch also kept its HIP estimate)
    assert shared.snapshot().to_redis_bytes() == local.to_redis_bytes()
    redis_client.set("anomaly:sketch:hll-ours", local.to_redis_bytes())
    assert redis_client.pfcount("anomaly:sketch:hll-ours") == shared.count()
    assert abs(local.count() - shared.count()) <= 0.01 * n + 1


def test_local_hll_merges_into_the_shared_one(redis_client):
    from anomaly_detection.sketches import HyperLogLog

    shared = SharedHyperLogLog(redis_client, "hll-merge")
    shared.add(np.arange(0, 30_000))
    local = HyperLogLog(14, redis_compatible=True)
    local.add(np.arange(20_000, 60_000))
    shared.merge(local)
    assert abs(shared.count() - 60_000) < 3 * 0.0081 * 60_000
    assert not redis_client.exists("{anomaly:sketch:hll-merge}:merge")
    with pytest.raises(ValueError, match="redis_compatible"):
        shared.merge(HyperLogLog(14))


def test_asyncio_clients_get_awaitables_with_the_same_answers(redis_server, redis_client):
    import asyncio

    import redis.asyncio

    items = np.arange(2_000) % 300

    async def main() -> dict:
        client = redis.asyncio.Redis(host="127.0.0.1", port=redis_server.port)
        try:
            cms = SharedCountMinSketch(client, "async-cms", 200, 4)
            estimates = await cms.incrby(items)
            bloom = SharedBloomFilter(client, "async-bloom", 1_000)
            await bloom.add(["a", "b"])
            hll = SharedHyperLogLog(client, "async-hll")
            await hll.add(items)
            cuckoo = SharedCuckooFilter(client, "async-cf", 1_000)
            await cuckoo.add(["x"])
            digest = SharedTDigest(client, "async-td", worker_id="w")
            await digest.add(items.astype(float))
            top = SharedTopK(client, "async-top", 2, width=50, depth=4, worker_id="w")
            await top.incrby(["p", "q"], [5, 3])
            with pytest.raises(ValueError, match="other parameters"):
                await SharedCountMinSketch(client, "async-cms", 300, 4).query("a")
            return {
                "estimates": estimates,
                "query": await cms.query(np.arange(300)),
                "bloom": (await bloom.exists(["a", "zz"])).tolist(),
                "hll": await hll.count(),
                "cuckoo": (await cuckoo.exists("x"), await cuckoo.size()),
                "median": await digest.quantile(0.5),
                "top": await top.list(),
            }
        finally:
            await client.aclose()

    got = asyncio.run(main())
    # The same state, read through a sync client, gives the same answers.
    sync_cms = SharedCountMinSketch(redis_client, "async-cms", 200, 4)
    assert got["query"].tolist() == sync_cms.query(np.arange(300)).tolist()
    assert got["estimates"].min() >= 1
    assert got["bloom"] == [True, False]
    assert got["hll"] == SharedHyperLogLog(redis_client, "async-hll").count()
    assert got["cuckoo"] == (True, 1)
    assert abs(got["median"] - 150) < 10
    assert got["top"] == ["p", "q"]


def test_writes_renew_the_sketch_ttl(redis_client):
    from anomaly_detection.utils.redis_namespaces import AnomalyRedisKeys, AnomalyRedisTTL

    cms = SharedCountMinSketch(redis_client, "ttl-cms", 50, 2)
    cms.incrby("a")
    key = AnomalyRedisKeys().sketch("ttl-cms")
    assert cms.key == key
    assert AnomalyRedisTTL.SKETCH - 5 <= redis_client.ttl(key) <= AnomalyRedisTTL.SKETCH
    assert redis_client.ttl(key + ":meta") > 0
    digest = SharedTDigest(redis_client, "ttl-td", ttl=60)
    digest.add([1.0])
    assert 0 < redis_client.ttl(AnomalyRedisKeys().sketch("ttl-td")) <= 60
    forever = SharedBloomFilter(redis_client, "ttl-none", 100, ttl=None)
    forever.add("a")
    assert redis_client.ttl(AnomalyRedisKeys().sketch("ttl-none")) == -1
    for bad in (0, -5, 1.5, True):
        with pytest.raises(ValueError, match="ttl"):
            SharedHyperLogLog(redis_client, "ttl-bad", ttl=bad)


def test_garbage_in_a_filter_or_count_min_key_is_refused_not_read(redis_client):
    # Another client wrote garbage (or another sketch) under the keys: a Bloom string
    # longer than the filter answered True for items never added, a cuckoo string too
    # short answered counts at random or failed in Lua ('attempt to perform arithmetic on
    # ... nil'), a count-min string too long made snapshot() read saturated counters.
    # Each is now ValueError('possible corruption') before anything changes.
    bf = SharedBloomFilter(redis_client, "bf", 1_000, 0.01)
    cf = SharedCuckooFilter(redis_client, "cf", 1_000)
    cms = SharedCountMinSketch(redis_client, "cms", 100, 4)
    redis_client.set("anomaly:sketch:bf", b"\xff" * 100_000)
    redis_client.set("anomaly:sketch:cf", b"garbage")
    redis_client.set("anomaly:sketch:cms", b"\xff" * (100 * 4 * 4 + 13))
    for call in (
        lambda: bf.exists(["never", "added"]),
        lambda: bf.add("x"),
        lambda: cf.exists("x"),
        lambda: cf.count("x"),
        lambda: cf.add(["x", "y"]),
        lambda: cf.delete("x"),
        lambda: cf.size(),
        lambda: cms.query("x"),
        lambda: cms.snapshot(),
    ):
        with pytest.raises(ValueError, match="possible corruption"):
            call()
    assert redis_client.get("anomaly:sketch:bf") == b"\xff" * 100_000
    assert redis_client.get("anomaly:sketch:cf") == b"garbage"
    # A cuckoo string of the right length whose item count cannot be is refused too.
    redis_client.set("anomaly:sketch:cf", (-5).to_bytes(8, "big", signed=True) + bytes(512 * 2))
    with pytest.raises(ValueError, match="possible corruption"):
        cf.size()
    # Well-formed keys still work, a count-min string being as long as its last counter.
    redis_client.delete("anomaly:sketch:bf", "anomaly:sketch:cf", "anomaly:sketch:cms")
    assert bf.add("x") is True
    assert bf.exists("x") is True
    cf.add(["x", "y"])
    assert cf.size() == 2
    assert cf.count("x") == 1
    assert cms.incrby("x", 3) == 3
    assert cms.query("x") == 3
    assert cms.snapshot().query("x") == 3
