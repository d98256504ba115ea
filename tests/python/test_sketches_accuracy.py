"""Accuracy of the sketches against their published guarantees (issue 4, item 5)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from anomaly_detection.sketches import BloomFilter, CountMinSketch, CuckooFilter, HyperLogLog, TDigest, TopK


def zipf_stream(rng: np.random.Generator, n: int, a: float, universe: int) -> np.ndarray:
    """n draws from a Zipf law with exponent a over ranks 1..universe (rank r has weight r^-a)."""
    weights = 1.0 / np.arange(1, universe + 1) ** a
    return rng.choice(universe, size=n, p=weights / weights.sum()) + 1


@pytest.mark.parametrize("conservative", [False, True])
def test_count_min_error_within_epsilon_n_with_probability_1_minus_delta(conservative):
    epsilon, delta = 0.005, 0.05
    rng = np.random.default_rng(2026)
    checked = violations = 0
    for stream in range(40):
        items = zipf_stream(rng, 20_000, a=rng.uniform(0.8, 1.5), universe=5_000)
        cms = CountMinSketch.from_error(epsilon, delta, conservative=conservative, seed=stream)
        cms.incrby(items)
        keys, truth = np.unique(items, return_counts=True)
        est = cms.query(keys)
        assert np.all(est >= truth), "count-min never undercounts"
        violations += int(np.sum(est - truth > epsilon * len(items)))
        checked += len(keys)
    assert violations / checked <= delta


def test_bloom_no_false_negatives_and_false_positives_within_1_5x_at_capacity():
    capacity, target = 20_000, 0.01
    bf = BloomFilter(capacity, target)
    members = np.arange(capacity, dtype=np.int64)
    bf.add(members)
    assert bf.info()["layers"] == 1
    assert np.all(bf.exists(members))
    strangers = np.arange(10**9, 10**9 + 200_000, dtype=np.int64)
    rate = float(np.mean(bf.exists(strangers)))
    assert rate <= 1.5 * target


def test_scaled_bloom_keeps_compound_rate_below_twice_the_target():
    bf = BloomFilter(2_000, 0.01, expansion=2)
    members = np.arange(30_000)
    bf.add(members)
    assert bf.info()["layers"] >= 4
    assert np.all(bf.exists(members))
    rate = float(np.mean(bf.exists(np.arange(10**9, 10**9 + 100_000))))
    assert rate <= 2 * 0.01


@pytest.mark.parametrize("bucket_size", [1, 2, 4])
def test_cuckoo_no_false_negatives_and_false_positives_within_bound(bucket_size):
    capacity = 20_000
    cf = CuckooFilter(capacity, bucket_size=bucket_size, max_iterations=500, seed=1)
    members = np.arange(capacity // 2)  # stated load: half the capacity
    cf.add(members)
    assert np.all(cf.exists(members))
    # With 8-bit fingerprints (255 values) a lookup compares 2 * bucket_size slots.
    bound = 2 * bucket_size / 255
    rate = float(np.mean(cf.exists(np.arange(10**9, 10**9 + 200_000))))
    assert rate <= bound
    deleted = cf.delete(members[:1000])
    assert np.all(deleted)
    assert np.all(cf.exists(members[1000:]))


@pytest.mark.parametrize("distribution", ["uniform", "normal", "lognormal", "exponential"])
def test_t_digest_rank_error_below_one_percent(distribution):
    rng = np.random.default_rng(7)
    values = getattr(rng, distribution)(size=1_000_000)
    td = TDigest(100)
    td.add(values)
    ordered = np.sort(values)
    for q in (0.5, 0.99, 0.999):
        estimate = td.quantile(q)
        rank = np.searchsorted(ordered, estimate) / len(ordered)
        assert abs(rank - q) <= 0.01, (q, rank)
        assert abs(td.cdf(ordered[int(q * len(ordered))]) - q) <= 0.01
    assert td.min() == ordered[0]
    assert td.max() == ordered[-1]


@pytest.mark.parametrize("precision", [8, 12, 14, 16])
def test_hyperloglog_within_three_standard_errors(precision):
    hll = HyperLogLog(precision)
    bound = 3 * 1.04 / math.sqrt(2**precision)
    start = 0
    for n in (1_000, 50_000, 1_000_000):
        hll.add(np.arange(start, n, dtype=np.int64))
        start = n
        assert abs(hll.count() - n) / n <= bound, (precision, n, hll.count())


@pytest.mark.parametrize("precision", [8, 12])
def test_hyperloglog_hip_is_within_its_bound_and_beats_the_registers(precision):
    # 40 streams of 10^3 .. 2x10^5 distinct items: HIP (the estimate kept while adding) against
    # Ertl's estimator over the same registers (what count() gives after a merge).
    rng = np.random.default_rng(precision)
    bound = 4 * 0.83 / math.sqrt(2**precision)  # per stream; the means below are the tight checks
    hip_errors, register_errors = [], []
    for n in np.geomspace(1_000, 200_000, 40).astype(int):
        hll = HyperLogLog(precision)
        hll.add(rng.integers(0, 2**63, n, dtype=np.uint64))
        same_registers = HyperLogLog(precision)
        same_registers.merge(hll)
        assert (hll.estimator, same_registers.estimator) == ("hip", "registers")
        hip_errors.append(abs(hll._native.count() / n - 1))
        register_errors.append(abs(same_registers._native.count() / n - 1))
        assert hip_errors[-1] <= bound, (n, hll.count())
    assert np.mean(hip_errors) < 0.9 * np.mean(register_errors)
    assert np.mean(hip_errors) < 0.85 / math.sqrt(2**precision)  # ~0.8 x 0.83/sqrt(m) expected


def test_hyperloglog_counts_string_items():
    hll = HyperLogLog(14)
    users = np.array([f"user-{i}" for i in range(100_000)])
    hll.add(users)
    hll.add(users[:50_000])  # duplicates change nothing
    assert abs(hll.count() - 100_000) / 100_000 <= 3 * 1.04 / 128


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_top_k_finds_the_true_top_k_of_a_zipf_stream(seed):
    rng = np.random.default_rng(seed)
    items = zipf_stream(rng, 200_000, a=1.1, universe=50_000)
    k = 10
    tk = TopK(k, width=100, depth=5, seed=seed)
    tk.add(items)
    keys, counts = np.unique(items, return_counts=True)
    true_top = set(keys[np.argsort(-counts)][:k].tolist())
    assert set(tk.list()) == true_top


def test_top_k_default_parameters_find_the_heaviest_items():
    rng = np.random.default_rng(4)
    items = zipf_stream(rng, 100_000, a=1.3, universe=10_000)
    tk = TopK(5)  # RedisBloom's defaults: width 8, depth 7
    tk.add(items)
    keys, counts = np.unique(items, return_counts=True)
    assert set(tk.list()) == set(keys[np.argsort(-counts)][:5].tolist())
