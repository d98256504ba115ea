"""Behaviour of the sketches at the Python boundary: items, results, errors, bytes."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from anomaly_detection.errors import FilterFullError
from anomaly_detection.sketches import (
    BloomFilter,
    CountMinSketch,
    CuckooFilter,
    HyperLogLog,
    TDigest,
    TopK,
    hash_items,
)

GOLDEN = Path(__file__).parent / "golden"


def build_golden() -> dict[str, object]:
    """Small deterministic sketches whose bytes are kept in tests/python/golden."""
    cms = CountMinSketch(64, 3, seed=5)
    cms.incrby(["a", "b", "c"], [1, 2, 3])
    hll = HyperLogLog(6)
    hll.add(np.arange(500))
    td = TDigest(20)
    td.add(np.linspace(0.0, 1.0, 300), np.linspace(1.0, 2.0, 300))
    bloom = BloomFilter(50, 0.01)
    bloom.add([f"user{i}" for i in range(120)])
    cuckoo = CuckooFilter(64, bucket_size=4, seed=3)
    cuckoo.add([f"s{i}" for i in range(40)])
    top = TopK(3, width=16, depth=3, seed=9)
    top.incrby(["x", "y", "z", "w"], [9, 7, 5, 1])
    return {
        "count_min": cms,
        "hyperloglog": hll,
        "t_digest": td,
        "bloom": bloom,
        "cuckoo": cuckoo,
        "top_k": top,
    }


ALL = list(build_golden().items())


# -- items -------------------------------------------------------------------------------------


def test_items_of_every_kind_hash_alike():
    expected = hash_items([42, "héllo", "x"])
    assert hash_items([42, "héllo".encode(), b"x"]).tolist() == expected.tolist()
    assert hash_items(np.array([42], dtype=np.int32))[0] == expected[0]
    assert hash_items(np.array([42], dtype=np.uint64))[0] == expected[0]
    assert hash_items(np.array(["42", "héllo"]))[1] == expected[1]
    assert hash_items(np.array([b"x"]))[0] == expected[2]
    assert hash_items(np.array([42, b"x"], dtype=object)).tolist() == [expected[0], expected[2]]
    assert hash_items(np.int64(42))[0] == expected[0]
    # Arrays in the other byte order are read by value, not by their bytes.
    assert hash_items(np.array(["42", "héllo"], dtype=">U5")).tolist() == hash_items(["42", "héllo"]).tolist()
    assert hash_items(np.array([42, -7], dtype=">i8")).tolist() == hash_items([42, -7]).tolist()
    assert hash_items(np.array([42], dtype=">u4"))[0] == expected[0]
    # An int is its 8 little-endian bytes, not its decimal text.
    assert hash_items(42)[0] == hash_items((42).to_bytes(8, "little"))[0]
    assert hash_items(42)[0] != hash_items("42")[0]
    assert hash_items(-1)[0] == hash_items(2**64 - 1)[0]
    with pytest.raises(ValueError, match="items"):
        hash_items(2**70)
    with pytest.raises(ValueError, match="items"):
        hash_items([-(2**63) - 1])


def test_hash_is_xxhash64_and_stable():
    # Reference vectors of xxHash64 (seed 0): the same in every process and platform.
    assert int(hash_items("")[0]) == 0xEF46DB3751D8E999
    assert int(hash_items("abc")[0]) == 0x44BC2CF5AD770999


def test_scalar_in_scalar_out_batch_in_array_out():
    cms = CountMinSketch(100, 3)
    assert isinstance(cms.incrby("a", 2), int)
    out = cms.incrby(["a", "b"], [1, 5])
    assert isinstance(out, np.ndarray)
    assert out.tolist() == [3, 5]
    assert cms.query(np.array(["a", "b", "zz"])).tolist() == [3, 5, 0]
    assert cms.incrby([], 1).tolist() == []


@pytest.mark.parametrize(
    "item", ["x", "héllo", "", b"\xff\x00", 0, -1, 2**63 - 1, 2**64 - 1, np.int64(5), bytearray(b"ba")]
)
def test_one_item_calls_equal_batches_of_one(item):
    # One str, bytes or 64-bit int takes a path of its own (no batch is built); it must
    # count exactly as a batch of that one item does.
    pairs = [
        (
            CountMinSketch(64, 3),
            CountMinSketch(64, 3),
            lambda s, x: s.incrby(x, 3),
            lambda s, x: s.incrby([x], [3]),
        ),
        (HyperLogLog(8), HyperLogLog(8), lambda s, x: s.add(x), lambda s, x: s.add([x])),
        (BloomFilter(100, 0.01), BloomFilter(100, 0.01), lambda s, x: s.add(x), lambda s, x: s.add([x])),
        (CuckooFilter(64), CuckooFilter(64), lambda s, x: s.add_nx(x), lambda s, x: s.add_nx([x])),
        (
            CuckooFilter(64),
            CuckooFilter(64),
            lambda s, x: (s.add(x), s.count(x)),
            lambda s, x: (s.add([x]), s.count([x])),
        ),
        (
            TopK(1, width=4, depth=2),
            TopK(1, width=4, depth=2),
            lambda s, x: s.incrby(x, 3),
            lambda s, x: s.incrby([x], 3),
        ),
    ]
    for one, batch, call_one, call_batch in pairs:
        for x in ("seed", item, item, "other"):
            got, want = call_one(one, x), call_batch(batch, x)
            if isinstance(want, tuple):  # (add, count)
                got, want = got[1], want[1]
            assert [got] == list(want) if isinstance(want, (list, np.ndarray)) else got == want
        assert one == batch
    one, batch = TDigest(), TDigest()
    for v in (1.5, -2.0, 1e300):
        one.add(v)
        batch.add([v])
    assert one == batch


@pytest.mark.parametrize("bad", [-1, 1.5, "3", [1, 2], 2**64, None])
def test_bad_increment_of_one_item_raises_and_changes_nothing(bad):
    cms, tk = CountMinSketch(50, 2), TopK(2)
    before = cms.to_bytes(), tk.to_bytes()
    with pytest.raises(ValueError, match="increments"):
        cms.incrby("a", bad)
    with pytest.raises(ValueError, match="increments"):
        tk.incrby("a", bad)
    assert (cms.to_bytes(), tk.to_bytes()) == before


def test_one_bad_item_or_value_raises_and_changes_nothing():
    cms, hll, tk, td = CountMinSketch(50, 2), HyperLogLog(8), TopK(2), TDigest()
    before = [s.to_bytes() for s in (cms, hll, tk, td)]
    for call in (
        lambda: cms.incrby("\ud800", 1),
        lambda: hll.add("\ud800"),
        lambda: tk.add("\ud800"),
        lambda: hll.add(2**70),
        lambda: td.add(float("nan")),
        lambda: td.add(float("-inf")),
    ):
        with pytest.raises(ValueError):
            call()
    assert [s.to_bytes() for s in (cms, hll, tk, td)] == before


@pytest.mark.parametrize(
    "bad",
    [
        1.5,
        None,
        {"a": 1},
        {"a"},
        [1, 2.5],
        np.array([1.0, 2.0]),
        np.array([[1, 2]]),
        True,
        [True],
        np.array([True]),
    ],
)
def test_bad_items_raise_value_error_and_change_nothing(bad):
    cms = CountMinSketch(50, 2)
    cms.incrby("keep", 1)
    before = cms.to_bytes()
    with pytest.raises(ValueError, match="items"):
        cms.incrby(bad, 1)
    assert cms.to_bytes() == before


@pytest.mark.parametrize("bad", [-1, [1, -2], 1.5, [1.0, 2.0], "3", [1, 2, 3]])
def test_bad_increments_raise_value_error(bad):
    cms = CountMinSketch(50, 2)
    before = cms.to_bytes()
    with pytest.raises(ValueError, match="increments"):
        cms.incrby(["a", "b"], bad)
    assert cms.to_bytes() == before


@pytest.mark.parametrize(
    ("factory", "kwargs"),
    [
        (CountMinSketch, {"width": 0, "depth": 2}),
        (CountMinSketch, {"width": 10, "depth": -1}),
        (CountMinSketch, {"width": 10.5, "depth": 2}),
        (CountMinSketch.from_error, {"epsilon": 0, "delta": 0.1}),
        (CountMinSketch.from_error, {"epsilon": 0.1, "delta": float("nan")}),
        (HyperLogLog, {"precision": 3}),
        (HyperLogLog, {"precision": 19}),
        (TDigest, {"compression": 5}),
        (BloomFilter, {"capacity": 0, "error_rate": 0.01}),
        (BloomFilter, {"capacity": 10, "error_rate": 1.0}),
        (BloomFilter, {"capacity": 10, "error_rate": 0.1, "expansion": 0}),
        (CuckooFilter, {"capacity": 100, "bucket_size": 0}),
        (CuckooFilter, {"capacity": -5}),
        (TopK, {"k": 0}),
        (TopK, {"k": 3, "decay": 1.5}),
    ],
)
def test_bad_parameters_raise_value_error(factory, kwargs):
    with pytest.raises(ValueError, match="expected"):
        factory(**kwargs)


# -- count-min ---------------------------------------------------------------------------------


def test_count_min_from_error_and_estimates():
    cms = CountMinSketch.from_error(0.01, 0.01)
    assert (cms.width, cms.depth) == (272, 5)
    truth = {f"k{i}": i % 7 + 1 for i in range(200)}
    cms.incrby(list(truth), list(truth.values()))
    est = cms.query(list(truth))
    assert all(e >= t for e, t in zip(est, truth.values(), strict=True))
    assert cms.total == sum(truth.values())
    assert cms.info()["count"] == cms.total


def test_count_min_conservative_is_never_worse():
    rng = np.random.default_rng(1)
    items = rng.zipf(1.3, 20_000)
    plain, cons = CountMinSketch(50, 3), CountMinSketch(50, 3, conservative=True)
    plain.incrby(items)
    cons.incrby(items)
    keys = np.unique(items)
    assert np.all(cons.query(keys) <= plain.query(keys))
    true = np.array([np.sum(items == k) for k in keys[:50]])
    assert np.all(cons.query(keys[:50]) >= true)


def test_count_min_overflow_is_all_or_nothing():
    cms = CountMinSketch(16, 2)
    cms.incrby("a", 2**32 - 3)
    before = cms.to_bytes()
    with pytest.raises(OverflowError):
        cms.incrby(["b", "a"], [1, 5])
    assert cms.to_bytes() == before
    assert cms.incrby("a", 2) == 2**32 - 1


def test_count_min_merge_weights_saturate_and_refuse_mismatch():
    a, b = CountMinSketch(32, 3), CountMinSketch(32, 3)
    a.incrby("x", 2)
    b.incrby("x", 3)
    a.merge([b], weights=[10])
    assert a.query("x") == 32
    b.incrby("x", 2**32 - 10)
    a.merge(b)
    assert a.query("x") == 2**32 - 1
    with pytest.raises(ValueError, match="merge"):
        a.merge(CountMinSketch(33, 3))
    with pytest.raises(ValueError, match="merge"):
        a.merge(CountMinSketch(32, 3, seed=1))
    with pytest.raises(ValueError, match="weights"):
        a.merge([b], weights=[-1])
    with pytest.raises(ValueError, match="merge"):
        a.merge([HyperLogLog()])


def test_count_min_positions_and_counters_round_trip():
    cms = CountMinSketch(40, 4)
    pos = cms.positions(["a", "b"])
    assert pos.shape == (2, 4)
    assert np.all(pos // 40 == np.arange(4))
    cms.incrby(["a", "b"], [3, 4])
    other = CountMinSketch(40, 4)
    other.load_counters(cms.counters())
    assert other.query(["a", "b"]).tolist() == cms.query(["a", "b"]).tolist()
    with pytest.raises(ValueError, match="counters"):
        other.load_counters(np.zeros(7, dtype=np.uint32))


# -- the others --------------------------------------------------------------------------------


def test_hyperloglog_merge_and_info():
    a, b = HyperLogLog(12), HyperLogLog(12)
    a.add(np.arange(0, 6000))
    b.add(np.arange(3000, 9000))
    a.merge(b)
    assert abs(a.count() - 9000) < 3 * a.standard_error * 9000
    assert a.info()["registers"] == 4096
    with pytest.raises(ValueError, match="precision"):
        a.merge(HyperLogLog(10))


def test_hyperloglog_estimator_follows_the_history():
    a = HyperLogLog(10)
    assert (a.count(), a.estimator) == (0, "hip")
    a.add(np.arange(5000))
    hip = a.count()
    assert a.standard_error == pytest.approx(0.83 / 32)
    a.merge(HyperLogLog(10))  # an empty sketch changes no register: still HIP
    assert (a.count(), a.estimator) == (hip, "hip")
    b = HyperLogLog(10)
    b.add(np.arange(4000, 6000))
    a.merge(b)
    assert a.estimator == "registers"
    assert a.standard_error == pytest.approx(1.04 / 32)
    assert a.info()["estimator"] == "registers"
    assert abs(a.count() - 6000) < 3 * a.standard_error * 6000
    restored = HyperLogLog.from_bytes(a.to_bytes())
    assert (restored.estimator, restored.count()) == ("registers", a.count())
    a.clear()
    assert (a.count(), a.estimator) == (0, "hip")
    redis_side = HyperLogLog(14, redis_compatible=True)
    redis_side.add(np.arange(100))
    assert HyperLogLog.from_redis_bytes(redis_side.to_redis_bytes()).estimator == "registers"


def test_hyperloglog_version_1_bytes_load_with_the_register_estimate():
    # Written before the HIP estimate was kept (format version 1): the same registers as
    # today's golden sketch, counted by Ertl's estimator.
    old = HyperLogLog.from_bytes((GOLDEN / "sketch_hyperloglog_v1.bin").read_bytes())
    new = HyperLogLog.from_bytes((GOLDEN / "sketch_hyperloglog.bin").read_bytes())
    assert (old.estimator, new.estimator) == ("registers", "hip")
    same_registers = HyperLogLog(6)
    same_registers.merge(new)
    assert old == same_registers
    assert old.count() == same_registers.count()


def test_t_digest_api():
    td = TDigest()
    assert np.isnan(td.quantile(0.5))
    td.add([1.0, 2.0, 3.0, 4.0], weights=[1, 1, 1, 5])
    assert td.total_weight == 8
    assert (td.min(), td.max()) == (1.0, 4.0)
    qs = td.quantile([0.0, 1.0])
    assert qs.tolist() == [1.0, 4.0]
    assert 0.0 < td.cdf(2.5) < 1.0
    assert td.cdf([0.0, 10.0]).tolist() == [0.0, 1.0]
    assert td.trimmed_mean(0.0, 1.0) == pytest.approx(26 / 8)
    for bad in ([1.0, float("nan")], [float("inf")], ["x"], [[1.0], [2.0]]):
        with pytest.raises(ValueError, match="values"):
            td.add(bad)
    with pytest.raises(ValueError, match="weights"):
        td.add([1.0, 2.0], weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="weights"):
        td.add([1.0, 2.0], weights=[1.0])
    with pytest.raises(ValueError, match="q: expected"):
        td.quantile(1.5)
    with pytest.raises(ValueError, match="trimmed_mean"):
        td.trimmed_mean(0.6, 0.4)
    assert td.total_weight == 8
    other = TDigest()
    other.add(np.arange(100.0))
    td.merge(other)
    assert td.max() == 99.0
    with pytest.raises(ValueError, match="compression"):
        td.merge(TDigest(200))


def test_bloom_scaling_and_non_scaling():
    bf = BloomFilter(100, 0.01)
    bf.add(np.arange(1000))
    assert bf.info()["layers"] > 1
    assert np.all(bf.exists(np.arange(1000)))
    assert 5 in bf
    assert len(bf) <= 1000
    fixed = BloomFilter(10, 0.01, non_scaling=True)
    fixed.add(np.arange(10))
    with pytest.raises(FilterFullError):
        fixed.add("more")
    assert fixed.positions(["a"]).shape == (1, fixed.info()["hashes"])


def test_cuckoo_api_and_filter_full():
    cf = CuckooFilter(1000, bucket_size=2)
    cf.add(["a", "a", "b"])
    assert cf.count("a") == 2
    assert cf.add_nx(["a", "c"]).tolist() == [False, True]
    assert cf.delete("a") is True
    assert cf.count("a") == 1
    assert cf.delete("never") is False
    assert cf.info()["items"] == 3
    grow = CuckooFilter(64, expansion=1)
    grow.add(np.arange(500))
    assert grow.info()["filters"] > 1
    assert np.all(grow.exists(np.arange(500)))
    full = CuckooFilter(64, bucket_size=2, expansion=0)
    with pytest.raises(FilterFullError):
        full.add(np.arange(1000))
    assert isinstance(FilterFullError("x"), RuntimeError)
    with pytest.raises(ValueError, match="capacity"):
        CuckooFilter(2**63 + 5, bucket_size=1)


def test_top_k_api():
    tk = TopK(2, width=20, depth=4)
    assert tk.add("a") is None
    assert tk.incrby(["b", "c"], [5, 9]) == [None, "a"]
    assert tk.list() == ["c", "b"]
    assert tk.list(with_count=True) == [("c", 9), ("b", 5)]
    assert tk.query(["c", "a"]).tolist() == [True, False]
    assert tk.count("c") == 9
    with pytest.raises(ValueError, match="increments"):
        tk.incrby("a", 0)
    other = TopK(2, width=20, depth=4)
    other.incrby("b", 10)
    tk.merge(other)
    assert tk.list(with_count=True)[0] == ("b", 15)
    with pytest.raises(ValueError, match="merge"):
        tk.merge(TopK(3, width=20, depth=4))


def test_top_k_returns_items_as_they_came():
    tk = TopK(3, width=20, depth=4)
    tk.incrby([7, "seven", b"bytes"], [5, 4, 3])
    assert tk.list() == [7, "seven", "bytes"]
    assert tk.query(np.array([7])).tolist() == [True]
    assert tk.query("7") is False


def test_top_k_is_seeded_and_repeatable():
    items = np.random.default_rng(0).zipf(1.2, 5000)
    runs = []
    for _ in range(2):
        tk = TopK(5, seed=17)
        tk.add(items)
        runs.append(tk.to_bytes())
    assert runs[0] == runs[1]


# -- bytes and pickle --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "sketch"), ALL)
def test_round_trip_bytes_and_pickle(name, sketch):
    blob = sketch.to_bytes()
    again = type(sketch).from_bytes(blob)
    assert again == sketch
    assert again.to_bytes() == blob
    assert pickle.loads(pickle.dumps(sketch)) == sketch
    assert sketch.copy() == sketch
    assert name in repr(sketch).lower().replace("countminsketch", "count_min").replace(
        "bloomfilter", "bloom"
    ).replace("cuckoofilter", "cuckoo").replace("tdigest", "t_digest").replace("topk", "top_k")


@pytest.mark.parametrize(("name", "sketch"), ALL)
def test_golden_bytes_still_load(name, sketch):
    golden = (GOLDEN / f"sketch_{name}.bin").read_bytes()
    loaded = type(sketch).from_bytes(golden)
    assert loaded == sketch, "the format changed: bump the version and keep reading old bytes"


def test_golden_bytes_answer_as_before():
    load = {name: type(s).from_bytes((GOLDEN / f"sketch_{name}.bin").read_bytes()) for name, s in ALL}
    assert load["count_min"].query(["a", "b", "c"]).tolist() == [1, 2, 3]
    assert abs(load["hyperloglog"].count() - 500) < 3 * 0.13 * 500
    assert load["t_digest"].min() == 0.0
    assert np.all(load["bloom"].exists([f"user{i}" for i in range(120)]))
    assert np.all(load["cuckoo"].exists([f"s{i}" for i in range(40)]))
    assert load["top_k"].list() == ["x", "y", "z"]


@pytest.mark.parametrize(("name", "sketch"), ALL)
def test_foreign_and_garbage_bytes_raise_value_error(name, sketch):
    cls = type(sketch)
    for other_name, other in ALL:
        if other_name != name:
            with pytest.raises(ValueError, match="family"):
                cls.from_bytes(other.to_bytes())
    for bad in (b"", b"ADET", b"\x00" * 100, "not bytes"):
        with pytest.raises(ValueError, match=r"corruption|expected bytes"):
            cls.from_bytes(bad)


if __name__ == "__main__":  # regenerate the golden files (only when the format changes on purpose)
    GOLDEN.mkdir(exist_ok=True)
    for name, sketch in ALL:
        (GOLDEN / f"sketch_{name}.bin").write_bytes(sketch.to_bytes())


def test_redis_compatible_hyperloglog_bytes():
    hll = HyperLogLog(14, redis_compatible=True)
    hll.add(np.arange(10_000))
    blob = hll.to_redis_bytes()
    assert blob[:4] == b"HYLL"
    assert len(blob) == 16 + 12288
    assert HyperLogLog.from_redis_bytes(blob).to_redis_bytes() == blob  # the same registers
    assert pickle.loads(pickle.dumps(hll)) == hll
    with pytest.raises(ValueError, match="precision"):
        HyperLogLog(12, redis_compatible=True)
    with pytest.raises(RuntimeError, match="Redis-compatible"):
        HyperLogLog(14).to_redis_bytes()
    with pytest.raises(ValueError, match="merge"):
        hll.merge(HyperLogLog(14))
    for bad in (
        b"",
        b"HYLL",
        blob[:-1],
        b"HYLL\x02" + blob[5:],
        b"HYLL\x01" + b"\x00" * 11 + b"\x7f\xff\x00",
    ):
        with pytest.raises(ValueError, match="possible corruption"):
            HyperLogLog.from_redis_bytes(bad)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint64])
@pytest.mark.parametrize("increment", [1, 3])
def test_count_min_int_array_fast_path_equals_item_by_item(dtype, increment):
    # NumPy int arrays with one increment take a blocked hashing path; it must build the same sketch.
    items = np.random.default_rng(5).zipf(1.3, 20_000).astype(dtype) % 5000
    fast = CountMinSketch.from_dims(2000, 5)
    slow = CountMinSketch.from_dims(2000, 5)
    fast.incrby(items, increment)
    for start in range(0, len(items), 997):  # lists go through the general path
        chunk = [int(x) for x in items[start : start + 997]]
        slow.incrby(chunk, [increment] * len(chunk))
    assert fast.to_bytes() == slow.to_bytes()
    np.testing.assert_array_equal(fast.query(items[:100]), slow.query([int(x) for x in items[:100]]))


def test_one_item_entry_points_bypass_the_dispatcher_and_fall_back_to_it():
    """add / incrby of the native classes are CPython method descriptors (the one-item fast
    path); keywords, batches, other types and errors go to the general pybind11 method,
    with the same results and errors."""
    from anomaly_detection import _core

    for cls, name in ((_core.HyperLogLog, "add"), (_core.CountMinSketch, "incrby"), (_core.TDigest, "add"),
                      (_core.TopK, "incrby")):  # fmt: skip
        assert type(cls.__dict__[name]).__name__ == "method_descriptor"
    fast, general = CountMinSketch(32, 2), CountMinSketch(32, 2)
    assert fast._native.incrby("a") == general._native._incrby("a") == 1
    assert fast._native.incrby(items="a", increments=4) == general._native._incrby("a", 4) == 5
    assert fast._native.incrby(b"a", 2) == general._native._incrby(b"a", 2) == 7  # b"a" is "a"
    assert fast._native.incrby(np.int64(7), 2) == general._native._incrby(np.int64(7), 2) == 2
    assert fast.to_bytes() == general.to_bytes()
    fast.incrby("z", 2**32 - 3)
    before = fast.to_bytes()
    with pytest.raises(OverflowError):  # one item, all or nothing
        fast.incrby("z", 5)
    assert fast.to_bytes() == before
    td = TDigest()
    td._native.add(2.5)
    td._native.add(3.5, None)
    td._native.add(4.5, weights=None)
    with pytest.raises(ValueError):
        td._native.add(float("nan"))
    assert (td.total_weight, td.min(), td.max()) == (3.0, 2.5, 4.5)
    tk = TopK(1, width=4, depth=2)
    assert tk._native.incrby("a", 1) is None
    pushed = [tk._native.incrby("b", 5), tk._native.incrby("b", 5)]
    assert "a" in pushed
    assert tk.list() == ["b"]


def test_user_facing_one_item_methods_forward_to_the_fast_entries():
    """HyperLogLog.add, CountMinSketch.incrby, TDigest.add and TopK.incrby of the classes
    users hold call the native entry with no Python frame, keep their docstrings, and
    take every argument form the Python methods took."""
    for cls, name in ((HyperLogLog, "add"), (CountMinSketch, "incrby"), (TDigest, "add"), (TopK, "incrby"),
                      (TopK, "add")):  # fmt: skip
        method = cls.__dict__[name]
        assert type(method).__name__ == "method_descriptor"
        assert method.__doc__
        assert method.__doc__ != getattr(cls._native_type, name, None).__doc__  # the Python one
    a, b = HyperLogLog(8), HyperLogLog(8)
    assert a.add("x") is True
    assert a.add(items="x") is False
    assert a.add(["y", 3]) is True
    b._native._add(["x", "y", 3])
    assert a == b
    cms = CountMinSketch(32, 2)
    assert cms.incrby("k") == 1
    assert cms.incrby("k", 2) == 3
    assert cms.incrby(items="k", increments=3) == 6
    assert cms.incrby(["k", "j"], [1, 1]).tolist() == [7, 1]
    assert cms.add("k") == 8
    td = TDigest()
    td.add(1.0)
    td.add([2.0, 3.0], weights=[1.0, 2.0])
    assert td.total_weight == 4.0
    with pytest.raises(TypeError):
        HyperLogLog.add(cms, "x")  # the descriptor checks its self

    class Counting(HyperLogLog):
        __slots__ = ("calls",)

        def add(self, items):
            self.calls = getattr(self, "calls", 0) + 1
            return super().add(items)

    c = Counting(8)
    assert c.add("x") is True
    assert c.calls == 1


def test_top_k_add_forwards_one_item_and_falls_back_for_everything_else():
    """TopK.add(item) reaches the native one-item entry (increment 1) with no Python frame,
    reading the `_native` slot in place; batches, keywords, subclasses and bad input take the
    general path (_add), with the same sketch and the same errors as incrby(items, 1)."""
    assert TopK.add.__doc__.startswith("Count each item once")
    fast, loop = TopK(3, width=8, depth=3, seed=1), TopK(3, width=8, depth=3, seed=1)
    stream = ["a", "b", "a", b"c", 7, "a", "d", "e", "b", 7, 7, "f"]
    pushed_fast = [fast.add(x) for x in stream]
    pushed_loop = [loop.incrby(x, 1) for x in stream]
    assert pushed_fast == pushed_loop
    assert fast.to_bytes() == loop.to_bytes()
    assert fast.add(items="a") == loop.incrby(items="a")
    assert fast.add(["g", "a", 7]) == loop.incrby(["g", "a", 7], 1)
    assert fast.add(np.array(["h", "a"])) == loop.incrby(np.array(["h", "a"]), 1)
    assert fast.to_bytes() == loop.to_bytes()
    before = fast.to_bytes()
    for bad in (1.5, None, 2**70):
        with pytest.raises((TypeError, ValueError, OverflowError)):
            fast.add(bad)
    with pytest.raises(TypeError):
        fast.add("a", 2)  # add takes no increment
    assert fast.to_bytes() == before
    with pytest.raises(TypeError):
        TopK.add(HyperLogLog(8), "x")  # the descriptor checks its self

    class Sub(TopK):
        __slots__ = ()

    sub, ref = Sub(3, width=8, depth=3, seed=1), TopK(3, width=8, depth=3, seed=1)
    assert [sub.add(x) for x in stream] == [ref.add(x) for x in stream]
    assert sub.to_bytes() == ref.to_bytes()
    empty = TopK.__new__(TopK)  # __init__ not run: no _native, the generic lookup raises
    with pytest.raises(AttributeError):
        empty.add("a")


def test_t_digest_weights_that_would_break_its_state_are_refused_and_change_nothing():
    """Weights near DBL_MAX summed to a total of inf: to_bytes wrote it and from_bytes refused
    its own output as corrupt (so a shared t-digest's shard could not be read back). A
    subnormal weight (5e-324) made the median NaN. Both are refused now, nothing changed."""
    largest = float(np.finfo(np.float64).max)
    td = TDigest(compression=10)
    td.add([1.0, 2.0])
    before = td.to_bytes()
    with pytest.raises(ValueError, match="total weight"):
        td.add([largest, largest], weights=[largest, largest])
    with pytest.raises(ValueError, match="weights"):
        td.add([largest, largest], weights=[5e-324, 5e-324])
    assert td.to_bytes() == before
    a, b = TDigest(compression=10), TDigest(compression=10)
    a.add([1.0], weights=[largest])
    b.add([2.0], weights=[largest])
    with pytest.raises(ValueError, match="total weight"):
        a.merge(b)
    assert TDigest.from_bytes(a.to_bytes()).total_weight == largest
