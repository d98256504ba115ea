"""The bounded cache of freed output memory (cpp/bindings/output_cache.cpp).

``detect_batch`` and its kin give each output array of 1 MiB or more memory from a small
cache of freed blocks when one of a similar size is there. These tests check that the reuse
happens, that the bounds hold, and above all that an array a caller still holds (or a view of
it) is never handed to a later call.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest

import anomaly_detection
from anomaly_detection import StatisticalAnomalyDetector, _core

N = 200_000  # float64 / uint64 outputs of 1.6 MB each (cached); the 200 KB flags are NumPy's
POOLED = ("scores", "deviations", "expected", "window_counts")
DEFAULT_BUFFERS, DEFAULT_BYTES = 8, 256 << 20


@pytest.fixture(autouse=True)
def empty_cache():
    _core._bypass_output_cache(False)
    _core._set_output_cache_limits(DEFAULT_BUFFERS, DEFAULT_BYTES)
    yield
    _core._bypass_output_cache(False)
    _core._set_output_cache_limits(DEFAULT_BUFFERS, DEFAULT_BYTES)


def stream(seed: int, n: int = N) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(20.0, 1.0, n)
    x[rng.integers(0, n, n // 500)] += 9.0
    return x


def detect(x: np.ndarray, sensor: str = "s", method: str = "zscore", det=None):
    det = det or StatisticalAnomalyDetector(detection_method=method, window_size=50, min_samples=10)
    return det.detect_batch(sensor, x, np.arange(len(x), dtype=np.float64))


def addresses(result) -> set[int]:
    return {getattr(result, name).ctypes.data for name in POOLED}


def snapshot(result) -> dict[str, np.ndarray]:
    return {name: getattr(result, name).copy() for name in (*POOLED, "is_anomaly")}


def assert_unchanged(result, before) -> None:
    for name, copy in before.items():
        np.testing.assert_array_equal(getattr(result, name), copy, err_msg=name)


def info() -> dict:
    return _core._output_cache_info()


def test_defaults_are_documented_bounds():
    got = info()
    assert (got["max_buffers"], got["max_bytes"], got["min_array_bytes"]) == (8, 256 << 20, 1 << 20)
    assert got["buffers"] == got["bytes"] == 0


def test_freed_outputs_are_reused_by_the_next_batch():
    first = detect(stream(1))
    freed = addresses(first)
    del first
    assert info()["buffers"] == len(POOLED)
    hits = info()["hits"]
    second = detect(stream(2))
    assert addresses(second) == freed
    assert info()["hits"] == hits + len(POOLED)
    assert info()["buffers"] == 0


def test_a_kept_result_is_never_overwritten_by_a_later_call():
    # Blocks in the cache from an earlier batch: the kept result takes them, and the later
    # calls (same sensor, another sensor, another method) must get other memory.
    del_me = detect(stream(0))
    del del_me
    det = StatisticalAnomalyDetector(detection_method="zscore", window_size=50, min_samples=10)
    kept = detect(stream(1), det=det)
    before = snapshot(kept)
    kept_addresses = addresses(kept)
    later = [
        detect(stream(2), det=det),
        detect(stream(3), sensor="t", det=det),
        detect(stream(4), method="ewma"),
    ]
    for result in later:
        assert not addresses(result) & kept_addresses
    for seed in range(5, 9):  # freed at once, then reused by the next
        detect(stream(seed), det=det)
    later.clear()
    detect(stream(9), det=det)
    assert_unchanged(kept, before)
    # And the kept memory is still the kept result's: writing to it changes nothing else.
    fresh = detect(stream(1))
    kept.scores[:] = -1.0
    assert np.all(fresh.scores != -1.0)


def test_a_view_keeps_its_memory_out_of_the_cache():
    result = detect(stream(1))
    view, counts = result.scores[10:], result.window_counts
    before_view, before_counts = view.copy(), counts.copy()
    del result
    assert info()["buffers"] == len(POOLED) - 2  # deviations and expected only
    for seed in range(2, 6):
        later = detect(stream(seed))
        assert not np.shares_memory(later.scores, view)
        assert not np.shares_memory(later.window_counts, counts)
    np.testing.assert_array_equal(view, before_view)
    np.testing.assert_array_equal(counts, before_counts)


def test_outputs_are_independent_writable_arrays_owning_their_memory():
    result = detect(stream(1))
    arrays = [getattr(result, name) for name in POOLED]
    for a in arrays:
        assert a.flags.writeable
        assert a.flags.c_contiguous
        assert type(a.base).__name__ == "PyCapsule"
    for i, a in enumerate(arrays):
        for b in arrays[i + 1 :]:
            assert not np.shares_memory(a, b)
    assert result.alert_scores is result.scores  # one array for both, as before


def test_results_equal_numpys_allocation():
    x = stream(1)
    cached = snapshot(detect(x))
    _core._bypass_output_cache(True)
    plain = detect(x)
    assert type(plain.scores.base).__name__ != "PyCapsule"
    assert_unchanged(plain, cached)


def test_bound_on_buffers():
    results = [detect(stream(seed)) for seed in range(3)]  # 12 blocks in use
    assert info()["buffers"] == 0
    results.clear()
    got = info()
    assert got["buffers"] == DEFAULT_BUFFERS
    assert got["bytes"] == DEFAULT_BUFFERS * 1_600_000


def test_bound_on_bytes():
    _core._set_output_cache_limits(8, 5 << 20)  # room for three 1.6 MB blocks
    del_me = detect(stream(1))
    del del_me
    got = info()
    assert got["buffers"] == 3
    assert got["bytes"] == 3 * 1_600_000 <= 5 << 20


def test_limits_of_zero_keep_nothing():
    _core._set_output_cache_limits(0, 0)
    del_me = detect(stream(1))
    del del_me
    assert info()["buffers"] == info()["bytes"] == 0


def test_small_arrays_are_numpys():
    result = detect(stream(1, 100_000))  # 800 KB outputs
    assert type(result.scores.base).__name__ != "PyCapsule"
    del result
    assert info()["buffers"] == 0


def test_only_a_similar_size_is_reused():
    first = detect(stream(1))  # blocks of 1.6 MB
    freed = addresses(first)
    del first
    smaller = detect(stream(2, 140_000))  # 1.12 MB: a 1.6 MB block would waste 43%
    assert not addresses(smaller) & freed
    assert info()["buffers"] == len(POOLED)
    close = detect(stream(3, 190_000))  # 1.52 MB: within a quarter
    assert addresses(close) == freed
    assert info()["buffers"] == 0


def test_release_memory_empties_the_cache():
    assert anomaly_detection.release_memory is _core.release_memory
    del_me = detect(stream(1))
    del del_me
    assert info()["buffers"] == len(POOLED)
    assert anomaly_detection.release_memory() == len(POOLED) * 1_600_000
    assert info()["buffers"] == info()["bytes"] == 0
    assert anomaly_detection.release_memory() == 0


def test_threads_and_detect_many_get_distinct_memory():
    xs = [stream(seed) for seed in range(6)]
    _core._bypass_output_cache(True)
    expected = [snapshot(detect(x)) for x in xs]
    _core._bypass_output_cache(False)
    errors = []

    def worker(i: int) -> None:
        try:
            for _ in range(5):
                result = detect(xs[i])
                assert_unchanged(result, expected[i])
        except AssertionError as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert info()["buffers"] <= DEFAULT_BUFFERS

    det = StatisticalAnomalyDetector(detection_method="zscore", window_size=50, min_samples=10)
    ts = {f"s{i}": np.arange(N, dtype=np.float64) for i in range(len(xs))}
    many = det.detect_many({f"s{i}": x for i, x in enumerate(xs)}, ts, threads=2)
    seen: set[int] = set()
    for i in range(len(xs)):
        result = many[f"s{i}"]
        assert_unchanged(result, expected[i])
        assert not addresses(result) & seen
        seen |= addresses(result)


def test_nothing_is_kept_after_interpreter_exit():
    # atexit runs handlers last-registered first: this one, registered before the module is
    # imported, runs after the module's own handler has emptied and closed the cache.
    code = """
import atexit
kept = []
def check():
    from anomaly_detection import _core
    kept.clear()  # a result freed after the cache closed is freed, not kept
    got = _core._output_cache_info()
    print("cache at exit:", got["buffers"], got["bytes"])
atexit.register(check)
import numpy as np
from anomaly_detection import StatisticalAnomalyDetector, _core
det = StatisticalAnomalyDetector(detection_method="zscore", window_size=50, min_samples=10)
x = np.random.default_rng(0).normal(size=200_000)
first = det.detect_batch("s", x, np.arange(len(x), dtype=np.float64))
kept.append(det.detect_batch("t", x, np.arange(len(x), dtype=np.float64)))
del first
assert _core._output_cache_info()["buffers"] == 4
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "cache at exit: 0 0"


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="fork() is POSIX only")
def test_a_child_forked_while_threads_use_the_cache_can_use_it():
    # Threads take and give back blocks (the GIL released) while the main thread forks: a
    # child must never inherit the cache's lock held by a thread it does not have.
    import os
    import warnings

    stop = threading.Event()

    def churn(seed: int) -> None:
        det = StatisticalAnomalyDetector(detection_method="zscore")
        x = stream(seed)
        while not stop.is_set():
            det.detect_batch(f"c{seed}", x)

    threads = [threading.Thread(target=churn, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    try:
        for _ in range(20):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads (3.12+)
                pid = os.fork()
            if pid == 0:  # the child: one call through the cache, then out at once
                code = 0
                try:
                    StatisticalAnomalyDetector(detection_method="zscore").detect_batch("child", stream(9))
                except BaseException:  # noqa: BLE001 - reported through the exit status
                    code = 1
                os._exit(code)
            for _ in range(600):  # 30 s at most
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                stop.wait(0.05)
            else:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                pytest.fail("a forked child hung on the output cache")
            assert os.waitstatus_to_exitcode(status) == 0
    finally:
        stop.set()
        for t in threads:
            t.join()
