"""Invariants of the sketches (hypothesis), and threads sharing one sketch."""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anomaly_detection.sketches import BloomFilter, CountMinSketch, CuckooFilter, HyperLogLog, TDigest, TopK

items_st = st.lists(
    st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=12), st.binary(max_size=12)), max_size=200
)


@settings(max_examples=60, deadline=None)
@given(items=items_st, conservative=st.booleans())
def test_count_min_never_undercounts_and_batch_equals_loop(items, conservative):
    batch = CountMinSketch(32, 3, conservative=conservative)
    loop = CountMinSketch(32, 3, conservative=conservative)
    batch.incrby(items)
    for item in items:
        loop.incrby(item)
    assert batch == loop
    for item in set(map(repr, items)):
        original = next(i for i in items if repr(i) == item)
        true = sum(1 for i in items if type(i) is type(original) and i == original)
        assert batch.query(original) >= true


@settings(max_examples=60, deadline=None)
@given(a=items_st, b=items_st)
def test_merge_equals_one_sketch_of_both_streams(a, b):
    for make in (lambda: CountMinSketch(16, 2), lambda: HyperLogLog(6)):
        left, right, both = make(), make(), make()
        left.add(a)
        right.add(b)
        both.add(a + b)
        left.merge(right)
        assert registers_of(left) == registers_of(both)


def registers_of(sketch):
    """A HyperLogLog's registers alone (a merged one counts by them, a one-pass one keeps
    its HIP estimate too); other sketches as they are."""
    if not isinstance(sketch, HyperLogLog):
        return sketch
    view = HyperLogLog(sketch.precision)
    view.merge(sketch)
    return view


@settings(max_examples=60, deadline=None)
@given(items=items_st)
def test_filters_have_no_false_negatives(items):
    bloom = BloomFilter(50, 0.01)
    cuckoo = CuckooFilter(1024, bucket_size=4)
    bloom.add(items)
    cuckoo.add(items)
    if items:
        assert np.all(bloom.exists(items))
        assert np.all(cuckoo.exists(items))


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(-1e9, 1e9), min_size=1, max_size=300))
def test_t_digest_quantiles_are_monotone_and_within_range(values):
    td = TDigest(50)
    td.add(values)
    qs = td.quantile(np.linspace(0.0, 1.0, 21))
    assert np.all(np.diff(qs) >= -1e-9 * max(1.0, abs(qs).max()))
    assert qs[0] == min(values)
    assert qs[-1] == max(values)
    assert td.total_weight == len(values)


@settings(max_examples=40, deadline=None)
@given(items=st.lists(st.integers(0, 20), max_size=300))
def test_top_k_batch_equals_loop_over_distinct_items(items):
    # A batch is applied as one weighted update per distinct item, in order of first
    # appearance; what an item pushes out is reported at its first index.
    batch, loop = TopK(3, width=8, depth=3, seed=1), TopK(3, width=8, depth=3, seed=1)
    expelled_batch = batch.add(items)
    counts = Counter(items)
    first = {item: items.index(item) for item in counts}
    expelled_loop: list[object] = [None] * len(items)
    for item in counts:  # dicts keep first-appearance order
        expelled_loop[first[item]] = loop.incrby(item, counts[item])
    assert expelled_batch == expelled_loop
    assert batch == loop


@settings(max_examples=60, deadline=None)
@given(
    texts=st.lists(
        st.text(alphabet=st.characters(max_codepoint=0x2FF), max_size=20), min_size=1, max_size=200
    ),
    increments=st.integers(1, 3),
)
def test_top_k_array_batch_equals_list_batch(texts, increments):
    # NumPy arrays of short ASCII text are grouped by their cells, without a hash per item;
    # other arrays (wider, not ASCII) hash every item. Either way: the same sketch, the same
    # items pushed out, as the same items given as a Python list.
    items = [t.rstrip("\0") for t in texts]  # NumPy drops trailing NULs
    for array in (np.array(items), np.array([t.encode() for t in items]), np.array(items, dtype="<U24")):
        from_list, from_array = TopK(3, width=8, depth=3, seed=2), TopK(3, width=8, depth=3, seed=2)
        expected = from_list.incrby(array.tolist(), increments)
        assert from_array.incrby(array, increments) == expected
        assert from_array == from_list
        # And both as one weighted update per distinct item, in order of first appearance.
        loop = TopK(3, width=8, depth=3, seed=2)
        for item, count in Counter(array.tolist()).items():
            loop.incrby(item, count * increments)
        assert loop == from_array


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.integers(-(2**63), 2**64 - 1), min_size=1, max_size=200))
def test_top_k_integer_array_batch_equals_list_batch(values):
    signed = [v for v in values if v < 2**63]
    for array in (
        np.array(signed, dtype=np.int64),
        np.array([v % 2**64 for v in values], dtype=np.uint64),
        np.array(signed, dtype=np.int64).astype(np.int32),
    ):
        from_list, from_array = TopK(3, width=8, depth=3, seed=2), TopK(3, width=8, depth=3, seed=2)
        assert from_array.add(array) == from_list.add(array.tolist())
        assert from_array == from_list
        loop = TopK(3, width=8, depth=3, seed=2)
        for item, count in Counter(array.tolist()).items():
            loop.incrby(item, count)
        assert loop == from_array


@pytest.mark.parametrize("dtype", ["<U20", "<U3"])
def test_top_k_large_arrays_that_cannot_be_grouped_by_cells(dtype):
    # Large enough to run without the GIL: a wide array, and one with a non-ASCII item
    # near its end, fall back to hashing every item, with the same result as a list.
    items = np.array([f"k{i % 97}" for i in range(20_000)], dtype=dtype)
    items[-3] = "é"
    from_list, from_array = TopK(5, width=50, depth=4), TopK(5, width=50, depth=4)
    assert from_array.add(items) == from_list.add(items.tolist())
    assert from_array == from_list
    bad = items.copy()
    bad.view(np.uint32)[-1] = 0xD800  # a lone surrogate: not a valid string
    before = from_array.to_bytes()
    with pytest.raises(ValueError, match="not a valid Unicode string"):
        from_array.add(bad)
    assert from_array.to_bytes() == before


def test_inputs_are_not_mutated():
    items = np.array([3, 1, 2])
    values = np.array([3.0, 1.0, 2.0])
    CountMinSketch(8, 2).incrby(items, np.array([1, 2, 3]))
    TDigest().add(values)
    assert items.tolist() == [3, 1, 2]
    assert values.tolist() == [3.0, 1.0, 2.0]


def test_threads_updating_one_sketch_lose_nothing():
    # Large batches release the GIL; the sketch's own mutex keeps the updates whole.
    cms = CountMinSketch(1000, 4)
    td = TDigest()
    batch = np.arange(50_000)

    def work():
        for _ in range(5):
            cms.incrby(batch)
            td.add(batch.astype(float))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cms.total == 4 * 5 * len(batch)
    assert cms.counters().sum(axis=1).tolist() == [4 * 5 * len(batch)] * 4
    assert td.total_weight == 4 * 5 * len(batch)
